package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/store"
)

// CheckpointOptions configure the checkpoint bucket. A nil
// *CheckpointOptions is valid.
type CheckpointOptions struct {
	// Bucket is the JetStream object store bucket holding the checkpoints.
	// The default value is "FACESEARCH_CHECKPOINTS".
	Bucket string
	// Replicas is how many NATS nodes hold each checkpoint. The default value
	// is the log's [LogOptions.Replicas].
	Replicas int
	// Lease bounds how long one node holds the right to take the next
	// checkpoint ([Checkpointer]), and is the age past which an unverified
	// checkpoint (its upload or verification interrupted) is deleted. The
	// default value is 1h.
	Lease time.Duration
	// MaxSize is the largest checkpoint archive a node downloads and
	// unpacks. The default value is 4 TiB.
	MaxSize int64
}

func (o *CheckpointOptions) ensureDefaults(l *LogOptions) {
	o.Bucket = cmp.Or(o.Bucket, "FACESEARCH_CHECKPOINTS")
	o.Replicas = cmp.Or(o.Replicas, l.Replicas)
	o.Lease = cmp.Or(o.Lease, time.Hour)
	o.MaxSize = cmp.Or(o.MaxSize, 4<<40)
}

// Validate reports every problem of the options at once.
func (o *CheckpointOptions) Validate() error {
	var list []string
	// JetStream's bucket names; the lease bucket adds a suffix.
	if !tokenPattern.MatchString(o.Bucket) || strings.ContainsAny(o.Bucket, ".:") || len(o.Bucket) > 100 {
		list = append(list, fmt.Sprintf("Bucket %q must be letters, digits, '-' and '_'", o.Bucket))
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		list = append(list, fmt.Sprintf("Replicas %d must be 1 to 5", o.Replicas))
	}
	if o.Lease <= 0 || o.MaxSize <= 0 {
		list = append(list, "Lease and MaxSize must be positive")
	}
	return problems(ErrInvalidOptions, "checkpoints", list)
}

// The object metadata of a checkpoint. A checkpoint is usable only with
// all of them: metaVerified is set last, once the upload was read back.
const (
	metaFormat   = "facesearch-checkpoint-format"
	metaSequence = "facesearch-sequence"
	metaNode     = "facesearch-node"
	metaVerified = "facesearch-verified-sha256"
	// checkpointFormat is the archive's format: a tar of the store's files.
	checkpointFormat = "1"
)

// Checkpoint describes one checkpoint in the bucket.
type Checkpoint struct {
	// Name is the object's name in the bucket.
	Name string
	// Seq is the log sequence the store inside had applied: a node restored
	// from it follows the log from Seq+1.
	Seq uint64
	// Node is the node that took it.
	Node string
	// Size is the archive's size in bytes.
	Size uint64
	// SHA256 is the archive's digest, hex, as read back after the upload;
	// empty while the checkpoint is not verified.
	SHA256 string
	// Time is when its metadata was last written.
	Time time.Time
}

// Verified reports whether the checkpoint's upload was read back and
// matched, so it may be used.
func (c *Checkpoint) Verified() bool { return c.SHA256 != "" }

// Checkpoints is the bucket of store checkpoints that new nodes, and
// nodes behind the trimmed log, bootstrap from.
type Checkpoints struct {
	log   *Log
	obs   jetstream.ObjectStore
	lease jetstream.KeyValue
	opts  CheckpointOptions

	// Test hooks: packed and fetched are called with the bytes packed or
	// downloaded so far, trimmed after Trim purged the log and before it
	// deletes checkpoints.
	packed, fetched func(n int64)
	trimmed         func()
	// stall bounds a download's wait for its next bytes.
	stall time.Duration
}

