package engine_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

func TestSearchUsersRules(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	ids := indexFaces(t, e, "c",
		[]float32{1, 0, 0}, []float32{1, 0.1, 0}, // u1
		[]float32{1, 0.2, 0}, // u2
		[]float32{0, 1, 0},   // u3
		[]float32{0.9, 0.5, 0},
	)
	createUser(t, e, "c", "u1", ids[0], ids[1])
	createUser(t, e, "c", "u2", ids[2])
	createUser(t, e, "c", "u3", ids[3])
	createUser(t, e, "c", "empty")

	t.Run("FaceId query may match the face's own user", func(t *testing.T) {
		out, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: ids[0]})
		require.NoError(t, err)
		require.Equal(t, ids[0], out.SearchedFace.FaceId)
		require.Nil(t, out.SearchedUser)
		require.Equal(t, []string{"u1", "u2"}, matchedUsers(out.UserMatches))
	})
	t.Run("UserId query leaves the user out", func(t *testing.T) {
		out, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", UserId: "u1", UserMatchThreshold: ptr[float32](0)})
		require.NoError(t, err)
		require.Equal(t, "u1", out.SearchedUser.UserId)
		require.Equal(t, []string{"u2", "u3"}, matchedUsers(out.UserMatches), "users without faces never match")
	})
	t.Run("a user without faces finds nothing", func(t *testing.T) {
		out, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", UserId: "empty", UserMatchThreshold: ptr[float32](0)})
		require.NoError(t, err)
		require.Empty(t, out.UserMatches)
	})
	t.Run("MaxUsers", func(t *testing.T) {
		out, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: ids[4], MaxUsers: ptr[int32](1), UserMatchThreshold: ptr[float32](0)})
		require.NoError(t, err)
		require.Equal(t, []string{"u2"}, matchedUsers(out.UserMatches))
	})
	t.Run("unknown collection, face, user", func(t *testing.T) {
		for _, in := range []*engine.SearchUsersInput{
			{CollectionId: "nope", FaceId: ids[0]},
			{CollectionId: "c", FaceId: "11111111-2222-4333-8444-555555555555"},
			{CollectionId: "c", UserId: "ghost"},
		} {
			_, err := e.SearchUsers(ctx, in)
			requireCode(t, err, engine.ErrResourceNotFound)
		}
	})
	t.Run("SearchFaces leaves the searched face out", func(t *testing.T) {
		out, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: ids[0], FaceMatchThreshold: ptr[float32](0), MaxFaces: ptr[int32](4096)})
		require.NoError(t, err)
		require.Equal(t, ids[0], out.SearchedFaceId)
		require.Len(t, out.FaceMatches, 4)
		for _, m := range out.FaceMatches {
			require.NotEqual(t, ids[0], m.Face.FaceId)
		}
		require.Equal(t, ids[1], out.FaceMatches[0].Face.FaceId)
		require.Equal(t, "u1", out.FaceMatches[0].Face.UserId)
	})
}

func matchedUsers(ms []engine.UserMatch) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.User.UserId)
	}
	return out
}

// TestSearchDefaults: threshold 80 and MaxUsers/MaxFaces 10 when absent;
// equal similarities come back in primary-key order.
func TestSearchDefaults(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	var users []string
	for i := range 15 {
		id := fmt.Sprintf("same-%02d", 14-i) // created in reverse name order: key order is not name order
		users = append(users, id)
		createUser(t, e, "c", id, indexFaces(t, e, "c", []float32{1, 0})...)
	}
	// cosine 0.79 and 0.81 around the default threshold 80.
	createUser(t, e, "c", "below", indexFaces(t, e, "c", []float32{0.79, 0.6134})...)
	createUser(t, e, "c", "above", indexFaces(t, e, "c", []float32{0.81, 0.5864})...)

	out, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: []float32{1, 0}})
	require.NoError(t, err)
	require.Equal(t, users[:10], matchedUsers(out.UserMatches), "10 by default, ties by primary key")

	out, err = e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: []float32{1, 0}, MaxUsers: ptr[int32](500)})
	require.NoError(t, err)
	require.Equal(t, append(slices.Clone(users), "above"), matchedUsers(out.UserMatches), "threshold 80 by default")

	faces, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: []float32{1, 0}})
	require.NoError(t, err)
	require.Len(t, faces.FaceMatches, 10)
	all, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: []float32{1, 0}, MaxFaces: ptr[int32](100)})
	require.NoError(t, err)
	require.Len(t, all.FaceMatches, 16, "15 identical faces and the one at 81%")
}

