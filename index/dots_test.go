package index

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDots: every score of Dots has the bits of Dot, with every kernel
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
					Dots(qs, rows, dim, out)
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
	require.Panics(t, func() { Dots(make([]float32, 4), make([]float32, 6), 4, make([]float32, 2)) })
	require.Panics(t, func() { Dots(make([]float32, 8), make([]float32, 8), 4, make([]float32, 3)) })
}

// BenchmarkDots scores 256 queries against 4096 rows: the block eval
// scores at a time.
func BenchmarkDots(b *testing.B) {
	for _, dim := range []int{128, 512} {
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(24, 0))
			nq, n := 256, 4096
			qs, rows := randVec(rng, nq*dim), randVec(rng, n*dim)
			out := make([]float32, nq*n)
			b.SetBytes(int64(4 * n * dim))
			for b.Loop() {
				Dots(qs, rows, dim, out)
			}
			b.ReportMetric(float64(nq*n*dim*2)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
