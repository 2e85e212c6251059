package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keepCheckpoints is how many verified checkpoints the log is kept for: the
// log is trimmed only below the older of them, so one checkpoint found bad
// at bootstrap still leaves another with the log after it.
const keepCheckpoints = 2

// Trimmed is what [Checkpoints.Trim] did.
type Trimmed struct {
	// Below is the log's first sequence after the trim (0 when fewer than
	// two verified checkpoints exist and nothing was trimmed).
	Below uint64
	// Deleted are the checkpoints deleted: verified ones older than the two
	// kept, and unverified ones older than the lease (their verification was
	// interrupted).
	Deleted []string
	// Orphans is how many interrupted uploads' chunks (uploads without
	// their metadata, older than the lease) were purged.
	Orphans int
}

// Trim applies the trimming policy: with at least two verified
// checkpoints, the log is purged below the older of the two newest one's
// sequence plus one (a node restored from it reads on from there), then
// the older verified checkpoints are deleted. What interrupted checkpoints
// left (unverified ones, chunks of uploads without metadata) is deleted
// once older than the lease. The order makes every interruption safe: a
// log trimmed without the deletions still has both checkpoints kept and
// more, and the next Trim deletes what is left.
//
// A checkpoint whose sequence is beyond the log's end (the log was
// recreated) stops the trim with [ErrGap]: its store is ahead of the log.
func (c *Checkpoints) Trim(ctx context.Context) (Trimmed, error) {
	// One listing serves the checkpoints and the orphaned uploads.
	listed := time.Now()
	infos, err := c.objects(ctx)
	if err != nil {
		return Trimmed{}, err
	}
	all := checkpointsIn(infos)
	var verified []Checkpoint
	for _, cp := range all {
		if cp.Verified() {
			verified = append(verified, cp)
		}
	}
	var out Trimmed
	older := func(cp Checkpoint) bool { return false }
	if len(verified) >= keepCheckpoints {
		oldest := verified[keepCheckpoints-1]
		if out.Below, err = c.trimBelow(ctx, verified[0], oldest); err != nil {
			return out, err
		}
		older = func(cp Checkpoint) bool { return cp.Verified() && cmpCheckpoints(cp, oldest) > 0 }
	}
	if c.trimmed != nil {
		c.trimmed()
	}
	for _, cp := range all {
		if !older(cp) && (cp.Verified() || time.Since(cp.Time) <= c.opts.Lease) {
			continue
		}
		err := c.visible(ctx, func() error { return c.obs.Delete(ctx, cp.Name) })
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound): // deleted by another node's trim
		case err != nil:
			return out, fmt.Errorf("cluster: delete checkpoint %s: %w", cp.Name, err)
		default:
			out.Deleted = append(out.Deleted, cp.Name)
		}
	}
	out.Orphans, err = c.purgeOrphans(ctx, infos, listed)
	return out, err
}

// trimBelow purges the log below oldest's sequence plus one, and returns
// the log's first sequence.
func (c *Checkpoints) trimBelow(ctx context.Context, newest, oldest Checkpoint) (uint64, error) {
	st, err := c.log.State(ctx)
	if err != nil {
		return 0, err
	}
	if newest.Seq > st.Last {
		return 0, &GapError{Stream: c.log.opts.Stream, Applied: newest.Seq, Next: st.Last + 1}
	}
	below := max(st.First, oldest.Seq+1)
	if st.First < below {
		if err := c.log.Trim(ctx, below); err != nil {
			return 0, err
		}
	}
	return below, nil
}

// purgeOrphans purges the chunks of uploads that never got their metadata
// (the uploading node was killed), once their last chunk is older than the
// lease: an upload still going writes a chunk more often than that, and
// its metadata right after its last chunk. infos is the bucket's listing,
// taken at listed, and the age is measured from listed, not now: an upload
// that got its metadata after the listing wrote its last chunk after
// listed less the lease, however long the trim took since. It returns how
// many it purged.
func (c *Checkpoints) purgeOrphans(ctx context.Context, infos []*jetstream.ObjectInfo, listed time.Time) (int, error) {
	known := map[string]bool{}
	for _, info := range infos {
		known[info.NUID] = true
	}
	stream, err := c.log.js.Stream(ctx, "OBJ_"+c.opts.Bucket)
	if err != nil {
		return 0, err
	}
	prefix := "$O." + c.opts.Bucket + ".C."
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return 0, err
	}
	n := 0
	for subj := range info.State.Subjects {
		if known[strings.TrimPrefix(subj, prefix)] {
			continue
		}
		last, err := stream.GetLastMsgForSubject(ctx, subj)
		if err != nil || listed.Sub(last.Time) <= c.opts.Lease {
			continue
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return n, fmt.Errorf("cluster: purge the orphaned upload %s: %w", subj, err)
		}
		n++
	}
	return n, nil
}

