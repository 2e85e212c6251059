package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// TestPowerCutDuringImport: power cuts while a bulk import runs (on a file
// system that keeps only what was synced, and a random share of the rest)
// leave a store that opens, holds every batch committed before the cut,
// and holds batches only whole.
func TestPowerCutDuringImport(t *testing.T) {
	const (
		dim   = 8
		batch = 40 // records, 4 users of 10 faces each
		cuts  = 8
		// The import stops after this many records: each batch adds tables,
		// and a power cut copies the whole file system.
		records = 200 * batch
	)
	ctx := context.Background()
	fs := newCrashableFS()
	e, err := openOnFS(fs, "/db")
	require.NoError(t, err)
	defer e.Close()
	_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "c", Dimension: dim})
	require.NoError(t, err)

	var committed atomic.Int64 // faces in batches whose commit returned
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		r := rand.New(rand.NewPCG(7, 7))
		im, err := e.NewImporter(ctx, "c", &ImportOptions{BatchRecords: batch})
		if !assertNoError(t, err) {
			return
		}
		defer im.Close()
		for i := range records {
			select {
			case <-stop:
				return
			default:
			}
			vec := make([]float32, dim)
			for j := range vec {
				vec[j] = float32(r.NormFloat64())
			}
			if !assertNoError(t, im.Add(ImportRecord{Vector: vec, UserId: fmt.Sprint("u", i/10)})) {
				return
			}
			committed.Store(int64(im.Stats().Faces))
		}
	})

	r := rand.New(rand.NewPCG(11, 11))
	for i := range cuts {
		time.Sleep(time.Duration(1+r.IntN(4)) * time.Millisecond)
		acked := committed.Load()
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: r.IntN(101), RNG: rand.New(rand.NewPCG(uint64(i), 3))})
		ce, err := openOnFS(crashed, "/db")
		require.NoError(t, err, "cut %d: the store a power cut left must open", i)
		out, err := ce.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: "c"})
		require.NoError(t, err)
		faces := out.FaceCount
		require.GreaterOrEqual(t, faces, acked, "cut %d: every committed batch survives", i)
		require.Zero(t, faces%batch, "cut %d: %d faces is not a whole number of batches", i, faces)
		require.Equal(t, faces/10, out.UserCount, "cut %d: a user for every 10 faces", i)
		requireConsistent(t, ce)
		require.NoError(t, ce.Close())
		t.Logf("cut %d: %d faces acknowledged, %d present", i, acked, faces)
	}
	close(stop)
	wg.Wait()
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%v", err)
		return false
	}
	return true
}
