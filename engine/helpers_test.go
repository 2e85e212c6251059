package engine_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

var ctx = context.Background()

func openEngine(t testing.TB, dir string) *engine.Engine {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

func createCollection(t testing.TB, e *engine.Engine, id string, similarity string) {
	t.Helper()
	_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: id, Similarity: similarity})
	require.NoError(t, err)
}

func randomUnit(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var n float64
	for i := range v {
		x := r.NormFloat64()
		v[i] = float32(x)
		n += x * x
	}
	n = math.Sqrt(n)
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
	return v
}

// near returns a unit vector whose cosine with unit vector c is about cos.
func near(r *rand.Rand, c []float32, cos float64) []float32 {
	noise := randomUnit(r, len(c))
	var d float64
	for i := range c {
		d += float64(noise[i]) * float64(c[i])
	}
	out := make([]float32, len(c))
	var n float64
	for i := range c {
		x := float64(noise[i]) - d*float64(c[i]) // orthogonal to c
		out[i] = float32(x)
		n += x * x
	}
	s := math.Sqrt(1 - cos*cos)
	for i := range c {
		out[i] = float32(cos*float64(c[i]) + s*float64(out[i])/math.Sqrt(n))
	}
	return out
}

func indexFaces(t testing.TB, e *engine.Engine, coll string, vecs ...[]float32) []string {
	t.Helper()
	in := &engine.IndexFacesInput{CollectionId: coll}
	for _, v := range vecs {
		in.Faces = append(in.Faces, engine.FaceEmbedding{Vector: v})
	}
	out, err := e.IndexFaces(ctx, in)
	require.NoError(t, err)
	require.Len(t, out.FaceRecords, len(vecs))
	ids := make([]string, len(out.FaceRecords))
	for i, r := range out.FaceRecords {
		ids[i] = r.Face.FaceId
	}
	return ids
}

func createUser(t testing.TB, e *engine.Engine, coll, user string, faceIDs ...string) {
	t.Helper()
	_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: coll, UserId: user})
	require.NoError(t, err)
	if len(faceIDs) > 0 {
		out, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: coll, UserId: user, FaceIds: faceIDs, UserMatchThreshold: ptr[float32](0)})
		require.NoError(t, err)
		require.Len(t, out.AssociatedFaces, len(faceIDs), "%+v", out.UnsuccessfulFaceAssociations)
	}
}

func ptr[T any](v T) *T { return &v }

// cosine64 is the exact cosine of two vectors, computed independently of the
// engine in float64.
func cosine64(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

// meanUnit is the normalized mean of normalized vectors, in float64.
func meanUnit(vecs ...[]float32) []float32 {
	sum := make([]float64, len(vecs[0]))
	for _, v := range vecs {
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		n = math.Sqrt(n)
		for i, x := range v {
			sum[i] += float64(x) / n
		}
	}
	var n float64
	for _, x := range sum {
		n += x * x
	}
	out := make([]float32, len(sum))
	for i, x := range sum {
		out[i] = float32(x / math.Sqrt(n))
	}
	return out
}

// arcface is the contract's default curve, written out independently.
func arcface(c float64) float64 {
	pts := [][2]float64{{-1, 0}, {0, 0}, {0.10, 10}, {0.25, 50}, {0.38, 80}, {0.60, 99}, {1, 100}}
	if c <= -1 {
		return 0
	}
	for i := 1; i < len(pts); i++ {
		if c <= pts[i][0] {
			x0, y0, x1, y1 := pts[i-1][0], pts[i-1][1], pts[i][0], pts[i][1]
			return y0 + (c-x0)*(y1-y0)/(x1-x0)
		}
	}
	return 100
}

func requireCode(t testing.TB, err error, sentinel error) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, sentinel, "got %v", err)
}

// state is everything observable about a collection through listings.
type state struct {
	Faces []engine.Face
	Users []engine.User
}

func snapshot(t testing.TB, e *engine.Engine, coll string) state {
	t.Helper()
	var s state
	in := &engine.ListFacesInput{CollectionId: coll}
	for {
		out, err := e.ListFaces(ctx, in)
		require.NoError(t, err)
		s.Faces = append(s.Faces, out.Faces...)
		if out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	for u, err := range e.AllUsers(ctx, coll) {
		require.NoError(t, err)
		s.Users = append(s.Users, u)
	}
	return s
}
