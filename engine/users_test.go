package engine_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

func userStatus(t *testing.T, e *engine.Engine, coll, id string) string {
	t.Helper()
	for u, err := range e.AllUsers(ctx, coll) {
		require.NoError(t, err)
		if u.UserId == id {
			return u.UserStatus
		}
	}
	t.Fatalf("user %s not listed", id)
	return ""
}

func TestUserStatus(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	faces := indexFaces(t, e, "c", []float32{1, 0}, []float32{1, 0.1})
	createUser(t, e, "c", "u")
	require.Equal(t, engine.UserStatusCreated, userStatus(t, e, "c", "u"), "a user without faces")

	a, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: faces})
	require.NoError(t, err)
	require.Equal(t, engine.UserStatusActive, a.UserStatus)
	require.Equal(t, engine.UserStatusActive, userStatus(t, e, "c", "u"))

	d, err := e.DisassociateFaces(ctx, &engine.DisassociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: faces})
	require.NoError(t, err)
	require.Len(t, d.DisassociatedFaces, 2)
	require.Equal(t, engine.UserStatusCreated, d.UserStatus)
	require.Equal(t, engine.UserStatusCreated, userStatus(t, e, "c", "u"))
}

func TestCreateUserConflict(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	createUser(t, e, "c", "u")
	_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "u"})
	requireCode(t, err, engine.ErrConflict)
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "nope", UserId: "u"})
	requireCode(t, err, engine.ErrResourceNotFound)
}

// TestAssociateFaces covers each UnsuccessfulFaceAssociation reason, the
// silent skip, the threshold default (75) and the rule that the first faces
// of a user are never refused for low confidence.
func TestAssociateFaces(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	e := openEngine(t, "")
	createCollection(t, e, "c", "") // arcface curve
	centre := randomUnit(r, 64)
	// arcface: 77% is cosine 0.367, 74% is cosine 0.354.
	ids := indexFaces(t, e, "c",
		centre,
		near(r, centre, 0.3670), // 77%
		near(r, centre, 0.3540), // 74%
		near(r, centre, 0.3620), // 75.8%
		randomUnit(r, 64),       // another user's
		near(r, centre, -0.5),   // opposite: fine as a first face
	)
	own, at77, at74, at76, other, opposite := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
	createUser(t, e, "c", "other", other)
	createUser(t, e, "c", "fresh")
	createUser(t, e, "c", "u", own)
	const missing = "11111111-2222-4333-8444-555555555555"

	out, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{
		CollectionId: "c", UserId: "u",
		FaceIds: []string{own, at77, at74, other, missing, at77},
	})
	require.NoError(t, err)
	require.Equal(t, []engine.AssociatedFace{{FaceId: at77}}, out.AssociatedFaces, "already-owned face skipped, duplicate id counted once")
	require.Equal(t, engine.UserStatusActive, out.UserStatus)
	byFace := map[string]engine.UnsuccessfulFaceAssociation{}
	for _, u := range out.UnsuccessfulFaceAssociations {
		byFace[u.FaceId] = u
	}
	require.Len(t, byFace, 3)
	require.Equal(t, []string{engine.ReasonFaceNotFound}, byFace[missing].Reasons)
	require.Equal(t, []string{engine.ReasonAssociatedToADifferentUser}, byFace[other].Reasons)
	require.Equal(t, "other", byFace[other].UserId)
	low := byFace[at74]
	require.Equal(t, []string{engine.ReasonLowMatchConfidence}, low.Reasons)
	require.NotNil(t, low.Confidence)
	require.InDelta(t, 74, *low.Confidence, 0.05, "confidence is the face's similarity to the user vector before the call")

	// The threshold is compared with the user vector as it stood before the
	// call: at76 passes 75 against {own} but the explicit threshold 76 refuses it.
	out, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{at76}, UserMatchThreshold: ptr[float32](76)})
	require.NoError(t, err)
	require.Empty(t, out.AssociatedFaces)
	require.Equal(t, engine.ReasonLowMatchConfidence, out.UnsuccessfulFaceAssociations[0].Reasons[0])

	// A user without faces accepts anything: there is nothing to compare with.
	out, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "fresh", FaceIds: []string{opposite}, UserMatchThreshold: ptr[float32](100)})
	require.NoError(t, err)
	require.Len(t, out.AssociatedFaces, 1)

	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "ghost", FaceIds: []string{own}})
	requireCode(t, err, engine.ErrResourceNotFound)
}

