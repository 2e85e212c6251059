package index

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randQuery is a search as a caller might make one: a stored row or a fresh
// vector, any k, a cut-off that keeps all, some or none.
type randQuery struct {
	vec      []float32
	k        int
	minScore float32
}

func newRandQuery(rng *rand.Rand, m *Matrix, md model, vec func(*rand.Rand, int) []float32) randQuery {
	q := randQuery{vec: vec(rng, m.Dim()), k: 1 + rng.IntN(12), minScore: float32(math.Inf(-1))}
	if rng.IntN(3) == 0 && len(md) > 0 {
		for _, v := range md {
			q.vec = v
			break
		}
	}
	switch rng.IntN(4) {
	case 0:
		q.minScore = 0
	case 1:
		q.k = len(md) + 3
	case 2:
		all := md.ranked(q.vec)
		if len(all) > 0 {
			q.minScore = all[rng.IntN(len(all))].Score
		}
	}
	return q
}

// TestPassMatchesSearch: scoring several queries per row (the batched
// kernel, its groups padded) gives every query exactly what it gets alone,
// hit for hit, at every fan-out, with every kernel set.
func TestPassMatchesSearch(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, geo := range []struct{ dim, rows, blockRows, chunkRows int }{
		{dim: 5, rows: 300, blockRows: 128, chunkRows: 64},
		{dim: 31, rows: 200, blockRows: 128, chunkRows: 64},
		{dim: 33, rows: 500, blockRows: 128, chunkRows: 64},
		{dim: 33, rows: 501, blockRows: 128, chunkRows: 64}, // a chunk of odd rows last
		{dim: 67, rows: 1000},
		{dim: 512, rows: 700},
		{dim: 512, rows: 701},
	} {
		t.Run(fmt.Sprintf("dim=%d", geo.dim), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(31, uint64(geo.dim)))
			m := NewMatrix(geo.dim)
			if geo.blockRows > 0 {
				m = newMatrix(geo.dim, geo.blockRows, geo.chunkRows, TierFloat32)
			}
			md := model{}
			vec, exact := unitVec, geo.dim < 100
			if exact {
				vec = gridVec // exact scores, many ties
			}
			fill(rng, m, md, geo.rows, vec)
			for _, c := range []struct{ simd, avx512 bool }{{true, hostFeatures.avx512}, {true, false}, {false, false}} {
				useKernels(c.simd, c.avx512)
				simd := c.simd
				for _, nq := range []int{1, 2, 3, 4, 5, 7, 8, 9, 11, 13} {
					queries := make([]randQuery, nq)
					for i := range queries {
						queries[i] = newRandQuery(rng, m, md, vec)
					}
					for _, workers := range []int{1, 2, 3} {
						qs := make([]*query, nq)
						for i, rq := range queries {
							qs[i] = &query{vec: rq.vec, k: rq.k, minScore: rq.minScore, ctx: context.Background()}
						}
						m.passTier(qs, workers, TierFloat32)
						for i, rq := range queries {
							want, err := m.search(context.Background(), rq.vec, rq.k, rq.minScore, 1)
							require.NoError(t, err)
							require.NoError(t, qs[i].err)
							require.Equal(t, want, qs[i].hits, "simd=%v avx512=%v nq=%d workers=%d query %d", simd, c.avx512, nq, workers, i)
							if exact {
								require.Equal(t, md.oracle(rq.vec, rq.k, rq.minScore), qs[i].hits)
							}
						}
					}
				}
			}
		})
	}
}

// sharedMatrix returns a matrix whose searches SearchShared always
// coalesces, however small.
func sharedMatrix(t *testing.T, rng *rand.Rand, dim, rows int, tier Tier) (*Matrix, model) {
	t.Helper()
	m := newMatrix(dim, 128, 64, tier)
	m.shareMin = 0
	md := model{}
	fill(rng, m, md, rows, unitVec)
	return m, md
}

// TestSearchSharedConcurrent hammers SearchShared from many goroutines, a
// few of them cancelling, and checks that every answer is exactly the one
// Search gives alone, and that passes really were shared.
func TestSearchSharedConcurrent(t *testing.T) {
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		t.Run(tier.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(41, uint64(tier)))
			m, md := sharedMatrix(t, rng, 48, 3000, tier)
			// A pass that takes a moment lets callers pile up behind it,
			// as they do behind a real scan of a large matrix.
			m.passHook = func([]*query) { time.Sleep(200 * time.Microsecond) }
			queries := make([]randQuery, 40)
			wants := make([][]Hit, len(queries))
			for i := range queries {
				queries[i] = newRandQuery(rng, m, md, unitVec)
				var err error
				wants[i], err = m.searchExact(context.Background(), queries[i].vec, queries[i].k, queries[i].minScore, 1)
				require.NoError(t, err)
			}
			goroutines, rounds := 24, 30
			if stress() {
				goroutines, rounds = 64, 500
			}
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 43))
					for range rounds {
						i := rng.IntN(len(queries))
						ctx, cancel := context.WithCancel(context.Background())
						mode := rng.IntN(10)
						switch mode {
						case 0:
							cancel() // cancelled before the call
						case 1:
							time.AfterFunc(time.Duration(rng.IntN(300))*time.Microsecond, cancel)
						}
						// The caller's slice is scribbled on as soon as the call
						// returns: a pass must not read it after that.
						q := append([]float32(nil), queries[i].vec...)
						got, err := m.SearchShared(ctx, q, queries[i].k, queries[i].minScore)
						for j := range q {
							q[j] = float32(math.NaN())
						}
						cancel()
						switch {
						case mode == 0:
							assert.ErrorIs(t, err, context.Canceled)
						case err != nil:
							assert.True(t, mode == 1, "uncancelled query %d failed: %v", i, err)
							assert.ErrorIs(t, err, context.Canceled)
						default:
							assert.Equal(t, wants[i], got, "query %d", i)
						}
					}
				})
			}
			wg.Wait()
			st := m.Stats()
			t.Logf("%+v: %.1f searches per pass", st, float64(st.Searches)/float64(st.Passes))
			assert.Greater(t, st.Shared, uint64(0), "some passes were shared")
			assert.Less(t, st.Passes, st.Searches, "fewer passes than searches")
			assert.False(t, m.shared.running, "the coalescer is idle")
			assert.Empty(t, m.shared.queue)
		})
	}
}

