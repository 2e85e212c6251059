package cluster

import (
	"context"
	"fmt"
	"sync"
)

// Progress is a node's applied sequence, for reads to wait on. The engine's
// [Applier] advances it once a command's effects are visible to reads (its
// batch committed and its in-memory index updated).
type Progress struct {
	mu      sync.Mutex
	applied uint64
	// moved is closed, and replaced, whenever applied grows.
	moved chan struct{}
}

// NewProgress returns a Progress at applied, the sequence the store holds.
func NewProgress(applied uint64) *Progress {
	return &Progress{applied: applied, moved: make(chan struct{})}
}

// Advance records that every command up to seq is applied. A lower seq than
// the current one changes nothing.
func (p *Progress) Advance(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq <= p.applied {
		return
	}
	p.applied = seq
	close(p.moved)
	p.moved = make(chan struct{})
}

// Applied returns the last sequence applied.
func (p *Progress) Applied() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// Wait returns once seq is applied, or with ctx's error.
func (p *Progress) Wait(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		applied, moved := p.applied, p.moved
		p.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for sequence %d (applied %d): %w", seq, applied, ctx.Err())
		case <-moved:
		}
	}
}

// Barrier makes a node's reads linearizable: [Barrier.Wait] returns once the
// node has applied a barrier command that was published after Wait was
// called, so the read that follows sees every write acknowledged before it
// started, on any node. Asking JetStream for the log's last sequence would
// not do: a deposed stream leader may answer it.
//
// Barriers are shared: at most one is in flight per Barrier, and it serves
// every Wait that arrived before it was sent; Waits arriving meanwhile share
// the next one.
type Barrier struct {
	progress *Progress
	node     string
	clock    *Clock
	publish  func(context.Context, *Command) (Ack, error)

	mu      sync.Mutex
	sending bool
	next    *barrierRound // the round new Waits join; nil until one does
}

// barrierRound is one barrier command and the Waits it serves.
type barrierRound struct {
	waiters int // Waits joined; read under Barrier.mu
	done    chan struct{}
	seq     uint64
	err     error
}

// NewBarrier returns the read barrier of the node named node, publishing
// through l, stamping times from clock and waiting on p.
func NewBarrier(l *Log, node string, clock *Clock, p *Progress) *Barrier {
	return &Barrier{progress: p, node: node, clock: clock, publish: l.Publish}
}

// Wait returns once this node has applied a barrier published after the
// call, or with an error: the barrier's publish error ([ErrUnconfirmed]
// without quorum) or ctx's.
func (b *Barrier) Wait(ctx context.Context) error {
	b.mu.Lock()
	r := b.next
	if r == nil {
		r = &barrierRound{done: make(chan struct{})}
		b.next = r
	}
	r.waiters++
	if !b.sending {
		b.sending = true
		go b.send()
	}
	b.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
	}
	if r.err != nil {
		return r.err
	}
	return b.progress.Wait(ctx, r.seq)
}

// send publishes rounds while Waits are joining them. It runs apart from
// any one caller, so that a caller giving up does not strand the others;
// each publish is bounded by the log's PublishTimeout.
func (b *Barrier) send() {
	for {
		b.mu.Lock()
		r := b.next
		b.next = nil // later Waits join a round sent after this one
		if r == nil {
			b.sending = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ack, err := b.publish(context.Background(), &Command{
			Version: CommandVersion, ID: NewCommandID(), Op: OpBarrier, Node: b.node, Time: b.clock.Now(),
		})
		r.seq, r.err = ack.Seq, err
		close(r.done)
	}
}