// CheckpointerOptions configure a [Checkpointer]. Node and Scratch are
// required.
type CheckpointerOptions struct {
	// Node names the node taking checkpoints, in their names and the lease.
	Node string
	// Scratch is a directory on the store's file system for the Pebble
	// checkpoint, which hard-links the store's tables there while it is
	// uploaded.
	Scratch string
	// Every is how many commands the node must have applied beyond the
	// newest verified checkpoint before it takes the next. The default value
	// is 100000.
	Every uint64
	// Interval is how often the node looks whether a checkpoint is due; each
	// wait is drawn between 0.5 and 1.5 times it, so that nodes do not look
	// together. The default value is 1m.
	Interval time.Duration
}

// The defaults of [CheckpointerOptions].
const (
	DefaultCheckpointEvery    = 100_000
	DefaultCheckpointInterval = time.Minute
)

// Checkpointer takes a node's checkpoints and trims the log after them.
// Every node of a cluster may run one: a checkpoint is due when the node
// applied Every commands beyond the newest verified checkpoint, and only the
// node that then holds the bucket's lease (a key created in a key-value
// bucket whose entries expire after [CheckpointOptions.Lease]) takes it.
// Two checkpoints taken at once (a lease expired during a slow upload) are
// harmless: each is verified on its own, and trimming keeps two.
type Checkpointer struct {
	c    *Checkpoints
	src  CheckpointSource
	opts CheckpointerOptions
}

// CheckpointSource is the store a [Checkpointer] checkpoints: the node's
// current one, which a re-bootstrap replaces.
type CheckpointSource interface {
	Backuper
	// Applied returns the last sequence the store applied. It only tells
	// whether a checkpoint is due; a checkpoint's sequence is read from
	// inside it.
	Applied() uint64
}

// NewCheckpointer returns the checkpointer of the node whose store is src.
func (c *Checkpoints) NewCheckpointer(src CheckpointSource, opts *CheckpointerOptions) (*Checkpointer, error) {
	o := CheckpointerOptions{}
	if opts != nil {
		o = *opts
	}
	o.Every = cmp.Or(o.Every, DefaultCheckpointEvery)
	o.Interval = cmp.Or(o.Interval, DefaultCheckpointInterval)
	var list []string
	if !tokenPattern.MatchString(o.Node) {
		list = append(list, fmt.Sprintf("Node %q must match %s", o.Node, tokenPattern))
	}
	if o.Scratch == "" {
		list = append(list, "Scratch is required")
	}
	if o.Interval < 0 {
		list = append(list, "Interval must not be negative")
	}
	if err := problems(ErrInvalidOptions, "checkpointer", list); err != nil {
		return nil, err
	}
	return &Checkpointer{c: c, src: src, opts: o}, nil
}

// leaseKey is the one key of the lease bucket.
const leaseKey = "checkpointer"

// Once takes a checkpoint if one is due and this node gets the lease, then
// trims the log. It reports whether it took one.
func (k *Checkpointer) Once(ctx context.Context) (bool, error) {
	list, err := k.c.List(ctx)
	if err != nil {
		return false, err
	}
	applied := k.src.Applied()
	if applied == 0 || (len(list) > 0 && applied < list[0].Seq+k.opts.Every) {
		return false, nil
	}
	rev, err := k.c.lease.Create(ctx, leaseKey, []byte(k.opts.Node))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil // another node is taking one
	}
	if err != nil {
		return false, fmt.Errorf("cluster: checkpoint lease: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.c.log.opts.RequestTimeout)
		defer cancel()
		// Only this node's lease: after it expired, another's is not ours.
		_ = k.c.lease.Delete(ctx, leaseKey, jetstream.LastRevision(rev))
	}()
	if _, err := k.c.Take(ctx, k.src, k.opts.Node, k.opts.Scratch); err != nil {
		return false, err
	}
	_, err = k.c.Trim(ctx)
	return true, err
}

// Run calls [Checkpointer.Once] every Interval or so until ctx is done,
// then returns ctx.Err(). A failed round is reported to report, if not
// nil, and the next round tries again.
func (k *Checkpointer) Run(ctx context.Context, report func(error)) error {
	for {
		wait := time.Duration(float64(k.opts.Interval) * (0.5 + rand.Float64()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if _, err := k.Once(ctx); err != nil && ctx.Err() == nil && report != nil {
			report(err)
		}
	}
}

// cmpCheckpoints orders checkpoints newest first, as [Checkpoints.List].
func cmpCheckpoints(a, b Checkpoint) int {
	return cmp.Or(cmp.Compare(b.Seq, a.Seq), b.Time.Compare(a.Time), cmp.Compare(a.Name, b.Name))
}
