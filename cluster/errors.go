package cluster

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for errors.Is. Each error the package returns wraps one of them
// (or a context error) and names the offending URL, stream or sequence.
var (
	// ErrUnreachable: no NATS server in the given list accepted a connection.
	// The error is an [*UnreachableError] naming every URL tried.
	ErrUnreachable = errors.New("cluster: NATS unreachable")
	// ErrUnhealthy: a [Replica] does not apply the log (its apply failed,
	// its reader stopped, it is re-bootstrapping); the message says why.
	// [Replica.Health] returns it, and the node's writes and linearizable
	// reads fail with it (as a retryable ThrottlingException) until the
	// node recovers.
	ErrUnhealthy = errors.New("cluster: node unhealthy")
	// ErrInvalidOptions: a [NodeOptions] or [LogOptions] value is unusable;
	// the message lists every problem.
	ErrInvalidOptions = errors.New("cluster: invalid options")
	// ErrNodeStart: the embedded NATS server did not start or did not accept
	// connections in time.
	ErrNodeStart = errors.New("cluster: embedded NATS node did not start")
	// ErrStreamConfig: the command log's stream exists with a configuration
	// that breaks the log's promises (limits that drop commands, memory
	// storage, another replica count, no deduplication); the message lists
	// every problem. Nothing is changed on the stream.
	ErrStreamConfig = errors.New("cluster: command log stream misconfigured")
	// ErrGap: the log does not hold the command after the last one applied
	// (it was trimmed past it, or the store is ahead of a recreated log). The
	// error is a [*GapError]; the node must re-bootstrap from a checkpoint.
	ErrGap = errors.New("cluster: command log gap")
	// ErrInvalidCommand: bytes that are not a valid command envelope.
	ErrInvalidCommand = errors.New("cluster: invalid command")
	// ErrUnsupportedVersion: a command envelope of a version this node does not
	// know, published by a newer node. This node must be upgraded before it
	// can apply further.
	ErrUnsupportedVersion = errors.New("cluster: unsupported command version")
	// ErrUnconfirmed: a publish was not acknowledged in time. The command may
	// still be in the log and be applied; publishing it again with the same
	// command ID is safe and returns its outcome. The error is retryable.
	ErrUnconfirmed = errors.New("cluster: publish not acknowledged; the command may still be applied, a retry with the same command ID is safe")
	// ErrNoCheckpoint: the checkpoint bucket holds no verified checkpoint
	// that passes verification, so a node cannot bootstrap from it.
	ErrNoCheckpoint = errors.New("cluster: no usable checkpoint")
	// ErrBadCheckpoint: a checkpoint failed verification: its bytes do not
	// match the digest published when it was verified, its archive is
	// malformed or hostile (a path leaving its directory, a link or device,
	// sizes beyond the object's), or the applied sequence inside differs
	// from the published one. It is never opened as a store.
	ErrBadCheckpoint = errors.New("cluster: bad checkpoint")
)

// UnreachableError reports a connection that failed to every URL given.
type UnreachableError struct {
	// URLs are the server URLs tried, as given.
	URLs []string
	// Err is the NATS client's error for the last attempt.
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%v at %s: %v", ErrUnreachable, strings.Join(e.URLs, ", "), e.Err)
}

// Is reports whether target is [ErrUnreachable].
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Unwrap returns the client's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// GapError reports a log that cannot continue a node's applied sequence.
type GapError struct {
	// Stream is the command log's stream name.
	Stream string
	// Applied is the last sequence the node applied.
	Applied uint64
	// Next is the sequence the log offers next: above Applied+1 when the log
	// was trimmed past the node, at most Applied when the log is behind the
	// store (it was recreated).
	Next uint64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("%v in stream %s: applied %d, the log continues at %d", ErrGap, e.Stream, e.Applied, e.Next)
}

// Is reports whether target is [ErrGap].
func (e *GapError) Is(target error) bool { return target == ErrGap }

// problems joins a list of validation problems into one error wrapping
// sentinel, or returns nil when the list is empty.
func problems(sentinel error, what string, list []string) error {
	if len(list) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", sentinel, what, strings.Join(list, "; "))
}
