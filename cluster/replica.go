package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/facesearch/facesearch/engine"
)

// ReadConsistency is what a [Replica]'s reads (describe, list, search)
// promise.
type ReadConsistency string

const (
	// Linearizable reads see every write acknowledged, on any node, before
	// they started: each waits for a shared read barrier through the log.
	Linearizable ReadConsistency = "linearizable"
	// Local reads see what this node has applied, which may lag the log by
	// its apply backlog; they cost no round trip and serve without quorum.
	Local ReadConsistency = "local"
)

// The default bounds of a Replica's writes and linearizable reads (see
// [ReplicaOptions]).
const (
	DefaultWriteTimeout = 20 * time.Second
	DefaultReadTimeout  = 10 * time.Second
)

// ReplicaOptions configure [OpenReplica]. Name and Conn are required.
type ReplicaOptions struct {
	// Name is the node's name, stamped on the commands it issues: unique in
	// the cluster and stable across restarts, matching
	// [A-Za-z0-9_.:-]{1,128}. Required.
	Name string
	// Conn is the connection to NATS ([Connect]). The replica uses it and
	// leaves it open on [Replica.Close]. Required.
	Conn *nats.Conn
	// Log configures the command log. The default value is nil: the
	// [LogOptions] defaults.
	Log *LogOptions
	// Engine configures the local engine; PageTokenSecret is replaced by
	// the cluster's shared one. The default value is nil: the engine's
	// defaults.
	Engine *engine.Options
	// ReadConsistency is the reads' default (see [WithReadConsistency] for
	// one call's). The default value is [Linearizable].
	ReadConsistency ReadConsistency
	// WriteTimeout bounds a write: its publish (bounded by
	// LogOptions.PublishTimeout too) and the wait for this node to apply
	// it. Past it the write fails with a retryable error saying whether it
	// may still be applied. The default value is 20s.
	WriteTimeout time.Duration
	// ReadTimeout bounds a linearizable read's barrier. The default value
	// is 10s.
	ReadTimeout time.Duration
	// RetryBackoff is the longest pause between attempts to apply again
	// after a failure (a full disk, a stopped reader); the pauses double up
	// to it from 50ms. The default value is 5s.
	RetryBackoff time.Duration
	// Rebootstrap is called when the log cannot continue the node's store
	// ([ErrGap]: it was trimmed past it): with the local engine closed, it
	// must replace the store in dir by a checkpoint's (whose applied
	// sequence is recorded inside it) and return nil; the node then reopens
	// dir and follows the log from there. An error leaves the node
	// unhealthy, and the call is made again after a pause. The default
	// value is nil: the node stays unhealthy, and its health says so,
	// rather than skip a command.
	Rebootstrap func(ctx context.Context, dir string, gap *GapError) error
	// Now is the wall clock of the node's [Clock]. The default value is
	// nil: time.Now.
	Now func() time.Time
	// Logger receives the follower's failures and recoveries. The default
	// value is [slog.Default].
	Logger *slog.Logger
}

