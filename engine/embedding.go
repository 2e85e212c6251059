package engine

import (
	"math"
	"slices"
	"sync"

	"github.com/facesearch/facesearch/internal/vector"
)

// normalize validates an embedding and returns its L2-normalized copy.
func normalize(v []float32, what string) ([]float32, error) {
	n, err := checkEmbedding(v, what)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	normalizeInto(out, v, n)
	return out, nil
}

// normalizePooled is normalize into a vector from vecPool, which the
// caller puts back once nothing reads it.
func normalizePooled(v []float32, what string) (*[]float32, error) {
	n, err := checkEmbedding(v, what)
	if err != nil {
		return nil, err
	}
	p := vecPool.Get().(*[]float32)
	if cap(*p) < len(v) {
		*p = make([]float32, len(v))
	}
	*p = (*p)[:len(v)]
	normalizeInto(*p, v, n)
	return p, nil
}

// vecPool holds the normalized copies of IndexFaces' embeddings, which live
// only until the call has written and indexed them. A large heap goes long
// between garbage collections, and until the next one each new copy would
// take fresh pages, at a page fault each.
var vecPool = sync.Pool{New: func() any { return new([]float32) }}

// checkEmbedding validates an embedding and returns its L2 norm.
func checkEmbedding(v []float32, what string) (float64, error) {
	if len(v) == 0 || len(v) > maxDimension {
		return 0, invalid("%s has %d dimensions; a vector must have 1 to %d", what, len(v), maxDimension)
	}
	s := vector.SumSquares(v)
	// Squares of finite float32s are far from overflowing a float64, so
	// only a NaN or an infinity in v makes s other than finite.
	if math.IsNaN(s) || math.IsInf(s, 0) {
		i := slices.IndexFunc(v, func(x float32) bool { return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) })
		return 0, invalid("%s has a non-finite value at position %d", what, i)
	}
	if s == 0 {
		return 0, invalid("%s is the zero vector; it has no direction to compare", what)
	}
	return math.Sqrt(s), nil
}

// normalizeInto writes v, of norm n (see checkEmbedding), normalized into out.
func normalizeInto(out, v []float32, n float64) {
	if math.Abs(n-1) <= unitTolerance {
		// Already unit length (every stored vector is): keep its bits, so
		// exported vectors import unchanged.
		copy(out, v)
		return
	}
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
}

// unitTolerance is how far from 1 a vector's norm may be for the vector to
// count as normalized already: normalize's own output is within 2^-24 of
// unit length, so re-normalizing such a vector could only move its last bits.
const unitTolerance = 0x1p-23
