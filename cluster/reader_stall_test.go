package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// A consumer that stops delivering while the log holds more (paused here,
// as one on a server cut off and healed behaves) is replaced once this
// node publishes past it, without waiting for its pull to run out.
func TestFollowReplacesAStuckConsumer(t *testing.T) {
	c := sharedCluster(t)
	l := openLogs(t, c, testLogOptions(t))[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &recorder{}
	follow(t, l, 0, r)
	_, err := l.Publish(ctx, cmdN("n1", 0))
	require.NoError(t, err)
	waitApplied(t, r, 1)

	names := l.stream.ConsumerNames(ctx)
	var stuck []string
	for name := range names.Name() {
		stuck = append(stuck, name)
	}
	require.NoError(t, names.Err())
	require.Len(t, stuck, 1, "the reader's consumer")
	_, err = l.stream.PauseConsumer(ctx, stuck[0], time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		cons, err := l.stream.Consumer(ctx, stuck[0])
		return err == nil && cons.CachedInfo().Paused
	}, 10*time.Second, 20*time.Millisecond, "the consumer pauses")

	start := time.Now()
	_, err = l.Publish(ctx, cmdN("n1", 1))
	require.NoError(t, err)
	waitApplied(t, r, 2)
	took := time.Since(start)
	t.Logf("applied through a new consumer %v after the publish", took)
	require.Less(t, took, fetchWait, "resumed before the stuck pull ran out")
	_, err = l.stream.Consumer(ctx, stuck[0])
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "the stuck consumer is dropped")
}
