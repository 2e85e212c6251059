//go:build !purego

package index

import "golang.org/x/sys/cpu"

// peakKernels are the multiply-add loops this CPU runs, widest first;
// hostPeak is the first.
var peakKernels = runnablePeaks(cpu.X86.HasAVX512F, cpu.X86.HasAVX2 && cpu.X86.HasFMA)

var hostPeak = peakKernels[0]

func runnablePeaks(avx512, avx2 bool) []peakKernel {
	var ks []peakKernel
	if avx512 {
		ks = append(ks, peakAVX512)
	}
	if avx2 {
		ks = append(ks, peakAVX2)
	}
	return append(ks, peakGo)
}

// The assembly loops keep more chains in flight than an FMA's latency
// times the FMA units per core: 24 of 16 lanes (of 32 registers) and 14 of
// 8 lanes (of 16), the other two registers holding c and d.
var (
	peakAVX512 = peakKernel{name: "avx512", flops: 24 * 16 * 2, run: func(n int) { fmaLoop512(n, 0.5, 0.5) }}
	peakAVX2   = peakKernel{name: "avx2", flops: 14 * 8 * 2, run: func(n int) { fmaLoop256(n, 0.5, 0.5) }}
)

// fmaLoop512 and fmaLoop256 run n iterations of acc = acc*c + d on every
// chain; the values stay near 1, clear of denormals and overflow.
//
//go:noescape
func fmaLoop512(n int, c, d float32)

//go:noescape
func fmaLoop256(n int, c, d float32)
