package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/roc"
)

// newGallery lays users out as a matrix, user u in row u, as eval does,
// for scorePairs. It panics if users is empty or their lengths differ.
func newGallery(users [][]float32) *index.Matrix {
	g := index.NewMatrix(len(users[0]))
	for u, v := range users {
		g.Upsert(uint64(u), v)
	}
	return g
}

// naivePairs is scorePairs one index.Dot per pair into one counter: the
// reference.
func naivePairs(users [][]float32, probes []probe, genuine, tailLen int) roc.Scores {
	c := roc.NewCounter(tailLen)
	scores := make([]float32, genuine)
	for i, pr := range probes {
		for u, uv := range users {
			s := index.Dot(pr.vec, uv)
			if u == pr.mate {
				scores[i] = s
				c.Genuine(s)
				continue
			}
			c.Impostors([]float32{s})
		}
	}
	return roc.Merge(scores, tailLen, c)
}

// TestScorePairs: eval's batched scoring of every probe against every
// user gives exactly the scores, histograms, impostor tail and so the
// operating points of one Dot per pair, for counts on both sides of its
// blocks of probes and of the kernel's runs of users, mates on the edges
// of those runs and in the same group of probes, and users repeating
// (equal scores, many in the tail's lowest bin).
func TestScorePairs(t *testing.T) {
	for _, tt := range []struct{ dim, users, probes, distinct int }{
		{1, 1, 1, 0}, {3, 5, 7, 0}, {8, 2, 200, 0}, {31, 513, pairProbes + 1, 0},
		{67, 1029, 2*pairProbes - 1, 0}, {512, 40, 3*pairProbes + 2, 0}, {128, 700, pairProbes + 5, 3},
	} {
		t.Run(fmt.Sprintf("dim=%d/users=%d/probes=%d/distinct=%d", tt.dim, tt.users, tt.probes, tt.distinct), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(24, uint64(tt.dim)))
			vec := func() []float32 {
				v := make([]float64, tt.dim)
				for i := range v {
					v[i] = rng.NormFloat64()
				}
				u, err := unit(v)
				require.NoError(t, err)
				return u
			}
			users := make([][]float32, tt.users)
			for u := range users {
				if tt.distinct > 0 && u >= tt.distinct {
					users[u] = users[u%tt.distinct]
					continue
				}
				users[u] = vec()
			}
			gallery := newGallery(users)
			var edges []int // the first and last users of the kernel's runs
			gallery.DotsRuns(users[0], func(d index.DotsRun) { edges = append(edges, d.Lo, d.Lo+d.N-1) })
			probes := make([]probe, tt.probes)
			genuine := tt.probes * 2 / 3
			for i := range probes {
				probes[i] = probe{vec: vec(), mate: -1}
				switch {
				case i >= genuine:
				case i%3 == 2:
					probes[i].mate = rng.IntN(tt.users)
				default:
					probes[i].mate = edges[rng.IntN(len(edges))]
				}
			}
			tail := 1 + tt.users*tt.probes/10
			want := naivePairs(users, probes, genuine, tail)
			wantPoints := roc.OperatingPoints(want, evalFARs, want.Genuine)
			slices.Sort(want.Tail) // the tail is a set: its order is the workers'
			got := scorePairs(gallery, probes, genuine, tail, nil)
			require.Equal(t, wantPoints, roc.OperatingPoints(got, evalFARs, got.Genuine))
			slices.Sort(got.Tail)
			require.Equal(t, want, got)
		})
	}
}

// TestScorePairsProgress: scorePairs reports pairs scored after every
// block of probes, never fewer than before, the last report all of them.
func TestScorePairsProgress(t *testing.T) {
	users := [][]float32{{1, 0}, {0, 1}, {0.6, 0.8}}
	probes := make([]probe, 5*pairProbes+1)
	for i := range probes {
		probes[i] = probe{vec: users[i%len(users)], mate: i % len(users)}
	}
	var ticks []int64
	scorePairs(newGallery(users), probes, len(probes), 10, func(pairs int64) { ticks = append(ticks, pairs) })
	require.Len(t, ticks, 6, "one report per block of probes")
	assert.IsNonDecreasing(t, ticks)
	assert.EqualValues(t, len(users)*len(probes), ticks[len(ticks)-1])
}

// BenchmarkScorePairs times eval's scoring of every probe against every
// user next to index.DotsRuns alone over the same blocks and workers, so
// that the share of the time outside the kernel reads off one run:
// GFLOP/s counts the dot products' multiply-adds as two operations.
func BenchmarkScorePairs(b *testing.B) {
	const dim, nUsers, nProbes = 512, 200_000, 384
	rng := rand.New(rand.NewPCG(1, 2))
	vec := func() []float32 {
		v := make([]float64, dim)
		for i := range v {
			v[i] = rng.Float64() - 0.5
		}
		u, _ := unit(v)
		return u
	}
	users := make([][]float32, nUsers)
	for u := range users {
		users[u] = vec()
	}
	gallery := newGallery(users)
	probes := make([]probe, nProbes)
	for i := range probes {
		probes[i] = probe{vec: vec(), mate: i * (nUsers / nProbes)}
	}
	pairs := float64(nUsers) * nProbes
	tail := roc.TailLength(0.01, int64(pairs))
	report := func(b *testing.B) {
		b.ReportMetric(2*dim*pairs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	b.Run("scorePairs", func(b *testing.B) {
		for b.Loop() {
			scorePairs(gallery, probes, nProbes, tail, nil)
		}
		report(b)
	})
	b.Run("DotsRuns", func(b *testing.B) {
		workers := runtime.GOMAXPROCS(0)
		for b.Loop() {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for lo := w * pairProbes; lo < nProbes; lo += workers * pairProbes {
						qs := slices.Concat(vecs(probes[lo:min(lo+pairProbes, nProbes)])...)
						gallery.DotsRuns(qs, func(index.DotsRun) {})
					}
				})
			}
			wg.Wait()
		}
		report(b)
	})
}

func vecs(ps []probe) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = p.vec
	}
	return out
}
