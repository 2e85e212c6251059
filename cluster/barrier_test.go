package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProgressWait(t *testing.T) {
	p := NewProgress(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.Wait(ctx, 1), "an applied sequence needs no wait")

	done := make(chan error, 1)
	go func() { done <- p.Wait(ctx, 3) }()
	p.Advance(2)
	p.Advance(1) // going back changes nothing
	assert.EqualValues(t, 2, p.Applied())
	select {
	case err := <-done:
		t.Fatalf("Wait(3) returned at 2: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.Advance(3)
	require.NoError(t, <-done)

	short, stop := context.WithCancel(ctx)
	stop()
	require.ErrorIs(t, p.Wait(short, 4), context.Canceled)
}

// fakeLog stands in for Log.Publish: each publish blocks until released, and
// its sequence is applied at once.
type fakeLog struct {
	progress *Progress
	started  chan uint64
	release  chan error
	mu       sync.Mutex
	seq      uint64
}

func (f *fakeLog) publish(ctx context.Context, cmd *Command) (Ack, error) {
	if err := cmd.Validate(); err != nil {
		return Ack{}, err
	}
	f.mu.Lock()
	f.seq++
	seq := f.seq
	f.mu.Unlock()
	f.started <- seq
	if err := <-f.release; err != nil {
		return Ack{}, err
	}
	f.progress.Advance(seq)
	return Ack{Seq: seq}, nil
}

func newFakeBarrier() (*Barrier, *fakeLog) {
	p := NewProgress(0)
	f := &fakeLog{progress: p, started: make(chan uint64), release: make(chan error)}
	b := &Barrier{progress: p, node: "n1", clock: NewClock(nil), publish: f.publish}
	return b, f
}

// waiting reports how many Waits have joined the barrier's next round.
func (b *Barrier) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == nil {
		return 0
	}
	return b.next.waiters
}

func TestBarrierSharesRounds(t *testing.T) {
	b, f := newFakeBarrier()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 11)
	go func() { errs <- b.Wait(ctx) }()
	require.EqualValues(t, 1, <-f.started, "the first Wait sends a barrier")

	// Ten Waits arrive while it is in flight: it was sent before them, so
	// they share the next one.
	for range 10 {
		go func() { errs <- b.Wait(ctx) }()
	}
	require.Eventually(t, func() bool { return b.waiting() == 10 }, 5*time.Second, time.Millisecond)
	f.release <- nil
	require.NoError(t, <-errs)
	require.EqualValues(t, 2, <-f.started, "one barrier serves all ten")
	f.release <- nil
	for range 10 {
		require.NoError(t, <-errs)
	}
	assert.EqualValues(t, 2, b.progress.Applied())
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return !b.sending
	}, 5*time.Second, time.Millisecond, "the sender stops when no Wait is left")
}

func TestBarrierReportsPublishErrorAndContext(t *testing.T) {
	b, f := newFakeBarrier()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 1)
	go func() { errs <- b.Wait(ctx) }()
	<-f.started
	f.release <- ErrUnconfirmed
	require.ErrorIs(t, <-errs, ErrUnconfirmed, "a barrier that cannot commit fails the read")

	short, stop := context.WithCancel(ctx)
	go func() { errs <- b.Wait(short) }()
	<-f.started
	stop()
	require.ErrorIs(t, <-errs, context.Canceled, "a caller gives up on its own context")
	f.release <- nil // the round completes for nobody; the sender ends
}

// slowApplier applies slowly, advancing a Progress as the engine would.
type slowApplier struct {
	recorder
	progress *Progress
}

func (s *slowApplier) Apply(ctx context.Context, seq uint64, cmd *Command) error {
	time.Sleep(20 * time.Millisecond)
	if err := s.recorder.Apply(ctx, seq, cmd); err != nil {
		return err
	}
	s.progress.Advance(seq)
	return nil
}

func TestBarrierReadSeesWriteAcknowledgedOnAnotherNode(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, testLogOptions(t))
	b := &slowApplier{progress: NewProgress(0)}
	follow(t, logs[1], 0, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const writes = 10
	publishN(ctx, t, logs[0], writes) // acknowledged through node 1
	require.NoError(t, NewBarrier(logs[1], "n2", NewClock(nil), b.progress).Wait(ctx))
	// The read that follows on node 2 sees every write.
	_, ids := b.applied()
	require.GreaterOrEqual(t, len(ids), writes)
	for i := range writes {
		assert.Equal(t, cmdN("n1", i).ID, ids[i])
	}
}