// OpenCheckpoints creates the checkpoint bucket beside l, or checks an
// existing one: file storage, l's replica count (or opts'), and no age limit
// that would expire a checkpoint. Like [OpenLog] it retries until ctx is
// done while the cluster forms; a misconfigured bucket is refused with
// [ErrStreamConfig] and left as it is.
func OpenCheckpoints(ctx context.Context, l *Log, opts *CheckpointOptions) (*Checkpoints, error) {
	o := CheckpointOptions{}
	if opts != nil {
		o = *opts
	}
	o.ensureDefaults(&l.opts)
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := &Checkpoints{log: l, opts: o, stall: 30 * time.Second}
	cfg := jetstream.ObjectStoreConfig{Bucket: o.Bucket, Description: "facesearch store checkpoints",
		Storage: jetstream.FileStorage, Replicas: o.Replicas}
	lcfg := jetstream.KeyValueConfig{Bucket: o.Bucket + "_LEASE", Description: "facesearch checkpoint lease",
		Storage: jetstream.FileStorage, Replicas: o.Replicas, TTL: o.Lease}
	err := retry(ctx, func(ctx context.Context) error {
		obs, err := l.js.CreateObjectStore(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			if obs, err = l.js.ObjectStore(ctx, o.Bucket); err == nil {
				err = o.checkBucket(ctx, obs)
			}
		}
		if err != nil {
			return err
		}
		kv, err := l.js.CreateKeyValue(ctx, lcfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = l.js.KeyValue(ctx, lcfg.Bucket)
		}
		c.obs, c.lease = obs, kv
		return err
	}, l.opts.RequestTimeout, func(err error) bool { return !errors.Is(err, ErrStreamConfig) })
	if err != nil {
		return nil, fmt.Errorf("cluster: open checkpoint bucket %s: %w", o.Bucket, err)
	}
	return c, nil
}

// checkBucket lists every way an existing bucket breaks the checkpoints'
// promises.
func (o *CheckpointOptions) checkBucket(ctx context.Context, obs jetstream.ObjectStore) error {
	st, err := obs.Status(ctx)
	if err != nil {
		return err
	}
	var list []string
	if st.Storage() != jetstream.FileStorage {
		list = append(list, fmt.Sprintf("storage is %s, not file", st.Storage()))
	}
	if st.Replicas() != o.Replicas {
		list = append(list, fmt.Sprintf("replicas %d, not %d", st.Replicas(), o.Replicas))
	}
	if st.TTL() != 0 {
		list = append(list, fmt.Sprintf("objects expire after %s", st.TTL()))
	}
	if st.Sealed() {
		list = append(list, "sealed")
	}
	return problems(ErrStreamConfig, "checkpoint bucket "+o.Bucket, list)
}

// Backuper is a store that [Checkpoints.Take] can checkpoint while it is
// in use: [*engine.Engine] is one.
type Backuper interface {
	// Backup writes a consistent copy of the store into dir, which must not
	// exist yet.
	Backup(dir string) error
}

var _ Backuper = (*engine.Engine)(nil)

