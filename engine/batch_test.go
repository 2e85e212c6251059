package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// nearBy is near, but for dimension 1, where no other direction exists.
func nearBy(rng *rand.Rand, c []float32, cos float64) []float32 {
	if len(c) == 1 {
		return c
	}
	return near(rng, c, cos)
}

// loadTies imports into coll, of the given tier, users of one face and of
// several, faces of no user, and exact copies of vectors under other
// users, so that searches meet ties within and across the engine's
// matrices. It returns the stored vectors.
func loadTies(t *testing.T, e *engine.Engine, coll, tier string, rng *rand.Rand, dim int) [][]float32 {
	t.Helper()
	_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: coll, Tier: tier})
	require.NoError(t, err)
	im, err := e.NewImporter(ctx, coll, nil)
	require.NoError(t, err)
	var stored [][]float32
	add := func(vec []float32, user string) {
		require.NoError(t, im.Add(engine.ImportRecord{Vector: vec, UserId: user}))
		stored = append(stored, vec)
	}
	for u := range 40 {
		c := randomUnit(rng, dim)
		user := fmt.Sprintf("u%03d", u)
		switch u % 4 {
		case 0: // one face, and a twin user with the very same face
			add(c, user)
			add(c, user+"-twin")
		case 1: // several faces
			for range 3 {
				add(nearBy(rng, c, 0.8), user)
			}
		case 2: // a face of no user, beside the user's own
			add(c, "")
			add(c, user)
		default:
			add(c, user)
		}
	}
	require.NoError(t, im.Close())
	return stored
}

// TestSearchBatchMatchesSingle: every answer of SearchUsersBatch and
// SearchFacesBatch is exactly what SearchUsersByImage and
// SearchFacesByImage answer for its vector alone (matches, similarities,
// order, ties), in each tier, at awkward dimensions and batch sizes.
func TestSearchBatchMatchesSingle(t *testing.T) {
	dims := []int{1, 2, 3, 4, 5, 6, 7, 8, 31, 67, 512, 4096}
	sizes := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 255, 256, 257}
	e := openEngine(t, "")
	for _, tier := range []string{"float32", "int8", "float16"} {
		for _, dim := range dims {
			t.Run(fmt.Sprintf("%s/dim=%d", tier, dim), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(24, uint64(dim)))
				coll := fmt.Sprintf("%s-%d", tier, dim)
				stored := loadTies(t, e, coll, tier, rng, dim)
				probes := make([][]float32, 257)
				for i := range probes {
					switch i % 3 {
					case 0:
						probes[i] = stored[rng.IntN(len(stored))]
					case 1: // not of unit length: normalized as a single search does
						probes[i] = randomUnit(rng, dim)
						for j := range probes[i] {
							probes[i][j] *= 3
						}
					default:
						probes[i] = nearBy(rng, stored[rng.IntN(len(stored))], 0.6)
					}
				}
				for _, lim := range []struct {
					threshold float32
					max       int32
				}{{0, 5}, {50, 500}} {
					wantUsers := make([]engine.SearchUsersByImageOutput, len(probes))
					wantFaces := make([]engine.SearchFacesByImageOutput, len(probes))
					for i, p := range probes {
						u, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: coll, Vector: p, UserMatchThreshold: &lim.threshold, MaxUsers: &lim.max})
						require.NoError(t, err)
						wantUsers[i] = *u
						f, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: coll, Vector: p, FaceMatchThreshold: &lim.threshold, MaxFaces: &lim.max})
						require.NoError(t, err)
						wantFaces[i] = *f
					}
					for _, n := range sizes {
						users, err := e.SearchUsersBatch(ctx, &engine.SearchUsersBatchInput{CollectionId: coll, Vectors: probes[:n], UserMatchThreshold: &lim.threshold, MaxUsers: &lim.max})
						require.NoError(t, err)
						require.Equal(t, wantUsers[:n], users.Results, "users, batch of %d, threshold %v, max %d", n, lim.threshold, lim.max)
						faces, err := e.SearchFacesBatch(ctx, &engine.SearchFacesBatchInput{CollectionId: coll, Vectors: probes[:n], FaceMatchThreshold: &lim.threshold, MaxFaces: &lim.max})
						require.NoError(t, err)
						require.Equal(t, wantFaces[:n], faces.Results, "faces, batch of %d, threshold %v, max %d", n, lim.threshold, lim.max)
					}
				}
			})
		}
	}
}

