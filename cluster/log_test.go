package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenLogCreatesReplicatedFileStream(t *testing.T) {
	c := sharedCluster(t)
	l := openLogs(t, c, testLogOptions(t))[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := l.stream.Info(ctx)
	require.NoError(t, err)
	cfg := info.Config
	assert.Equal(t, 3, cfg.Replicas)
	assert.Equal(t, jetstream.FileStorage, cfg.Storage)
	assert.Equal(t, jetstream.LimitsPolicy, cfg.Retention)
	assert.Zero(t, cfg.MaxAge)
	assert.EqualValues(t, -1, cfg.MaxBytes)
	assert.EqualValues(t, -1, cfg.MaxMsgs)
	assert.EqualValues(t, -1, cfg.MaxMsgsPerSubject)
	assert.Equal(t, 2*time.Minute, cfg.Duplicates)
	assert.True(t, cfg.DenyDelete)
	assert.False(t, cfg.DenyPurge)
	require.NotNil(t, info.Cluster)
	assert.NotEmpty(t, info.Cluster.Leader)
	assert.Len(t, info.Cluster.Replicas, 2, "the leader and two other replicas")
}

func TestOpenLogRefusesStreamThatDropsCommands(t *testing.T) {
	c := sharedCluster(t)
	opts := testLogOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(c.conns[0])
	require.NoError(t, err)
	bad := jetstream.StreamConfig{
		Name: opts.Stream, Subjects: []string{opts.Subject},
		Storage: jetstream.MemoryStorage, Replicas: 1, MaxAge: time.Hour, MaxMsgs: 1000,
	}
	require.NoError(t, retry(ctx, func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, bad)
		return err
	}, 2*time.Second, transient))

	_, err = OpenLog(ctx, c.conns[1], opts)
	require.ErrorIs(t, err, ErrStreamConfig)
	for _, want := range []string{"storage", "replicas 1", "limits drop commands"} {
		assert.Contains(t, err.Error(), want, "every problem is named")
	}
	st, err := js.Stream(ctx, opts.Stream)
	require.NoError(t, err)
	assert.Equal(t, bad.MaxAge, st.CachedInfo().Config.MaxAge, "the stream is left as it was")
}

