package index

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// batchKernelSets are the kernel sets this CPU runs that differ in the
// batched int8 kernel, each made to take every batch (batchI8Min 1):
// pure Go, and VNNI where there is one.
func batchKernelSets() map[string]*kernelSet {
	sets := map[string]*kernelSet{}
	for _, vnni := range []bool{false, true} {
		f := hostFeatures
		f.vnni = f.vnni && vnni
		k := chooseKernels(f)
		k.batchI8Min = 1
		sets[fmt.Sprintf("vnni=%v", f.vnni)] = k
	}
	return sets
}

// randQ8 fills a query's int8 values: random, or (extreme) every value
// +127 or -127 as the row's are, the products all at their largest and of
// one sign.
func randQ8(rng *rand.Rand, q8 []int8, extreme bool) {
	for i := range q8 {
		q8[i] = int8(rng.IntN(255) - 127)
		if extreme {
			q8[i] = 127
		}
	}
}

// TestBoundsI8BatchKernels: every kernel set's batched kernel gives the
// pure-Go kernel's bounds bit for bit, and the pure-Go kernel gives the
// formula's bounds from an int64 dot product, for every stride class, tile
// height and number of queries (each remainder of the assembly's groups
// of 16 and 4).
func TestBoundsI8BatchKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	for _, stride := range []int{32, 64, 96, 512, 4096} {
		for _, nq := range []int{1, 2, 3, 4, 5, 15, 16, 17, 20, 33} {
			nqs := nq
			b := &i8Batch{stride: stride, nq: nqs, n16: nqs / 16, n4: (nqs%16 + 3) / 4}
			pad := 16*b.n16 + 4*b.n4
			b.q8 = make([]int8, pad*stride)
			b.params = make([]i8Param, pad)
			for j := range nqs {
				randQ8(rng, b.q8[j*stride:(j+1)*stride], j == 0)
				if j == 1 {
					for i := range stride {
						b.q8[j*stride+i] = -127
					}
				}
				var sum int32
				for _, v := range b.q8[j*stride : (j+1)*stride] {
					sum += int32(v)
				}
				b.params[j] = i8Param{corr: -128 * sum, sq: rng.Float32() / 127, qnorm: 1 + rng.Float32(), slack: rng.Float32() / 100}
			}
			b.interlvd = b.pack()
			for _, n := range []int{1, 7, 15, 16} {
				rows := make([]int8, n*stride)
				for i := range rows {
					rows[i] = int8(rng.IntN(255) - 127)
				}
				for i := range stride {
					rows[i] = 127 // row 0 against query 0: every product 127*127
					if n > 1 {
						rows[stride+i] = -127
					}
				}
				scale, resid := make([]float32, n), make([]float32, n)
				for r := range n {
					scale[r], resid[r] = rng.Float32()/127, rng.Float32()/10
				}
				want := b.newTile()
				for j := range nqs {
					want.floor[j] = float32(rng.NormFloat64())
				}
				want.floor[0] = float32(math.Inf(-1))
				boundsI8BatchGo(b, rows, scale, resid, want)
				for j := range nqs {
					p := b.params[j]
					for r := range n {
						var dot int64
						for i := range stride {
							dot += int64(b.q8[j*stride+i]) * int64(rows[r*stride+i])
						}
						bound := float32(float32(float32(dot)*float32(scale[r]*p.sq))+float32(resid[r]*p.qnorm)) + p.slack
						require.Equal(t, math.Float32bits(bound), math.Float32bits(want.out[j*tileRows+r]), "stride %d query %d row %d", stride, j, r)
						require.Equal(t, bound >= want.floor[j], want.mask[j]&(1<<r) != 0, "mask: stride %d query %d row %d", stride, j, r)
					}
				}
				for name, k := range batchKernelSets() {
					got := b.newTile()
					copy(got.floor, want.floor)
					k.boundsI8Batch(b, rows, scale, resid, got)
					for j := range nqs {
						for r := range n {
							assert.Equal(t, math.Float32bits(want.out[j*tileRows+r]), math.Float32bits(got.out[j*tileRows+r]), "%s stride %d nq %d n %d query %d row %d", name, stride, nq, n, j, r)
						}
						valid := uint16(uint32(1)<<n - 1)
						assert.Equal(t, want.mask[j], got.mask[j]&valid, "%s mask stride %d nq %d n %d query %d", name, stride, nq, n, j)
					}
				}
			}
		}
	}
}

