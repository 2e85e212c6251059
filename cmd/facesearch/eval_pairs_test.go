package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

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
			c.Impostor(s)
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
			want, got := naivePairs(users, probes, genuine, tail), scorePairs(users, probes, genuine, tail, nil)
			slices.Sort(want.Tail) // the tail is a set: its order is the workers'
			slices.Sort(got.Tail)
			require.Equal(t, want, got)
		})
	}
}
