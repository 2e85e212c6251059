package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rowLengths adds, to the awkward lengths, ones on both sides of the
// batched kernel's blocks of groupK values of k, and a long one.
var rowLengths = append(append([]int{}, kernelLengths...), 32, 33, 63, 64, 95, 96, 127, 128, 129, 4096)

// packPanels lays n rows of dim values out as a matrix's block holds
// them (see panel.go), the last panel filled up with zero rows.
func packPanels(rows []float32, dim int) []float32 {
	n := len(rows) / dim
	out := make([]float32, padRows(n)*dim)
	for r := range n {
		pan := out[r/panelRows*panelRows*dim:]
		for k, x := range rows[r*dim : (r+1)*dim] {
			pan[k*panelRows+r%panelRows] = x
		}
	}
	return out
}

// TestPanelDotsMatchDot pins what makes a search's scores the same
// whichever kernel computes them: every set's single-query kernel gives,
// bit for bit, Dot's score of each row, at every dimension remainder and
// on both sides of a panel and of the four streams' split.
func TestPanelDotsMatchDot(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	rng := rand.New(rand.NewPCG(21, 22))
	for _, set := range kernelSets() {
		useKernels(set.simd, set.avx512)
		for _, dim := range rowLengths {
			ns := []int{1, 63, 64, 65, 130, 193, 400, 1030} // 1 to 17 panels: the quarters and the panels left over
			if dim > 512 {
				ns = ns[:6]
			}
			for _, n := range ns {
				rows := randVec(rng, n*dim)
				q := randVec(rng, dim)
				out := make([]float32, padRows(n)+1)
				out[padRows(n)] = 42 // past the panels: left alone
				kernels.panelDots(q, packPanels(rows, dim), out[:padRows(n)])
				for r := range n {
					want := dotGeneric(q, rows[r*dim:(r+1)*dim])
					require.Equal(t, math.Float32bits(want), math.Float32bits(out[r]), "%s dim %d n %d: row %d", set.name, dim, n, r)
				}
				require.Equal(t, float32(42), out[padRows(n)], "%s dim %d n %d", set.name, dim, n)
			}
		}
	}
}

// kernelSets are the kernel sets this CPU can run, each a cpuFeatures
// cut down from the host's: pure Go, AVX2 and, where the CPU has it,
// AVX-512.
func kernelSets() []struct {
	name         string
	simd, avx512 bool
} {
	sets := []struct {
		name         string
		simd, avx512 bool
	}{{"go", false, false}}
	if hostFeatures.simd {
		sets = append(sets, struct {
			name         string
			simd, avx512 bool
		}{"avx2", true, false})
	}
	if hostFeatures.simd && hostFeatures.avx512 {
		sets = append(sets, struct {
			name         string
			simd, avx512 bool
		}{"avx512", true, true})
	}
	return sets
}

// TestGroupDots: every kernel set's batched kernel, through groupDots,
// gives each (query, row) score the bits of dotGeneric and each query's
// highest score, NaNs aside, for every dimension remainder (across the
// groupK blocks of k), row counts on both sides of a panel, and one group
// of queries or several, the last filled up.
func TestGroupDots(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	rng := rand.New(rand.NewPCG(41, 42))
	for _, set := range kernelSets() {
		useKernels(set.simd, set.avx512)
		for _, dim := range rowLengths {
			ns, nqs := []int{1, 2, 63, 64, 65, 129}, []int{1, 5, 6, 7, 13}
			if dim > 512 {
				ns, nqs = []int{65}, []int{7} // many blocks of k already
			}
			for _, n := range ns {
				for _, nq := range nqs {
					qs, rows := randVec(rng, nq*dim), randVec(rng, n*dim)
					if n >= 2 {
						rows[dim+dim/2] = float32(math.NaN()) // row 1 scores NaN for all
					}
					vecs := make([][]float32, nq)
					for i := range vecs {
						vecs[i] = qs[i*dim : (i+1)*dim]
					}
					g := groupsOf(nq)
					packed := make([]float32, g*groupQ*dim)
					packGroups(packed, vecs, dim)
					stride := padRows(n)
					out := make([]float32, g*groupQ*stride+1)
					out[len(out)-1] = 42 // past the scores: left alone
					tops := make([]float32, g*groupQ)
					chains := make([]float32, g*groupChains)
					gotTop := groupDots(kernels.tile, packed, packPanels(rows, dim), dim, out[:len(out)-1], stride, tops, chains)
					zero := make([]float32, dim) // the queries and rows that fill up the last group and panel
					for i := range g * groupQ {
						top := float32(math.Inf(-1))
						for r := range stride {
							q, row := zero, zero
							if i < nq {
								q = vecs[i]
							}
							if r < n {
								row = rows[r*dim : (r+1)*dim]
							}
							want := dotGeneric(q, row)
							require.Equal(t, math.Float32bits(want), math.Float32bits(out[i*stride+r]), "%s dim %d n %d nq %d: query %d row %d", set.name, dim, n, nq, i, r)
							if want > top {
								top = want
							}
						}
						require.Equal(t, top, tops[i], "%s dim %d n %d nq %d: query %d's top", set.name, dim, n, nq, i)
					}
					require.Equal(t, float32(42), out[len(out)-1], "%s dim %d n %d nq %d", set.name, dim, n, nq)
					require.Equal(t, slices.Max(tops), gotTop, "%s dim %d n %d nq %d: the highest top", set.name, dim, n, nq)
				}
			}
		}
	}
}

