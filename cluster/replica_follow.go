package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facesearch/facesearch/engine"
)

// A Replica's follower: it applies the log, says when it cannot (health),
// retries, and re-bootstraps after a gap.

// health is the follower's state, for Health and the calls that refuse to
// run on a node that does not apply the log.
type health struct {
	bad atomic.Bool
	mu  sync.Mutex
	err error
	// sick is closed while the node is unhealthy, and replaced when it
	// recovers, so that writes waiting for their apply stop waiting.
	sick chan struct{}
}

func (h *health) get() error {
	if !h.bad.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// sickness returns a channel closed once the node is unhealthy.
func (h *health) sickness() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sick == nil {
		h.sick = make(chan struct{})
		if h.err != nil {
			close(h.sick)
		}
	}
	return h.sick
}

func (h *health) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnhealthy, err)
	}
	switch {
	case h.sick == nil:
	case err != nil && h.err == nil:
		close(h.sick)
	case err == nil && h.err != nil:
		h.sick = nil
	}
	h.err = err
	h.bad.Store(err != nil)
}

// healthyApplier marks the node healthy again once a command applies.
type healthyApplier struct {
	a *EngineApplier
	r *Replica
}

func (h healthyApplier) Apply(ctx context.Context, seq uint64, cmd *Command) error {
	if f := h.r.applyFault.Load(); f != nil {
		if err := (*f)(seq); err != nil {
			return err
		}
	}
	err := h.a.Apply(ctx, seq, cmd)
	if err == nil && h.r.health.bad.Load() {
		h.r.health.set(nil)
		h.r.opts.Logger.Info("cluster: applying the log again", "node", h.r.opts.Name, "seq", seq)
	}
	return err
}

// follow applies the log until ctx is done: after a failure it reports the
// node unhealthy and tries again after a pause, doubling up to
// RetryBackoff; after a gap it re-bootstraps.
func (r *Replica) follow(ctx context.Context) {
	defer close(r.followed)
	const firstPause = 50 * time.Millisecond
	pause := firstPause
	for {
		progressed, err := r.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			pause = firstPause
		}
		r.health.set(err)
		r.opts.Logger.Error("cluster: the node stopped applying the log", "node", r.opts.Name, "err", err, "retry_in", pause)
		if gap := (*GapError)(nil); errors.As(err, &gap) {
			if r.opts.Rebootstrap == nil {
				r.health.set(fmt.Errorf("%w; no re-bootstrap is configured, so the node stays behind until its store is replaced", err))
				<-ctx.Done()
				return
			}
			if r.rebootstrap(ctx, gap) == nil {
				pause = firstPause
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, r.opts.RetryBackoff)
	}
}

// followOnce follows the log from the store's applied sequence until it
// stops, reopening first a store left closed by a failed re-bootstrap. It
// reports whether any command applied.
func (r *Replica) followOnce(ctx context.Context) (progressed bool, err error) {
	st := r.state.Load()
	if st.closed {
		if st, err = r.openState(); err != nil {
			return false, err
		}
		r.state.Store(st)
	}
	before, _ := st.applier.Applied()
	if r.health.bad.Load() && r.caughtUp(ctx, before) {
		// Nothing to apply (after a re-bootstrap, say): nothing would clear
		// the failure before the next command.
		r.health.set(nil)
	}
	err = r.log.Follow(ctx, before, healthyApplier{st.applier, r})
	after, _ := st.applier.Applied()
	return after > before, err
}

// caughtUp reports whether the log ends at applied and continues it.
func (r *Replica) caughtUp(ctx context.Context, applied uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, r.log.opts.RequestTimeout)
	defer cancel()
	st, err := r.log.State(ctx)
	return err == nil && st.Last == applied && st.First <= applied+1
}

// rebootstrap closes the local engine, has the hook replace its store, and
// reopens it. Calls meanwhile are refused as unhealthy (local reads too:
// the engine is closed).
func (r *Replica) rebootstrap(ctx context.Context, gap *GapError) error {
	r.health.set(fmt.Errorf("re-bootstrapping from a checkpoint after %w", gap))
	old := r.state.Load()
	if err := old.e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		r.opts.Logger.Warn("cluster: closing the store to re-bootstrap", "node", r.opts.Name, "err", err)
	}
	herr := r.opts.Rebootstrap(ctx, r.dir, gap)
	// The store is reopened whatever the hook did: a failed hook leaves the
	// old store (or a new one) and the follower tries again from it.
	st, oerr := r.openState()
	if oerr != nil {
		st = &replicaState{e: old.e, applier: old.applier, barrier: old.barrier, closed: true}
	}
	r.state.Store(st)
	if err := errors.Join(herr, oerr); err != nil {
		r.health.set(fmt.Errorf("re-bootstrap after %w failed: %w", gap, err))
		r.opts.Logger.Error("cluster: re-bootstrap failed", "node", r.opts.Name, "err", err)
		return err
	}
	r.opts.Logger.Info("cluster: re-bootstrapped from a checkpoint", "node", r.opts.Name, "seq", r.Applied())
	return nil
}
