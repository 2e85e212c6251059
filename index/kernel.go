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
//
// Every score [Matrix.Search] reports is exactly Dot(q, row), whichever
// kernel computed it (one query at a time or several per pass).
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

// simd reports whether vectors of length n are scored with the SIMD
// kernels: the choice every kernel of a scan makes the same way, so that
// they all give the bits Dot gives.
func simd(n int) bool { return useSIMD && n >= simdMin }

// kernel returns the dot product for vectors of length n, chosen once per
// scan rather than per row. Callers guarantee equal lengths.
func kernel(n int) func(a, b []float32) float32 {
	if simd(n) {
		return vek32.Dot
	}
	return dotGeneric
}

// dotGeneric is the pure-Go reference: the test oracle for the SIMD kernel,
// and the kernel itself where vek has no assembly. Four accumulators break
// the add dependency chain, which roughly triples throughput over a single
// one. The explicit float32 conversions forbid fusing x*y+s into an FMA
// (Go may fuse on arm64, ppc64 and s390x), so the result has the same bits
// on every architecture and in every kernel built on it.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		x, y := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += float32(x[0] * y[0])
		s1 += float32(x[1] * y[1])
		s2 += float32(x[2] * y[2])
		s3 += float32(x[3] * y[3])
	}
	for ; i < len(a); i++ {
		s0 += float32(a[i] * b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// rowDots sets out[r] = Dot(q, row r) for the len(out) rows of len(q)
// values packed in rows. It is the single-query scan kernel: one call per
// run of rows, so there is no call per row. The assembly scores the
// run's two halves side by side (dotRows2): at 1M x 512, where memory was
// fast, a search read 1.03-1.05x the one-stream floor (floors of 46-47
// ms), against 1.12-1.15x with one stream (floors of 44-48 ms); where
// memory was slow both were at the floor.
func rowDots(q, rows, out []float32) {
	dim, n := len(q), len(out)
	if n == 0 {
		return
	}
	rows = rows[:n*dim]
	if simd(dim) && haveAsm {
		// The first and second halves of the rows side by side, the odd
		// one out alone.
		h := n / 2
		if h > 0 {
			dotRows2(&q[0], &rows[0], &rows[h*dim], dim, h, &out[0], &out[h])
		}
		if n%2 == 1 {
			dotRows1(&q[0], &rows[(n-1)*dim], dim, 1, &out[n-1])
		}
		return
	}
	dot := kernel(dim)
	for r := range out {
		out[r] = dot(q, rows[r*dim:(r+1)*dim:(r+1)*dim])
	}
}

// rowDots3 scores the len(out)/3 rows in rows against three queries of dim
// values packed in qs: out[3r+j] = Dot(query j, row r). Each row is read
// once for the three queries, and the assembly keeps twelve FMA chains in
// flight, so three queries cost little more than one in memory traffic and
// about three times less per query in compute than rowDots.
//
// Three is what sixteen AVX2 registers allow while keeping Dot's four
// accumulators per product. An AVX-512 variant (two rows x three queries
// in 24 of its 32 registers) was 1.35x faster on rows in L2 but 2x slower
// within real passes on the Zen 4 this was tuned on, so it was dropped.
func rowDots3(qs, rows, out []float32, dim int) {
	n := len(out) / 3
	if n == 0 {
		return
	}
	qs, rows = qs[:3*dim], rows[:n*dim]
	if simd(dim) && haveAsm {
		dotRows3(&qs[0], &rows[0], dim, n, &out[0])
		return
	}
	dot := kernel(dim)
	q0, q1, q2 := qs[:dim:dim], qs[dim:2*dim:2*dim], qs[2*dim:]
	for r := range n {
		row := rows[r*dim : (r+1)*dim : (r+1)*dim]
		out[3*r], out[3*r+1], out[3*r+2] = dot(q0, row), dot(q1, row), dot(q2, row)
	}
}

// rowDots3x2 is rowDots3 over two runs of rows, a and b, of len(outA)/3
// rows each: outA[3r+j] = Dot(query j, a row r), outB likewise for b. With
// AVX-512 the two runs are scored side by side, each query loaded once for
// both (dotRows3x2); otherwise it is rowDots3 on each.
func rowDots3x2(qs, a, b, outA, outB []float32, dim int) {
	n := len(outA) / 3
	if n == 0 {
		return
	}
	if simd(dim) && haveAsm && have512 {
		qs, a, b, outB = qs[:3*dim], a[:n*dim], b[:n*dim], outB[:3*n]
		dotRows3x2(&qs[0], &a[0], &b[0], dim, n, &outA[0], &outB[0])
		return
	}
	rowDots3(qs, a, outA, dim)
	rowDots3(qs, b, outB, dim)
}

// sumChunk returns the sum of x, reading its two halves side by side
// where the assembly kernels run (see [Matrix.Sum]), else with sumFloats.
func sumChunk(x []float32) float32 {
	h := len(x) / 2 &^ 31 // whole 32-value steps of the kernel
	if !useSIMD || !haveAsm || h == 0 {
		return sumFloats(x)
	}
	s := sumFloats2(&x[0], &x[h], h)
	if rest := x[2*h:]; len(rest) > 0 {
		s += sumFloats(rest)
	}
	return s
}

// sumFloats returns the sum of x: vek32.Sum where it has SIMD, eight
// accumulators otherwise. It is the least work per value a pass can do,
// which is what the bandwidth floor ([Matrix.Sum]) needs.
func sumFloats(x []float32) float32 {
	if useSIMD && len(x) > 0 {
		return vek32.Sum(x)
	}
	var s [8]float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		s[0] += v[0]
		s[1] += v[1]
		s[2] += v[2]
		s[3] += v[3]
		s[4] += v[4]
		s[5] += v[5]
		s[6] += v[6]
		s[7] += v[7]
	}
	for ; i < len(x); i++ {
		s[0] += x[i]
	}
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}
