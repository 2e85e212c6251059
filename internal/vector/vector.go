// Package vector holds the vector arithmetic that the engine's rules are
// made of, so that the engine, the CLI's evaluation and the benchmarks
// compute them alike, to the bit.
package vector

import "math"

// MaxDim is the longest embedding a collection holds.
const MaxDim = 4096

// SumSquares is the sum of v's squares, in float64 (the check for unit
// length is finer than float32 sums are). Four partial sums break the add
// chain; their order is fixed, and each product is rounded before it is
// added (the conversions forbid the compiler a fused multiply-add, which
// arm64 and amd64 v3 builds would otherwise use), so the bits are the same
// on every CPU.
func SumSquares[T float32 | float64](v []T) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(v); i += 4 {
		x0, x1, x2, x3 := float64(v[i]), float64(v[i+1]), float64(v[i+2]), float64(v[i+3])
		s0 += float64(x0 * x0)
		s1 += float64(x1 * x1)
		s2 += float64(x2 * x2)
		s3 += float64(x3 * x3)
	}
	for ; i < len(v); i++ {
		x := float64(v[i])
		s0 += float64(x * x)
	}
	return (s0 + s1) + (s2 + s3)
}

// Dot is the dot product of a and b (b at least as long as a), summed in
// float64 in a fixed order with every product rounded before it is added,
// so that it is the same bits on every CPU, whichever kernels the search
// scan uses: a rule's outcome (an association's match confidence) must not
// depend on the machine that computes it.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float64(float64(a[i]) * float64(b[i]))
		s1 += float64(float64(a[i+1]) * float64(b[i+1]))
		s2 += float64(float64(a[i+2]) * float64(b[i+2]))
		s3 += float64(float64(a[i+3]) * float64(b[i+3]))
	}
	for ; i < len(a); i++ {
		s0 += float64(float64(a[i]) * float64(b[i]))
	}
	return float32((s0 + s1) + (s2 + s3))
}

// Mean writes into dst the user vector of n faces: the L2-normalized mean
// of their (normalized) vectors face(0) to face(n-1), each of len(dst)
// values or more, summed in that order in float64 so that it is the same
// bits on every rebuild. Faces that cancel out exactly leave dst face(0),
// so that the user still has a direction. sum is scratch of len(dst)
// float64s, or nil to allocate it. n must be at least 1.
func Mean(dst []float32, sum []float64, n int, face func(i int) []float32) {
	if sum == nil {
		sum = make([]float64, len(dst))
	}
	sum = sum[:len(dst)]
	clear(sum)
	for j := range n {
		v := face(j)[:len(sum)]
		for i, x := range v {
			sum[i] += float64(x)
		}
	}
	norm := math.Sqrt(SumSquares(sum))
	if norm == 0 {
		copy(dst, face(0))
		return
	}
	for i, x := range sum {
		dst[i] = float32(x / norm)
	}
}
