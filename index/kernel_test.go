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

// withSIMD runs f with useSIMD forced to on, then restores it; tests using it
// must not run in parallel.
func withSIMD(t *testing.T, on bool, f func(t *testing.T)) {
	t.Helper()
	saved := useSIMD
	t.Cleanup(func() { useSIMD = saved })
	useSIMD = on
	f(t)
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
				assert.InDelta(t, gen, Dot(a, b), tol, "Dot vs dotGeneric (simd=%v)", useSIMD)
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
