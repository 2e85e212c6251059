package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
)

// errResume asks Follow to read on through a new consumer.
var errResume = errors.New("cluster: resume reading")

// Follow reads the log from the command after applied and hands each to a,
// in order, until ctx is done or something stops it:
//   - a log that does not hold applied+1 (it was trimmed past the node, or
//     is behind its store): a [*GapError]; the node must re-bootstrap;
//   - a message that does not decode as a command ([ErrInvalidCommand],
//     [ErrUnsupportedVersion]): nothing is guessed, every node stops at the
//     same sequence;
//   - an error from a.Apply, returned wrapped.
//
// When ctx is done it returns ctx.Err(). Leader elections, lost servers and
// lost connections are ridden through: the reader resumes after the last
// command applied.
func (l *Log) Follow(ctx context.Context, applied uint64, a Applier) error {
	for {
		cons, err := l.reader(ctx, applied)
		if err == nil {
			err = l.drain(ctx, cons, &applied, a)
			l.dropReader(cons)
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
	var cons jetstream.Consumer
	err := retry(ctx, func(ctx context.Context) error {
		if err := l.continues(ctx, applied); err != nil {
			return err
		}
		var err error
		cons, err = l.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       applied + 1,
			AckPolicy:         jetstream.AckNonePolicy,
			InactiveThreshold: 6 * fetchWait,
			Replicas:          1,
			MemoryStorage:     true,
		})
		return err
	}, l.opts.RequestTimeout, transient)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("cluster: read stream %s after %d: %w", l.opts.Stream, applied, err)
	}
	return cons, err
}

// continues reports a [*GapError] unless the log holds applied+1 or is
// waiting for it.
func (l *Log) continues(ctx context.Context, applied uint64) error {
	st, err := l.State(ctx)
	switch {
	case err != nil:
		return err
	case applied+1 < st.First:
		return &GapError{Stream: l.opts.Stream, Applied: applied, Next: st.First}
	case applied > st.Last:
		return &GapError{Stream: l.opts.Stream, Applied: applied, Next: st.Last + 1}
	}
	return nil
}

// drain pulls from cons and applies in order until an error; errResume
// means the consumer is lost or skipped a command and a new one must take
// over from *applied.
func (l *Log) drain(ctx context.Context, cons jetstream.Consumer, applied *uint64, a Applier) error {
	for {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.FetchBytes(fetchBytes, jetstream.FetchContext(fctx), jetstream.FetchHeartbeat(fetchHeartbeat))
		if err != nil {
			cancel()
			return errResume
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			if err := l.applyMsg(ctx, msg, applied, a); err != nil {
				cancel()
				return err
			}
		}
		cancel()
		if batch.Error() != nil {
			return errResume
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
