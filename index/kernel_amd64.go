//go:build !purego

package index

import "golang.org/x/sys/cpu"

// have512 reports whether the CPU (and OS) run AVX-512, which dotRows3x2
// needs besides AVX2 and FMA. Tests turn it off to cover both passes.
var have512 = cpu.X86.HasAVX512F

// haveAsm reports whether this build has the assembly kernels of
// kernel_amd64.s. They need AVX2 and FMA, which useSIMD checks at run time.
const haveAsm = true

// The kernels take pointers and counts rather than slices: the Go wrappers
// (rowDots, rowDots3, rowDots3x2, sumChunk, boundsI8, boundsF16) check
// the lengths once per call.

//go:noescape
func dotRows1(q *float32, rows *float32, dim int, n int, out *float32)

//go:noescape
func dotRows2(q *float32, a *float32, b *float32, dim int, n int, outA *float32, outB *float32)

//go:noescape
func sumFloats2(a *float32, b *float32, n int) float32

//go:noescape
func dotRows3(q *float32, rows *float32, dim int, n int, out *float32)

//go:noescape
func dotRows3x2(q *float32, a *float32, b *float32, dim int, n int, outA *float32, outB *float32)

//go:noescape
func boundsRowsI8(q *int16, rows *int8, stride int, n int, scale *float32, resid *float32, sq float32, qnorm float32, slack float32, out *float32) (top float32)

//go:noescape
func boundsRowsF16(q *float32, rows *uint16, stride int, n int, resid *float32, qnorm float32, slack float32, out *float32) (top float32)

func cpuidECX1() uint32

// haveF16C reports whether the CPU converts half floats (VCVTPH2PS), which
// boundsRowsF16 needs besides AVX2 and FMA.
var haveF16C = cpuidECX1()&(1<<29) != 0
