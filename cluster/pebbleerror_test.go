package cluster

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestClusterPebbleWriteErrorMidWorkload makes Pebble itself fail a write
// on one node mid-workload: node 3's store lives on a file system that,
// once told to, fails the creation of every table with ENOSPC, and its
// memtable is then flushed. (A failed write to the write-ahead log is no
// case to test: Pebble ends the process on it.) The flush fails, Pebble
// retries it, and meanwhile the store refuses writes, so the node stops
// applying, keeps its applied sequence and reports unhealthy while the
// other two take the workload. Once tables can be created again, Pebble's
// retry succeeds and the node applies the log again by itself, to the same
// store as the others, and the cluster still answers as the single node.
func TestClusterPebbleWriteErrorMidWorkload(t *testing.T) {
	var failing atomic.Bool
	var injected atomic.Int64
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			injected.Add(1)
			return syscall.ENOSPC
		}
		return nil
	}))
	var n int64
	faultRun(t, t.TempDir(), 13, &engine.Options{FS: fs}, "the failing flush", func(node3 *Replica) {
		failing.Store(true)
		require.ErrorIs(t, node3.LocalEngine().Flush(), engine.ErrDiskFull)
		require.Positive(t, injected.Load(), "the flush created a table")
	}, func() {
		failing.Store(false)
		n = injected.Load()
	})
	require.Greater(t, n, int64(1), "Pebble retried the flush")
}

// requireStuck checks that node 3, whose store refuses writes, applied
// the log up to at least held and stops there while nodes 1 and 2 go on,
// and that it refuses a write with ThrottlingException.
func requireStuck(ctx context.Context, t *testing.T, run *eqRun, replicas []*Replica, held uint64) {
	t.Helper()
	require.ErrorIs(t, replicas[2].Health(), ErrUnhealthy)
	// Barriers write nothing, so node 3 may apply those after held; the
	// first mutation stops it, and its retries leave the sequence there.
	stuck := replicas[2].Applied()
	require.GreaterOrEqual(t, stuck, held)
	require.Less(t, stuck, replicas[0].Applied(), "a refused write stops the apply")
	run.steps(5, 0, 1)
	require.Equal(t, stuck, replicas[2].Applied(), "a refused write leaves the applied sequence")
	_, err := replicas[2].CreateUser(ctx, &engine.CreateUserInput{CollectionId: "alpha", UserId: "refused"})
	var throttled *engine.Error
	require.ErrorAs(t, err, &throttled)
	require.Equal(t, engine.CodeThrottling, throttled.Code, "an unhealthy node refuses writes: %v", err)
	require.ErrorIs(t, err, ErrUnhealthy)
}
