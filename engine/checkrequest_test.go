package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckRequestIsApplysRefusal: CheckRequest refuses exactly the
// requests whose parameters (or encoding) Apply refuses, with the error
// Apply's outcome holds, and passes those only an engine's state refuses
// or takes (an unknown collection, user or face; a request the Go input
// and its JSON tell apart, as an empty Faces beside an Image).
func TestCheckRequestIsApplysRefusal(t *testing.T) {
	ctx := context.Background()
	e := openWithCollections(t, "c")
	face := indexed(t, e, "c", []float32{1, 0, 0, 0})[0]
	over, zero := float32(101), int32(0)
	many := make([]string, maxUserFaceIDs+1)
	for i := range many {
		many[i] = face
	}
	both := indexInput("c", 1)
	both.Faces = []FaceEmbedding{{Vector: []float32{1, 0, 0, 0}}}
	emptyFaces := indexInput("c", 1)
	emptyFaces.Faces = []FaceEmbedding{}
	for _, tc := range []struct {
		name, op string
		in       any    // encoded by MutationRequest
		raw      string // or this request, when in is nil
		refused  bool   // by CheckRequest
	}{
		{"bad collection ID", "CreateCollection", &CreateCollectionInput{CollectionId: "a/b"}, "", true},
		{"bad tier", "CreateCollection", &CreateCollectionInput{CollectionId: "d", Tier: "int4"}, "", true},
		{"bad dimension tag", "CreateCollection", &CreateCollectionInput{CollectionId: "d", Tags: map[string]string{TagDimension: "x"}}, "", true},
		{"collection exists", "CreateCollection", &CreateCollectionInput{CollectionId: "c"}, "", false},
		{"no collection ID", "DeleteCollection", &DeleteCollectionInput{}, "", true},
		{"no such collection", "DeleteCollection", &DeleteCollectionInput{CollectionId: "nope"}, "", false},
		{"zero embedding", "IndexFaces", &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{{Vector: make([]float32, 4)}}}, "", true},
		{"faces of two dimensions", "IndexFaces", &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{{Vector: []float32{1, 0, 0, 0}}, {Vector: []float32{1, 0}}}}, "", true},
		{"image and faces", "IndexFaces", both, "", true},
		{"neither image nor faces", "IndexFaces", &IndexFacesInput{CollectionId: "c"}, "", true},
		{"not an embedding array", "IndexFaces", &IndexFacesInput{CollectionId: "c", Image: &Image{Bytes: []byte("jpeg")}}, "", true},
		{"MaxFaces 0", "IndexFaces", &IndexFacesInput{CollectionId: "c", Faces: both.Faces, MaxFaces: &zero}, "", true},
		{"empty faces beside an image", "IndexFaces", emptyFaces, "", false},
		{"collection's dimension", "IndexFaces", &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{{Vector: []float32{1, 0}}}}, "", false},
		{"no face IDs", "DeleteFaces", &DeleteFacesInput{CollectionId: "c"}, "", true},
		{"bad face ID", "DeleteFaces", &DeleteFacesInput{CollectionId: "c", FaceIds: []string{"f"}}, "", true},
		{"faces to delete", "DeleteFaces", &DeleteFacesInput{CollectionId: "c", FaceIds: []string{face}}, "", false},
		{"no user ID", "CreateUser", &CreateUserInput{CollectionId: "c"}, "", true},
		{"bad token", "CreateUser", &CreateUserInput{CollectionId: "c", UserId: "u", ClientRequestToken: "a b"}, "", true},
		{"new user", "CreateUser", &CreateUserInput{CollectionId: "c", UserId: "u"}, "", false},
		{"bad user ID", "DeleteUser", &DeleteUserInput{CollectionId: "c", UserId: "u/1"}, "", true},
		{"no such user", "DeleteUser", &DeleteUserInput{CollectionId: "c", UserId: "v"}, "", false},
		{"threshold over 100", "AssociateFaces", &AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{face}, UserMatchThreshold: &over}, "", true},
		{"too many faces", "AssociateFaces", &AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: many}, "", true},
		{"associate", "AssociateFaces", &AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{face}}, "", false},
		{"no face IDs to disassociate", "DisassociateFaces", &DisassociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{}}, "", true},
		{"disassociate", "DisassociateFaces", &DisassociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{face}}, "", false},
		{"not a mutation", "SearchUsers", nil, `{"CollectionId":"c"}`, true},
		{"field of the wrong type", "CreateUser", nil, `{"CollectionId":5}`, true},
		{"unknown field", "DeleteUser", nil, `{"CollectionId":"c","UserId":"u","Nope":1}`, true},
		{"data after the request", "DeleteCollection", nil, `{"CollectionId":"c"} {}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := []byte(tc.raw)
			env := &ApplyEnv{Time: applyT0}
			if tc.in != nil {
				var err error
				req, err = MutationRequest(tc.op, tc.in)
				require.NoError(t, err)
				if in, ok := tc.in.(*IndexFacesInput); ok {
					env.ImageID, env.FaceIDs = NewIndexFacesIDs(in)
				}
			}
			checkErr := CheckRequest(tc.op, req)
			if !tc.refused {
				require.NoError(t, checkErr)
				return
			}
			var got *Error
			require.True(t, errors.As(checkErr, &got), "CheckRequest refuses it with an *Error, not %v", checkErr)
			o, err := e.Apply(ctx, tc.op, req, env)
			require.NoError(t, err)
			require.NotNil(t, o.Err, "Apply refuses it")
			require.Equal(t, o.Err.Code, got.Code)
			require.Equal(t, o.Err.Message, got.Message)
		})
	}
}
