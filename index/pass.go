package index

import (
	"context"
	"slices"
)

// subFloats (32 KiB of float32 rows) bounds the rows one kernel call
// scores: they stay in L1 while every query of a pass reads them.
const subFloats = 1 << 13

// query is one search of a pass: what was asked, the per-worker heaps the
// pass fills, and the answer.
type query struct {
	vec      []float32
	k        int
	minScore float32
	ctx      context.Context
	// key, when not nil, is the key each row ranks and is reported under,
	// rather than its own (see [Matrix.SearchSharedAs]).
	key func(uint64) uint64

	heaps []topK     // one per worker
	prep  *compQuery // vec prepared for the compressed tier

	hits []Hit
	err  error
}

// pass answers every query in qs with one scan of the matrix's tier, then,
// for a compressed tier, re-ranks each query's candidates exactly and
// falls back to the float32 rows for those it cannot prove exact.
func (m *Matrix) pass(qs []*query, workers int) {
	if m.comp == nil {
		m.passTier(qs, workers, TierFloat32)
		return
	}
	m.passTier(qs, workers, m.tier)
	m.rerankAll(qs, workers)
}

// passTier scans the rows once for all of qs: the float32 rows with exact
// scores, or the compressed copy with upper bounds of them (the
// candidates). Each query's answer lands in its hits and err.
func (m *Matrix) passTier(qs []*query, workers int, tier Tier) {
	m.stats.passes.Add(1)
	p := m.newPlan(qs, workers, tier)
	err := m.scan(p.workers, p.chunk, stopAll(qs), p.visit, p.finish)
	p.collect(err)
}

// plan is one pass over the rows for a batch of queries: which rows it
// reads, in which runs, with which kernels, and each worker's heaps and
// scratch. newPlan makes every choice; the steps (scoreRuns, scoreHalves,
// boundRuns, finish, collect) only follow them.
//
// Queries are scored in groups the kernels offer (three per row read,
// then one by one); a kernel for a larger batch is another group size.
type plan struct {
	m    *Matrix
	qs   []*query
	comp *compressed // the copy scanned for bounds; nil: the float32 rows, exact scores

	workers int
	chunk   int // rows a worker claims at a time
	run     int // rows per kernel call
	step    int // rows per half per kernel call (scoreHalves)
	// packed holds the queries scored three at a time, side by side, as
	// rowDots3 reads them.
	packed  []float32
	scratch [][]float32 // per worker: the scores of one kernel call

	visit func(w, lo, hi int) // the step that scores a chunk
}

// newPlan chooses how a pass of tier scores qs.
func (m *Matrix) newPlan(qs []*query, workers int, tier Tier) *plan {
	p := &plan{m: m, qs: qs}
	if tier != TierFloat32 {
		p.comp = m.comp
	}
	dim, nq := m.dim, len(qs)
	p.chunk = m.chunkFor(p.comp)
	p.workers = max(1, min(workers, (len(m.keys)+p.chunk-1)/p.chunk))
	p.run = min(m.chunkRows, max(1, subFloats/dim))
	single := p.comp == nil && nq < 3 // only rowDots, which needs run floats
	if single && dim >= kernels.streamMin {
		// No query reads the rows after another from L1: the single-query
		// kernel takes the chunk whole, as two long streams side by side;
		// in runs the streams would be short.
		p.run = p.chunk
	}
	p.step = max(1, p.run/2)
	p.allocHeaps()

	p.visit = p.boundRuns
	if p.comp == nil {
		p.visit = p.scoreRuns
		if nq >= 3 {
			p.packed = make([]float32, 0, nq/3*3*dim)
			for _, q := range qs[:nq/3*3] {
				p.packed = append(p.packed, q.vec...)
			}
			if dim >= kernels.pairsMin {
				p.visit = p.scoreHalves
			}
		}
	}
	p.scratch = make([][]float32, p.workers)
	for w := range p.scratch {
		if single {
			p.scratch[w] = make([]float32, min(p.run, len(m.keys))) // a chunk may hold more rows than the matrix
		} else {
			p.scratch[w] = make([]float32, max(3*p.run, 6*p.step))
		}
	}
	return p
}

// chunkFor is the rows per chunk a scan of comp (nil: the float32 rows)
// claims: up to the same bytes per chunk whatever the tier, and at most a
// block, so that a compressed scan's workers also stream runs long enough
// for the hardware prefetcher. Where chunks are whole blocks, as from
// NewMatrix, every tier claims whole blocks.
func (m *Matrix) chunkFor(comp *compressed) int {
	if comp == nil {
		return m.chunkRows
	}
	return min(m.blockRows, comp.bytesRatio()*m.chunkRows)
}