// halfStepVec puts every value but the largest (1) half a step of 1/127
// off the int8 grid, so that every rounding of it, as a row or as a query,
// is as large as it can be, and a row scored against itself adds them all
// up with one sign.
func halfStepVec(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = (float32(rng.IntN(127)) + 0.4999) / 127
		if rng.IntN(2) == 0 {
			v[i] = -v[i]
		}
	}
	v[0] = 1
	return v
}

// TestBoundsI8BatchHold: the batched bound is never below the float32
// kernel's score, for every kind of data (spiky queries, whose int8 form
// is coarsest, and values half a step off the grid included) and every
// kernel set.
func TestBoundsI8BatchHold(t *testing.T) {
	kinds := append(slices.Clone(vecKinds), struct {
		name string
		vec  func(*rand.Rand, int) []float32
	}{"halfstep", halfStepVec})
	for _, kind := range kinds {
		for _, dim := range []int{1, 7, 32, 33, 128, 515, 4096} {
			t.Run(fmt.Sprintf("%s/dim=%d", kind.name, dim), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(63, uint64(dim)))
				m := newMatrix(dim, 128, 64, TierInt8)
				fill(rng, m, model{}, 300, kind.vec)
				codes := m.comp.codes.(*int8Codes)
				qs := make([]*query, 7)
				for j := range qs {
					qs[j] = &query{vec: kind.vec(rng, dim)}
				}
				qs[0].vec = m.rowCopy(0) // rows themselves: the highest scores, every rounding aligned
				qs[1].vec = m.rowCopy(m.Len() - 1)
				b := newI8Batch(m.comp, qs)
				for name, k := range batchKernelSets() {
					slack := 0.0
					tile := b.newTile()
					for lo := 0; lo < m.Len(); lo += tileRows { // 32-row blocks: no tile straddles two
						hi := min(lo+tileRows, m.Len())
						k.boundsI8Batch(b, codes.run(lo, hi), codes.scale[lo:hi], m.comp.resid[lo:hi], tile)
						for j, q := range qs {
							for r := lo; r < hi; r++ {
								s := k.dot(q.vec, m.rowCopy(r))
								bound := tile.out[j*tileRows+r-lo]
								require.GreaterOrEqual(t, bound, s, "%s query %d row %d", name, j, r)
								slack = max(slack, float64(bound-s))
							}
						}
					}
					if kind.name == "unit" && dim >= 32 {
						assert.Less(t, slack, 0.1, "%s: largest bound - score", name)
					}
				}
			})
		}
	}
}

// TestSearchBatchI8IsExact: through the batched int8 pass, every kernel
// set answers each query of a batch exactly as a lone float32 search does
// (hits, score bits, order, ties), for batch sizes on both sides of the
// kernel's groups and dimensions on both sides of its 32 and 64-value
// steps; with few candidates past k, so the proof fails and falls back.
func TestSearchBatchI8IsExact(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	type geo struct{ dim, rows, blockRows, chunkRows int }
	geos := []geo{{dim: 4096, rows: 40}, {dim: 512, rows: 300}, {dim: 67, rows: 301, blockRows: 128, chunkRows: 64}, {dim: 31, rows: 200, blockRows: 128, chunkRows: 64}}
	for dim := 1; dim <= 8; dim++ {
		geos = append(geos, geo{dim: dim, rows: 150, blockRows: 128, chunkRows: 64})
	}
	sizes := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 255, 256, 257}
	for name, k := range batchKernelSets() {
		for _, g := range geos {
			t.Run(fmt.Sprintf("%s/dim=%d", name, g.dim), func(t *testing.T) {
				kernels = k
				rng := rand.New(rand.NewPCG(64, uint64(g.dim)))
				m, ref := NewMatrixTier(g.dim, TierInt8), NewMatrix(g.dim)
				if g.blockRows > 0 {
					m = newMatrix(g.dim, g.blockRows, g.chunkRows, TierInt8)
				}
				md := model{}
				vec := unitVec
				if g.dim < 100 {
					vec = gridVec // many ties
				}
				fill(rng, m, md, g.rows, vec)
				for key, v := range md {
					ref.Upsert(key, v)
				}
				pool := make([]randQuery, 257)
				for i := range pool {
					pool[i] = newRandQuery(rng, m, md, vec)
				}
				for _, slack := range []int{candidateSlack, 4, 0} {
					m.comp.slack = slack
					before := m.Stats()
					for _, n := range sizes {
						qs := make([]*query, n)
						for i, q := range pool[:n] {
							qs[i] = &query{vec: q.vec, k: q.k, minScore: q.minScore, ctx: context.Background()}
						}
						require.True(t, m.passBatchI8(qs, 1+n%3))
						for i, q := range qs {
							want, err := ref.search(context.Background(), q.vec, q.k, q.minScore, 1)
							require.NoError(t, err)
							require.NoError(t, q.err)
							require.Equal(t, want, q.hits, "batch of %d, query %d, slack %d", n, i, slack)
						}
					}
					t.Logf("slack %d: %d queries fell back", slack, m.Stats().Fallbacks-before.Fallbacks)
				}
			})
		}
	}
}

