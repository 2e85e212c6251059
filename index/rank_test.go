package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rekeyed is md's brute-force ranking with every key replaced by key(key):
// what SearchSharedAs must return, cut at k and minScore.
func (md model) rekeyed(q []float32, key func(uint64) uint64) []Hit {
	ranked := md.ranked(q)
	for i := range ranked {
		ranked[i].Key = key(ranked[i].Key)
	}
	slices.SortFunc(ranked, CompareHits)
	return ranked
}

// TestSearchSharedAs: rows ranked under other keys come back as the best k
// of a matrix keyed that way, the rows tied at the k-th score chosen by the
// new keys, in every tier, alone or coalesced, at every fan-out.
func TestSearchSharedAs(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		for _, shared := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/shared=%v", tier, shared), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(111, uint64(tier)))
				// Four grid values a row: exact scores, and hundreds of rows
				// on each, so the k-th score is nearly always tied.
				m, md := newMatrix(4, 128, 64, tier), model{}
				if shared {
					m.shareMin = 0
				}
				fill(rng, m, md, 700, gridVec)
				for _, mask := range []uint64{0, 1<<40 - 1, 0x5555555555} {
					key := func(k uint64) uint64 { return k ^ mask }
					for range 6 {
						q := gridVec(rng, 4)
						ranked := md.rekeyed(q, key)
						for _, k := range []int{1, 2, 10, 100, 699, 700, 800} {
							minScore := float32(-1)
							if k%2 == 0 {
								minScore = ranked[len(ranked)/3].Score
							}
							want := cut(ranked, k, minScore)
							got, err := m.SearchSharedAs(context.Background(), q, k, minScore, key)
							require.NoError(t, err)
							require.Equal(t, want, got, "k=%d min=%v mask=%x", k, minScore, mask)
							for _, workers := range []int{1, 3} {
								got, err := m.searchAs(context.Background(), q, k, minScore, key, workers)
								require.NoError(t, err)
								require.Equal(t, want, got, "k=%d min=%v mask=%x workers=%d", k, minScore, mask, workers)
							}
						}
					}
				}
			})
		}
	}
}

// TestSearchSharedAsCoalesced: queries with different key functions that
// share one pass each rank under their own.
func TestSearchSharedAsCoalesced(t *testing.T) {
	rng := rand.New(rand.NewPCG(113, 114))
	m, md := newMatrix(4, 128, 64, TierFloat32), model{}
	m.shareMin = 0
	fill(rng, m, md, 500, gridVec)
	m.passHook = func([]*query) { time.Sleep(200 * time.Microsecond) } // let the callers queue
	const callers, rounds = 8, 20
	q := gridVec(rng, 4)
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for c := range callers {
		mask := uint64(c) * 0x9e3779b97f
		key := func(k uint64) uint64 { return k ^ mask }
		want := cut(md.rekeyed(q, key), 5, -1)
		wg.Go(func() {
			for range rounds {
				got, err := m.SearchSharedAs(context.Background(), q, 5, -1, key)
				if err == nil && !slices.Equal(want, got) {
					err = fmt.Errorf("caller %d: got %v, want %v", c, got, want)
				}
				if err != nil {
					errs[c] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Greater(t, m.Stats().Shared, uint64(0), "no pass was shared")
}

// TestSearchAsKeysOnlyTheAnswer: a row's key is asked for only to break a
// tie of scores or to report it (one worker here: each worker reports its
// own k), not for each row that enters a heap and leaves it again (the
// engine's key is two map lookups).
func TestSearchAsKeysOnlyTheAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(115, 116))
	m, md := newMatrix(16, 1024, 1024, TierFloat32), model{}
	fill(rng, m, md, 5000, unitVec) // random scores: no ties
	for _, k := range []int{1, 5, 20} {
		q := unitVec(rng, 16)
		asked := 0
		key := func(k uint64) uint64 { asked++; return k + 1 }
		got, err := m.searchAs(context.Background(), q, k, -1, key, 1)
		require.NoError(t, err)
		want := cut(md.rekeyed(q, func(k uint64) uint64 { return k + 1 }), k, -1)
		require.Len(t, got, k)
		for i := range want {
			require.Equal(t, want[i].Key, got[i].Key, "k=%d: hit %d", k, i)
		}
		require.Equal(t, k, asked, "k=%d: keys asked", k)
	}
}
