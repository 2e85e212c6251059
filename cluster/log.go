package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LogOptions configure the command log. A nil *LogOptions is valid.
type LogOptions struct {
	// Stream is the JetStream stream holding the log. The default value is
	// "FACESEARCH".
	Stream string
	// Subject is the one subject commands are published on. The default value
	// is "facesearch.log".
	Subject string
	// Replicas is how many NATS nodes hold the log; an acknowledged command is
	// on a majority of them. The default value is 3.
	Replicas int
	// Duplicates is JetStream's deduplication window for command IDs. It only
	// spares the apply a repeated command: the apply's own record of outcomes
	// is what makes a retry safe. The default value is 2m.
	Duplicates time.Duration
	// PublishTimeout bounds [Log.Publish], retries through a leader election
	// included; past it the publish fails with [ErrUnconfirmed]. The default
	// value is 10s.
	PublishTimeout time.Duration
	// RequestTimeout bounds each request to JetStream (one publish attempt, a
	// stream lookup). The default value is 2s.
	RequestTimeout time.Duration
}

func (o *LogOptions) ensureDefaults() {
	if o.Stream == "" {
		o.Stream = "FACESEARCH"
	}
	if o.Subject == "" {
		o.Subject = "facesearch.log"
	}
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.Duplicates == 0 {
		o.Duplicates = 2 * time.Minute
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = 10 * time.Second
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 2 * time.Second
	}
}

// Validate reports every problem of the options at once.
func (o *LogOptions) Validate() error {
	var list []string
	if !tokenPattern.MatchString(o.Stream) || strings.ContainsAny(o.Stream, ".:") {
		list = append(list, fmt.Sprintf("Stream %q must be a name without dots", o.Stream))
	}
	if !tokenPattern.MatchString(o.Subject) || strings.ContainsAny(o.Subject, ":") {
		list = append(list, fmt.Sprintf("Subject %q must be a literal subject", o.Subject))
	}
	// JetStream allows at most 5 replicas.
	if o.Replicas < 1 || o.Replicas > 5 {
		list = append(list, fmt.Sprintf("Replicas %d must be 1 to 5", o.Replicas))
	}
	if o.Duplicates <= 0 {
		list = append(list, "Duplicates must be positive")
	}
	if o.PublishTimeout <= 0 || o.RequestTimeout <= 0 {
		list = append(list, "PublishTimeout and RequestTimeout must be positive")
	}
	return problems(ErrInvalidOptions, "command log", list)
}

// Log is the replicated command log: one JetStream stream, appended to by
// every node and read in order by each.
type Log struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	opts   LogOptions
	tail   tail
	// behindGrace: see the constant.
	behindGrace time.Duration
}

// streamConfig is the configuration the log needs: file storage, the given
// replicas, nothing ever dropped by a limit, deduplication on, purges allowed
// (trimming below checkpoints) but no deletion of single commands, which
// would punch a hole every node would have to skip.
func (o *LogOptions) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              o.Stream,
		Description:       "facesearch command log",
		Subjects:          []string{o.Subject},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Discard:           jetstream.DiscardNew,
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		Duplicates:        o.Duplicates,
		DenyDelete:        true,
	}
}

// checkStream lists every way an existing stream's configuration breaks the
// log's promises. Other differences (description, placement) are left to the
// operator.
func (o *LogOptions) checkStream(got jetstream.StreamConfig) error {
	var list []string
	if got.Storage != jetstream.FileStorage {
		list = append(list, fmt.Sprintf("storage is %s, not file", got.Storage))
	}
	if got.Replicas != o.Replicas {
		list = append(list, fmt.Sprintf("replicas %d, not %d", got.Replicas, o.Replicas))
	}
	if got.Retention != jetstream.LimitsPolicy {
		list = append(list, fmt.Sprintf("retention %s, not limits", got.Retention))
	}
	if got.MaxAge != 0 || got.MaxBytes > 0 || got.MaxMsgs > 0 || got.MaxMsgsPerSubject > 0 {
		list = append(list, fmt.Sprintf("limits drop commands (max age %s, bytes %d, msgs %d, per subject %d)",
			got.MaxAge, got.MaxBytes, got.MaxMsgs, got.MaxMsgsPerSubject))
	}
	if got.MaxMsgSize > 0 && got.MaxMsgSize < MaxCommandSize {
		list = append(list, fmt.Sprintf("max message size %d below %d", got.MaxMsgSize, MaxCommandSize))
	}
	if got.Duplicates <= 0 {
		list = append(list, "no deduplication window")
	}
	if got.DenyPurge {
		list = append(list, "purges denied, so the log cannot be trimmed")
	}
	if got.Sealed || got.Mirror != nil || len(got.Sources) > 0 {
		list = append(list, "sealed, mirrored or sourced")
	}
	covered := false
	for _, s := range got.Subjects {
		covered = covered || s == o.Subject
	}
	if !covered {
		list = append(list, fmt.Sprintf("subjects %v lack %s", got.Subjects, o.Subject))
	}
	return problems(ErrStreamConfig, "stream "+o.Stream, list)
}

