package index

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// rerankAll re-ranks the candidates a scan of the compressed tier found
// for each of qs, on up to workers goroutines (a candidate's row is read a
// value per cache line, so a batch's re-ranking is worth sharing out), and
// scans the float32 rows once for those whose answer it cannot prove exact.
func (m *Matrix) rerankAll(qs []*query, workers int) {
	proven := make([]bool, len(qs))
	var next atomic.Int64
	run := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(qs) {
				return
			}
			proven[i] = qs[i].err != nil || m.rerank(qs[i])
		}
	}
	var wg sync.WaitGroup
	for range max(1, min(workers, len(qs))) - 1 {
		wg.Go(run)
	}
	run()
	wg.Wait()
	var redo []*query
	for i, q := range qs {
		if !proven[i] {
			redo = append(redo, q)
		}
	}
	if len(redo) > 0 {
		m.stats.fallbacks.Add(uint64(len(redo)))
		m.passTier(redo, workers, TierFloat32)
	}
}

// rerank scores q's candidates, found by a scan of the compressed tier,
// exactly and sets q.hits. It reports whether the answer is proven equal
// to the float32 scan's.
//
// The candidates are taken best bound first (merged from the workers'
// heaps, which the pass sorts). A bound is at least its row's exact score,
// so once a bound falls below the k-th exact score found so far (or below
// minScore) neither its row nor any row after it can be in the answer, and
// scoring stops: on embedding-like data after a few dozen rows of the
// 2k+slack a worker holds.
func (m *Matrix) rerank(q *query) bool {
	dot := kernels.dot
	row := make([]float32, m.dim)
	best := topK{items: make([]Hit, 0, q.k), floor: q.minScore}
	scored := 0
	for _, cand := range merge(q.heaps, math.MaxInt) {
		if !(cand.Score >= best.floor) {
			break
		}
		scored++
		if s := dot(q.vec, m.readRow(m.rowOf[cand.Key], row)); s >= best.floor {
			key := cand.Key
			if q.key != nil {
				key = q.key(key)
			}
			best.offer(Hit{Key: key, Score: s})
		}
	}
	m.stats.rescored.Add(uint64(scored))
	slices.SortFunc(best.items, CompareHits)
	q.hits = nilIfEmpty(best.items)
	// A row left out of a full heap has a bound at most the heap's floor:
	// if every such floor is below the k-th exact score (or below
	// minScore when fewer than k rows reach it), no row left out can be in
	// the answer. best.floor is that bar.
	for _, h := range q.heaps {
		if len(h.items) == cap(h.items) && cap(h.items) < len(m.keys) && !(h.floor < best.floor) {
			return false
		}
	}
	return true
}
