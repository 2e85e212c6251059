package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// Three nodes, each an engine following the replicated log through its
// EngineApplier, while all three publish: once a read barrier returns on
// each, their stores hold the same records, outcomes included.
func TestEngineAppliersFollowingTheLogAgree(t *testing.T) {
	c := sharedCluster(t)
	logs := openLogs(t, c, testLogOptions(t))
	cmds := workload(t, 5, 150)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dirs := make([]string, len(logs))
	appliers := make([]*EngineApplier, len(logs))
	followed := make(chan error, len(logs))
	fctx, stop := context.WithCancel(ctx)
	for i, l := range logs {
		dirs[i] = filepath.Join(t.TempDir(), fmt.Sprint(i))
		e, err := engine.Open(dirs[i], nil)
		require.NoError(t, err)
		defer e.Close() // after the followers stop; a second Close is harmless
		appliers[i], err = NewEngineApplier(e, nil)
		require.NoError(t, err)
		go func() { followed <- l.Follow(fctx, 0, appliers[i]) }()
	}
	stopped := false
	stopFollowers := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		for range logs {
			select {
			case err := <-followed:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(30 * time.Second):
				t.Fatal("a follower did not stop")
			}
		}
	}
	defer stopFollowers()

	for i, cmd := range cmds {
		_, err := logs[i%len(logs)].Publish(ctx, cmd)
		require.NoError(t, err, "command %d", i)
	}
	for i, l := range logs {
		b := NewBarrier(l, fmt.Sprintf("n%d", i+1), NewClock(nil), appliers[i].Progress())
		require.NoError(t, b.Wait(ctx))
	}
	// The last barrier is the log's last command: every node applies it.
	last, _ := appliers[len(appliers)-1].Applied()
	for _, a := range appliers {
		require.NoError(t, a.Progress().Wait(ctx, last))
	}
	stopFollowers()
	want, _ := appliers[0].Applied()
	for i, a := range appliers {
		got, _ := a.Applied()
		require.Equal(t, want, got, "node %d", i+1)
		require.NoError(t, a.e.Close())
	}
	requireSameStore(t, dirs...)
}
