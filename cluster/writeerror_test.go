package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// freeBytes is the space available on the file system of dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

// TestClusterDiskFullMidWorkload fills the disk under one node's store
// mid-workload: its store refuses the writes the log brings (its
// free-space floor is placed 2 GiB under the space free when the test
// starts, and a 4 GiB file is then allocated next to it), so the node
// stops applying, keeps its applied sequence and reports unhealthy while
// the other two take the workload. Once the file is removed the node
// applies the log again by itself, to the same store as the others, and
// the cluster still answers as the single node.
func TestClusterDiskFullMidWorkload(t *testing.T) {
	const margin = 2 << 30
	base := t.TempDir()
	if freeBytes(t, base) < 4*margin {
		t.Skip("needs 8 GiB free beside the test's stores")
	}
	ballast := filepath.Join(base, "ballast")
	floor := freeBytes(t, base) - margin
	faultRun(t, base, 12, &engine.Options{MinFreeBytes: floor}, "the full disk", func(*Replica) {
		f, err := os.Create(ballast)
		require.NoError(t, err)
		err = syscall.Fallocate(int(f.Fd()), 0, 0, 2*margin)
		require.NoError(t, f.Close())
		t.Cleanup(func() { os.Remove(ballast) })
		if errors.Is(err, syscall.EOPNOTSUPP) {
			t.Skip("the file system cannot allocate a file without writing it")
		}
		require.NoError(t, err)
	}, func() { require.NoError(t, os.Remove(ballast)) })
}

// faultRun is the walk of the write-error tests: three nodes, node 3's
// engine on opts, take a workload the single node takes too; fail makes
// node 3's store refuse writes (given node 3), so it reports ErrDiskFull (what) and stops
// where its store refused while the others go on (requireStuck); heal
// lifts that, and node 3 applies the log again by itself, to the same
// store as the others, the cluster still answering as the single node.
func faultRun(t *testing.T, base string, seed uint64, opts *engine.Options, what string, fail func(node3 *Replica), heal func()) {
	t.Helper()
	c := sharedCluster(t)
	noLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	single, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer single.Close()
	replicas, dirs := openReplicas(ctx, t, c, runLogOptions(t), base, func(i int, o *ReplicaOptions) {
		o.RetryBackoff = 100 * time.Millisecond
		if i == 2 {
			o.Engine = opts
		}
	})
	run := newEqRun(ctx, t, single, replicas, seed)
	run.steps(60, 0, 1, 2)
	held := replicas[0].Applied()
	require.NoError(t, replicas[2].state.Load().applier.Progress().Wait(ctx, held))

	fail(replicas[2])
	run.steps(80, 0, 1)
	eventually(t, 10*time.Second, "node 3 reports "+what, func() bool { return errors.Is(replicas[2].Health(), engine.ErrDiskFull) })
	requireStuck(ctx, t, run, replicas, held)

	heal()
	eventually(t, 20*time.Second, "node 3 applies the log again", func() bool { return replicas[2].Health() == nil })
	run.steps(60, 0, 1, 2)
	run.requireSameState(nil, base)
	for _, r := range replicas {
		require.NoError(t, r.Close())
	}
	requireSameStore(t, dirs...)
}
