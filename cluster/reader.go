package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Applier applies the log's commands to a node's store. The engine
// implements it; the log calls it from one goroutine, strictly in sequence.
type Applier interface {
	// Apply applies cmd, the command at seq, which is always the sequence
	// after the last one applied. It must record seq in the same atomic batch
	// as the command's effects, so that a restart resumes right after it, and
	// compute every outcome from cmd alone (its time through
	// [Command.ApplyTime], never a clock). An error means the node could not
	// apply (its disk failed, say), never that the command failed: the reader
	// stops, and a later [Log.Follow] from the same applied sequence offers
	// the same command again.
	Apply(ctx context.Context, seq uint64, cmd *Command) error
}

const (
	// fetchWait bounds one pull; a quiet log costs one pull per fetchWait.
	fetchWait = 5 * time.Second
	// fetchHeartbeat lets a pull notice, within two beats, that the server
	// holding the reader's consumer is gone.
	fetchHeartbeat = time.Second
	// resumePause spaces the readers that replace a lost one.
	resumePause = 100 * time.Millisecond
	// fetchBytes bounds the commands one pull holds in memory.
	fetchBytes = 4 * MaxCommandSize
	// stallGrace is how long a pull may deliver nothing while the log is
	// known to hold more before its consumer is taken as stuck; it doubles,
	// up to fetchWait, for each replacement that delivered nothing either
	// (one whose server is still catching up, say).
	stallGrace = 500 * time.Millisecond
)

// tail is the highest sequence this node has seen the log hold, from its
// own publishes' acknowledgements and the log's state: a pull that
// delivers nothing while the log holds more has a stuck consumer (one on a
// server cut off and healed, say), which a quiet log never shows.
type tail struct {
	seq   atomic.Uint64
	moved chan struct{} // holds a token once seq rises
}

func (t *tail) see(seq uint64) {
	for {
		cur := t.seq.Load()
		if seq <= cur {
			return
		}
		if t.seq.CompareAndSwap(cur, seq) {
			break
		}
	}
	select {
	case t.moved <- struct{}{}:
	default:
	}
}

// pullProgress is what a pull has done, for its watch.
type pullProgress struct {
	grace   time.Duration
	applied atomic.Uint64 // the last sequence applied
	busy    atomic.Bool   // a command is being applied
	stuck   atomic.Bool   // the watch cancelled the pull
}

// watch cancels a pull, marking it stuck, when the log is known to hold a
// command after the pull's last applied one and the pull applies nothing
// for p.grace. It waits on the tail, so a quiet log costs nothing.
func (l *Log) watch(ctx context.Context, cancel context.CancelFunc, p *pullProgress) {
	for {
		was := p.applied.Load()
		if l.tail.seq.Load() <= was {
			select {
			case <-ctx.Done():
				return
			case <-l.tail.moved:
			}
			continue
		}
		t := time.NewTimer(p.grace)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if p.applied.Load() == was && !p.busy.Load() {
			p.stuck.Store(true)
			cancel()
			return
		}
	}
}

// errResume asks Follow to read on through a new consumer; errStalled
// does so for a consumer that stopped delivering.
var (
	errResume  = errors.New("cluster: resume reading")
	errStalled = fmt.Errorf("%w: the consumer delivers nothing", errResume)
	// errLeaderless is a log state that cannot tell a gap: retried.
	errLeaderless = errors.New("cluster: the stream has no leader")
)

// behindGrace is how long a log that ends before the node's applied
// sequence is taken for a replica catching up before it is a gap
// (Log.behindGrace, which tests shorten).
const behindGrace = 30 * time.Second

// Follow reads the log from the command after applied and hands each to a,
// in order, until ctx is done or something stops it:
//   - a log that does not hold applied+1 (it was trimmed past the node, or
//     is behind its store): a [*GapError]; the node must re-bootstrap;
//   - a message that does not decode as a command ([ErrInvalidCommand],
//     [ErrUnsupportedVersion]): nothing is guessed, every node stops at the
//     same sequence;
//   - an error from a.Apply, returned wrapped.
//
// When ctx is done it returns ctx.Err(). Leader elections, lost servers,
// lost connections and consumers that stop delivering are ridden through:
// the reader resumes after the last command applied.
func (l *Log) Follow(ctx context.Context, applied uint64, a Applier) error {
	grace := stallGrace
	for {
		from := applied
		cons, err := l.reader(ctx, applied)
		if err == nil {
			err = l.drain(ctx, cons, &applied, a, grace)
			l.dropReader(cons)
		}
		if errors.Is(err, errStalled) && applied == from {
			grace = min(2*grace, fetchWait)
		} else {
			grace = stallGrace
		}
		if !errors.Is(err, errResume) || ctx.Err() != nil {
			return cmp.Or(ctx.Err(), err)
		}
		// A consumer that fails at once must not spin.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(resumePause):
		}
	}
}