func TestPublishedCommandsAppliedInLogOrderOnEveryNode(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, testLogOptions(t))
	recs := make([]*recorder, len(logs))
	for i, l := range logs {
		recs[i] = &recorder{}
		follow(t, l, 0, recs[i])
	}

	// Every node publishes at once; the log orders them.
	const perNode = 10
	n := perNode * len(logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idAt := make([]string, n+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, l := range logs {
		wg.Go(func() {
			for j := range perNode {
				cmd := cmdN(fmt.Sprintf("n%d", i+1), j)
				ack, err := l.Publish(ctx, cmd)
				if !assert.NoError(t, err) {
					return
				}
				assert.False(t, ack.Duplicate)
				mu.Lock()
				if assert.LessOrEqual(t, ack.Seq, uint64(n)) {
					assert.Empty(t, idAt[ack.Seq], "sequence %d acknowledged twice", ack.Seq)
					idAt[ack.Seq] = cmd.ID
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())

	wantSeqs := make([]uint64, n)
	for i := range wantSeqs {
		wantSeqs[i] = uint64(i + 1)
	}
	for i, r := range recs {
		seqs, ids := waitApplied(t, r, n)
		assert.Equal(t, wantSeqs, seqs, "node %d applies 1..%d in order", i+1, n)
		assert.Equal(t, idAt[1:], ids, "node %d applies each command at its acknowledged sequence", i+1)
	}
}

func TestPublishDeduplicatesCommandID(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, testLogOptions(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, err := logs[0].Publish(ctx, cmdN("n1", 1))
	require.NoError(t, err)
	assert.False(t, first.Duplicate)
	// The same command again, through another node: the log keeps one.
	again, err := logs[1].Publish(ctx, cmdN("n1", 1))
	require.NoError(t, err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.Seq, again.Seq, "a duplicate's ack gives the original's sequence")
	next, err := logs[2].Publish(ctx, cmdN("n1", 2))
	require.NoError(t, err)
	assert.Equal(t, first.Seq+1, next.Seq)

	r := &recorder{}
	follow(t, logs[2], 0, r)
	seqs, ids := waitApplied(t, r, 2)
	assert.Equal(t, []uint64{1, 2}, seqs)
	assert.Equal(t, []string{"n1-1", "n1-2"}, ids)
}

func TestFollowReportsGap(t *testing.T) {
	c := sharedCluster(t)
	l := openLogs(t, c, testLogOptions(t))[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publishN(ctx, t, l, 5)
	require.NoError(t, l.Trim(ctx, 4))

	tests := []struct {
		name     string
		applied  uint64
		wantNext uint64
	}{
		{"trimmed past the node", 1, 4},
		{"store ahead of the log", 9, 6},
	}
	// A log ending before the store is first taken for a replica catching
	// up (a leader just elected), for the grace.
	l.behindGrace = 300 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := l.Follow(ctx, tt.applied, &recorder{})
			if tt.applied > 5 {
				assert.GreaterOrEqual(t, time.Since(start), l.behindGrace, "reported before the grace")
			}
			require.ErrorIs(t, err, ErrGap)
			var gap *GapError
			require.ErrorAs(t, err, &gap)
			assert.Equal(t, tt.applied, gap.Applied)
			assert.Equal(t, tt.wantNext, gap.Next)
		})
	}

	t.Run("a node at the trim point goes on", func(t *testing.T) {
		r := &recorder{}
		follow(t, l, 3, r)
		seqs, _ := waitApplied(t, r, 2)
		assert.Equal(t, []uint64{4, 5}, seqs)
	})
}

func TestFollowStopsOnApplyErrorAndResumes(t *testing.T) {
	c := sharedCluster(t)
	l := openLogs(t, c, testLogOptions(t))[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publishN(ctx, t, l, 3)
	errDisk := errors.New("disk full")
	r := &recorder{failAt: 2, err: errDisk}
	err := l.Follow(ctx, 0, r)
	require.ErrorIs(t, err, errDisk)
	seqs, _ := r.applied()
	assert.Equal(t, []uint64{1}, seqs, "nothing after the failed command is applied")

	r.mu.Lock()
	r.failAt = 0
	r.mu.Unlock()
	follow(t, l, 1, r)
	seqs, _ = waitApplied(t, r, 3)
	assert.Equal(t, []uint64{1, 2, 3}, seqs, "the failed command is offered again")
}

func TestFollowStopsOnInvalidCommand(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error
	}{
		{"not JSON", `garbage`, ErrInvalidCommand},
		{"no ID", `{"v":1,"op":"Barrier","node":"n1","time":1}`, ErrInvalidCommand},
		{"a newer version", `{"v":2,"id":"x","op":"Barrier","node":"n1","time":1,"new":true}`, ErrUnsupportedVersion},
	}
	c := sharedCluster(t)
	l := openLogs(t, c, testLogOptions(t))[0]
	js, err := jetstream.New(c.conns[0])
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A valid command, then the bad message straight onto the subject.
			_, err := l.Publish(ctx, cmdN("n1", i))
			require.NoError(t, err)
			ack, err := js.Publish(ctx, l.opts.Subject, []byte(tt.data))
			require.NoError(t, err)
			r := &recorder{}
			err = l.Follow(ctx, ack.Sequence-2, r)
			require.ErrorIs(t, err, tt.want)
			seqs, _ := r.applied()
			assert.Equal(t, []uint64{ack.Sequence - 1}, seqs, "the reader stops at the bad message")
		})
	}
}

func TestLeaderShutdownThenPublishSucceeds(t *testing.T) {
	// Mostly waiting on elections: run beside the other tests.
	t.Parallel()
	c := startCluster(t, 3)
	opts := testLogOptions(t)
	opts.PublishTimeout = 20 * time.Second
	logs := openLogs(t, c, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 3 {
		_, err := logs[i].Publish(ctx, cmdN("before", i))
		require.NoError(t, err)
	}
	st, err := logs[0].State(ctx)
	require.NoError(t, err)
	leader := slices.IndexFunc(c.nodes, func(n *Node) bool { return n.Name() == st.Leader })
	require.GreaterOrEqual(t, leader, 0, "leader %q is one of the nodes", st.Leader)

	var survivors []int
	recs := map[int]*recorder{}
	for i := range c.nodes {
		if i != leader {
			survivors = append(survivors, i)
			recs[i] = &recorder{}
			follow(t, logs[i], 0, recs[i])
		}
	}
	c.conns[leader].Close()
	c.nodes[leader].Shutdown()

	start := time.Now()
	ack, err := logs[survivors[0]].Publish(ctx, cmdN("after", 0))
	require.NoError(t, err, "a publish succeeds once a new leader is elected")
	t.Logf("first publish after the leader's shutdown acknowledged in %s", time.Since(start).Round(time.Millisecond))
	assert.EqualValues(t, 4, ack.Seq)
	_, err = logs[survivors[1]].Publish(ctx, cmdN("after", 1))
	require.NoError(t, err)
	st, err = logs[survivors[1]].State(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, c.nodes[leader].Name(), st.Leader)

	for _, i := range survivors {
		seqs, ids := waitApplied(t, recs[i], 5)
		assert.Equal(t, []uint64{1, 2, 3, 4, 5}, seqs, "node %d", i+1)
		assert.Equal(t, []string{"before-0", "before-1", "before-2", "after-0", "after-1"}, ids, "node %d", i+1)
	}

	// With a second node gone the stream has no quorum: a publish fails
	// within its timeout, retryably, instead of hanging.
	c.conns[survivors[1]].Close()
	c.nodes[survivors[1]].Shutdown()
	l := logs[survivors[0]]
	l.opts.PublishTimeout = 3 * time.Second
	start = time.Now()
	_, err = l.Publish(ctx, cmdN("lost", 0))
	require.ErrorIs(t, err, ErrUnconfirmed)
	assert.Less(t, time.Since(start), 3*time.Second+l.opts.RequestTimeout+5*time.Second, "bounded by PublishTimeout")
}
