package engine_test

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestFlushFailsForLackOfSpace opens the engine on Options.FS, a file
// system that fails the creation of tables on demand: a flush that fails
// returns ErrDiskFull, mutating calls are refused with ThrottlingException
// while Pebble retries it, and once tables can be created they succeed
// again, with nothing lost.
func TestFlushFailsForLackOfSpace(t *testing.T) {
	var failing atomic.Bool
	var injected atomic.Int64
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			injected.Add(1)
			return syscall.ENOSPC
		}
		return nil
	}))
	e, err := engine.Open("db", &engine.Options{FS: fs})
	require.NoError(t, err)
	ctx := context.Background()
	createCollection(t, e, "a", "")
	require.NoError(t, e.Flush())

	createCollection(t, e, "b", "")
	failing.Store(true)
	require.ErrorIs(t, e.Flush(), engine.ErrDiskFull)
	require.Positive(t, injected.Load())
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
	var ee *engine.Error
	require.ErrorAs(t, err, &ee)
	require.Equal(t, engine.CodeThrottling, ee.Code)

	failing.Store(false)
	require.Eventually(t, func() bool {
		_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, e.Flush())
	require.NoError(t, e.Close())
	require.ErrorIs(t, e.Flush(), engine.ErrClosed)

	e, err = engine.Open("db", &engine.Options{FS: fs})
	require.NoError(t, err)
	defer e.Close()
	out, err := e.ListCollections(ctx, &engine.ListCollectionsInput{})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, out.CollectionIds)
}
