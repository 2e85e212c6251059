//go:build !purego

package index

import "golang.org/x/sys/cpu"

// have512 reports whether the CPU (and OS) run the AVX-512 that the
// panel kernels panelDots512 and panelTile512 need besides AVX2 and FMA:
// the foundation (512-bit registers) and VL, the EVEX forms of 128- and
// 256-bit instructions, which panelTile512's maxima use on registers
// 16-31. The foundation alone, as on Xeon Phi, would fault there.
var have512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL

// haveAsm reports whether this build has the assembly kernels of
// kernel_panel_amd64.s and kernel_amd64.s. They need AVX2 and FMA, which
// cpuFeatures.simd checks.
const haveAsm = true

// haveF16C reports whether the CPU converts half floats (VCVTPH2PS), which
// boundsRowsF16 needs besides AVX2 and FMA.
var haveF16C = cpuidECX1()&(1<<29) != 0

// useAsm puts the assembly kernels f allows into k. Their scores are
// dotGeneric's, bit for bit: the same FMA chains in the same order.
func useAsm(k *kernelSet, f cpuFeatures) {
	k.dot = dotAsm
	k.panelDots = panelDotsAVX2
	k.tile = tileAVX2
	if f.avx512 {
		k.panelDots = panelDotsAVX512
		k.tile = tileAVX512
	}
	k.sum = sumChunkAsm
	k.boundsI8 = boundsI8Asm
	if f.f16c {
		k.boundsF16 = boundsF16Asm
	}
}

// The wrappers check the lengths once per call; the assembly takes
// pointers and counts.

func dotAsm(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	_ = b[len(a)-1]
	return dotChain(&a[0], &b[0], len(a))
}

func panelDotsAVX2(q, panels, out []float32) {
	np := len(out) / panelRows
	if np == 0 || len(q) == 0 {
		return
	}
	_ = panels[np*panelRows*len(q)-1]
	panelDots256(&q[0], &panels[0], len(q), np, &out[0])
}

// panelDotsAVX512 scores the panels' four quarters side by side: four
// streams read faster than one or two where memory is fast. The panels
// left over take the AVX2 kernel, whose scores are the same.
func panelDotsAVX512(q, panels, out []float32) {
	dim, np := len(q), len(out)/panelRows
	if np == 0 || dim == 0 {
		return
	}
	_ = panels[np*panelRows*dim-1]
	quarter := np / 4
	if quarter > 0 {
		panelDots512(&q[0], &panels[0], dim, quarter, &out[0])
	}
	if rest := 4 * quarter; rest < np {
		panelDots256(&q[0], &panels[rest*panelRows*dim], dim, np-rest, &out[rest*panelRows])
	}
}

// checkTile checks what a tileKernel call reads and writes.
func checkTile(q, p []float32, kc int, c []float32, mode int, out []float32, stride int, tops []float32) {
	_ = q[kc*groupQ-1]
	_ = p[kc*panelRows-1]
	_ = c[groupChains-1]
	if mode&tileFinal != 0 {
		_ = out[(groupQ-1)*stride+panelRows-1]
		_ = tops[groupQ-1]
	}
}

func tileAVX2(q, p []float32, kc int, c []float32, mode int, out []float32, stride int, tops []float32, ahead, lines int) {
	checkTile(q, p, kc, c, mode, out, stride, tops)
	panelTile256(&q[0], &p[0], kc, &c[0], mode, &out[0], stride, &tops[0], ahead, lines)
}

func tileAVX512(q, p []float32, kc int, c []float32, mode int, out []float32, stride int, tops []float32, ahead, lines int) {
	checkTile(q, p, kc, c, mode, out, stride, tops)
	panelTile512(&q[0], &p[0], kc, &c[0], mode, &out[0], stride, &tops[0], ahead, lines)
}

// sumChunkAsm reads x's four quarters side by side, as the single-query
// scan reads a chunk, so that the floor is the faster read.
func sumChunkAsm(x []float32) float32 {
	q := len(x) / 4 &^ 15 // whole 16-value steps of the kernel
	if q == 0 {
		return sumVek(x)
	}
	s := sumFloats4(&x[0], q)
	if rest := x[4*q:]; len(rest) > 0 {
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
func dotChain(a *float32, b *float32, n int) float32

//go:noescape
func panelDots256(q *float32, p *float32, dim int, np int, out *float32)

//go:noescape
func panelDots512(q *float32, p *float32, dim int, np int, out *float32)

//go:noescape
func panelTile256(q *float32, p *float32, kc int, c *float32, mode int, out *float32, stride int, tops *float32, ahead int, lines int)

//go:noescape
func panelTile512(q *float32, p *float32, kc int, c *float32, mode int, out *float32, stride int, tops *float32, ahead int, lines int)

//go:noescape
func sumFloats4(a *float32, n int) float32

//go:noescape
func boundsRowsI8(q *int16, rows *int8, stride int, n int, scale *float32, resid *float32, sq float32, qnorm float32, slack float32, out *float32) (top float32)

//go:noescape
func boundsRowsF16(q *float32, rows *uint16, stride int, n int, resid *float32, qnorm float32, slack float32, out *float32) (top float32)

func cpuidECX1() uint32