// reader checks that the log continues at applied+1 and creates a consumer
// delivering from there. Through a leader election the requests time out;
// they are retried for as long as ctx allows.
func (l *Log) reader(ctx context.Context, applied uint64) (jetstream.Consumer, error) {
	var (
		cons        jetstream.Consumer
		behindSince time.Time
	)
	err := retry(ctx, func(ctx context.Context) error {
		err := l.continues(ctx, applied)
		var gap *GapError
		if errors.As(err, &gap) && gap.Next <= applied {
			// The log ends before the store: either a replica that has not
			// stored all the stream holds yet (a leader just elected) or a
			// stream recreated behind the store. Only the second lasts.
			if behindSince.IsZero() {
				behindSince = time.Now()
			}
			if time.Since(behindSince) < l.behindGrace {
				return errLeaderless
			}
		}
		if err != nil {
			return err
		}
		cons, err = l.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       applied + 1,
			AckPolicy:         jetstream.AckNonePolicy,
			InactiveThreshold: 6 * fetchWait,
			Replicas:          1,
			MemoryStorage:     true,
		})
		return err
	}, l.opts.RequestTimeout, func(err error) bool { return transient(err) || errors.Is(err, errLeaderless) })
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("cluster: read stream %s after %d: %w", l.opts.Stream, applied, err)
	}
	return cons, err
}

// continues reports a [*GapError] unless the log holds applied+1 or is
// waiting for it. A replica answering through an election may be behind
// the node, so only a leader's answer is taken.
func (l *Log) continues(ctx context.Context, applied uint64) error {
	st, err := l.State(ctx)
	switch {
	case err != nil:
		return err
	case st.Leaderless:
		return errLeaderless
	case applied+1 < st.First:
		return &GapError{Stream: l.opts.Stream, Applied: applied, Next: st.First}
	case applied > st.Last:
		return &GapError{Stream: l.opts.Stream, Applied: applied, Next: st.Last + 1}
	}
	return nil
}

// drain pulls from cons and applies in order until an error; errResume
// means the consumer is lost, stuck or skipped a command and a new one
// must take over from *applied.
func (l *Log) drain(ctx context.Context, cons jetstream.Consumer, applied *uint64, a Applier, grace time.Duration) error {
	for {
		n, err := l.pull(ctx, cons, applied, a, grace)
		if err != nil {
			return err
		}
		// An empty pull while the log holds more means the consumer is stuck
		// (its server lost, say); a gap is reported from here too.
		if n == 0 {
			st, err := l.State(ctx)
			if err != nil || st.Last > *applied {
				return errResume
			}
		}
	}
}

// pull applies what one pull from cons delivers, watched with grace, and
// returns how many commands that was.
func (l *Log) pull(ctx context.Context, cons jetstream.Consumer, applied *uint64, a Applier, grace time.Duration) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, fetchWait)
	p := pullProgress{grace: grace}
	p.applied.Store(*applied)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		l.watch(fctx, cancel, &p)
	}()
	defer func() {
		cancel()
		<-watched
	}()
	batch, err := cons.FetchBytes(fetchBytes, jetstream.FetchContext(fctx), jetstream.FetchHeartbeat(fetchHeartbeat))
	if err != nil {
		return 0, errResume
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		p.busy.Store(true)
		err := l.applyMsg(ctx, msg, applied, a)
		p.applied.Store(*applied)
		p.busy.Store(false)
		if err != nil {
			return n, err
		}
	}
	switch {
	case p.stuck.Load():
		return n, errStalled
	case batch.Error() != nil:
		return n, errResume
	}
	return n, nil
}

// applyMsg hands one message to a. A sequence other than applied+1 means
// either a trimmed log (a gap, reported by the next reader's check) or a
// delivery lost in transit: both resume from applied.
func (l *Log) applyMsg(ctx context.Context, msg jetstream.Msg, applied *uint64, a Applier) error {
	md, err := msg.Metadata()
	if err != nil {
		return errResume
	}
	seq := md.Sequence.Stream
	if seq != *applied+1 {
		return errResume
	}
	cmd, err := DecodeCommand(msg.Data())
	if err != nil {
		return fmt.Errorf("cluster: stream %s sequence %d: %w", l.opts.Stream, seq, err)
	}
	if err := a.Apply(ctx, seq, cmd); err != nil {
		return fmt.Errorf("cluster: apply stream %s sequence %d: %w", l.opts.Stream, seq, err)
	}
	*applied = seq
	return nil
}

// dropReader deletes a reader's consumer; one that cannot be reached now
// expires on its own after InactiveThreshold.
func (l *Log) dropReader(cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.RequestTimeout)
	defer cancel()
	_ = l.stream.DeleteConsumer(ctx, cons.CachedInfo().Name)
}
