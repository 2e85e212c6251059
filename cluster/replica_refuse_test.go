package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// TestReplicaRefusesInvalidRequestsUnpublished: a request whose parameters
// no state can make valid is refused by the Replica with the single
// engine's error, and adds nothing to the log; one that only the state
// refuses still goes through the log, and gets the same error too.
func TestReplicaRefusesInvalidRequestsUnpublished(t *testing.T) {
	c := sharedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	single, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer single.Close()
	replicas, _ := openReplicas(ctx, t, c, runLogOptions(t), t.TempDir(), nil)
	r := replicas[0]
	for _, a := range []api{single, r} {
		_, err := a.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
		require.NoError(t, err)
	}
	var zero, two bytes.Buffer
	require.NoError(t, npy.Encode(&zero, [][]float32{make([]float32, 4)}, false))
	require.NoError(t, npy.Encode(&two, [][]float32{{1, 0}}, false))
	face := "0b4d8f3c-2a1e-4c55-9a7e-2f1d3c4b5a69"
	over := float32(101)
	for _, tc := range []struct {
		name, op  string
		in        any
		published bool
	}{
		{"bad collection ID", "CreateCollection", &engine.CreateCollectionInput{CollectionId: "a/b"}, false},
		{"bad tier", "CreateCollection", &engine.CreateCollectionInput{CollectionId: "d", Tags: map[string]string{engine.TagTier: "int4"}}, false},
		{"no collection ID", "DeleteCollection", &engine.DeleteCollectionInput{}, false},
		{"zero embedding", "IndexFaces", &engine.IndexFacesInput{CollectionId: "c", Image: &engine.Image{Bytes: zero.Bytes()}}, false},
		{"no image", "IndexFaces", &engine.IndexFacesInput{CollectionId: "c"}, false},
		{"bad face ID", "DeleteFaces", &engine.DeleteFacesInput{CollectionId: "c", FaceIds: []string{"f"}}, false},
		{"no user ID", "CreateUser", &engine.CreateUserInput{CollectionId: "c"}, false},
		{"bad token", "DeleteUser", &engine.DeleteUserInput{CollectionId: "c", UserId: "u", ClientRequestToken: "a b"}, false},
		{"threshold over 100", "AssociateFaces", &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{face}, UserMatchThreshold: &over}, false},
		{"no face IDs", "DisassociateFaces", &engine.DisassociateFacesInput{CollectionId: "c", UserId: "u"}, false},
		{"no such user", "DeleteUser", &engine.DeleteUserInput{CollectionId: "c", UserId: "u"}, true},
		{"no such collection", "IndexFaces", &engine.IndexFacesInput{CollectionId: "nope", Image: &engine.Image{Bytes: two.Bytes()}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := json.Marshal(tc.in)
			require.NoError(t, err)
			before, err := r.Log().State(ctx)
			require.NoError(t, err)
			var want, got *engine.Error
			_, err = apiCalls[tc.op](ctx, single, in)
			require.True(t, errors.As(err, &want), "the single engine refuses it")
			_, err = apiCalls[tc.op](ctx, r, in)
			require.True(t, errors.As(err, &got), "the replica refuses it with an *engine.Error, not %v", err)
			require.Equal(t, want.Code, got.Code)
			require.Equal(t, want.Message, got.Message)
			after, err := r.Log().State(ctx)
			require.NoError(t, err)
			if tc.published {
				require.Equal(t, before.Last+1, after.Last, "refused by the apply, through the log")
			} else {
				require.Equal(t, before.Last, after.Last, "refused before the log")
			}
		})
	}
}