// allocHeaps gives every query one bounded heap per worker, k rows deep
// (candidates deep for a compressed scan), all backed by one allocation.
func (p *plan) allocHeaps() {
	m := p.m
	caps := make([]int, len(p.qs))
	total := 0
	for i, q := range p.qs {
		caps[i] = min(q.k, len(m.keys))
		if p.comp != nil {
			// Candidates rank by their own keys: rerank needs them to find
			// the rows, and ranks what it scores by q.key.
			caps[i] = min(p.comp.candidates(q.k), len(m.keys))
			q.prep = p.comp.prepare(q.vec)
		}
		total += p.workers * caps[i]
	}
	buf := make([]Hit, total)
	for i, q := range p.qs {
		q.heaps = make([]topK, p.workers)
		for w := range q.heaps {
			c := caps[i]
			q.heaps[w] = topK{items: buf[:0:c], floor: q.minScore}
			if p.comp == nil {
				q.heaps[w].key = q.key
			}
			buf = buf[c:]
		}
	}
}

// scoreRuns scores the float32 rows [lo, hi) for every query, run rows per
// kernel call, and offers them to worker w's heaps.
func (p *plan) scoreRuns(w, lo, hi int) {
	sc, dim, nq := p.scratch[w], p.m.dim, len(p.qs)
	for ; lo < hi; lo += p.run {
		n := min(p.run, hi-lo)
		keys := p.m.keys[lo : lo+n]
		rows := p.m.rows(lo, lo+n)
		j := 0
		for ; j+3 <= nq; j += 3 {
			kernels.rowDots3(p.packed[j*dim:(j+3)*dim], rows, sc[:3*n], dim)
			p.qs[j].heaps[w].take(sc, 3, keys)
			p.qs[j+1].heaps[w].take(sc[1:], 3, keys)
			p.qs[j+2].heaps[w].take(sc[2:], 3, keys)
		}
		for ; j < nq; j++ {
			kernels.rowDots(p.qs[j].vec, rows, sc[:n])
			p.qs[j].heaps[w].take(sc, 1, keys)
		}
	}
}

// scoreHalves scores [lo, hi) as scoreRuns does, but as two runs side by
// side, its halves, step rows of each at a time: each half is one long
// stream, and the 2*step rows of a step stay in L1 for every query. Two
// adjacent rows at a time would make streams of a row each, which the
// hardware prefetcher follows badly.
func (p *plan) scoreHalves(w, lo, hi int) {
	sc, dim, nq := p.scratch[w], p.m.dim, len(p.qs)
	h := (hi - lo) / 2
	for off := 0; off < h; off += p.step {
		n := min(p.step, h-off)
		a, b := lo+off, lo+h+off
		rowsA, rowsB := p.m.rows(a, a+n), p.m.rows(b, b+n)
		keysA, keysB := p.m.keys[a:a+n], p.m.keys[b:b+n]
		scA, scB := sc[:3*n], sc[3*n:6*n]
		j := 0
		for ; j+3 <= nq; j += 3 {
			kernels.rowDots3x2(p.packed[j*dim:(j+3)*dim], rowsA, rowsB, scA, scB, dim)
			for t := range 3 {
				p.qs[j+t].heaps[w].take(scA[t:], 3, keysA)
				p.qs[j+t].heaps[w].take(scB[t:], 3, keysB)
			}
		}
		for ; j < nq; j++ {
			kernels.rowDots(p.qs[j].vec, rowsA, scA[:n])
			p.qs[j].heaps[w].take(scA, 1, keysA)
			kernels.rowDots(p.qs[j].vec, rowsB, scB[:n])
			p.qs[j].heaps[w].take(scB, 1, keysB)
		}
	}
	if (hi-lo)%2 == 1 {
		p.scoreRuns(w, hi-1, hi) // the row left over
	}
}

// boundRuns bounds the scores of the rows [lo, hi) from the compressed
// copy, run rows per kernel call, and offers them to worker w's heaps as
// candidates.
func (p *plan) boundRuns(w, lo, hi int) {
	sc := p.scratch[w]
	for ; lo < hi; lo += p.run {
		n := min(p.run, hi-lo)
		keys := p.m.keys[lo : lo+n]
		for _, q := range p.qs {
			// Once a heap is full, most runs of rows hold no bound that
			// reaches its floor: nothing for take to offer.
			if top := p.comp.bounds(q.prep, lo, lo+n, sc); top >= q.heaps[w].floor {
				q.heaps[w].take(sc, 1, keys)
			}
		}
	}
}

// finish sorts worker w's heaps, best first, for merge and rerank.
func (p *plan) finish(w int) {
	for _, q := range p.qs {
		slices.SortFunc(q.heaps[w].items, CompareHits)
	}
}

// collect sets each query's answer once the scan returned err: the merged
// heaps of an exact scan (a compressed scan's candidates wait for rerank),
// or the query's own context error.
func (p *plan) collect(err error) {
	for _, q := range p.qs {
		switch {
		case err != nil, q.ctx.Err() != nil:
			q.hits, q.err = nil, q.ctx.Err()
		case p.comp == nil:
			q.hits = merge(q.heaps, q.k)
		}
	}
}
