package cluster

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestReplicaKeepsGoOnlyInputs: the inputs' Go-only fields (a collection's
// settings, IndexFaces' embeddings) reach every node's apply, so a Go
// caller of a Replica gets what it gets from one engine.
func TestReplicaKeepsGoOnlyInputs(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	nodes := startReplicas(t, c, nil)
	ctx := context.Background()
	_, err := nodes[0].rep.CreateCollection(ctx, &engine.CreateCollectionInput{
		CollectionId: "go", Dimension: 4, Similarity: "cosine", Tier: "int8"})
	require.NoError(t, err)
	for i, n := range nodes {
		d, err := n.rep.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "go"})
		require.NoError(t, err)
		require.Equal(t, []any{4, "cosine", "int8"}, []any{d.Dimension, d.Similarity, d.Tier}, "node %d", i+1)
	}

	box := &engine.BoundingBox{Width: 0.5, Height: 0.25, Left: 0.125, Top: 0.0625}
	out, err := nodes[1].rep.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "go", Faces: []engine.FaceEmbedding{
		{Vector: []float32{1, 2, 3, 4}, ExternalImageId: "a", BoundingBox: box},
		{Vector: []float32{-1, 0.5, 0, 2}},
	}})
	require.NoError(t, err)
	require.Len(t, out.FaceRecords, 2)
	want := out.FaceRecords[0].Face
	for i, n := range nodes {
		l, err := n.rep.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "go"})
		require.NoError(t, err)
		require.Len(t, l.Faces, 2, "node %d", i+1)
		require.Equal(t, want.FaceId, l.Faces[0].FaceId, "node %d", i+1)
		require.Equal(t, "a", l.Faces[0].ExternalImageId, "node %d", i+1)
		require.Equal(t, box, l.Faces[0].BoundingBox, "node %d", i+1)
	}

	// An embedding that is not a number is the engine's refusal, not the
	// node's failure.
	_, err = nodes[2].rep.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "go",
		Faces: []engine.FaceEmbedding{{Vector: []float32{float32(math.NaN()), 0, 0, 1}}}})
	var ee *engine.Error
	require.True(t, errors.As(err, &ee), "got %v", err)
	require.Equal(t, engine.CodeInvalidParameter, ee.Code)
	requireSameReplicas(t, nodes)
}
