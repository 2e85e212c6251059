package index

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/viterin/vek/vek32"
)

// kernelLengths are the awkward lengths every kernel is checked at: short
// ones, odd ones, and common embedding sizes.
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

// rowCopy is row r of m, for tests.
func (m *Matrix) rowCopy(r int) []float32 { return m.readRow(r, make([]float32, m.dim)) }

// fmaExact is a*b + c rounded once to float32, worked out with math/big.
func fmaExact(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(400).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(400).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// TestFMA32: the pure-Go FMA, which every kernel's scores follow, rounds
// once, as math/big says: on random values of every scale, on sums one
// float32 ulp apart (where a rounding to float64 first would tie), and on
// zeros, subnormals and infinities.
func TestFMA32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	vals := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		1e-38, math.MaxFloat32, -math.MaxFloat32, 1 + 1.0/(1<<23), 1 - 1.0/(1<<24), 3, 1.0 / 3}
	check := func(a, b, c float32) {
		want := fmaExact(a, b, c)
		if got := fma32(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	for _, a := range vals {
		for _, b := range vals {
			for _, c := range vals {
				check(a, b, c)
			}
		}
	}
	for range 200_000 {
		a := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(60)-30)))
		b := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(60)-30)))
		check(a, b, float32(rng.NormFloat64()*math.Pow(2, float64(rng.IntN(120)-60))))
		// c close to -a*b, so that the sum cancels down to its low bits;
		// and a*b half a float32 ulp of c away from c, so that a rounding
		// to float64 first could make a tie.
		check(a, b, -a*b)
		c := float32(rng.Float64() + 1)
		check(1+1.0/(1<<23), float32(math.Ldexp(1, -24))*float32(1+rng.IntN(3)), c)
		// (1+2^-23)(1-2^-23)2^-24 is 2^-70 short of half c's ulp: the sum
		// rounds to float64 exactly halfway.
		check(1+1.0/(1<<23), float32(math.Ldexp(1-1.0/(1<<23), -24)), c)
		check(-(1 + 1.0/(1<<23)), float32(math.Ldexp(1-1.0/(1<<23), -24)), -c)
	}
	// Products and sums past float32's range both ways: subnormal, zero
	// and infinite results.
	for range 200_000 {
		a := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(140)-70)))
		b := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(140)-70)))
		check(a, b, float32(rng.NormFloat64()*math.Pow(2, float64(rng.IntN(250)-140))))
		check(a, b, -a*b*(1+float32(rng.NormFloat64())/(1<<20)))
	}
	assert.True(t, math.IsNaN(float64(fma32(float32(math.Inf(1)), 0, 1))))
	assert.Equal(t, float32(math.Inf(-1)), fma32(1, 1, float32(math.Inf(-1))))
}

// TestFMA32MatchesCPU: where the CPU has FMA, fma32 gives its bits on the
// inputs where a rounding could go astray: ties, subnormal results,
// overflow. The chain (c, a)·(1, b) is fma(a, b, fma(c, 1, 0)).
func TestFMA32MatchesCPU(t *testing.T) {
	if f := hostKernels.features; !f.simd || !f.asm {
		t.Skip("no FMA kernels here")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	check := func(a, b, c float32) {
		want := fma32(a, b, fma32(c, 1, 0))
		if got := hostKernels.dot([]float32{c, a}, []float32{1, b}); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma(%g, %g, %g): CPU %g (%#x), fma32 %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	for range 200_000 {
		a := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(140)-70)))
		b := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(140)-70)))
		check(a, b, float32(rng.NormFloat64()*math.Pow(2, float64(rng.IntN(250)-140))))
		check(a, b, -a*b*(1+float32(rng.NormFloat64())/(1<<20)))
		c := float32(rng.Float64() + 1)
		check(1+1.0/(1<<23), float32(math.Ldexp(1-1.0/(1<<23), -24)), c)
		check(1+1.0/(1<<23), float32(math.Ldexp(1, -24))*float32(1+rng.IntN(3)), c)
	}
}

// TestDotIsOneChain: every set's Dot is one FMA chain over the values in
// order, dotGeneric's; with the assembly, the CPU's own FMA checks fma32.
func TestDotIsOneChain(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	rng := rand.New(rand.NewPCG(9, 10))
	for _, set := range kernelSets() {
		useKernels(set.simd, set.avx512)
		for _, n := range append(kernelLengths, 4096) {
			for range 50 {
				a, b := randVec(rng, n), randVec(rng, n)
				var s float32
				for i := range a {
					s = fmaExact(a[i], b[i], s)
				}
				require.Equal(t, math.Float32bits(s), math.Float32bits(Dot(a, b)), "%s n=%d", set.name, n)
			}
		}
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
		{"Dot", Dot},
		{"vek", vek32.Dot}, // another order, for scale
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
