package cluster

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// openCheckpoints opens the test's own checkpoint bucket beside each log.
func openCheckpoints(t testing.TB, logs []*Log, opts *CheckpointOptions) []*Checkpoints {
	t.Helper()
	o := CheckpointOptions{}
	if opts != nil {
		o = *opts
	}
	// A bucket of this run's own: the shared cluster keeps earlier runs'.
	o.Bucket = cmp.Or(o.Bucket, fmt.Sprintf("T_%s_%d", nonName.ReplaceAllString(t.Name(), "_"), time.Now().UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*Checkpoints
	for _, l := range logs {
		c, err := OpenCheckpoints(ctx, l, &o)
		require.NoError(t, err)
		out = append(out, c)
	}
	return out
}

// storeAt makes a store in a new directory that applied the first n
// commands of cmds, and returns its directory.
func storeAt(t *testing.T, cmds []*Command, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	require.EqualValues(t, n, applyLog(t, dir, nil, cmds[:n]))
	return dir
}

// takeFrom opens the store in dir and takes its checkpoint.
func takeFrom(t *testing.T, c *Checkpoints, dir string) Checkpoint {
	t.Helper()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	cp, err := c.Take(context.Background(), e, "n1", t.TempDir())
	require.NoError(t, err)
	require.True(t, cp.Verified())
	return cp
}

// appliedIn is the applied sequence recorded in the closed store in dir.
func appliedIn(t *testing.T, dir string) uint64 {
	t.Helper()
	seq, err := readApplied(dir)
	require.NoError(t, err)
	return seq
}

// A checkpoint of a store, taken while its engine is open, restores on
// another node to the same records, the same applied sequence, and a store
// that passes facesearch check.
func TestCheckpointRoundTrip(t *testing.T) {
	c := sharedCluster(t)
	cps := openCheckpoints(t, openLogs(t, c, runLogOptions(t)), nil)
	ctx := context.Background()
	cmds := workload(t, 3, 150)
	src := storeAt(t, cmds, len(cmds))

	cp := takeFrom(t, cps[0], src)
	require.EqualValues(t, len(cmds), cp.Seq, "the sequence read from inside the checkpoint")
	list, err := cps[1].List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, cp.Name, list[0].Name)
	require.Equal(t, cp.SHA256, list[0].SHA256)
	require.Equal(t, cp.Seq, list[0].Seq)

	dst := filepath.Join(t.TempDir(), "data", "store")
	got, err := cps[2].Bootstrap(ctx, dst)
	require.NoError(t, err)
	require.Equal(t, cp.Name, got.Name)
	requireSameStore(t, src, dst)

	report, err := engine.Check(ctx, dst)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
	e, err := engine.Open(dst, nil)
	require.NoError(t, err)
	defer e.Close()
	a, err := NewEngineApplier(e, nil)
	require.NoError(t, err)
	applied, _ := a.Applied()
	require.Equal(t, cp.Seq, applied)
}

// Of checkpoints that fail verification, or were never verified, none is
// used: Bootstrap takes the newest good one, or fails with ErrNoCheckpoint.
func TestBootstrapNeverUsesABadCheckpoint(t *testing.T) {
	c := sharedCluster(t)
	cps := openCheckpoints(t, openLogs(t, c, runLogOptions(t)), nil)
	cp := cps[0]
	ctx := context.Background()
	cmds := workload(t, 4, 120)
	older := storeAt(t, cmds, 80)
	newer := storeAt(t, cmds, 120)
	var archive bytes.Buffer
	require.NoError(t, pack(newer, &archive))
	sum := sha256.Sum256(archive.Bytes())
	digest := hex.EncodeToString(sum[:])
	put := func(name string, data []byte, meta map[string]string) {
		_, err := cp.obs.Put(ctx, jetstream.ObjectMeta{Name: name, Metadata: meta}, bytes.NewReader(data))
		require.NoError(t, err)
	}
	metaOf := func(seq uint64, verified string) map[string]string {
		m := map[string]string{metaFormat: checkpointFormat, metaSequence: strconv.FormatUint(seq, 10), metaNode: "n2"}
		if verified != "" {
			m[metaVerified] = verified
		}
		return m
	}
	other := sha256.Sum256([]byte("other"))

	cases := []struct {
		name  string
		setup func(name string)
	}{
		{"not verified", func(name string) { put(name, archive.Bytes(), metaOf(120, "")) }},
		{"digest mismatch", func(name string) { put(name, archive.Bytes(), metaOf(120, hex.EncodeToString(other[:]))) }},
		{"bytes replaced", func(name string) { put(name, bytes.Repeat([]byte("x"), 10_000), metaOf(120, digest)) }},
		{"truncated", func(name string) { put(name, archive.Bytes()[:archive.Len()/2], metaOf(120, digest)) }},
		{"sequence differs from inside", func(name string) { put(name, archive.Bytes(), metaOf(121, digest)) }},
		{"newer format", func(name string) {
			m := metaOf(120, digest)
			m[metaFormat] = "2"
			put(name, archive.Bytes(), m)
		}},
	}
	// With only bad checkpoints, nothing is restored.
	for i, tc := range cases {
		tc.setup(fmt.Sprintf("bad-%d", i))
	}
	dst := filepath.Join(t.TempDir(), "store")
	_, err := cp.Bootstrap(ctx, dst)
	require.ErrorIs(t, err, ErrNoCheckpoint)
	require.NoDirExists(t, dst)
	for i := range cases {
		require.NoError(t, cp.visible(ctx, func() error { return cp.obs.Delete(ctx, fmt.Sprintf("bad-%d", i)) }))
	}

	good := takeFrom(t, cp, older)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("bad-%d", i)
			tc.setup(name)
			defer func() { require.NoError(t, cp.visible(ctx, func() error { return cp.obs.Delete(ctx, name) })) }()
			dst := filepath.Join(t.TempDir(), "store")
			got, err := cp.Bootstrap(ctx, dst)
			require.NoError(t, err)
			require.Equal(t, good.Name, got.Name)
			require.EqualValues(t, 80, appliedIn(t, dst))
		})
	}

	// A checkpoint whose chunks go while its metadata stays (deleted while
	// being downloaded, seen through a replica behind) fails the download
	// once it stalls, rather than waiting forever.
	put("purged", archive.Bytes(), metaOf(120, digest))
	var info *jetstream.ObjectInfo
	require.NoError(t, cp.visible(ctx, func() (err error) {
		info, err = cp.obs.GetInfo(ctx, "purged")
		return err
	}))
	stream, err := cp.log.js.Stream(ctx, "OBJ_"+cp.opts.Bucket)
	require.NoError(t, err)
	require.NoError(t, stream.Purge(ctx, jetstream.WithPurgeSubject("$O."+cp.opts.Bucket+".C."+info.NUID)))
	cp.stall = 500 * time.Millisecond
	_, err = cp.Bootstrap(ctx, filepath.Join(t.TempDir(), "store"))
	require.ErrorIs(t, err, errDownloadStalled)
}