// TestSearchBatchI8Cancel: a batched int8 pass whose queries are all
// cancelled reports each query's context error.
func TestSearchBatchI8Cancel(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	rng := rand.New(rand.NewPCG(65, 66))
	m := newMatrix(64, 128, 64, TierInt8)
	fill(rng, m, model{}, 500, unitVec)
	for name, k := range batchKernelSets() {
		kernels = k
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		qs := []*query{{vec: unitVec(rng, 64), k: 3, ctx: ctx}, {vec: unitVec(rng, 64), k: 3, ctx: ctx}}
		require.True(t, m.passBatchI8(qs, 2))
		for _, q := range qs {
			require.ErrorIs(t, q.err, context.Canceled, name)
			require.Nil(t, q.hits, name)
		}
	}
}

// TestPassBatchI8Declines: the batched pass leaves other tiers, and groups
// below the kernel set's batchI8Min, to the float32 rows.
func TestPassBatchI8Declines(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	rng := rand.New(rand.NewPCG(67, 68))
	q := func() []*query {
		return []*query{{vec: unitVec(rng, 8), k: 1, ctx: context.Background()}, {vec: unitVec(rng, 8), k: 1, ctx: context.Background()}}
	}
	for _, tier := range []Tier{TierFloat32, TierFloat16} {
		m := newMatrix(8, 128, 64, tier)
		fill(rng, m, model{}, 20, unitVec)
		for _, k := range batchKernelSets() {
			kernels = k
			assert.False(t, m.passBatchI8(q(), 1), "%v", tier)
		}
	}
	m := newMatrix(8, 128, 64, TierInt8)
	fill(rng, m, model{}, 20, unitVec)
	kernels = chooseKernels(hostFeatures)
	kernels.batchI8Min = 3
	assert.False(t, m.passBatchI8(q(), 1))
	kernels.batchI8Min = 2
	assert.True(t, m.passBatchI8(q(), 1))
}

