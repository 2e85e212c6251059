package index

import (
	"context"
	"fmt"
)

// Search returns up to k rows whose score (dot product with q) is at least
// minScore, ordered by score descending, then key ascending. k <= 0 returns
// nil. If ctx is done before the scan completes, Search returns ctx.Err().
// A q of the wrong length returns an error wrapping [ErrDimension].
//
// Every score is exactly [Dot](q, row), whatever the tier: a compressed tier
// only chooses which rows to score exactly (see [Tier]).
//
// Large matrices are split across up to runtime.GOMAXPROCS(0) goroutines.
func (m *Matrix) Search(ctx context.Context, q []float32, k int, minScore float32) ([]Hit, error) {
	return m.search(ctx, q, k, minScore, m.workers())
}

// check validates a query; ok is false when the answer is nil without a
// scan.
func (m *Matrix) check(q []float32, k int) (ok bool, err error) {
	if k <= 0 {
		return false, nil
	}
	if len(q) != m.dim {
		return false, fmt.Errorf("%w: query has %d values, matrix has dimension %d", ErrDimension, len(q), m.dim)
	}
	return len(m.keys) > 0, nil
}

func (m *Matrix) search(ctx context.Context, q []float32, k int, minScore float32, workers int) ([]Hit, error) {
	return m.searchAs(ctx, q, k, minScore, nil, workers)
}

// searchAs is search with rows ranked by key (nil: their own keys).
func (m *Matrix) searchAs(ctx context.Context, q []float32, k int, minScore float32, key func(uint64) uint64, workers int) ([]Hit, error) {
	if ok, err := m.check(q, k); !ok {
		return nil, err
	}
	m.stats.searches.Add(1)
	qs := []*query{{vec: q, k: k, minScore: minScore, ctx: ctx, key: key}}
	m.pass(qs, workers)
	return qs[0].hits, qs[0].err
}

// searchExact is the float32 scan whatever the tier: what a compressed
// search falls back to, and the reference tests compare it with.
func (m *Matrix) searchExact(ctx context.Context, q []float32, k int, minScore float32, workers int) ([]Hit, error) {
	if ok, err := m.check(q, k); !ok {
		return nil, err
	}
	qs := []*query{{vec: q, k: k, minScore: minScore, ctx: ctx}}
	m.passTier(qs, workers, TierFloat32)
	return qs[0].hits, qs[0].err
}