// A checkpoint interrupted mid-upload (its context cancelled), or by a kill
// (an upload's chunks without their metadata; an upload never verified),
// leaves the earlier checkpoints usable and the log as it was.
func TestInterruptedCheckpointLeavesCheckpointsAndLog(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, runLogOptions(t))
	cps := openCheckpoints(t, logs, nil)
	cp := cps[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmds := workload(t, 5, 120)
	publishN(ctx, t, logs[0], 10)
	before, err := logs[0].State(ctx)
	require.NoError(t, err)
	good := takeFrom(t, cp, storeAt(t, cmds, 60))
	src := storeAt(t, cmds, 120)

	// Cancelled once the upload is under way.
	e, err := engine.Open(src, nil)
	require.NoError(t, err)
	uctx, stop := context.WithCancel(ctx)
	cp.packed = func(n int64) {
		if n > 0 {
			stop()
		}
	}
	_, err = cp.Take(uctx, e, "n1", t.TempDir())
	cp.packed = nil
	require.Error(t, err)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, e.Close())

	// What a kill leaves: chunks without metadata, and a complete upload
	// never marked verified.
	_, err = logs[0].js.Publish(ctx, "$O."+cp.opts.Bucket+".C.killedupload", bytes.Repeat([]byte("c"), 1000))
	require.NoError(t, err)
	var archive bytes.Buffer
	require.NoError(t, pack(src, &archive))
	_, err = cp.obs.Put(ctx, jetstream.ObjectMeta{Name: "unverified", Metadata: map[string]string{
		metaFormat: checkpointFormat, metaSequence: "120", metaNode: "n1"}}, &archive)
	require.NoError(t, err)

	list, err := cps[1].List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, good.Name, list[0].Name)
	after, err := logs[1].State(ctx)
	require.NoError(t, err)
	require.Equal(t, before.First, after.First)
	require.Equal(t, before.Last, after.Last)
	dst := filepath.Join(t.TempDir(), "store")
	got, err := cps[2].Bootstrap(ctx, dst)
	require.NoError(t, err)
	require.Equal(t, good.Name, got.Name)
	require.EqualValues(t, 60, appliedIn(t, dst))

	// Once older than the lease, what the interruptions left is deleted by
	// the next trim, and only what the good checkpoint holds is left.
	short := openCheckpoints(t, logs[:1], &CheckpointOptions{Bucket: cp.opts.Bucket, Lease: 300 * time.Millisecond})[0]
	time.Sleep(400 * time.Millisecond)
	trimmed, err := short.Trim(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"unverified"}, trimmed.Deleted)
	require.GreaterOrEqual(t, trimmed.Orphans, 1)
	requireOnlyChunksOf(ctx, t, cp, good.Name)
	list, err = cps[1].List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
}