// BenchmarkBoundsI8Batch measures the batched kernel alone on one tile
// from L1, by kernel set and batch: GMAC/s counts the int8 products.
func BenchmarkBoundsI8Batch(b *testing.B) {
	const stride = 512
	rng := rand.New(rand.NewPCG(69, 70))
	rows := make([]int8, tileRows*stride)
	for i := range rows {
		rows[i] = int8(rng.IntN(255) - 127)
	}
	scale, resid := make([]float32, tileRows), make([]float32, tileRows)
	for _, nq := range []int{4, 16, 64} {
		qs := make([]*query, nq)
		for j := range qs {
			qs[j] = &query{vec: unitVec(rng, stride)}
		}
		c := newCompressed(TierInt8, stride, 16, 4)
		bt := newI8Batch(c, qs)
		for name, k := range batchKernelSets() {
			b.Run(fmt.Sprintf("%s/batch=%d", name, nq), func(b *testing.B) {
				t := bt.newTile()
				for b.Loop() {
					k.boundsI8Batch(bt, rows, scale, resid, t)
				}
				b.ReportMetric(float64(nq*tileRows*stride)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}

// BenchmarkSearchBatchI8 compares, on one int8 matrix of 200k x 512 rows
// (FACESEARCH_BENCH_ROWS sets another count), SearchBatch through the
// batched int8 kernel with what it does without it (the float32 rows from
// floatBatchMin queries on, the int8 copy one query at a time below),
// alternating the two in every iteration so that both see the same
// machine: queries/s of each and their ratio.
func BenchmarkSearchBatchI8(b *testing.B) {
	b.Cleanup(func() { kernels = hostKernels })
	const dim = 512
	rng := rand.New(rand.NewPCG(71, 72))
	m := benchTierMatrix(b, dim, TierInt8, rng)
	batched := chooseKernels(hostFeatures)
	if batched.batchI8Min == noDim {
		b.Skip("no batched int8 kernel on this CPU")
	}
	batched.batchI8Min = 1
	without := chooseKernels(hostFeatures)
	without.batchI8Min = noDim
	for _, nq := range []int{2, 3, 4, 6, 16, 64, 256} {
		qs := make([]Query, nq)
		for i := range qs {
			qs[i] = Query{Vec: unitVec(rng, dim), K: 10, MinScore: -1}
		}
		b.Run(fmt.Sprintf("batch=%d", nq), func(b *testing.B) {
			var with, alone time.Duration
			var rescored, fallbacks uint64
			for b.Loop() {
				for _, k := range []*kernelSet{batched, without} {
					kernels = k
					before, start := m.Stats(), time.Now()
					if _, err := m.SearchBatch(context.Background(), qs, nil); err != nil {
						b.Fatal(err)
					}
					if k == batched {
						with += time.Since(start)
						after := m.Stats()
						rescored += after.Rescored - before.Rescored
						fallbacks += after.Fallbacks - before.Fallbacks
					} else {
						alone += time.Since(start)
					}
				}
			}
			b.ReportMetric(float64(nq*b.N)/with.Seconds(), "int8-batched-q/s")
			b.ReportMetric(float64(nq*b.N)/alone.Seconds(), "without-q/s")
			b.ReportMetric(alone.Seconds()/with.Seconds(), "speedup")
			b.ReportMetric(float64(rescored)/float64(nq*b.N), "rescored/query")
			b.ReportMetric(float64(fallbacks)/float64(nq*b.N), "fallbacks/query")
		})
	}
}

// TestCandidatesMatchHeap: the candidates buffer keeps exactly the rows a
// heap of the same capacity keeps, with the same floor, on scores with
// many ties, whatever the order the rows come in.
func TestCandidatesMatchHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	for _, keep := range []int{1, 2, 5, 276} {
		for _, n := range []int{0, 1, keep - 1, keep, keep + 1, 3 * keep, 3*keep + 1, 40 * keep, 40*keep + 1} {
			hits := make([]Hit, n)
			for i := range hits {
				hits[i] = Hit{Key: uint64(i), Score: float32(rng.IntN(50)) / 8}
			}
			for _, order := range []string{"keys", "shuffled", "reversed"} {
				switch order {
				case "shuffled":
					rng.Shuffle(len(hits), func(i, j int) { hits[i], hits[j] = hits[j], hits[i] })
				case "reversed":
					slices.SortFunc(hits, func(a, b Hit) int { return -CompareHits(a, b) })
				}
				floor := float32(1)
				heap := topK{items: make([]Hit, 0, keep), floor: floor}
				c := newCandidates(&topK{items: make([]Hit, 0, keep), floor: floor})
				if n%2 == 1 {
					c.limit = keep + 1 // drop rows as often as can be
				}
				for _, h := range hits {
					heap.take([]float32{h.Score}, 1, []uint64{h.Key})
					if h.Score >= c.floor {
						c.items = append(c.items, h)
						if len(c.items) >= c.limit {
							c.shrink()
						}
					}
				}
				var got topK
				got.items = make([]Hit, 0, keep)
				got.floor = floor
				c.into(&got)
				want := slices.Clone(heap.items)
				slices.SortFunc(want, CompareHits)
				slices.SortFunc(got.items, CompareHits)
				require.Equal(t, want, got.items, "keep %d, %d rows in %s order", keep, n, order)
				require.Equal(t, cap(heap.items), cap(got.items))
				require.Equal(t, heap.floor, got.floor, "keep %d, %d rows in %s order: %v %v", keep, n, order, heap.items, got.items)
			}
		}
	}
}
