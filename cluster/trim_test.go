package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// engineNode is an engine following the log, as a serving node's.
type engineNode struct {
	dir    string
	e      *engine.Engine
	a      *EngineApplier
	cancel context.CancelFunc
	done   chan error
}

// engineSource is an engine and its applier as a CheckpointSource.
type engineSource struct {
	*engine.Engine
	a *EngineApplier
}

func (s engineSource) Applied() uint64 {
	seq, _ := s.a.Applied()
	return seq
}

// countingSource is a store whose applied sequence the test sets, to make
// checkpoints due.
type countingSource struct {
	*engine.Engine
	applied uint64
}

func (s *countingSource) Applied() uint64 { return s.applied }

// startEngineOn opens the store in dir as a CheckpointSource that has
// applied what the store records.
func startEngineOn(t *testing.T, dir string) *countingSource {
	t.Helper()
	applied := appliedIn(t, dir)
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return &countingSource{Engine: e, applied: applied}
}

// startNode opens the store in dir and follows l from its applied sequence.
func startNode(t *testing.T, l *Log, dir string) *engineNode {
	t.Helper()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	a, err := NewEngineApplier(e, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n := &engineNode{dir: dir, e: e, a: a, cancel: cancel, done: make(chan error, 1)}
	applied, _ := a.Applied()
	go func() { n.done <- l.Follow(ctx, applied, a) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop ends the node's reader and closes its engine, returning the
// reader's error (nil when it was stopped rather than failing).
func (n *engineNode) stop(t *testing.T) error {
	t.Helper()
	if n.e == nil {
		return nil
	}
	n.cancel()
	var err error
	select {
	case err = <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a reader did not stop")
	}
	require.NoError(t, n.e.Close())
	n.e = nil
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// waitApplied waits until the node applied seq.
func (n *engineNode) waitApplied(t *testing.T, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, n.a.Progress().Wait(ctx, seq))
}

// publishAll publishes cmds and returns the log's sequence of the last
// (commands repeating an earlier ID within the deduplication window get no
// new one).
func publishAll(t *testing.T, l *Log, cmds []*Command) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last uint64
	for _, cmd := range cmds {
		ack, err := l.Publish(ctx, cmd)
		require.NoError(t, err)
		last = max(last, ack.Seq)
	}
	return last
}

// A node stopped while the log is trimmed past it by two checkpoints meets
// ErrGap on restart, bootstraps from the newest checkpoint, and catches up
// to a store identical to the node that never stopped.
func TestTrimPastStoppedNodeThenBootstrap(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, runLogOptions(t))
	cps := openCheckpoints(t, logs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmds := workload(t, 7, 200)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, b := startNode(t, logs[0], dirA), startNode(t, logs[1], dirB)

	seq := publishAll(t, logs[0], cmds[:50])
	a.waitApplied(t, seq)
	b.waitApplied(t, seq)
	require.NoError(t, b.stop(t))
	stoppedAt := seq

	var taken []Checkpoint
	for _, part := range [][]*Command{cmds[50:100], cmds[100:150]} {
		seq = publishAll(t, logs[1], part)
		a.waitApplied(t, seq)
		cp, err := cps[0].Take(ctx, a.e, "a", t.TempDir())
		require.NoError(t, err)
		taken = append(taken, cp)
		trimmed, err := cps[0].Trim(ctx)
		require.NoError(t, err)
		if len(taken) == 1 {
			require.Zero(t, trimmed.Below, "one checkpoint does not trim")
		}
	}
	st, err := logs[0].State(ctx)
	require.NoError(t, err)
	require.Equal(t, taken[0].Seq+1, st.First, "trimmed below the older checkpoint, plus one")
	require.Greater(t, st.First, stoppedAt+1)

	b = startNode(t, logs[1], dirB)
	var gap *GapError
	select {
	case err = <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stopped node's reader did not report the gap")
	}
	require.ErrorAs(t, err, &gap)
	require.Equal(t, stoppedAt, gap.Applied)
	require.Equal(t, st.First, gap.Next)
	b.done <- nil
	require.NoError(t, b.stop(t))

	// As the serving node's hook does.
	require.NoError(t, cps[1].Rebootstrap(ctx, dirB, gap))
	require.Equal(t, taken[1].Seq, appliedIn(t, dirB), "the newest checkpoint")
	b = startNode(t, logs[1], dirB)
	applied, _ := b.a.Applied()
	require.Equal(t, taken[1].Seq, applied)
	seq = publishAll(t, logs[2], cmds[150:])
	a.waitApplied(t, seq)
	b.waitApplied(t, seq)
	require.NoError(t, a.stop(t))
	require.NoError(t, b.stop(t))
	requireSameStore(t, dirA, dirB)
}

// A trim interrupted after purging the log, before deleting the older
// checkpoints, leaves every checkpoint usable; the next trim finishes.
func TestInterruptedTrimFinishesNextTime(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, runLogOptions(t))
	cps := openCheckpoints(t, logs, nil)
	cp := cps[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	publishN(ctx, t, logs[0], 150)
	cmds := workload(t, 8, 120)
	var taken []Checkpoint
	for _, n := range []int{40, 80, 120} {
		taken = append(taken, takeFrom(t, cp, storeAt(t, cmds, n)))
	}

	tctx, stop := context.WithCancel(ctx)
	cp.trimmed = stop
	_, err := cp.Trim(tctx)
	cp.trimmed = nil
	require.ErrorIs(t, err, context.Canceled)
	st, err := logs[1].State(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 81, st.First)
	list, err := cps[1].List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	dst := filepath.Join(t.TempDir(), "store")
	got, err := cps[1].Bootstrap(ctx, dst)
	require.NoError(t, err)
	require.Equal(t, taken[2].Name, got.Name)

	trimmed, err := cps[2].Trim(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 81, trimmed.Below)
	require.Equal(t, []string{taken[0].Name}, trimmed.Deleted)
	list, err = cps[0].List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{taken[2].Name, taken[1].Name}, []string{list[0].Name, list[1].Name})
	require.Len(t, list, 2)
}

// A checkpoint is taken only when due, by the node holding the lease; after
// it, the log is trimmed.
func TestCheckpointerTakesWhenDueUnderTheLease(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, runLogOptions(t))
	cps := openCheckpoints(t, logs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmds := workload(t, 9, 90)
	n := startNode(t, logs[0], filepath.Join(t.TempDir(), "store"))
	k, err := cps[0].NewCheckpointer(engineSource{n.e, n.a}, &CheckpointerOptions{Node: "a", Scratch: t.TempDir(), Every: 20})
	require.NoError(t, err)

	once := func() bool {
		took, err := k.Once(ctx)
		require.NoError(t, err)
		return took
	}
	require.False(t, once(), "nothing applied")
	n.waitApplied(t, publishAll(t, logs[0], cmds[:30]))
	require.True(t, once())
	require.False(t, once(), "not due: nothing applied since")

	n.waitApplied(t, publishAll(t, logs[0], cmds[30:60]))
	_, err = cps[1].lease.Create(ctx, leaseKey, []byte("b"))
	require.NoError(t, err)
	require.False(t, once(), "another node holds the lease")
	require.NoError(t, cps[1].lease.Delete(ctx, leaseKey))
	require.True(t, once())

	list, err := cps[2].List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	st, err := logs[0].State(ctx)
	require.NoError(t, err)
	require.Equal(t, list[1].Seq+1, st.First)

	_, err = cps[0].NewCheckpointer(engineSource{n.e, n.a}, &CheckpointerOptions{Node: "bad node"})
	require.ErrorIs(t, err, ErrInvalidOptions)
}

// Run looks every Interval or so, takes a due checkpoint, and stops with
// its context.
func TestCheckpointerRun(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, runLogOptions(t))
	cps := openCheckpoints(t, logs, nil)
	publishN(context.Background(), t, logs[0], 30)
	src := startEngineOn(t, storeAt(t, workload(t, 14, 30), 30))
	k, err := cps[0].NewCheckpointer(src, &CheckpointerOptions{Node: "a", Scratch: t.TempDir(), Interval: 50 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- k.Run(ctx, func(err error) { t.Errorf("a round failed: %v", err) })
	}()
	require.Eventually(t, func() bool {
		list, err := cps[1].List(context.Background())
		return err == nil && len(list) == 1
	}, 30*time.Second, 50*time.Millisecond)
	cancel()
	select {
	case err := <-ran:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
	list, err := cps[1].List(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 1, "not due again: nothing applied since")
}

// An upload that writes its metadata after a trim listed the bucket is no
// orphan: its last chunk came less than a lease before the listing, so its
// chunks survive a trim that reaches them more than a lease later.
func TestTrimKeepsAnUploadFinishedAfterTheListing(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, runLogOptions(t))
	const lease = 300 * time.Millisecond
	cp := openCheckpoints(t, logs[:1], &CheckpointOptions{Lease: lease})[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// An upload under way: its chunk written, its metadata held back.
	data := bytes.Repeat([]byte("c"), 1000)
	finish := make(chan struct{})
	put := make(chan error, 1)
	go func() {
		_, err := cp.obs.Put(ctx, jetstream.ObjectMeta{Name: "late"}, &heldReader{ctx: ctx, data: data, finish: finish})
		put <- err
	}()
	stream, err := cp.log.js.Stream(ctx, "OBJ_"+cp.opts.Bucket)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		si, err := stream.Info(ctx, jetstream.WithSubjectFilter("$O."+cp.opts.Bucket+".C.>"))
		return err == nil && len(si.State.Subjects) == 1
	}, 10*time.Second, 10*time.Millisecond, "the upload's chunk is written")

	// After its listing the trim waits past the lease, and meanwhile the
	// upload gets its metadata.
	cp.trimmed = func() {
		time.Sleep(lease + 200*time.Millisecond)
		close(finish)
		require.NoError(t, <-put)
	}
	trimmed, err := cp.Trim(ctx)
	require.NoError(t, err)
	require.Zero(t, trimmed.Orphans)
	got, err := cp.obs.GetBytes(ctx, "late")
	require.NoError(t, err)
	require.Equal(t, data, got, "the upload's chunks survive")
	requireOnlyChunksOf(ctx, t, cp, "late")
}

// heldReader reads data, then waits for finish before its EOF, as an
// upload whose last chunk is written and its metadata not yet. It gives up
// with ctx's error once ctx is done, so that a test that fails before
// finish leaves no upload blocked.
type heldReader struct {
	ctx    context.Context
	data   []byte
	finish chan struct{}
}

func (r *heldReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	select {
	case <-r.finish:
		return 0, io.EOF
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	}
}