// A bucket that would not keep checkpoints as the log keeps commands is
// refused, and left as it is; unusable options are refused at once.
func TestOpenCheckpointsRefusesAMisconfiguredBucket(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, runLogOptions(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket := fmt.Sprintf("T_%s_%d", nonName.ReplaceAllString(t.Name(), "_"), time.Now().UnixNano())
	_, err := logs[0].js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bucket, Storage: jetstream.MemoryStorage, Replicas: 1, TTL: time.Hour})
	require.NoError(t, err)
	_, err = OpenCheckpoints(ctx, logs[0], &CheckpointOptions{Bucket: bucket})
	require.ErrorIs(t, err, ErrStreamConfig)
	obs, err := logs[0].js.ObjectStore(ctx, bucket)
	require.NoError(t, err)
	st, err := obs.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.MemoryStorage, st.Storage(), "left as it is")

	for _, o := range []CheckpointOptions{{Bucket: "a.b"}, {Replicas: 7}, {Lease: -time.Second}, {MaxSize: -1}} {
		_, err := OpenCheckpoints(ctx, logs[0], &o)
		require.ErrorIs(t, err, ErrInvalidOptions, "%+v", o)
	}
}

// BenchmarkCheckpoint takes a checkpoint of a store and bootstraps a new
// one from it, through the 3-node test cluster on loopback.
func BenchmarkCheckpoint(b *testing.B) {
	c := sharedCluster(b)
	cps := openCheckpoints(b, openLogs(b, c, runLogOptions(b)), nil)
	cmds := workload(b, 11, 600)
	src := filepath.Join(b.TempDir(), "store")
	e, err := engine.Open(src, nil)
	require.NoError(b, err)
	defer e.Close()
	a, err := NewEngineApplier(e, nil)
	require.NoError(b, err)
	ctx := context.Background()
	for i, cmd := range cmds {
		require.NoError(b, a.Apply(ctx, uint64(i+1), cmd))
	}
	// Bulk: 20,000 faces of 512 dimensions, about 40 MiB of vectors.
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "bulk"})
	require.NoError(b, err)
	r := rand.New(rand.NewPCG(11, 2))
	for range 200 {
		in := &engine.IndexFacesInput{CollectionId: "bulk"}
		for range 100 {
			v := make([]float32, 512)
			for i := range v {
				v[i] = r.Float32() - 0.5
			}
			in.Faces = append(in.Faces, engine.FaceEmbedding{Vector: v})
		}
		_, err := e.IndexFaces(ctx, in)
		require.NoError(b, err)
	}
	for _, phase := range []string{"take", "bootstrap"} {
		b.Run(phase, func(b *testing.B) {
			var cp Checkpoint
			for b.Loop() {
				if phase == "take" {
					cp, err = cps[0].Take(ctx, e, "n1", b.TempDir())
				} else {
					cp, err = cps[1].Bootstrap(ctx, filepath.Join(b.TempDir(), "store"))
				}
				require.NoError(b, err)
			}
			b.SetBytes(int64(cp.Size))
		})
	}
}
