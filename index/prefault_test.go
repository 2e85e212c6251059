package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// BenchmarkUpsertFresh fills a new 1M x 512 matrix (2 GB) row by row, as
// Open and a bulk import do. On a VM whose first touch of a page costs a
// host-side fault, the rows' copy into fresh blocks dominates the load.
// The first touch of memory freed by a previous run is cheaper, so compare
// versions in separate processes, one iteration each, alternating:
//
//	go test -run '^$' -bench UpsertFresh -benchtime 1x -count 1 ./index/
func BenchmarkUpsertFresh(b *testing.B) {
	const rows, dim = 1_000_000, 512
	rng := rand.New(rand.NewPCG(1, 2))
	vecs := make([][]float32, 1024) // a hot source: the copy's cost is the destination's
	for i := range vecs {
		vecs[i] = unitVec(rng, dim)
	}
	for _, tier := range []Tier{TierFloat32, TierInt8} {
		for _, reserve := range []bool{false, true} {
			b.Run(fmt.Sprintf("tier=%v/reserve=%v", tier, reserve), func(b *testing.B) {
				for b.Loop() {
					m := NewMatrixTier(dim, tier)
					if reserve {
						m.Reserve(rows) // blocks allocated up front, faulted in by the copies
					}
					for key := range uint64(rows) {
						m.Upsert(key, vecs[key%uint64(len(vecs))])
					}
				}
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// TestPrefetch grows and drains matrices whose tiny blocks are prefetched,
// with searches running between the writes as the engine runs them (under
// a RWMutex): under -race this checks that a prefetched block's writes
// happen before its rows are written and read.
func TestPrefetch(t *testing.T) {
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		for _, reserve := range []int{0, 500, 3000} {
			t.Run(fmt.Sprintf("tier=%v/reserve=%d", tier, reserve), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(7, uint64(reserve)))
				m := newMatrix(8, 128, 64, tier)
				m.prefaultMin = 0
				md := model{}
				if reserve > 0 {
					m.Reserve(reserve)
					assert.GreaterOrEqual(t, m.capacity(), reserve, "Reserve allocates the blocks")
					assert.Empty(t, m.ahead, "Reserve allocates, it does not prefetch")
				}
				q := gridVec(rng, 8)
				var mu sync.RWMutex
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						mu.RLock()
						_, err := m.Search(context.Background(), q, 5, -1)
						mu.RUnlock()
						assert.NoError(t, err)
					}
				})
				for _, n := range []int{2000, 100, 2500} {
					mu.Lock()
					if n > len(md) {
						fill(rng, m, md, n, gridVec)
					} else {
						for key := range md {
							if len(md) == n {
								break
							}
							m.Delete(key)
							delete(md, key)
						}
					}
					assert.LessOrEqual(t, len(m.ahead), maxAhead)
					mu.Unlock()
				}
				close(stop)
				wg.Wait()
				checkMatrix(t, m, md)
				if m.comp != nil {
					checkCompressed(t, m) // a prefetched copy's padding is zero, as the kernels need
				}
				checkSearch(t, m, md, gridVec(rng, 8), 10, -1)
			})
		}
	}
}

// TestPrefetchDepth: blocks are prefetched only for full-size blocks worth
// it, in proportion to the matrix; Reserve allocates what it announces
// instead, so a reserved load prefetches nothing.
func TestPrefetchDepth(t *testing.T) {
	m := NewMatrix(512)
	m.Reserve(3000)
	assert.GreaterOrEqual(t, m.capacity(), 3000)
	for key := range uint64(3000) {
		m.Upsert(key, make([]float32, 512))
	}
	assert.Empty(t, m.ahead, "the rows Reserve announced have their blocks")

	m = newMatrix(8, 128, 64, TierFloat32)
	fill(rand.New(rand.NewPCG(1, 1)), m, model{}, 1000, gridVec)
	assert.Empty(t, m.ahead, "tiny blocks are not worth a goroutine")

	m.prefaultMin = 0
	fill(rand.New(rand.NewPCG(2, 2)), m, model{}, 2000, gridVec)
	assert.Len(t, m.ahead, min(len(m.blocks)/16, maxAhead), "one block per 16")
}

// TestPrefetchEnds: a dropped matrix leaves no goroutine behind for long.
func TestPrefetchEnds(t *testing.T) {
	before := runtime.NumGoroutine()
	m := NewMatrix(512)
	row := make([]float32, 512)
	for key := range uint64(17 * m.blockRows) {
		m.Upsert(key, row)
	}
	require.NotEmpty(t, m.ahead)
	m = nil
	// Polled by hand: assert.Eventually runs its condition on goroutines of
	// its own.
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; {
		require.True(t, time.Now().Before(deadline), "%d goroutines left, %d before", runtime.NumGoroutine(), before)
		time.Sleep(time.Millisecond)
	}
}
