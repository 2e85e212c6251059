package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/roc"
)

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
// user gives exactly the scores, histograms and impostor tail of one Dot
// per pair, for counts on both sides of its blocks of probes and users.
func TestScorePairs(t *testing.T) {
	for _, tt := range []struct{ dim, users, probes int }{
		{1, 1, 1}, {3, 5, 7}, {8, 2, 200}, {31, pairUsers + 1, pairProbes + 1}, {67, 2*pairUsers + 5, 2*pairProbes - 1}, {512, 40, 3*pairProbes + 2},
	} {
		t.Run(fmt.Sprintf("dim=%d/users=%d/probes=%d", tt.dim, tt.users, tt.probes), func(t *testing.T) {
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
				users[u] = vec()
			}
			probes := make([]probe, tt.probes)
			genuine := tt.probes * 2 / 3
			for i := range probes {
				probes[i] = probe{vec: vec(), mate: -1}
				if i < genuine {
					probes[i].mate = rng.IntN(tt.users)
				}
			}
			tail := 1 + tt.users*tt.probes/10
			// The same users in one slice, as eval lays them out, are read
			// in place rather than packed block by block.
			slab := slices.Concat(users...)
			inPlace := make([][]float32, len(users))
			for u := range inPlace {
				inPlace[u] = slab[u*tt.dim : (u+1)*tt.dim]
			}
			require.NotNil(t, contiguous(inPlace, tt.dim))
			want := naivePairs(users, probes, genuine, tail)
			slices.Sort(want.Tail) // the tail is a set: its order is the workers'
			for _, us := range [][][]float32{users, inPlace} {
				got := scorePairs(us, probes, genuine, tail, nil)
				slices.Sort(got.Tail)
				require.Equal(t, want, got)
			}
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
	scorePairs(users, probes, len(probes), 10, func(pairs int64) { ticks = append(ticks, pairs) })
	require.Len(t, ticks, 6, "one report per block of probes")
	assert.IsNonDecreasing(t, ticks)
	assert.EqualValues(t, len(users)*len(probes), ticks[len(ticks)-1])
}

// BenchmarkScorePairs times eval's scoring of every probe against every
// user next to index.Dots alone over the same blocks, so that the share of
// the time outside the kernel reads off one run: GFLOP/s counts the dot
// products' multiply-adds as two operations.
func BenchmarkScorePairs(b *testing.B) {
	const dim, nUsers, nProbes = 512, 50_000, 192
	rng := rand.New(rand.NewPCG(1, 2))
	vec := func() []float32 {
		v := make([]float64, dim)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		u, _ := unit(v)
		return u
	}
	slab := make([]float32, 0, nUsers*dim)
	users := make([][]float32, nUsers)
	for u := range users {
		slab = append(slab, vec()...)
		users[u] = slab[u*dim : (u+1)*dim]
	}
	probes := make([]probe, nProbes)
	for i := range probes {
		probes[i] = probe{vec: vec(), mate: i % nUsers}
	}
	pairs := float64(nUsers) * nProbes
	tail := roc.TailLength(0.01, int64(pairs))
	report := func(b *testing.B) {
		b.ReportMetric(2*dim*pairs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	b.Run("scorePairs", func(b *testing.B) {
		for b.Loop() {
			scorePairs(users, probes, nProbes, tail, nil)
		}
		report(b)
	})
	b.Run("dots", func(b *testing.B) {
		qs := make([]float32, 0, pairProbes*dim)
		out := make([]float32, pairProbes*pairUsers)
		for b.Loop() {
			for lo := 0; lo < nProbes; lo += pairProbes {
				qs = qs[:0]
				for _, pr := range probes[lo:min(lo+pairProbes, nProbes)] {
					qs = append(qs, pr.vec...)
				}
				for u := 0; u < nUsers; u += pairUsers {
					n := min(pairUsers, nUsers-u)
					index.Dots(qs, slab[u*dim:(u+n)*dim], dim, out)
				}
			}
		}
		report(b)
	})
}
