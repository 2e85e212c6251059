package vector

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSumSquares: the four partial sums agree with a plain loop to within
// float64 rounding, at awkward lengths.
func TestSumSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8, 31, 67, 299, 512, 1536} {
		v := make([]float32, n)
		var want float64
		for i := range v {
			v[i] = rng.Float32()*2 - 1
			want += float64(v[i]) * float64(v[i])
		}
		require.InDelta(t, want, SumSquares(v), 1e-12*max(1, want), "n=%d", n)
	}
}

// TestMean: the result is the normalized float64 sum of the faces, the
// same bits whether sum is given or not; faces that cancel out give the
// first face.
func TestMean(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	unit := func(dim int) []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		n := math.Sqrt(SumSquares(v))
		for i := range v {
			v[i] = float32(float64(v[i]) / n)
		}
		return v
	}
	for _, tc := range []struct{ faces, dim int }{{1, 4}, {2, 3}, {3, 128}, {100, 512}} {
		faces := make([][]float32, tc.faces)
		for i := range faces {
			faces[i] = unit(tc.dim)
		}
		get := func(i int) []float32 { return faces[i] }
		got := make([]float32, tc.dim)
		Mean(got, nil, len(faces), get)
		again := make([]float32, tc.dim)
		Mean(again, make([]float64, tc.dim), len(faces), get)
		require.Equal(t, got, again, "%d faces of %d", tc.faces, tc.dim)
		sum := make([]float64, tc.dim)
		for _, f := range faces {
			for i, x := range f {
				sum[i] += float64(x)
			}
		}
		n := math.Sqrt(SumSquares(sum))
		for i := range sum {
			require.Equal(t, float32(sum[i]/n), got[i], "%d faces of %d, value %d", tc.faces, tc.dim, i)
		}
	}

	a := []float32{0.6, 0.8}
	b := []float32{-0.6, -0.8}
	got := make([]float32, 2)
	Mean(got, nil, 2, func(i int) []float32 { return [][]float32{a, b}[i] })
	require.Equal(t, a, got, "faces that cancel out keep the first one's direction")
}