// OpenLog creates the command log's stream, or checks an existing one, on
// the JetStream cluster nc is connected to. In a cluster that is still
// forming (too few nodes up, no meta leader yet) it retries until ctx is
// done, then returns the last error. A stream that exists with a
// configuration breaking the log's promises is refused with
// [ErrStreamConfig] and left as it is.
func OpenLog(ctx context.Context, nc *nats.Conn, opts *LogOptions) (*Log, error) {
	o := LogOptions{}
	if opts != nil {
		o = *opts
	}
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: command log: no NATS connection", ErrInvalidOptions)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	l := &Log{js: js, opts: o, tail: tail{moved: make(chan struct{}, 1)}, behindGrace: behindGrace}
	err = retry(ctx, func(ctx context.Context) error {
		st, err := l.js.CreateStream(ctx, o.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = l.js.Stream(ctx, o.Stream)
			if err == nil {
				err = o.checkStream(st.CachedInfo().Config)
			}
		}
		l.stream = st
		return err
	}, o.RequestTimeout, func(err error) bool { return !errors.Is(err, ErrStreamConfig) })
	if err != nil {
		return nil, fmt.Errorf("cluster: open stream %s: %w", o.Stream, err)
	}
	return l, nil
}

// retry runs attempt, each with its own timeout, until it succeeds, fails
// with an error again does not accept, or ctx is done; then it returns the
// last error.
func retry(ctx context.Context, attempt func(context.Context) error, timeout time.Duration, again func(error) bool) error {
	const pause = 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := attempt(actx)
		cancel()
		if err == nil || !again(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}

// Ack is JetStream's acknowledgement of a published command: a majority of
// the stream's replicas hold it.
type Ack struct {
	// Seq is the command's sequence in the log.
	Seq uint64
	// Duplicate reports that the log already held a command with this ID
	// (within the deduplication window); Seq is then that command's.
	Duplicate bool
}

// Publish appends cmd to the log with its ID as Nats-Msg-Id and waits for
// JetStream's acknowledgement. Through a leader election it retries the same
// message, which deduplication makes safe, until PublishTimeout; then it
// fails with [ErrUnconfirmed]: the command may still be in the log.
func (l *Log) Publish(ctx context.Context, cmd *Command) (Ack, error) {
	data, err := cmd.MarshalBinary()
	if err != nil {
		return Ack{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.opts.PublishTimeout)
	defer cancel()
	var ack *jetstream.PubAck
	err = retry(ctx, func(ctx context.Context) error {
		msg := &nats.Msg{Subject: l.opts.Subject, Data: data, Header: nats.Header{}}
		var err error
		ack, err = l.js.PublishMsg(ctx, msg, jetstream.WithMsgID(cmd.ID), jetstream.WithExpectStream(l.opts.Stream))
		return err
	}, l.opts.RequestTimeout, transient)
	switch {
	case err == nil:
		l.tail.see(ack.Sequence)
		return Ack{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case transient(err) || errors.Is(err, context.Canceled):
		return Ack{}, fmt.Errorf("%w: command %s on stream %s: %v", ErrUnconfirmed, cmd.ID, l.opts.Stream, err)
	default:
		return Ack{}, fmt.Errorf("cluster: publish command %s on stream %s: %w", cmd.ID, l.opts.Stream, err)
	}
}

// transient reports errors after which the command may or may not be in the
// log and a retry may succeed: no answer (a leader election, a lost
// connection, no quorum), JetStream saying it is temporarily unavailable, or
// an earlier attempt still in flight.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 || apiErr.ErrorCode == errCodeDuplicateInProcess
	}
	return false
}

// errCodeDuplicateInProcess is JetStream's answer to a retry while the first
// attempt with the same message ID is still being replicated (its
// JSStreamDuplicateMessageConflict, not named by the client library).
const errCodeDuplicateInProcess jetstream.ErrorCode = 10158

// Trim removes the commands below seq from the log. Nodes that have not
// applied them meet an [ErrGap] and must re-bootstrap from a checkpoint.
func (l *Log) Trim(ctx context.Context, seq uint64) error {
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSequence(seq)); err != nil {
		return fmt.Errorf("cluster: trim stream %s below %d: %w", l.opts.Stream, seq, err)
	}
	return nil
}

// State is what the log's stream reports about itself.
type State struct {
	// First and Last are the lowest and highest sequences the log holds
	// (First is Last+1 when it holds none).
	First, Last uint64
	// Leader is the name of the NATS node leading the stream's Raft group.
	Leader string
	// Leaderless reports an answer from a replica while the clustered
	// stream has no leader (an election): its bounds may be stale.
	Leaderless bool
}

// State asks JetStream for the log's bounds and leader. It is not a read
// barrier: a deposed leader may answer for a while.
func (l *Log) State(ctx context.Context) (State, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return State{}, fmt.Errorf("cluster: stream %s info: %w", l.opts.Stream, err)
	}
	s := State{First: info.State.FirstSeq, Last: info.State.LastSeq}
	l.tail.see(s.Last)
	if info.Cluster != nil {
		s.Leader = info.Cluster.Leader
		s.Leaderless = s.Leader == ""
	}
	return s, nil
}