func TestAssociateQuota(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	centre := randomUnit(r, 16)
	var vecs [][]float32
	for range 102 {
		vecs = append(vecs, near(r, centre, 0.99))
	}
	var ids []string
	for i := 0; i < len(vecs); i += 100 {
		ids = append(ids, indexFaces(t, e, "c", vecs[i:min(i+100, len(vecs))]...)...)
	}
	createUser(t, e, "c", "u", ids[:99]...)
	before := snapshot(t, e, "c")

	_, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: ids[99:101]})
	requireCode(t, err, engine.ErrServiceQuotaExceeded)
	require.Equal(t, before, snapshot(t, e, "c"), "a refused call changes nothing")

	out, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: ids[99:100]})
	require.NoError(t, err)
	require.Len(t, out.AssociatedFaces, 1, "the 100th face fits")
	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: ids[101:102]})
	requireCode(t, err, engine.ErrServiceQuotaExceeded)
	// Faces the user already has do not count against the limit.
	out, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: ids[:5]})
	require.NoError(t, err)
	require.Empty(t, out.AssociatedFaces)
	require.Empty(t, out.UnsuccessfulFaceAssociations)
}

func TestIndexFacesMaxFaces(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	var faces []engine.FaceEmbedding
	for i := range 105 {
		faces = append(faces, engine.FaceEmbedding{Vector: []float32{1, float32(i)}})
	}
	tests := []struct {
		name              string
		maxFaces          *int32
		indexed, unindexd int
	}{
		{"default caps at 100 per call", nil, 100, 5},
		{"MaxFaces 3", ptr[int32](3), 3, 102},
		{"MaxFaces above 100 still caps", ptr[int32](1000), 100, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", MaxFaces: tt.maxFaces, Faces: faces})
			require.NoError(t, err)
			require.Len(t, out.FaceRecords, tt.indexed)
			require.Len(t, out.UnindexedFaces, tt.unindexd)
			require.Equal(t, []string{engine.ReasonExceedsMaxFaces}, out.UnindexedFaces[0].Reasons)
		})
	}
}

