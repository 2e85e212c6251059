package index

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSearchBatchMatchesSearch: every answer of a batch is exactly the one
// its query gets alone (hits, score bits, order, ties), in every tier and,
// on the float32 rows, with every kernel set, for batch sizes on both sides
// of the kernels' groups and of maxBatch, with rows ranked under their own
// keys and under others, and with floors no score reaches (NaN, +Inf).
func TestSearchBatchMatchesSearch(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	reverse := func(k uint64) uint64 { return 1<<41 - k } // ties come back the other way round
	type geo struct{ dim, rows, blockRows, chunkRows int }
	geos := []geo{{dim: 4096, rows: 40}, {dim: 512, rows: 300}, {dim: 67, rows: 301, blockRows: 128, chunkRows: 64}, {dim: 31, rows: 200, blockRows: 128, chunkRows: 64}}
	for dim := 1; dim <= 8; dim++ {
		geos = append(geos, geo{dim: dim, rows: 150, blockRows: 128, chunkRows: 64})
	}
	sizes := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, maxBatch - 1, maxBatch, maxBatch + 1}
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		sets := kernelSets()
		if tier != TierFloat32 {
			sets = sets[len(sets)-1:] // the host's
		}
		for _, g := range geos {
			t.Run(fmt.Sprintf("%v/dim=%d", tier, g.dim), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(24, uint64(g.dim)))
				m := NewMatrixTier(g.dim, tier)
				if g.blockRows > 0 {
					m = newMatrix(g.dim, g.blockRows, g.chunkRows, tier)
				}
				md := model{}
				vec := unitVec
				if g.dim < 100 {
					vec = gridVec // many ties
				}
				fill(rng, m, md, g.rows, vec)
				pool := make([]randQuery, maxBatch+1)
				for i := range pool {
					pool[i] = newRandQuery(rng, m, md, vec)
				}
				pool[5].k = 0 // a query that wants nothing, inside a batch
				// Floors no score reaches, beside the others: the pass's
				// lowest floor must not hide a run from the rest.
				pool[7].minScore = float32(math.NaN())
				pool[9].minScore = float32(math.Inf(1))
				for _, set := range sets {
					useKernels(set.simd, set.avx512)
					for _, key := range []func(uint64) uint64{nil, reverse} {
						want := make([][]Hit, len(pool))
						for i, q := range pool {
							var err error
							want[i], err = m.SearchSharedAs(context.Background(), q.vec, q.k, q.minScore, key)
							require.NoError(t, err)
						}
						for _, n := range sizes {
							if set.name == "go" && n > 17 {
								continue // the same pass, only slower: the kernel's own tests cover it
							}
							qs := make([]Query, n)
							for i, q := range pool[:n] {
								qs[i] = Query{Vec: q.vec, K: q.k, MinScore: q.minScore}
							}
							got, err := m.SearchBatch(context.Background(), qs, key)
							require.NoError(t, err)
							require.Len(t, got, n)
							for i := range qs {
								require.Equal(t, want[i], got[i], "%s: batch of %d, query %d, keyed=%v", set.name, n, i, key != nil)
							}
						}
					}
				}
			})
		}
	}
}

// TestSearchBatchChecks: a query of the wrong length fails the whole batch
// before any scan, naming it; a cancelled context stops the batch; an
// empty matrix answers every query with nothing.
func TestSearchBatchChecks(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 1))
	m := NewMatrix(4)
	got, err := m.SearchBatch(context.Background(), []Query{{Vec: make([]float32, 4), K: 3}}, nil)
	require.NoError(t, err)
	require.Equal(t, [][]Hit{nil}, got)

	fill(rng, m, model{}, 50, unitVec)
	_, err = m.SearchBatch(context.Background(), []Query{{Vec: unitVec(rng, 4), K: 1}, {Vec: unitVec(rng, 5), K: 1}}, nil)
	require.ErrorIs(t, err, ErrDimension)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = m.SearchBatch(ctx, []Query{{Vec: unitVec(rng, 4), K: 1}}, nil)
	require.ErrorIs(t, err, context.Canceled)
}

