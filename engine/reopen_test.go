package engine_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestReopen: after Close and Open, listings page identically (old tokens
// still work) and searches return identical results, bit for bit.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(11, 12))
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	createCollection(t, e, "c", "")
	createCollection(t, e, "d", engine.SimilarityCosine)
	var faceIDs []string
	for u := range 40 {
		centre := randomUnit(r, 32)
		ids := indexFaces(t, e, "c", near(r, centre, 0.8), near(r, centre, 0.8), near(r, centre, 0.8))
		faceIDs = append(faceIDs, ids...)
		createUser(t, e, "c", fmt.Sprint("user-", u), ids[:1+u%3]...)
	}
	_, err = e.DeleteFaces(ctx, &engine.DeleteFacesInput{CollectionId: "c", FaceIds: faceIDs[2:3]})
	require.NoError(t, err)
	_, err = e.DisassociateFaces(ctx, &engine.DisassociateFacesInput{CollectionId: "c", UserId: "user-5", FaceIds: faceIDs[15:16]})
	require.NoError(t, err)

	queries := [][]float32{randomUnit(r, 32), randomUnit(r, 32)}
	type results struct {
		Pages    []*engine.ListUsersOutput
		Faces    state
		Users    []*engine.SearchUsersOutput
		ByImage  []*engine.SearchUsersByImageOutput
		FaceHits []*engine.SearchFacesOutput
		Describe *engine.DescribeCollectionOutput
		Colls    *engine.ListCollectionsOutput
	}
	collect := func(e *engine.Engine) results {
		var res results
		in := &engine.ListUsersInput{CollectionId: "c", MaxResults: ptr[int32](7)}
		for {
			out, err := e.ListUsers(ctx, in)
			require.NoError(t, err)
			res.Pages = append(res.Pages, out)
			if out.NextToken == "" {
				break
			}
			in.NextToken = out.NextToken
		}
		res.Faces = snapshot(t, e, "c")
		for _, f := range faceIDs[:20] {
			if f == faceIDs[2] {
				continue
			}
			out, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: f, UserMatchThreshold: ptr[float32](0), MaxUsers: ptr[int32](20)})
			require.NoError(t, err)
			res.Users = append(res.Users, out)
			fo, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: f, FaceMatchThreshold: ptr[float32](0)})
			require.NoError(t, err)
			res.FaceHits = append(res.FaceHits, fo)
		}
		for _, q := range queries {
			out, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: q, UserMatchThreshold: ptr[float32](0), MaxUsers: ptr[int32](500)})
			require.NoError(t, err)
			res.ByImage = append(res.ByImage, out)
		}
		res.Describe, err = e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "c"})
		require.NoError(t, err)
		res.Colls, err = e.ListCollections(ctx, nil)
		require.NoError(t, err)
		return res
	}
	before := collect(e)
	require.NoError(t, e.Close())
	_, err = e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c"})
	require.ErrorIs(t, err, engine.ErrClosed)

	e2, err := engine.Open(dir, nil)
	require.NoError(t, err)
	defer e2.Close()
	require.Equal(t, before, collect(e2))

	// The user counter carries on after the reopen: a new user sorts last.
	createUser(t, e2, "c", "newest")
	users := snapshot(t, e2, "c").Users
	require.Equal(t, "newest", users[len(users)-1].UserId)
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openEngine(t, dir)
	_, err := engine.Open(dir, nil)
	require.ErrorIs(t, err, engine.ErrLocked)
}