// TestIndexFacesVectorsOwnTheirRows: IndexFaces normalizes into vectors it
// reuses from call to call; each face keeps its own, in the store and in
// the matrix, after later calls, some running at the same time, have
// reused them.
func TestIndexFacesVectorsOwnTheirRows(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	r := rand.New(rand.NewPCG(3, 4))
	const callers = 4
	calls := make([][][][]float32, callers) // per caller, per call, its vectors
	for c := range calls {
		for _, perCall := range []int{1, 1, 1, 3, 1, 2} {
			call := make([][]float32, perCall)
			for i := range call {
				call[i] = randomUnit(r, 16)
				for j := range call[i] {
					call[i][j] *= 3 // not unit length: IndexFaces writes the normalized copy
				}
			}
			calls[c] = append(calls[c], call)
		}
	}
	ids := make([][]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for c := range calls {
		wg.Go(func() {
			for _, call := range calls[c] {
				in := &engine.IndexFacesInput{CollectionId: "c"}
				for _, v := range call {
					in.Faces = append(in.Faces, engine.FaceEmbedding{Vector: v})
				}
				out, err := e.IndexFaces(ctx, in)
				if err != nil {
					errs[c] = err
					return
				}
				for _, f := range out.FaceRecords {
					ids[c] = append(ids[c], f.Face.FaceId)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	stored := map[string][]float32{}
	for rec, err := range e.Export(ctx, "c") {
		require.NoError(t, err)
		if rec.FaceId != "" {
			stored[rec.FaceId] = rec.Vector
		}
	}
	for c := range calls {
		var vecs [][]float32
		for _, call := range calls[c] {
			vecs = append(vecs, call...)
		}
		require.Len(t, ids[c], len(vecs))
		for i, id := range ids[c] {
			require.InDeltaSlice(t, meanUnit(vecs[i]), stored[id], 1e-6, "caller %d's face %d's stored vector", c, i)
			out, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: vecs[i], MaxFaces: ptr[int32](1)})
			require.NoError(t, err)
			require.Len(t, out.FaceMatches, 1)
			require.Equal(t, id, out.FaceMatches[0].Face.FaceId, "caller %d's face %d's row", c, i)
			require.InDelta(t, 100, out.FaceMatches[0].Similarity, 1e-3)
		}
	}
}

func TestDisassociateFaces(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	ids := indexFaces(t, e, "c", []float32{1, 0, 0}, []float32{0, 1, 0}, []float32{0, 0, 1}, []float32{1, 1, 0})
	createUser(t, e, "c", "u", ids[0], ids[1])
	createUser(t, e, "c", "v", ids[2])
	const missing = "11111111-2222-4333-8444-555555555555"
	out, err := e.DisassociateFaces(ctx, &engine.DisassociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{ids[0], ids[2], ids[3], missing}})
	require.NoError(t, err)
	require.Equal(t, []engine.DisassociatedFace{{FaceId: ids[0]}}, out.DisassociatedFaces)
	require.Equal(t, engine.UserStatusActive, out.UserStatus)
	require.ElementsMatch(t, []engine.UnsuccessfulFaceDisassociation{
		{FaceId: ids[2], UserId: "v", Reasons: []string{engine.ReasonAssociatedToADifferentUser}},
		{FaceId: missing, Reasons: []string{engine.ReasonFaceNotFound}},
	}, out.UnsuccessfulFaceDisassociations, "a face of no user is skipped silently")

	// The user vector follows: u is now exactly its remaining face.
	s, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: []float32{0, 1, 0}, UserMatchThreshold: ptr[float32](99.9)})
	require.NoError(t, err)
	require.Len(t, s.UserMatches, 1)
	require.Equal(t, "u", s.UserMatches[0].User.UserId)
	require.InDelta(t, 100, s.UserMatches[0].Similarity, 1e-4)

	_, err = e.DisassociateFaces(ctx, &engine.DisassociateFacesInput{CollectionId: "c", UserId: "ghost", FaceIds: ids[:1]})
	requireCode(t, err, engine.ErrResourceNotFound)
}

func TestDeleteUserKeepsFaces(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	ids := indexFaces(t, e, "c", []float32{1, 0}, []float32{0, 1})
	createUser(t, e, "c", "u", ids...)
	_, err := e.DeleteUser(ctx, &engine.DeleteUserInput{CollectionId: "c", UserId: "u"})
	require.NoError(t, err)
	s := snapshot(t, e, "c")
	require.Empty(t, s.Users)
	require.Len(t, s.Faces, 2)
	for _, f := range s.Faces {
		require.Empty(t, f.UserId, "faces of a deleted user are disassociated, not deleted")
	}
	res, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: ids[0], UserMatchThreshold: ptr[float32](0)})
	require.NoError(t, err)
	require.Empty(t, res.UserMatches)
	_, err = e.DeleteUser(ctx, &engine.DeleteUserInput{CollectionId: "c", UserId: "u"})
	requireCode(t, err, engine.ErrResourceNotFound)
	// The faces are free for another user.
	createUser(t, e, "c", "v", ids...)
}

func TestDeleteFaces(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	ids := indexFaces(t, e, "c", []float32{1, 0}, []float32{0, 1}, []float32{1, 1})
	createUser(t, e, "c", "u", ids[0])
	const missing = "11111111-2222-4333-8444-555555555555"
	out, err := e.DeleteFaces(ctx, &engine.DeleteFacesInput{CollectionId: "c", FaceIds: []string{ids[0], ids[1], missing, ids[1]}})
	require.NoError(t, err)
	require.Equal(t, []string{ids[1]}, out.DeletedFaces)
	require.ElementsMatch(t, []engine.UnsuccessfulFaceDeletion{
		{FaceId: ids[0], UserId: "u", Reasons: []string{engine.ReasonAssociatedToAnExistingUser}},
		{FaceId: missing, Reasons: []string{engine.ReasonFaceNotFound}},
	}, out.UnsuccessfulFaceDeletions)
	d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	require.EqualValues(t, 2, d.FaceCount)
	require.EqualValues(t, 1, d.UserCount)
	_, err = e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: ids[1]})
	requireCode(t, err, engine.ErrResourceNotFound)
}