// TestSearchBatchErrors: a batch is refused whole, with Rekognition's
// codes, for what a single search refuses.
func TestSearchBatchErrors(t *testing.T) {
	e := openEngine(t, "")
	rng := rand.New(rand.NewPCG(24, 0))
	loadTies(t, e, "c", "float32", rng, 4)
	good := randomUnit(rng, 4)
	big := int32(501)
	for name, tt := range map[string]struct {
		in   engine.SearchUsersBatchInput
		want error
	}{
		"zero vector":     {engine.SearchUsersBatchInput{CollectionId: "c", Vectors: [][]float32{good, make([]float32, 4)}}, engine.ErrInvalidParameter},
		"wrong dimension": {engine.SearchUsersBatchInput{CollectionId: "c", Vectors: [][]float32{good, randomUnit(rng, 5)}}, engine.ErrInvalidParameter},
		"max users":       {engine.SearchUsersBatchInput{CollectionId: "c", Vectors: [][]float32{good}, MaxUsers: &big}, engine.ErrInvalidParameter},
		"no collection":   {engine.SearchUsersBatchInput{CollectionId: "nope", Vectors: [][]float32{good}}, engine.ErrResourceNotFound},
		"bad collection":  {engine.SearchUsersBatchInput{CollectionId: "a/b", Vectors: [][]float32{good}}, engine.ErrInvalidParameter},
	} {
		_, err := e.SearchUsersBatch(ctx, &tt.in)
		requireCode(t, err, tt.want)
		_, err = e.SearchFacesBatch(ctx, &engine.SearchFacesBatchInput{CollectionId: tt.in.CollectionId, Vectors: tt.in.Vectors, MaxFaces: tt.in.MaxUsers})
		if name == "max users" {
			require.NoError(t, err, "MaxFaces may be up to 4096")
			continue
		}
		requireCode(t, err, tt.want)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := e.SearchUsersBatch(cancelled, &engine.SearchUsersBatchInput{CollectionId: "c", Vectors: [][]float32{good}})
	require.ErrorIs(t, err, context.Canceled)
}

// TestSearchBatchNamesABadVectorPastTheFirstGroup: a batch longer than one
// group with a bad vector in its second is refused whole, with the
// engine's error naming that vector.
func TestSearchBatchNamesABadVectorPastTheFirstGroup(t *testing.T) {
	e := openEngine(t, "")
	rng := rand.New(rand.NewPCG(24, 1))
	loadTies(t, e, "c", "float32", rng, 4)
	bad := engine.BatchGroup + 1
	for _, tt := range []struct {
		name string
		vec  []float32
	}{
		{"zero vector", make([]float32, 4)},
		{"wrong dimension", randomUnit(rng, 5)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vs := make([][]float32, 2*engine.BatchGroup+3)
			for i := range vs {
				vs[i] = randomUnit(rng, 4)
			}
			vs[bad] = tt.vec
			out, err := e.SearchUsersBatch(ctx, &engine.SearchUsersBatchInput{CollectionId: "c", Vectors: vs})
			require.Nil(t, out)
			var ee *engine.Error
			require.True(t, errors.As(err, &ee), "an *engine.Error: %v", err)
			require.Equal(t, engine.CodeInvalidParameter, ee.Code)
			// The Error has no field for the parameter: its message names it.
			require.Contains(t, ee.Message, fmt.Sprintf("Vectors[%d] ", bad))
		})
	}
}
