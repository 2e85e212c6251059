package index

import (
	"context"
	"math"
	"slices"
)

// subFloats bounds the rows one call of a compressed tier's bounds kernel
// takes: subFloats/dim rows, 32 KiB of float32 values.
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
	p := m.newPlan(qs, workers, tier)
	err := m.scan(p.workers, p.chunk, stopAll(qs), p.visit, p.finish)
	m.countPass(qs, err)
	p.collect(err)
}

// plan is one pass over the rows for a batch of queries: which rows it
// reads, in which runs, with which kernels, and each worker's heaps and
// scratch. newPlan makes every choice; the steps (scoreRuns, boundRuns,
// finish, collect) only follow them.
//
// One or two queries are scored one at a time, each over whole chunks (the
// memory floor's read); more are scored in groups of groupQ per panel
// read (groupDots), a panel at a time.
type plan struct {
	m    *Matrix
	qs   []*query
	comp *compressed // the copy scanned for bounds; nil: the float32 rows, exact scores

	workers int
	chunk   int // rows a worker claims at a time
	run     int // rows per kernel call
	// packed holds the queries as groupDots reads them (packGroups); nil
	// when they are scored one at a time.
	packed  []float32
	scratch [][]float32 // per worker: the scores of one kernel call
	tops    [][]float32 // per worker: the batched kernel's maxima
	chains  [][]float32 // per worker: the batched kernel's chains between calls
	// floors is, per worker, each query's heap floor side by side (see
	// scoreRuns), for the batched kernel's queries.
	floors [][]float32

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
	single := p.comp == nil && nq < 3
	if single {
		// No query reads the rows after another from cache: the
		// single-query kernel takes the chunk whole, as four long streams.
		p.run = p.chunk
	}
	p.allocHeaps()

	p.visit = p.boundRuns
	if p.comp == nil {
		p.visit = p.scoreRuns
		if !single {
			p.run = panelRows
			p.packed = make([]float32, groupsOf(nq)*groupQ*dim)
			vecs := make([][]float32, nq)
			for i, q := range qs {
				vecs[i] = q.vec
			}
			packGroups(p.packed, vecs, dim)
		}
	}
	p.scratch = make([][]float32, p.workers)
	p.tops = make([][]float32, p.workers)
	p.chains = make([][]float32, p.workers)
	p.floors = make([][]float32, p.workers)
	for w := range p.scratch {
		switch {
		case single:
			p.scratch[w] = make([]float32, padRows(min(p.run, len(m.keys)))) // a chunk may hold more rows than the matrix
		case p.packed != nil:
			g := groupsOf(nq)
			p.tops[w] = make([]float32, g*groupQ)
			p.scratch[w] = make([]float32, g*groupQ*panelRows)
			p.chains[w] = make([]float32, g*groupChains)
			p.floors[w] = make([]float32, nq, nq+16) // 64 bytes spare: the workers' floors stay off each other's cache lines
			for i, q := range qs {
				p.floors[w][i] = q.heaps[w].floor
			}
		default: // bounds, a query at a time
			p.scratch[w] = make([]float32, p.run)
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
	sc, dim := p.scratch[w], p.m.dim
	if p.packed == nil {
		keys := p.m.keys[lo:hi]
		panels := p.m.panels(lo, hi)
		for _, q := range p.qs {
			kernels.panelDots(q.vec, panels, sc[:padRows(hi-lo)])
			q.heaps[w].take(sc, 1, keys)
		}
		return
	}
	// low is the lowest of the worker's floors, which change only in the
	// look below, where it is worked out again.
	floors, tops := p.floors[w], p.tops[w]
	low := slices.Min(floors)
	for ; lo < hi; lo += p.run {
		n := min(p.run, hi-lo)
		keys := p.m.keys[lo : lo+n]
		// Once the heaps are full, most runs hold no score that reaches
		// any heap's floor: nothing for take to offer, which the highest
		// of the queries' maxima against the lowest floor tells without a
		// look at each query (the padding's zero scores, of queries or of
		// rows past the last, can only make the look happen).
		if groupDots(kernels.tile, p.packed, p.m.panels(lo, lo+n), dim, sc, panelRows, tops, p.chains[w]) < low {
			continue
		}
		// The floors sit side by side, so that this look at every query
		// reads a few cache lines rather than two of each query's.
		low = float32(math.Inf(1))
		for i, top := range tops[:len(floors)] {
			if top >= floors[i] {
				h := &p.qs[i].heaps[w]
				h.take(sc[i*panelRows:], 1, keys)
				floors[i] = h.floor
			}
			low = min(low, floors[i]) // NaN, were a floor NaN: never below
		}
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

// finish gives worker w's heaps their reported keys and sorts them, best
// first, for merge and rerank.
func (p *plan) finish(w int) {
	for _, q := range p.qs {
		q.heaps[w].settle()
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
