package index

import (
	"fmt"

	"github.com/viterin/vek"
	"github.com/viterin/vek/vek32"
)

// kernelSet is the kernels every scan calls. One set is chosen once, at
// init, for the CPU the process runs on (see chooseKernels); a scan never
// asks again which kernel to use. The pure-Go set ([cpuFeatures] all false)
// is the reference every other set is tested against, and the only one a
// build without assembly needs.
//
// Every float32 kernel of a set gives, bit for bit, the score dot gives:
// that is what makes coalesced and compressed searches return exactly what
// a lone float32 scan returns. The compressed tiers' bounds need not agree
// bit for bit across sets (see [Tier]).
type kernelSet struct {
	features cpuFeatures // what the set was chosen for

	// dot is [Dot]'s kernel, and the rerank's: one FMA chain over the
	// values in order, the order of every float32 kernel (see panel.go).
	dot func(a, b []float32) float32
	// panelDots sets out[panelRows*i+l] = dot(q, row l of panel i) for the
	// len(out)/panelRows panels in panels: the single-query scan kernel.
	panelDots func(q, panels, out []float32)
	// tile is the batched pass's kernel (see tileKernel and groupDots).
	tile tileKernel
	// sum returns the sum of x with the least work per value: the
	// bandwidth floor's kernel ([Matrix.Sum]).
	sum func(x []float32) float32
	// boundsI8 and boundsF16 are the compressed tiers' scan kernels (see
	// int8Codes.bounds and f16Codes.bounds).
	boundsI8  func(p *compQuery, rows []int8, scale, resid, out []float32) float32
	boundsF16 func(p *compQuery, rows []uint16, resid, out []float32) float32
	// boundsI8Batch bounds one tile of the int8 copy (at most tileRows
	// rows) for every query of a batch (see i8Batch); batchI8Min is the
	// least batch a pass of several queries gives it, noDim where the
	// float32 rows score a batch faster.
	boundsI8Batch func(b *i8Batch, rows []int8, scale, resid []float32, t *i8Tile)
	batchI8Min    int
}

// cpuFeatures is what a kernel set may use.
type cpuFeatures struct {
	simd   bool // AVX2 and FMA, which vek32 and every assembly kernel need
	asm    bool // this build has the assembly kernels (kernel_panel_amd64.s and kernel_amd64.s)
	avx512 bool // AVX-512F and VL: the panel kernels panelDots512 and panelTile512
	f16c   bool // half-float conversion: the float16 bounds kernel
	vnni   bool // AVX-512 VNNI and BW: the batched int8 bounds kernel
}

// hostFeatures is what this CPU and build offer. vek reports acceleration
// only on amd64 with AVX2 and FMA; elsewhere vek32.Sum would fall back to a
// single-accumulator loop, which is slower than sumGeneric.
var hostFeatures = cpuFeatures{
	simd:   vek.Info().Acceleration,
	asm:    haveAsm,
	avx512: have512,
	f16c:   haveF16C,
	vnni:   haveVNNI,
}

// kernels is the set every scan uses, chosen once for this CPU.
var kernels = chooseKernels(hostFeatures)

// noDim is a batchI8Min no batch reaches.
const noDim = int(^uint(0) >> 1)

// chooseKernels returns the best set f allows: pure Go; vek32's sum with
// SIMD; and, with the assembly, its kernels.
func chooseKernels(f cpuFeatures) *kernelSet {
	k := &kernelSet{
		features:  f,
		dot:       dotGeneric,
		panelDots: panelDotsGo,
		tile:      tileGo,
		sum:       sumGeneric,
		boundsI8:  boundsI8Go,
		boundsF16: boundsF16Go,

		boundsI8Batch: boundsI8BatchGo,
		batchI8Min:    noDim,
	}
	if f.simd {
		k.sum = sumVek
	}
	if f.simd && f.asm {
		useAsm(k, f)
	}
	if f.simd && f.asm && f.avx512 && f.vnni {
		useVNNI(k)
	}
	return k
}

// Dot returns the dot product of a and b: one fused multiply-add per
// pair of values, in order, each rounded to float32 (the hardware's FMA
// where the CPU has it, an exact emulation elsewhere). It panics if the
// lengths differ, as that is a programming error. Dot of two empty slices
// is 0.
//
// Every score [Matrix.Search] reports is exactly Dot(q, row), whichever
// kernel computed it (one query at a time or several per pass).
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("index: Dot of lengths %d and %d", len(a), len(b)))
	}
	return kernels.dot(a, b)
}

// sumVek is the SIMD set's sum: vek32.Sum.
func sumVek(x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	return vek32.Sum(x)
}