// TestSumChunk: the floor's read, four quarters side by side, sums every
// value once, whatever the length's remainder.
func TestSumChunk(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, simd := range []bool{true, false} {
		withSIMD(t, simd, func(t *testing.T) {
			for _, n := range []int{0, 1, 31, 32, 63, 64, 65, 100, 127, 128, 4096, 4096 + 17, 65536} {
				x := randVec(rng, n)
				var want, scale float64
				for _, v := range x {
					want += float64(v)
					scale += math.Abs(float64(v))
				}
				assert.InDelta(t, want, float64(sumChunk(x)), 1e-5*scale+1e-6, "simd=%v n=%d", simd, n)
			}
			x := make([]float32, 4096+40)
			// One at each quarter's edges, and one in the rest.
			x[0], x[1023], x[1024], x[2048], x[3071], x[3072], x[4095], x[4096+39] = 1, 2, 4, 8, 16, 32, 64, 128
			assert.Equal(t, float32(255), sumChunk(x), "simd=%v", simd)
		})
	}
}

// TestBoundsI8 checks the int8 bounds against int64 dot products and the
// bound's float32 steps rounded one by one, as Go and the assembly both
// round them: the same bits, on both paths.
func TestBoundsI8(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, stride := range []int{32, 64, 512, 4096} {
		const n = 5
		rows := make([]int8, n*stride)
		qmax := min(32767, math.MaxInt32/(127*stride))
		p := &compQuery{q16: make([]int16, stride), sq: 1.5e-5, qnorm: 1.0000001, slack: 3e-4}
		for i := range p.q16 {
			p.q16[i] = int16(rng.IntN(2*qmax+1) - qmax)
		}
		for i := range rows {
			rows[i] = int8(rng.IntN(255) - 127)
		}
		// The extremes: every product at its largest, all one sign.
		for i := range stride {
			p.q16[i], rows[i], rows[stride+i] = int16(qmax), 127, -127
		}
		scale, resid := make([]float32, n), make([]float32, n)
		for r := range n {
			scale[r], resid[r] = rng.Float32()/127, rng.Float32()/10
		}
		want := make([]float32, n)
		for r := range n {
			var dot int64
			for i := range stride {
				dot += int64(p.q16[i]) * int64(rows[r*stride+i])
			}
			require.Equal(t, dot, int64(int32(dot)), "the test's own dot product fits int32")
			prod := float32(float32(dot) * float32(scale[r]*p.sq))
			want[r] = float32(prod+float32(resid[r]*p.qnorm)) + p.slack
		}
		for _, simd := range []bool{true, false} {
			withSIMD(t, simd, func(t *testing.T) {
				got := make([]float32, n)
				top := boundsI8(p, rows, scale, resid, got)
				for r := range n {
					assert.Equal(t, math.Float32bits(want[r]), math.Float32bits(got[r]), "stride %d row %d simd=%v: %v against %v", stride, r, simd, got[r], want[r])
				}
				assert.Equal(t, slices.Max(want), top, "stride %d simd=%v", stride, simd)
				assert.True(t, math.IsInf(float64(boundsI8(p, rows, scale, resid, nil)), -1), "no rows, no bound")
			})
		}
	}
}

// TestBoundsF16 checks the float16 bounds' dot products against float64
// ones, and that the rest of each bound is added in the order the
// assembly and Go both add it.
func TestBoundsF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for _, stride := range []int{32, 64, 512, 1536} {
		const n = 4
		p := &compQuery{qf: randVec(rng, stride)}
		src := randVec(rng, n*stride)
		rows := make([]uint16, len(src))
		for i, x := range src {
			rows[i] = toFloat16(x)
		}
		resid := make([]float32, n)
		for _, simd := range []bool{true, false} {
			withSIMD(t, simd, func(t *testing.T) {
				clear(resid)
				p.qnorm, p.slack = 0, 0
				dots := make([]float32, n)
				boundsF16(p, rows, resid, dots)
				for r := range n {
					var want, mag float64
					for i := range stride {
						prod := float64(p.qf[i]) * float64(fromFloat16(rows[r*stride+i]))
						want += prod
						mag += math.Abs(prod)
					}
					assert.InDelta(t, want, dots[r], 1e-5*mag, "stride %d row %d simd=%v", stride, r, simd)
				}
				p.qnorm, p.slack = 1.0000001, 3e-4
				wantBounds := make([]float32, n)
				for r := range n {
					resid[r] = rng.Float32() / 10
					wantBounds[r] = dots[r] + (float32(resid[r]*p.qnorm) + p.slack)
				}
				got := make([]float32, n)
				top := boundsF16(p, rows, resid, got)
				for r := range n {
					assert.Equal(t, math.Float32bits(wantBounds[r]), math.Float32bits(got[r]), "stride %d row %d simd=%v: %v against %v", stride, r, simd, got[r], wantBounds[r])
				}
				assert.Equal(t, slices.Max(wantBounds), top, "stride %d simd=%v", stride, simd)
				assert.True(t, math.IsInf(float64(boundsF16(p, rows, resid, nil)), -1), "no rows, no bound")
			})
		}
	}
}