// TestSimilarityNumbers: every Similarity a search returns is the curve of
// the exact cosine (float64, computed here) within 0.01, and the result set
// is exactly the users at or above the threshold, best first.
func TestSimilarityNumbers(t *testing.T) {
	for _, curveName := range []string{engine.SimilarityArcFace, engine.SimilarityCosine} {
		t.Run(curveName, func(t *testing.T) {
			curve := arcface
			if curveName == engine.SimilarityCosine {
				curve = func(c float64) float64 { return 100 * max(0, c) }
			}
			r := rand.New(rand.NewPCG(7, 8))
			e := openEngine(t, "")
			createCollection(t, e, "c", curveName)
			const dim, nUsers = 128, 300
			userVecs := map[string][]float32{}
			centres := make([][]float32, 20)
			for i := range centres {
				centres[i] = randomUnit(r, dim)
			}
			for u := range nUsers {
				centre := centres[u%len(centres)]
				var vecs [][]float32
				for range 1 + u%3 {
					vecs = append(vecs, near(r, centre, 0.3+0.6*r.Float64()))
				}
				id := fmt.Sprintf("user-%03d", u)
				_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: id})
				require.NoError(t, err)
				out, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: id, FaceIds: indexFaces(t, e, "c", vecs...), UserMatchThreshold: ptr[float32](0)})
				require.NoError(t, err)
				require.Len(t, out.AssociatedFaces, len(vecs))
				userVecs[id] = meanUnit(vecs...)
			}
			for q := range 20 {
				query := near(r, centres[q%len(centres)], 0.5)
				for _, threshold := range []float32{0, 30, 50, 80} {
					out, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: query, UserMatchThreshold: &threshold, MaxUsers: ptr[int32](500)})
					require.NoError(t, err)
					type want struct {
						id  string
						sim float64
					}
					var wants []want
					for id, v := range userVecs {
						if s := curve(cosine64(query, v)); s >= float64(threshold)+0.005 {
							wants = append(wants, want{id, s})
						} else if s > float64(threshold)-0.005 {
							t.Logf("skipping borderline query %d", q)
							continue
						}
					}
					slices.SortFunc(wants, func(a, b want) int { return cmp.Compare(b.sim, a.sim) })
					require.GreaterOrEqual(t, len(out.UserMatches), len(wants))
					got := map[string]float32{}
					for i, m := range out.UserMatches {
						got[m.User.UserId] = m.Similarity
						require.InDelta(t, curve(cosine64(query, userVecs[m.User.UserId])), m.Similarity, 0.01, "user %s", m.User.UserId)
						require.GreaterOrEqual(t, m.Similarity, threshold)
						if i > 0 {
							require.LessOrEqual(t, m.Similarity, out.UserMatches[i-1].Similarity, "best first")
						}
					}
					for _, w := range wants {
						require.Contains(t, got, w.id, "threshold %v", threshold)
					}
				}
			}
		})
	}
}

// TestSearchTiesAcrossLayouts: equal similarities come back in primary-key
// order for users and in face order (the order they were indexed) for
// faces, for every MaxUsers and MaxFaces, in every tier and above a
// threshold too, however the faces divide among users: users of one face,
// whose face order is here the reverse of their key order, a user of two
// faces, faces of no user.
func TestSearchTiesAcrossLayouts(t *testing.T) {
	for _, tier := range []string{"float32", "int8"} {
		t.Run(tier, func(t *testing.T) { testSearchTies(t, tier) })
	}
}

func testSearchTies(t *testing.T, tier string) {
	e := openEngine(t, "")
	_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c", Tier: tier})
	require.NoError(t, err)
	x := []float32{1, 0, 0}
	const solo = 12
	faces := indexFaces(t, e, "c", slices.Repeat([][]float32{x}, solo+4)...)
	var users []string // in primary-key order
	for i := range solo {
		users = append(users, fmt.Sprintf("solo-%02d", i))
		createUser(t, e, "c", users[i], faces[solo-1-i]) // the last face to the first user
	}
	users = append(users, "pair") // (1,0,0) twice averages to (1,0,0) exactly
	createUser(t, e, "c", "pair", faces[solo], faces[solo+1])
	// faces[solo+2:] stay of no user; one more user and face far off.
	createUser(t, e, "c", "far", indexFaces(t, e, "c", []float32{0, 1, 0})...)

	without := func(list []string, drop string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
	}
	faceIDs := func(ms []engine.FaceMatch) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Face.FaceId)
		}
		return out
	}
	for _, threshold := range []*float32{nil, ptr[float32](99.5)} {
		for k := 1; k <= len(faces)+1; k++ {
			name := fmt.Sprint(k)
			if threshold != nil {
				name += "/above 99.5"
			}
			t.Run(name, func(t *testing.T) {
				if k <= len(users)+1 {
					out, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: x, MaxUsers: ptr(int32(k)), UserMatchThreshold: threshold})
					require.NoError(t, err)
					require.Equal(t, users[:min(k, len(users))], matchedUsers(out.UserMatches), "SearchUsersByImage")
					byUser, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", UserId: users[3], MaxUsers: ptr(int32(k)), UserMatchThreshold: threshold})
					require.NoError(t, err)
					others := without(users, users[3])
					require.Equal(t, others[:min(k, len(others))], matchedUsers(byUser.UserMatches), "SearchUsers by user")
				}
				out, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: x, MaxFaces: ptr(int32(k)), FaceMatchThreshold: threshold})
				require.NoError(t, err)
				require.Equal(t, faces[:min(k, len(faces))], faceIDs(out.FaceMatches), "SearchFacesByImage")
				byFace, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: faces[solo-1], MaxFaces: ptr(int32(k)), FaceMatchThreshold: threshold})
				require.NoError(t, err)
				others := without(faces, faces[solo-1])
				require.Equal(t, others[:min(k, len(others))], faceIDs(byFace.FaceMatches), "SearchFaces by face")
			})
		}
	}
}