// TestIdempotency: the same token with the same parameters returns the first
// response again, even when the state has moved on; with other parameters it
// is IdempotentParameterMismatchException; tokens expire after 24 hours.
func TestIdempotency(t *testing.T) {
	e := openEngine(t, "")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	engine.SetClock(e, func() time.Time { return now })
	createCollection(t, e, "c", engine.SimilarityCosine)
	ids := indexFaces(t, e, "c", []float32{1, 0}, []float32{1, 0.05})

	_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "u", ClientRequestToken: "create-1"})
	require.NoError(t, err)
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "u", ClientRequestToken: "create-1"})
	require.NoError(t, err, "a replay is not a conflict")
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "other", ClientRequestToken: "create-1"})
	requireCode(t, err, engine.ErrIdempotentParameterMismatch)

	assoc := &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: ids, ClientRequestToken: "assoc-1"}
	first, err := e.AssociateFaces(ctx, assoc)
	require.NoError(t, err)
	require.Len(t, first.AssociatedFaces, 2)
	again, err := e.AssociateFaces(ctx, assoc)
	require.NoError(t, err)
	require.Equal(t, first, again, "the first response, not a fresh one (which would skip both faces)")
	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: ids[:1], ClientRequestToken: "assoc-1"})
	requireCode(t, err, engine.ErrIdempotentParameterMismatch)

	dis := &engine.DisassociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: ids[:1], ClientRequestToken: "dis-1"}
	d1, err := e.DisassociateFaces(ctx, dis)
	require.NoError(t, err)
	d2, err := e.DisassociateFaces(ctx, dis)
	require.NoError(t, err)
	require.Equal(t, d1, d2)

	del := &engine.DeleteUserInput{CollectionId: "c", UserId: "u", ClientRequestToken: "del-1"}
	_, err = e.DeleteUser(ctx, del)
	require.NoError(t, err)
	_, err = e.DeleteUser(ctx, del)
	require.NoError(t, err, "a replayed delete succeeds although the user is gone")

	// Tokens are per operation: the same string on another operation is new.
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "w", ClientRequestToken: "del-1"})
	require.NoError(t, err)

	now = now.Add(24*time.Hour + time.Second)
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "u", ClientRequestToken: "create-1"})
	require.NoError(t, err, "after 24 hours the token is forgotten; u is gone, so this creates it anew")
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "w", ClientRequestToken: "create-2"})
	requireCode(t, err, engine.ErrConflict)
}

func TestCollections(t *testing.T) {
	e := openEngine(t, "")
	out, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c", Tags: map[string]string{engine.TagDimension: "3", engine.TagSimilarity: "cosine", "team": "id"}})
	require.NoError(t, err)
	require.Equal(t, int32(200), out.StatusCode)
	require.Contains(t, out.CollectionArn, "collection/c")
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
	requireCode(t, err, engine.ErrResourceAlreadyExists)

	d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	require.Equal(t, 3, d.Dimension, "dimension from the reserved tag")
	require.Equal(t, engine.SimilarityCosine, d.Similarity)
	_, err = e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: []float32{1, 2}}}})
	requireCode(t, err, engine.ErrInvalidParameter)

	// Without a dimension, the first face fixes it.
	createCollection(t, e, "free", "")
	indexFaces(t, e, "free", []float32{1, 2, 3, 4, 5})
	d, err = e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "free"})
	require.NoError(t, err)
	require.Equal(t, 5, d.Dimension)
	require.Equal(t, engine.SimilarityArcFace, d.Similarity, "the default curve")

	_, err = e.DeleteCollection(ctx, &engine.DeleteCollectionInput{CollectionId: "free"})
	require.NoError(t, err)
	_, err = e.DeleteCollection(ctx, &engine.DeleteCollectionInput{CollectionId: "free"})
	requireCode(t, err, engine.ErrResourceNotFound)
	// Deleting removed everything: a new collection of that name is empty.
	createCollection(t, e, "free", "")
	s := snapshot(t, e, "free")
	require.Empty(t, s.Faces)
	require.Empty(t, s.Users)
	indexFaces(t, e, "free", []float32{1, 2}) // and takes a new dimension
}