// TestFloat16 checks the conversions against float64 arithmetic: every
// half converts to a float32 and back unchanged, and rounding picks the
// nearest half, ties to even.
func TestFloat16(t *testing.T) {
	var halves []float64 // every finite non-negative half, ascending
	for h := range uint16(0x7c00) {
		f := fromFloat16(h)
		require.Equal(t, h, toFloat16(f), "round trip of %#04x (%g)", h, f)
		require.Equal(t, h|0x8000, toFloat16(-f), "round trip of -%#04x", h)
		halves = append(halves, float64(f))
	}
	assert.Equal(t, float32(65504), fromFloat16(0x7bff))
	assert.Equal(t, float32(0x1p-24), fromFloat16(1))
	assert.Equal(t, uint16(0x7bff), toFloat16(1e6), "saturates")
	assert.Equal(t, uint16(0xfbff), toFloat16(float32(math.Inf(-1))), "saturates")
	assert.True(t, math.IsNaN(float64(fromFloat16(toFloat16(float32(math.NaN()))))))

	rng := rand.New(rand.NewPCG(29, 30))
	for range 200_000 {
		// Log-uniform over the half range and a little past both ends.
		x := float32(math.Exp2(rng.Float64()*44 - 28))
		got := float64(fromFloat16(toFloat16(x)))
		// The nearest half by search; ties go to the even one.
		i := searchFloat(halves, float64(x))
		best := i
		if i > 0 && (i == len(halves) || float64(x)-halves[i-1] < halves[i]-float64(x) ||
			float64(x)-halves[i-1] == halves[i]-float64(x) && (i-1)%2 == 0) {
			best = i - 1
		}
		if best == len(halves) {
			best--
		}
		require.Equal(t, halves[best], got, "toFloat16(%g)", x)
	}
}

func searchFloat(a []float64, x float64) int {
	lo, hi := 0, len(a)
	for lo < hi {
		mid := (lo + hi) / 2
		if a[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func BenchmarkRowDots(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dim := range []int{128, 512, 2048} {
		rows := 32768 / dim * 4 // 128 KiB: L2-resident, so this is the compute side
		data := randVec(rng, rows*dim)
		panels := packPanels(data, dim)
		qs := randVec(rng, groupQ*dim)
		out := make([]float32, groupQ*rows)
		b.Run(fmt.Sprintf("dim=%d/q=1", dim), func(b *testing.B) {
			b.SetBytes(int64(4 * rows * dim))
			for b.Loop() {
				kernels.panelDots(qs[:dim], panels, out[:rows])
			}
		})
		b.Run(fmt.Sprintf("dim=%d/q=group", dim), func(b *testing.B) {
			packed := make([]float32, groupQ*dim)
			packGroups(packed, slices.Collect(slices.Chunk(qs, dim)), dim)
			tops, chains := make([]float32, groupQ), make([]float32, groupChains)
			b.SetBytes(int64(groupQ * 4 * rows * dim))
			for b.Loop() {
				groupDots(kernels.tile, packed, panels, dim, out, rows, tops, chains)
			}
			b.ReportMetric(float64(groupQ*rows*dim*2)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		p := &compQuery{q16: make([]int16, dim)}
		i8 := make([]int8, rows*dim)
		scale, resid := make([]float32, rows), make([]float32, rows)
		b.Run(fmt.Sprintf("dim=%d/int8", dim), func(b *testing.B) {
			b.SetBytes(int64(rows * dim))
			for b.Loop() {
				boundsI8(p, i8, scale, resid, out[:rows])
			}
		})
		h := make([]uint16, rows*dim)
		pf := &compQuery{qf: qs[:dim]}
		b.Run(fmt.Sprintf("dim=%d/float16", dim), func(b *testing.B) {
			b.SetBytes(int64(2 * rows * dim))
			for b.Loop() {
				boundsF16(pf, h, resid, out[:rows])
			}
		})
	}
}
