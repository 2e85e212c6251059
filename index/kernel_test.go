package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/viterin/vek/vek32"
)

// kernelLengths are the awkward lengths every kernel is checked at: each
// remainder of the unrolled loops, and common embedding sizes.
var kernelLengths = []int{1, 2, 3, 4, 5, 6, 7, 8, 31, 67, 299, 512, 1536}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// dot64 is the plainest possible dot product, in float64.
func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// withSIMD runs f with the kernels of a CPU with SIMD (as far as this one
// has it) or without, then restores this CPU's; tests using it must not run
// in parallel.
func withSIMD(t *testing.T, on bool, f func(t *testing.T)) {
	t.Helper()
	saved := kernels
	t.Cleanup(func() { kernels = saved })
	useKernels(on, hostFeatures.avx512)
	f(t)
}

// hostKernels is the set chosen at init, for restoring it.
var hostKernels = kernels

// useKernels makes every scan use the kernels of a CPU with or without SIMD
// and AVX-512, never more than this one has.
func useKernels(simd, avx512 bool) {
	f := hostFeatures
	f.simd = f.simd && simd
	f.avx512 = f.avx512 && avx512
	kernels = chooseKernels(f)
}

// The kernels of the current set, by name.
func rowDots(q, rows, out []float32)            { kernels.rowDots(q, rows, out) }
func rowDots3(qs, rows, out []float32, dim int) { kernels.rowDots3(qs, rows, out, dim) }
func rowDotsQ(qs, rows, out, tops []float32, dim int) float32 {
	return kernels.rowDotsQ(qs, rows, out, tops, dim)
}
func sumChunk(x []float32) float32            { return kernels.sum(x) }
func kernel(int) func(a, b []float32) float32 { return kernels.dot }
func boundsI8(p *compQuery, rows []int8, scale, resid, out []float32) float32 {
	return kernels.boundsI8(p, rows, scale, resid, out)
}
func boundsF16(p *compQuery, rows []uint16, resid, out []float32) float32 {
	return kernels.boundsF16(p, rows, resid, out)
}

func TestDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range kernelLengths {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			for range 20 {
				a, b := randVec(rng, n), randVec(rng, n)
				// Relative to sum |a_i b_i|, not to the result, which can be
				// near zero after cancellation.
				var mag float64
				for i := range a {
					mag += math.Abs(float64(a[i]) * float64(b[i]))
				}
				tol := 1e-5 * mag
				want := dot64(a, b)
				gen := dotGeneric(a, b)
				assert.InDelta(t, want, gen, tol, "dotGeneric vs float64")
				assert.InDelta(t, gen, Dot(a, b), tol, "Dot vs dotGeneric (simd=%v)", kernels.features.simd)
			}
		})
	}
}

func TestDotEdges(t *testing.T) {
	for _, simd := range []bool{false, true} {
		withSIMD(t, simd, func(t *testing.T) {
			assert.Equal(t, float32(0), Dot(nil, nil))
			assert.Equal(t, float32(0), Dot([]float32{}, []float32{}))
			assert.Equal(t, float32(11), Dot([]float32{1, 2}, []float32{3, 4}))
			assert.Panics(t, func() { Dot([]float32{1}, []float32{1, 2}) })
		})
	}
}

func BenchmarkDot(b *testing.B) {
	impls := []struct {
		name string
		f    func(a, b []float32) float32
	}{
		{"generic", dotGeneric},
		{"vek", vek32.Dot},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{16, 31, 32, 128, 512, 1536} {
		x, y := randVec(rng, n), randVec(rng, n)
		for _, impl := range impls {
			b.Run(fmt.Sprintf("n=%d/%s", n, impl.name), func(b *testing.B) {
				b.SetBytes(int64(8 * n))
				var sink float32
				for b.Loop() {
					sink += impl.f(x, y)
				}
				_ = sink
			})
		}
	}
}
