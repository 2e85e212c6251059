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

	// dot is [Dot]'s kernel, and the rerank's.
	dot func(a, b []float32) float32
	// rowDots sets out[r] = dot(q, row r) for the len(out) rows of len(q)
	// values packed in rows: the single-query scan kernel, one call per run
	// of rows.
	rowDots func(q, rows, out []float32)
	// rowDots3 scores the len(out)/3 rows in rows against three queries of
	// dim values packed in qs: out[3r+j] = dot(query j, row r), each row
	// read once for the three.
	rowDots3 func(qs, rows, out []float32, dim int)
	// rowDotsQ is the batched pass's kernel: it scores the n rows in rows
	// against the len(tops) queries of dim values packed in qs, in groups
	// of batchQ, where n = len(out)/len(tops): out[batchQ*(n*g+r)+j] =
	// dot(query batchQ*g+j, row r), and tops[batchQ*g+j] is the highest of
	// that query's scores (NaNs aside; -Inf if none), so that a pass
	// offers a query's scores to its heap only when one can enter. It
	// returns the highest of tops, so that a pass need not look at each
	// query's when none reaches the lowest floor.
	rowDotsQ func(qs, rows, out, tops []float32, dim int) float32
	// batchQ is the queries rowDotsQ scores per row read: as many as the
	// registers hold accumulators for. batchRows is the rows it scores at a
	// time, so that runs of a multiple of it leave no row to score alone.
	batchQ, batchRows int
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

	// streamMin is the least dimension for which rowDots reads a run as two
	// long streams, so that a single query's scan hands it whole chunks
	// (in runs of subFloats the streams would be short).
	streamMin int
}

// cpuFeatures is what a kernel set may use.
type cpuFeatures struct {
	simd   bool // AVX2 and FMA, which vek32 and every assembly kernel need
	asm    bool // this build has the assembly kernels (kernel_amd64.s)
	avx512 bool // AVX-512F and VL: the four-query kernel (dotRowsQ4)
	f16c   bool // half-float conversion: the float16 bounds kernel
	vnni   bool // AVX-512 VNNI and BW: the batched int8 bounds kernel
}

// hostFeatures is what this CPU and build offer. vek reports acceleration
// only on amd64 with AVX2 and FMA; elsewhere vek32.Dot would fall back to a
// single-accumulator loop, which is slower than dotGeneric.
var hostFeatures = cpuFeatures{
	simd:   vek.Info().Acceleration,
	asm:    haveAsm,
	avx512: have512,
	f16c:   haveF16C,
	vnni:   haveVNNI,
}

// kernels is the set every scan uses, chosen once for this CPU.
var kernels = chooseKernels(hostFeatures)

// noDim is a streamMin no dimension reaches.
const noDim = int(^uint(0) >> 1)

// chooseKernels returns the best set f allows: pure Go; vek32's dot product
// and sum with SIMD; and, with the assembly, its multi-row kernels.
func chooseKernels(f cpuFeatures) *kernelSet {
	k := &kernelSet{
		features:  f,
		dot:       dotGeneric,
		sum:       sumGeneric,
		boundsI8:  boundsI8Go,
		boundsF16: boundsF16Go,
		streamMin: noDim,
		batchQ:    3,
		batchRows: 1,

		boundsI8Batch: boundsI8BatchGo,
		batchI8Min:    noDim,
	}
	if f.simd {
		k.dot, k.sum = dotVek, sumVek
	}
	dot := k.dot
	k.rowDots = func(q, rows, out []float32) { rowDotsWith(dot, q, rows, out) }
	k.rowDots3 = func(qs, rows, out []float32, dim int) { rowDotsQWith(dot, 3, qs, rows, out, dim) }
	if f.simd && f.asm {
		useAsm(k, f)
	}
	if k.rowDotsQ == nil {
		k.rowDotsQ = func(qs, rows, out, tops []float32, dim int) float32 {
			return rowDotsGroups(3, k.rowDots3, qs, rows, out, tops, dim)
		}
	}
	if f.simd && f.asm && f.avx512 && f.vnni {
		useVNNI(k)
	}
	return k
}

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
	return kernels.dot(a, b)
}

// simdMin is the shortest vector vek32.Dot is used for: it vectorizes 32
// values at a time and finishes with a serial loop, so below 32 it is no
// faster than dotGeneric (BenchmarkDot). The assembly kernels, which sum
// as vek32.Dot does, follow the same cut so that they give Dot's bits.
const simdMin = 32

// dotVek is the SIMD set's dot product: vek32.Dot from simdMin values on.
func dotVek(a, b []float32) float32 {
	if len(a) >= simdMin {
		return vek32.Dot(a, b)
	}
	return dotGeneric(a, b)
}

// sumVek is the SIMD set's sum: vek32.Sum.
func sumVek(x []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	return vek32.Sum(x)
}
