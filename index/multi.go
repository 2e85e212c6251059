package index

import (
	"context"
	"fmt"
)

// maxBatch caps the queries of one pass of [Matrix.SearchBatch] (and of a
// coalesced pass, maxShared). A pass reads the matrix once whatever its
// queries; at 512 dimensions it takes a couple of hundred queries before
// their arithmetic, near the FMA peak, outlasts that read, so that the
// pass is bound by arithmetic rather than memory (BenchmarkSearchBatch).
// Their packed copy (512 KiB at d=512) and heaps stay small next to the
// pass.
const maxBatch = 256

// floatBatchMin is the least group of queries a pass (of SearchBatch or
// of coalesced searches) scores on the float32 rows even where the
// matrix's tier is compressed (but for the int8 tier's batched kernel,
// see passBatchI8): the other bounds kernels take one query at a time
// while the float32 ones score several per row read, so from
// a few queries on the exact scan is the faster (BenchmarkSearchBatch: at
// 64k x 512 it is slower at 3 queries, faster at 6), and its answer is the
// same.
const floatBatchMin = 6

// passMany is pass for a group of queries: the int8 tier's batched
// kernel where it is faster (passBatchI8), else on the float32 rows,
// exactly, from floatBatchMin queries on.
func (m *Matrix) passMany(qs []*query, workers int) {
	if m.passBatchI8(qs, workers) {
		return
	}
	if len(qs) >= floatBatchMin {
		m.passTier(qs, workers, TierFloat32)
		return
	}
	m.pass(qs, workers)
}

// Query is one search of a batch: as [Matrix.Search]'s q, k and minScore.
type Query struct {
	Vec      []float32
	K        int
	MinScore float32
}

// SearchBatch answers many searches at once: out[i] is exactly what
// [Matrix.SearchSharedAs](ctx, qs[i].Vec, qs[i].K, qs[i].MinScore, key)
// returns (the same hits, scores and order), but every pass over the
// matrix scores up to maxBatch of the queries per row loaded, so a batch
// costs about one read of the matrix per maxBatch queries rather than one
// per query. It keeps no copy of the rows.
//
// Every query is checked before any scan: one of the wrong length returns
// an error wrapping [ErrDimension] that names it. If ctx is done before the
// batch completes, SearchBatch returns ctx.Err(). The matrix must not
// change during the call.
func (m *Matrix) SearchBatch(ctx context.Context, qs []Query, key func(uint64) uint64) ([][]Hit, error) {
	out := make([][]Hit, len(qs))
	var (
		todo []*query
		at   []int // todo[j] answers qs[at[j]]
	)
	for i, q := range qs {
		ok, err := m.check(q.Vec, q.K)
		if err != nil {
			return nil, fmt.Errorf("query %d: %w", i, err)
		}
		if ok {
			todo = append(todo, &query{vec: q.Vec, k: q.K, minScore: q.MinScore, ctx: ctx, key: key})
			at = append(at, i)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	workers := m.workers()
	for lo := 0; lo < len(todo); lo += maxBatch {
		group := todo[lo:min(lo+maxBatch, len(todo))]
		m.stats.searches.Add(uint64(len(group)))
		m.passMany(group, workers)
		for _, q := range group {
			if q.err != nil {
				return nil, q.err
			}
		}
	}
	for j, q := range todo {
		out[at[j]] = q.hits
	}
	return out, nil
}
