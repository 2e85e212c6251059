package cluster

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// steppingClock is a wall clock that starts at start and moves step
// further at every reading.
func steppingClock(start time.Time, step time.Duration) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * step) }
}

// TestClusterReplaysOldLog writes a log whose commands span more than 25
// hours, starting 40 hours ago (the three nodes' clocks are injected),
// then replays it on a fresh node with the real clock: its store is the
// others' record for record, since tokens and outcomes expire by the
// log's own times. An apply reading its own clock would expire the
// older half of them at once.
func TestClusterReplaysOldLog(t *testing.T) {
	const steps, step = 400, 4 * time.Minute
	c := sharedCluster(t)
	noLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := t.TempDir()
	lo := testLogOptions(t)
	start := time.Now().Add(-40 * time.Hour)
	now := steppingClock(start, step)
	replicas, dirs := openReplicas(ctx, t, c, lo, base, func(_ int, o *ReplicaOptions) { o.Now = now })
	run := newEqRun(ctx, t, nil, replicas, 13)
	run.steps(steps, 0, 1, 2)
	want := run.requireSameState(nil, base)
	last, lastTime := replicas[0].state.Load().applier.Applied()
	require.Greater(t, At(lastTime).Sub(start), 25*time.Hour, "the log's span")
	require.Less(t, At(lastTime), time.Now().Add(-12*time.Hour))

	fresh, _ := openReplicas(ctx, t, &testCluster{nodes: c.nodes[:1]}, lo, base, func(_ int, o *ReplicaOptions) { o.Name = "fresh" })
	require.NoError(t, fresh[0].state.Load().applier.Progress().Wait(ctx, last))
	require.Equal(t, want, storeDigest(t, fresh[0].LocalEngine(), base))

	for _, r := range append(replicas, fresh[0]) {
		require.NoError(t, r.Close())
	}
	dirs = append(dirs, filepath.Join(base, "fresh"))
	requireSameStore(t, dirs...)
	// The log's own times expired outcomes: fewer are kept than were
	// recorded, and some are.
	outcomes := 0
	for k := range dump(t, dirs[0]) {
		if strings.HasPrefix(k, "a/"+prefixOutcome) {
			outcomes++
		}
	}
	require.Positive(t, outcomes)
	require.Less(t, outcomes, run.mutations, "outcomes kept of %d mutations", run.mutations)
}
