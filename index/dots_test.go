package index

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDotsRuns: DotsRuns hands over every row once, in order, in runs
// whose scores have Dot's bits, with every kernel set, for query counts on
// both sides of the kernels' groups and row counts on both sides of a run
// and of a block.
func TestDotsRuns(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, dim := range []int{1, 5, 32, 67, 512} {
		for _, c := range kernelSets() {
			useKernels(c.simd, c.avx512)
			rng := rand.New(rand.NewPCG(25, uint64(dim)))
			for _, nq := range []int{1, 5, 6, 7, 13} {
				for _, n := range []int{1, panelRows + 1, dotsRun, dotsRun + 3, 3*panelRows*2 + 5, 2*dotsRun + 70} {
					m := NewMatrix(dim)
					if n%2 == 1 {
						m = newMatrix(dim, 2*panelRows, panelRows, TierFloat32) // runs end at blocks too
					}
					rows := make([][]float32, n)
					for r := range rows {
						rows[r] = randVec(rng, dim)
						m.Upsert(uint64(r), rows[r])
					}
					qs := randVec(rng, nq*dim)
					next := 0
					m.DotsRuns(qs, func(d DotsRun) {
						require.Equal(t, next, d.Lo, "%s dim=%d nq=%d n=%d: runs in row order", c.name, dim, nq, n)
						require.Positive(t, d.N)
						next += d.N
						for q := range nq {
							for r := range d.N {
								want := Dot(qs[q*dim:(q+1)*dim], rows[d.Lo+r])
								require.Equal(t, want, d.Scores[q*d.Stride+r], "%s dim=%d nq=%d n=%d: query %d row %d", c.name, dim, nq, n, q, d.Lo+r)
							}
						}
					})
					require.Equal(t, n, next, "every row once")
				}
			}
		}
	}
	m := NewMatrix(4)
	m.Upsert(1, []float32{1, 0, 0, 0})
	m.DotsRuns(nil, func(DotsRun) { t.Fatal("no queries, no runs") })
	NewMatrix(4).DotsRuns(make([]float32, 4), func(DotsRun) { t.Fatal("no rows, no runs") })
	require.Panics(t, func() { m.DotsRuns(make([]float32, 6), func(DotsRun) {}) })
}

// BenchmarkDotsRuns scores 256 queries against 4096 rows, the runs handed
// to a caller that reads none of their scores: the kernel's part of eval's
// pair scoring.
func BenchmarkDotsRuns(b *testing.B) {
	for _, dim := range []int{128, 512} {
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(24, 0))
			nq, n := 256, 4096
			m := NewMatrix(dim)
			for r := range n {
				m.Upsert(uint64(r), randVec(rng, dim))
			}
			qs := randVec(rng, nq*dim)
			b.SetBytes(int64(4 * n * dim))
			for b.Loop() {
				m.DotsRuns(qs, func(DotsRun) {})
			}
			b.ReportMetric(float64(nq*n*dim*2)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
