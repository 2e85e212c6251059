//go:build !purego

package index

import (
	"math"

	"golang.org/x/sys/cpu"
)

// have512 reports whether the CPU (and OS) run the AVX-512 that dotRowsQ4
// needs besides AVX2 and FMA: the foundation (512-bit registers) and VL,
// the EVEX forms of 128- and 256-bit instructions, which its folds, stores
// and maxima use on registers 16-31. The foundation alone, as on Xeon Phi,
// would fault there.
var have512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL

// haveAsm reports whether this build has the assembly kernels of
// kernel_amd64.s. They need AVX2 and FMA, which cpuFeatures.simd checks.
const haveAsm = true

// haveF16C reports whether the CPU converts half floats (VCVTPH2PS), which
// boundsRowsF16 needs besides AVX2 and FMA.
var haveF16C = cpuidECX1()&(1<<29) != 0

// useAsm puts the assembly kernels f allows into k, which has vek32's dot
// product. They sum each dot product in vek32.Dot's order, so from simdMin
// values on they give its bits; below, k's own kernels score.
func useAsm(k *kernelSet, f cpuFeatures) {
	rowDots, rowDots3 := k.rowDots, k.rowDots3
	k.rowDots = func(q, rows, out []float32) {
		if len(q) < simdMin {
			rowDots(q, rows, out)
			return
		}
		rowDotsAsm(q, rows, out)
	}
	k.rowDots3 = func(qs, rows, out []float32, dim int) {
		if dim < simdMin {
			rowDots3(qs, rows, out, dim)
			return
		}
		rowDots3Asm(qs, rows, out, dim)
	}
	k.sum = sumChunkAsm
	k.boundsI8 = boundsI8Asm
	k.streamMin = simdMin
	if f.avx512 {
		k.batchQ, k.batchRows = 4, 3
		dot := k.dot
		k.rowDotsQ = func(qs, rows, out, tops []float32, dim int) float32 {
			if dim < simdMin {
				return rowDotsGroups(4, func(qs, rows, out []float32, dim int) { rowDotsQWith(dot, 4, qs, rows, out, dim) }, qs, rows, out, tops, dim)
			}
			return rowDotsQ4Asm(qs, rows, out, tops, dim)
		}
	}
	if f.f16c {
		k.boundsF16 = boundsF16Asm
	}
}

// The wrappers check the lengths once per call; the assembly takes
// pointers and counts.

// rowDotsAsm scores the run's two halves side by side (dotRows2), the odd
// row out alone: two streams read faster than one where memory is fast
// (BenchmarkSearch).
func rowDotsAsm(q, rows, out []float32) {
	dim, n := len(q), len(out)
	if n == 0 {
		return
	}
	rows = rows[:n*dim]
	if h := n / 2; h > 0 {
		dotRows2(&q[0], &rows[0], &rows[h*dim], dim, h, &out[0], &out[h])
	}
	if n%2 == 1 {
		dotRows1(&q[0], &rows[(n-1)*dim], dim, 1, &out[n-1])
	}
}

// rowDots3Asm keeps twelve FMA chains in flight, so three queries cost
// little more than one in memory traffic and about a third per query in
// compute. Three is what sixteen AVX2 registers allow while keeping Dot's
// four accumulators per product.
func rowDots3Asm(qs, rows, out []float32, dim int) {
	n := len(out) / 3
	if n == 0 {
		return
	}
	qs, rows = qs[:3*dim], rows[:n*dim]
	dotRows3(&qs[0], &rows[0], dim, n, &out[0])
}

// rowDotsQ4Asm is the four-query kernel, three rows at a time, every
// group in one call (AVX-512).
func rowDotsQ4Asm(qs, rows, out, tops []float32, dim int) float32 {
	groups := len(tops) / 4
	if groups == 0 {
		return float32(math.Inf(-1))
	}
	n := len(out) / len(tops)
	if n == 0 {
		topsOf(nil, tops)
		return float32(math.Inf(-1))
	}
	qs, rows, out = qs[:groups*4*dim], rows[:n*dim], out[:groups*4*n]
	return dotRowsQ4(&qs[0], &rows[0], dim, n, groups, &out[0], &tops[0])
}

// sumChunkAsm reads x's two halves side by side, as the single-query scan
// reads a chunk, so that the floor is the faster read.
func sumChunkAsm(x []float32) float32 {
	h := len(x) / 2 &^ 31 // whole 32-value steps of the kernel
	if h == 0 {
		return sumVek(x)
	}
	s := sumFloats2(&x[0], &x[h], h)
	if rest := x[2*h:]; len(rest) > 0 {
		s += sumVek(rest)
	}
	return s
}

// boundsI8Asm works each bound out as its row's dot product ends, rather
// than in a second loop over the run.
func boundsI8Asm(p *compQuery, rows []int8, scale, resid, out []float32) float32 {
	stride, n := len(p.q16), len(out)
	if n == 0 {
		return boundsI8Go(p, rows, scale, resid, out)
	}
	rows, scale, resid = rows[:n*stride], scale[:n], resid[:n]
	return boundsRowsI8(&p.q16[0], &rows[0], stride, n, &scale[0], &resid[0], p.sq, p.qnorm, p.slack, &out[0])
}

// boundsF16Asm is boundsI8Asm's float16 twin.
func boundsF16Asm(p *compQuery, rows []uint16, resid, out []float32) float32 {
	stride, n := len(p.qf), len(out)
	if n == 0 {
		return boundsF16Go(p, rows, resid, out)
	}
	rows, resid = rows[:n*stride], resid[:n]
	return boundsRowsF16(&p.qf[0], &rows[0], stride, n, &resid[0], p.qnorm, p.slack, &out[0])
}

//go:noescape
func dotRows1(q *float32, rows *float32, dim int, n int, out *float32)

//go:noescape
func dotRows2(q *float32, a *float32, b *float32, dim int, n int, outA *float32, outB *float32)

//go:noescape
func sumFloats2(a *float32, b *float32, n int) float32

//go:noescape
func dotRows3(q *float32, rows *float32, dim int, n int, out *float32)

//go:noescape
func dotRowsQ4(q *float32, rows *float32, dim int, n int, groups int, out *float32, tops *float32) (top float32)

//go:noescape
func boundsRowsI8(q *int16, rows *int8, stride int, n int, scale *float32, resid *float32, sq float32, qnorm float32, slack float32, out *float32) (top float32)

//go:noescape
func boundsRowsF16(q *float32, rows *uint16, stride int, n int, resid *float32, qnorm float32, slack float32, out *float32) (top float32)

func cpuidECX1() uint32