// Take checkpoints src's store and publishes it: a consistent Pebble
// checkpoint made in a new directory under scratch (which should be on the
// store's file system, so that the checkpoint hard-links its tables), its
// applied sequence read from inside it, packed and uploaded under a new
// name, read back and compared by SHA-256, and only then marked verified.
// Whatever fails or is interrupted before the mark leaves no usable
// checkpoint, and the others as they were. node names the taker.
func (c *Checkpoints) Take(ctx context.Context, src Backuper, node, scratch string) (Checkpoint, error) {
	tmp, err := os.MkdirTemp(scratch, ".checkpoint-")
	if err != nil {
		return Checkpoint{}, fmt.Errorf("cluster: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "store")
	if err := src.Backup(dir); err != nil {
		return Checkpoint{}, fmt.Errorf("cluster: checkpoint: %w", err)
	}
	seq, err := readApplied(dir)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("cluster: checkpoint: %w", err)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	cp := Checkpoint{Name: fmt.Sprintf("checkpoint-%020d-%s-%x", seq, node, suffix), Seq: seq, Node: node}
	meta := jetstream.ObjectMeta{Name: cp.Name, Description: "facesearch store checkpoint", Metadata: map[string]string{
		metaFormat: checkpointFormat, metaSequence: strconv.FormatUint(seq, 10), metaNode: node,
	}}
	digest, size, err := c.upload(ctx, meta, dir)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("cluster: checkpoint %s: upload: %w", cp.Name, err)
	}
	if err := c.verify(ctx, meta, digest, size); err != nil {
		// Best effort: a later trim deletes it past the lease otherwise.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.log.opts.RequestTimeout)
		_ = c.obs.Delete(dctx, cp.Name)
		cancel()
		return Checkpoint{}, fmt.Errorf("cluster: checkpoint %s: %w", cp.Name, err)
	}
	cp.Size, cp.SHA256, cp.Time = uint64(size), digest, time.Now()
	return cp, nil
}

// verify reads the upload back and, if it is the size and SHA-256 (hex)
// packed, marks it verified.
func (c *Checkpoints) verify(ctx context.Context, meta jetstream.ObjectMeta, digest string, size int64) error {
	err := again(ctx, func() error {
		res, err := c.openObject(ctx, meta.Name)
		if err != nil {
			return err
		}
		defer res.Close()
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(res, size+1))
		switch {
		case err != nil && !errors.Is(err, jetstream.ErrDigestMismatch):
			return err
		case n < size:
			return fmt.Errorf("%w: %w: %d of %d bytes (%v)", ErrBadCheckpoint, errShort, n, size, err)
		case err != nil:
			return fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != digest || n != size {
			return fmt.Errorf("%w: read back as %d bytes with SHA-256 %s, uploaded %d with %s", ErrBadCheckpoint, n, got, size, digest)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	meta.Metadata[metaVerified] = digest
	if err := c.visible(ctx, func() error { return c.obs.UpdateMeta(ctx, meta.Name, meta) }); err != nil {
		return fmt.Errorf("mark verified: %w", err)
	}
	return nil
}

// upload streams dir, packed, into the object meta names, returning the
// SHA-256 (hex) and size of what it packed.
func (c *Checkpoints) upload(ctx context.Context, meta jetstream.ObjectMeta, dir string) (string, int64, error) {
	pr, pw := io.Pipe()
	h := sha256.New()
	w := &countingWriter{w: io.MultiWriter(pw, h), hook: c.packed}
	packed := make(chan error, 1)
	go func() {
		err := pack(dir, w)
		pw.CloseWithError(err)
		packed <- err
	}()
	_, err := c.obs.Put(ctx, meta, pr)
	pr.CloseWithError(cmp.Or(err, io.ErrClosedPipe)) // unblocks a packer Put left
	if perr := <-packed; err == nil {
		err = perr
	}
	if cerr := ctx.Err(); cerr != nil {
		// Put reports an ended context in its own words, or not at all
		// when its meta went out first.
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	return hex.EncodeToString(h.Sum(nil)), w.n, err
}

type countingWriter struct {
	w    io.Writer
	n    int64
	hook func(int64)
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	if cw.hook != nil {
		cw.hook(cw.n)
	}
	return n, err
}

// readApplied reads the applied sequence recorded inside the store in dir,
// opening it read-only (which changes nothing in the directory).
func readApplied(dir string) (uint64, error) {
	st, err := store.Open(dir, &store.Options{ReadOnly: true, CacheSize: 1 << 20})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	v, ok, err := st.ApplyRecord(keyApplied)
	if err != nil || !ok {
		return 0, err
	}
	seq, _, err := decodeApplied(v)
	return seq, err
}

// List returns the verified checkpoints, newest (highest sequence) first.
func (c *Checkpoints) List(ctx context.Context) ([]Checkpoint, error) {
	all, err := c.all(ctx)
	return slices.DeleteFunc(all, func(cp Checkpoint) bool { return !cp.Verified() }), err
}

// all returns every checkpoint in the bucket, verified or not, newest
// first. Objects that are not checkpoints of a known format are left out.
func (c *Checkpoints) all(ctx context.Context) ([]Checkpoint, error) {
	infos, err := c.objects(ctx)
	if err != nil {
		return nil, err
	}
	return checkpointsIn(infos), nil
}

// checkpointsIn is [Checkpoints.all] of a listing of the bucket.
func checkpointsIn(infos []*jetstream.ObjectInfo) []Checkpoint {
	var out []Checkpoint
	for _, info := range infos {
		m := info.Metadata
		seq, err := strconv.ParseUint(m[metaSequence], 10, 64)
		if err != nil || m[metaFormat] != checkpointFormat || info.Deleted {
			continue
		}
		cp := Checkpoint{Name: info.Name, Seq: seq, Node: m[metaNode], Size: info.Size, Time: info.ModTime}
		if d, err := hex.DecodeString(m[metaVerified]); err == nil && len(d) == sha256.Size {
			cp.SHA256 = m[metaVerified]
		}
		out = append(out, cp)
	}
	slices.SortFunc(out, cmpCheckpoints)
	return out
}