func stress() bool { return os.Getenv("FACESEARCH_STRESS") != "" && !testing.Short() }

// TestSearchSharedCancel walks the cancellation cases one at a time, with
// passes held open by the hook: a queued caller leaves the queue, a
// cancelled leader still serves its members, and a pass whose every query
// is cancelled stops.
func TestSearchSharedCancel(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	m, _ := sharedMatrix(t, rng, 32, 2000, TierFloat32)
	q := unitVec(rng, 32)
	want, err := m.Search(context.Background(), q, 5, -1)
	require.NoError(t, err)

	started, release, queued, call := holdPasses(t, m, q)

	// A leads pass 1, held open. B and C queue; B gives up while queued.
	a := call(context.Background())
	require.Equal(t, 1, within(t, started))
	ctxB, cancelB := context.WithCancel(context.Background())
	b := call(ctxB)
	queued(1)
	ctxC, cancelC := context.WithCancel(context.Background())
	c := call(ctxC)
	queued(2)
	cancelB()
	rb := within(t, b)
	assert.ErrorIs(t, rb.err, context.Canceled)
	queued(1)

	// D queues too; pass 1 ends; C leads pass 2 with D as member. C is
	// cancelled mid-pass: D still gets its answer.
	d := call(context.Background())
	queued(2)
	release <- struct{}{}
	ra := within(t, a)
	require.NoError(t, ra.err)
	assert.Equal(t, want, ra.hits)
	require.Equal(t, 2, within(t, started))
	cancelC()
	release <- struct{}{}
	rd := within(t, d)
	require.NoError(t, rd.err)
	assert.Equal(t, want, rd.hits)
	rc := within(t, c)
	assert.ErrorIs(t, rc.err, context.Canceled)

	// The callers around pass 2 would let pass 3 give way to F and G
	// (TestSharedPassGivesWay); here it is to run alone.
	m.shared.mu.Lock()
	m.shared.around = 0
	m.shared.mu.Unlock()

	// E leads pass 3 alone; F and G queue and lead nothing yet. Pass 4
	// (F with G) has both cancelled while held: it gives up, and both
	// report their own error.
	e := call(context.Background())
	require.Equal(t, 1, within(t, started))
	ctxF, cancelF := context.WithCancel(context.Background())
	f := call(ctxF)
	queued(1)
	ctxG, cancelG := context.WithTimeout(context.Background(), time.Hour)
	g := call(ctxG)
	queued(2)
	release <- struct{}{}
	re := within(t, e)
	require.NoError(t, re.err)
	require.Equal(t, 2, within(t, started))
	cancelF()
	cancelG()
	passes := m.Stats().Passes
	release <- struct{}{}
	rf, rg := within(t, f), within(t, g)
	assert.ErrorIs(t, rf.err, context.Canceled)
	assert.ErrorIs(t, rg.err, context.Canceled)
	assert.Nil(t, rf.hits)
	assert.Equal(t, passes+1, m.Stats().Passes, "the abandoned pass was one pass")

	m.shared.mu.Lock()
	assert.False(t, m.shared.running)
	m.shared.mu.Unlock()
	close(release)
	close(started)
}

// TestSearchSharedSmall: below the coalescing size, SearchShared is Search.
func TestSearchSharedSmall(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	m := NewMatrix(8)
	md := model{}
	fill(rng, m, md, 100, gridVec)
	q := gridVec(rng, 8)
	got, err := m.SearchShared(context.Background(), q, 7, -1)
	require.NoError(t, err)
	assert.Equal(t, md.oracle(q, 7, -1), got)
	assert.Zero(t, m.Stats().Shared)
	_, err = m.SearchShared(context.Background(), []float32{1}, 7, -1)
	assert.ErrorIs(t, err, ErrDimension)
}

// BenchmarkSearchShared measures one pass for nq queries against nq passes
// of one query: the gain coalescing buys (rows x dim = 64 Mi floats, past
// the caches, so memory traffic counts as it does at scale).
func BenchmarkSearchShared(b *testing.B) {
	const dim = 512
	m, _ := benchMatrix(b, 1<<17, dim)
	rng := rand.New(rand.NewPCG(71, 72))
	for _, nq := range []int{1, 3, 8, 16, 32} {
		vecs := make([][]float32, nq)
		for i := range vecs {
			vecs[i] = unitVec(rng, dim)
		}
		b.Run(fmt.Sprintf("queries=%d", nq), func(b *testing.B) {
			b.SetBytes(int64(m.Len() * dim * 4 * nq)) // per query as if scanned alone
			for b.Loop() {
				qs := make([]*query, nq)
				for i := range qs {
					qs[i] = &query{vec: vecs[i], k: 10, minScore: -1, ctx: context.Background()}
				}
				m.pass(qs, m.workers())
			}
		})
	}
}
