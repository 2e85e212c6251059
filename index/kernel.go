package index

import (
	"fmt"

	"github.com/viterin/vek"
	"github.com/viterin/vek/vek32"
)

// useSIMD is decided once: vek reports acceleration only on amd64 with AVX2
// and FMA. Elsewhere vek32.Dot would fall back to a single-accumulator loop,
// which is slower than dotGeneric. Tests flip it to cover both paths.
var useSIMD = vek.Info().Acceleration

// Dot returns the dot product of a and b, using vek32 SIMD when the CPU has
// it. It panics if the lengths differ, as that is a programming error.
// Dot of two empty slices is 0.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("index: Dot of lengths %d and %d", len(a), len(b)))
	}
	return kernel(len(a))(a, b)
}

// simdMin is the shortest vector vek32.Dot is used for: it vectorizes 32
// values at a time and finishes with a serial loop, so below 32 it is no
// faster than dotGeneric (BenchmarkDot).
const simdMin = 32

// kernel returns the dot product for vectors of length n, chosen once per
// scan rather than per row. Callers guarantee equal lengths.
func kernel(n int) func(a, b []float32) float32 {
	if useSIMD && n >= simdMin {
		return vek32.Dot
	}
	return dotGeneric
}

// dotGeneric is the pure-Go reference: the test oracle for the SIMD kernel,
// and the kernel itself where vek has no assembly. Four accumulators break
// the add dependency chain, which roughly triples throughput over a single
// one.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		x, y := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