func (o *ReplicaOptions) ensureDefaults() {
	if o.ReadConsistency == "" {
		o.ReadConsistency = Linearizable
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem of the options at once.
func (o *ReplicaOptions) Validate() error {
	var list []string
	if !tokenPattern.MatchString(o.Name) {
		list = append(list, fmt.Sprintf("Name %q must match %s", o.Name, tokenPattern))
	}
	if o.Conn == nil {
		list = append(list, "Conn is required")
	}
	if o.ReadConsistency != Linearizable && o.ReadConsistency != Local {
		list = append(list, fmt.Sprintf("ReadConsistency %q must be %q or %q", o.ReadConsistency, Linearizable, Local))
	}
	if o.WriteTimeout < 0 || o.ReadTimeout < 0 || o.RetryBackoff < 0 {
		list = append(list, "WriteTimeout, ReadTimeout and RetryBackoff must not be negative")
	}
	return problems(ErrInvalidOptions, "replica", list)
}

// Replica is a cluster node's engine: it serves the 16 operations of
// [engine.Engine], with the same inputs, outputs and errors, over the
// replicated command log. A mutation is published to the log and answered
// with the outcome this node's apply recorded for it; a read waits for a
// read barrier (unless [Local]) and reads the local engine. A follower
// goroutine applies the log to the local store in order, retrying after a
// failure of its own. Replica implements server.Backend.
type Replica struct {
	opts  ReplicaOptions
	dir   string
	log   *Log
	clock *Clock
	// eopts are the engine's options, with the cluster's page-token secret.
	eopts *engine.Options

	state  atomic.Pointer[replicaState]
	health health
	// applyFault, set by tests, fails the apply of a command as a local
	// failure (a full disk) would.
	applyFault atomic.Pointer[func(seq uint64) error]

	stop     context.CancelFunc
	followed chan struct{} // closed when the follower returns
	closeMu  sync.Mutex
	closed   bool
}

// replicaState is what a re-bootstrap replaces: the local engine and what
// depends on its store.
type replicaState struct {
	e       *engine.Engine
	applier *EngineApplier
	barrier *Barrier
	// closed marks the state of an engine closed for a re-bootstrap whose
	// store could not be opened again; the follower retries the open.
	closed bool
}

// OpenReplica opens the node's engine in dir, the command log through
// opts.Conn (waiting until ctx for a cluster still forming), and starts
// following the log from the sequence the store last applied.
func OpenReplica(ctx context.Context, dir string, opts *ReplicaOptions) (*Replica, error) {
	o := ReplicaOptions{}
	if opts != nil {
		o = *opts
	}
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	l, err := OpenLog(ctx, o.Conn, o.Log)
	if err != nil {
		return nil, err
	}
	secret, err := l.PageTokenSecret(ctx)
	if err != nil {
		return nil, err
	}
	eopts := &engine.Options{}
	if o.Engine != nil {
		*eopts = *o.Engine
	}
	eopts.PageTokenSecret = secret
	r := &Replica{opts: o, dir: dir, log: l, clock: NewClock(o.Now), eopts: eopts, followed: make(chan struct{})}
	st, err := r.openState()
	if err != nil {
		return nil, err
	}
	r.state.Store(st)
	fctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go r.follow(fctx)
	return r, nil
}

// openState opens the engine in r.dir and its applier and barrier.
func (r *Replica) openState() (*replicaState, error) {
	e, err := engine.Open(r.dir, r.eopts)
	if err != nil {
		return nil, fmt.Errorf("cluster: open the store in %s: %w", r.dir, err)
	}
	a, err := NewEngineApplier(e, r.clock)
	if err != nil {
		e.Close()
		return nil, err
	}
	return &replicaState{e: e, applier: a, barrier: NewBarrier(r.log, r.opts.Name, r.clock, a.Progress())}, nil
}

// Close stops the follower and closes the local engine, after the calls in
// flight. The NATS connection stays open: it is the caller's.
func (r *Replica) Close() error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed {
		return engine.ErrClosed
	}
	r.closed = true
	r.stop()
	<-r.followed
	st := r.state.Load()
	if err := st.e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		return err
	}
	return nil
}

// LocalEngine returns the node's local engine, for reads that need no
// barrier (metrics, backups). Writes must go through the Replica: one made
// to the engine directly is on this node only. After a re-bootstrap the
// engine returned before is closed.
func (r *Replica) LocalEngine() *engine.Engine { return r.state.Load().e }

// Log returns the command log the node follows.
func (r *Replica) Log() *Log { return r.log }

// Applier returns the applier of the node's current store (see
// [Replica.LocalEngine] for what a re-bootstrap does to it).
func (r *Replica) Applier() *EngineApplier { return r.state.Load().applier }

// Backup writes a consistent copy of the node's current store into dir
// (see [engine.Engine.Backup]); the copy holds the sequence it applied.
func (r *Replica) Backup(dir string) error { return r.state.Load().e.Backup(dir) }

// Applied returns the last log sequence the node applied.
func (r *Replica) Applied() uint64 {
	seq, _ := r.state.Load().applier.Applied()
	return seq
}

// Health returns nil while the node applies the log, or why it does not:
// an apply that failed (a full disk, an I/O error), a reader stopped (a
// gap, an invalid command), a re-bootstrap under way, or no connection to
// NATS. The error wraps [ErrUnhealthy]. The node keeps retrying and
// recovers by itself when the cause clears.
func (r *Replica) Health() error {
	if err := r.health.get(); err != nil {
		return err
	}
	if !r.opts.Conn.IsConnected() {
		return fmt.Errorf("%w: not connected to NATS (%s)", ErrUnhealthy, r.opts.Conn.Status())
	}
	return nil
}
