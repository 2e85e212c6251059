package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDiskFullIsThrottling: a write refused by the free-space floor is a
// ThrottlingException, which SDKs retry, and still reaches ErrDiskFull;
// reads go on, and the same store takes writes under a floor it is above.
func TestDiskFullIsThrottling(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, nil)
	require.NoError(t, err)
	_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "a"})
	require.NoError(t, err)
	require.NoError(t, e.Close())

	e, err = Open(dir, &Options{MinFreeBytes: 1 << 62})
	require.NoError(t, err, "a store below the floor opens")
	_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "b"})
	var ee *Error
	require.True(t, errors.As(err, &ee), "%v", err)
	require.Equal(t, CodeThrottling, ee.Code)
	require.ErrorIs(t, err, ErrDiskFull)
	list, err := e.ListCollections(ctx, &ListCollectionsInput{})
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, list.CollectionIds)
	require.NoError(t, e.Close())

	e, err = Open(dir, &Options{MinFreeBytes: -1})
	require.NoError(t, err)
	_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "b"})
	require.NoError(t, err)
	require.NoError(t, e.Close())
}
