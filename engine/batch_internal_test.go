package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// openWithCollections opens an engine, closed when t ends, holding the
// empty collections ids.
func openWithCollections(t *testing.T, ids ...string) *Engine {
	t.Helper()
	e, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	for _, id := range ids {
		_, err = e.CreateCollection(context.Background(), &CreateCollectionInput{CollectionId: id})
		require.NoError(t, err)
	}
	return e
}

// TestSearchBatchChecksEveryVectorFirst: a vector of the wrong dimension
// fails the batch, naming its index, before any group is searched, in
// whichever group it lies; a collection with no dimension yet answers a
// batch of any lengths in one group.
func TestSearchBatchChecksEveryVectorFirst(t *testing.T) {
	ctx := context.Background()
	e := openWithCollections(t, "c", "empty")
	indexed(t, e, "c", []float32{1, 0, 0}, []float32{0, 1, 0})
	batch := func(n, bad int) [][]float32 {
		vs := make([][]float32, n)
		for i := range vs {
			vs[i] = []float32{1, float32(i), 0}
			if i == bad {
				vs[i] = append(vs[i], 1)
			}
		}
		return vs
	}
	n := 2*batchGroup + 3
	for _, tc := range []struct {
		name      string
		coll      string
		bad       int
		wantCalls int
	}{
		{"first group", "c", 1, 0},
		{"second group", "c", batchGroup, 0},
		{"last vector", "c", n - 1, 0},
		{"no bad vector", "c", -1, 3},
		{"no dimension yet", "empty", n - 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, answered := 0, 0
			err := e.searchBatch(ctx, tc.coll, batch(n, tc.bad), func(c *collection, lo int, qs [][]float32) error {
				require.Equal(t, answered, lo, "groups in order")
				calls++
				answered += len(qs)
				return nil
			})
			require.Equal(t, tc.wantCalls, calls, "groups searched")
			if tc.wantCalls == 0 {
				require.ErrorIs(t, err, ErrInvalidParameter)
				var ee *Error
				require.True(t, errors.As(err, &ee))
				require.Contains(t, ee.Message, fmt.Sprintf("Vectors[%d] ", tc.bad))
				return
			}
			require.NoError(t, err)
			require.Equal(t, n, answered)
		})
	}
}
