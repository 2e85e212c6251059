package cluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// Checkpoints, the lease, trimming and bootstrap work on the oldest
// nats-server tested, Debian's 2.9.10, run as three processes.
func TestExternalClusterCheckpoints(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts three nats-server processes")
	}
	bin := externalServer(t)
	urls, _ := startExternalCluster(t, bin, 3)
	conns := make([]*nats.Conn, len(urls))
	for i := range urls {
		conns[i] = connectRetry(t, failover(urls, i))
	}
	logs := openLogs(t, &testCluster{conns: conns}, &LogOptions{PublishTimeout: 20 * time.Second})
	cps := openCheckpoints(t, logs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	publishN(ctx, t, logs[0], 150)
	cmds := workload(t, 13, 120)
	src := storeAt(t, cmds, 120)

	e := startEngineOn(t, src)
	k, err := cps[0].NewCheckpointer(e, &CheckpointerOptions{Node: "a", Scratch: t.TempDir(), Every: 1})
	require.NoError(t, err)
	for range 3 {
		took, err := k.Once(ctx)
		require.NoError(t, err)
		require.True(t, took)
		e.applied++ // due again
	}
	list, err := cps[1].List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2, "the trim after each checkpoint keeps two")
	st, err := logs[1].State(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 121, st.First)

	dst := filepath.Join(t.TempDir(), "store")
	got, err := cps[2].Bootstrap(ctx, dst)
	require.NoError(t, err)
	require.Equal(t, list[0].Name, got.Name)
	require.NoError(t, e.Close())
	requireSameStore(t, src, dst)
}