// BenchmarkSearchBatch measures queries per second and GFLOP/s (two per
// value of a query's dot products) of SearchBatch by batch size and tier,
// past the caches (200k rows x 512, 400 MB); batch=1 is one query per
// pass, as Search runs it. At batch=256 a pass is bound by arithmetic.
func BenchmarkSearchBatch(b *testing.B) {
	const rows, dim = 200_000, 512
	rng := rand.New(rand.NewPCG(24, 25))
	vecs := make([][]float32, rows)
	for i := range vecs {
		vecs[i] = unitVec(rng, dim)
	}
	for _, tier := range []Tier{TierFloat32, TierInt8} {
		m := NewMatrixTier(dim, tier)
		for key, v := range vecs {
			m.Upsert(uint64(key), v)
		}
		for _, nq := range []int{1, 3, 6, 64, maxBatch} {
			qs := make([]Query, nq)
			for i := range qs {
				qs[i] = Query{Vec: unitVec(rng, dim), K: 10, MinScore: -1}
			}
			b.Run(fmt.Sprintf("%v/batch=%d", tier, nq), func(b *testing.B) {
				for b.Loop() {
					if _, err := m.SearchBatch(context.Background(), qs, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(nq*b.N)/b.Elapsed().Seconds(), "queries/s")
				b.ReportMetric(float64(nq*rows*dim*2)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestSearchBatchPasses: a batch reads the rows once per maxBatch queries,
// not once per query, in every tier (a compressed tier's groups scan the
// float32 rows or, int8 with VNNI, the int8 copy; its lone last query the
// compressed copy; each with perhaps a fallback).
func TestSearchBatchPasses(t *testing.T) {
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		rng := rand.New(rand.NewPCG(24, uint64(tier)))
		m := newMatrix(16, 128, 64, tier)
		fill(rng, m, model{}, 500, unitVec)
		qs := make([]Query, 3*maxBatch+1)
		for i := range qs {
			qs[i] = Query{Vec: unitVec(rng, 16), K: 5, MinScore: -1}
		}
		before := m.Stats()
		_, err := m.SearchBatch(context.Background(), qs, nil)
		require.NoError(t, err)
		after := m.Stats()
		assert.Equal(t, uint64(len(qs)), after.Searches-before.Searches, "%v", tier)
		passes := after.Passes - before.Passes
		if tier == TierFloat32 {
			assert.Equal(t, uint64(4), passes)
		} else {
			assert.Equal(t, uint64(4)+after.Fallbacks-before.Fallbacks, passes, "%v", tier)
		}
	}
}

// TestPassFloorsTrackHeaps: after a batched pass, each worker's compact
// floors equal its heaps' floors, full or not, so that the pass never
// skips a run holding a score that could enter a heap.
func TestPassFloorsTrackHeaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 7))
	m := newMatrix(40, 128, 64, TierFloat32)
	fill(rng, m, model{}, 700, unitVec)
	var qs []*query
	for i := range 9 {
		// Every other query's floor is too high for its heap ever to fill.
		minScore := float32(-1 + 1.9*float64(i%2))
		qs = append(qs, &query{vec: unitVec(rng, 40), k: 3, minScore: minScore, ctx: context.Background()})
	}
	p := m.newPlan(qs, 2, TierFloat32)
	require.NotNil(t, p.packed, "a batched pass")
	require.NoError(t, m.scan(p.workers, p.chunk, nil, p.visit, nil))
	for w := range p.workers {
		for i, q := range qs {
			assert.Equal(t, q.heaps[w].floor, p.floors[w][i], "worker %d query %d", w, i)
		}
	}
	full := 0
	for _, q := range qs {
		for _, h := range q.heaps {
			if len(h.items) == cap(h.items) {
				full++
			}
		}
	}
	assert.Positive(t, full, "some heaps filled")
	assert.Less(t, full, p.workers*len(qs), "some heaps still open")
}

// TestSearchBatchAllocsPerPass: a batched pass allocates per pass, not
// per kernel call: four times the rows, in as many more runs, allocate no
// more.
func TestSearchBatchAllocsPerPass(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 8))
	const dim = 64
	qs := make([]Query, 12)
	for i := range qs {
		qs[i] = Query{Vec: unitVec(rng, dim), K: 5, MinScore: -1}
	}
	allocs := func(rows int) float64 {
		m := newMatrix(dim, 1024, 1024, TierFloat32)
		fill(rng, m, model{}, rows, unitVec)
		require.Equal(t, 1, m.workers(), "one worker either way")
		return testing.AllocsPerRun(5, func() {
			_, err := m.SearchBatch(context.Background(), qs, nil)
			require.NoError(t, err)
		})
	}
	assert.Equal(t, allocs(1_000), allocs(4_000))
}
