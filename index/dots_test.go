package index

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// dots puts every score of DotsRuns into out, out[i*n+r] being query i's
// of row r, for tests that check them all. It panics if out is shorter
// than the scores.
func dots(qs, rows []float32, dim int, out []float32) {
	checkDots(qs, rows, dim)
	nq, n := len(qs)/dim, len(rows)/dim
	if len(out) < nq*n {
		panic(fmt.Sprintf("index: dots of %d queries and %d rows into %d scores", nq, n, len(out)))
	}
	DotsRuns(qs, rows, dim, func(d DotsRun) {
		for i := range nq {
			o := out[i*n+d.Lo : i*n+d.Lo+d.N]
			at, g := d.At(i)
			for r := range o {
				o[r] = d.Scores[at+r*g]
			}
		}
	})
}

// TestDots: every score of DotsRuns has the bits of Dot, with every kernel
// set, for query counts on both sides of the kernels' groups and row
// counts on both sides of a run.
func TestDots(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, dim := range []int{1, 2, 3, 4, 5, 6, 7, 8, 31, 32, 67, 512, 4096} {
		for _, c := range kernelSets() {
			useKernels(c.simd, c.avx512)
			rng := rand.New(rand.NewPCG(24, uint64(dim)))
			run := batchRun(dim)
			for _, nq := range []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 17} {
				for _, n := range []int{0, 1, 2, run - 1, run, run + 1, 2*run + 3} {
					if n < 0 || n*dim > 1<<20 {
						continue
					}
					qs, rows := randVec(rng, nq*dim), randVec(rng, n*dim)
					out := make([]float32, nq*n+1)
					out[nq*n] = 42 // past the scores: left alone
					dots(qs, rows, dim, out)
					for i := range nq {
						for r := range n {
							if want := Dot(qs[i*dim:(i+1)*dim], rows[r*dim:(r+1)*dim]); out[i*n+r] != want {
								t.Fatalf("%s dim=%d nq=%d n=%d: query %d row %d scores %v, Dot %v", c.name, dim, nq, n, i, r, out[i*n+r], want)
							}
						}
					}
					require.Equal(t, float32(42), out[nq*n])
				}
			}
		}
	}
}

// TestDotsRuns: DotsRuns hands over every row once, in order, in runs
// whose scores, read through At, have Dot's bits, with every kernel set,
// for query counts on both sides of the kernels' groups.
func TestDotsRuns(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, dim := range []int{1, 5, 32, 67, 512} {
		for _, c := range kernelSets() {
			useKernels(c.simd, c.avx512)
			rng := rand.New(rand.NewPCG(25, uint64(dim)))
			run := batchRun(dim)
			for _, nq := range []int{1, 3, 4, 5, 9} {
				for _, n := range []int{1, run, 2*run + 1} {
					qs, rows := randVec(rng, nq*dim), randVec(rng, n*dim)
					next := 0
					DotsRuns(qs, rows, dim, func(d DotsRun) {
						require.Equal(t, next, d.Lo, "%s dim=%d nq=%d n=%d: runs in row order", c.name, dim, nq, n)
						require.Positive(t, d.N)
						next += d.N
						for q := range nq {
							at, stride := d.At(q)
							for r := range d.N {
								want := Dot(qs[q*dim:(q+1)*dim], rows[(d.Lo+r)*dim:(d.Lo+r+1)*dim])
								require.Equal(t, want, d.Scores[at+r*stride], "%s dim=%d nq=%d n=%d: query %d row %d", c.name, dim, nq, n, q, d.Lo+r)
							}
						}
					})
					require.Equal(t, n, next, "every row once")
				}
			}
		}
	}
	DotsRuns(nil, make([]float32, 8), 4, func(DotsRun) { t.Fatal("no queries, no runs") })
	require.Panics(t, func() { DotsRuns(make([]float32, 4), make([]float32, 6), 4, func(DotsRun) {}) })
}

// BenchmarkDotsRuns scores 256 queries against 4096 rows, the runs handed
// to a caller that reads none of their scores: the kernel's part of eval's
// pair scoring.
func BenchmarkDotsRuns(b *testing.B) {
	for _, dim := range []int{128, 512} {
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(24, 0))
			nq, n := 256, 4096
			qs, rows := randVec(rng, nq*dim), randVec(rng, n*dim)
			b.SetBytes(int64(4 * n * dim))
			for b.Loop() {
				DotsRuns(qs, rows, dim, func(DotsRun) {})
			}
			b.ReportMetric(float64(nq*n*dim*2)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
