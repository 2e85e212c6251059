package index

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	// subFloats (32 KiB of float32 rows) bounds the rows one kernel call
	// scores: they stay in L1 while every query of a pass reads them.
	subFloats = 1 << 13
	// maxShared caps the queries of one shared pass. A pass costs about
	// one memory read of the matrix plus 1/3 of a single-query scan's
	// compute per query, so past a few dozen queries it is compute-bound
	// and larger batches only add latency (BenchmarkSearchShared).
	maxShared = 32
	// shareMinFloats is the smallest matrix (rows x dim) whose searches
	// SearchShared coalesces: below it a scan is a few microseconds from
	// cache and concurrent scans are better run side by side.
	shareMinFloats = 1 << 18
)

// query is one search of a pass: what was asked, the per-worker heaps the
// pass fills, and the answer.
type query struct {
	vec      []float32
	k        int
	minScore float32
	ctx      context.Context

	heaps []topK     // one per worker
	prep  *compQuery // vec prepared for the compressed tier

	hits []Hit
	err  error
}

// counters are a matrix's search statistics, updated atomically.
type counters struct {
	searches  atomic.Uint64
	passes    atomic.Uint64
	shared    atomic.Uint64
	fallbacks atomic.Uint64
	rescored  atomic.Uint64
}

// Stats counts the searches a [Matrix] has answered.
type Stats struct {
	// Searches is the number of searches answered with a scan (calls that
	// returned before scanning, such as k <= 0, are not counted).
	Searches uint64
	// Passes is the number of passes over the rows. A search alone is one
	// pass; searches coalesced by [Matrix.SearchShared] share one, so
	// Searches/Passes is the mean batch size.
	Passes uint64
	// Shared is the number of searches that shared their pass with at
	// least one other.
	Shared uint64
	// Fallbacks is the number of compressed-tier searches whose candidates
	// could not be proven to hold the exact answer, and which therefore
	// scanned the float32 rows as well.
	Fallbacks uint64
	// Rescored is the number of candidate rows compressed-tier searches
	// scored exactly with the float32 rows (fallback scans not included).
	Rescored uint64
}

// Stats returns the matrix's search statistics so far.
func (m *Matrix) Stats() Stats {
	return Stats{
		Searches:  m.stats.searches.Load(),
		Passes:    m.stats.passes.Load(),
		Shared:    m.stats.shared.Load(),
		Fallbacks: m.stats.fallbacks.Load(),
		Rescored:  m.stats.rescored.Load(),
	}
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
	var redo []*query
	for _, q := range qs {
		if q.err == nil && !m.comp.rerank(m, q) {
			redo = append(redo, q)
		}
	}
	if len(redo) > 0 {
		m.stats.fallbacks.Add(uint64(len(redo)))
		m.passTier(redo, workers, TierFloat32)
	}
}

// passTier scans the rows once for all of qs: the float32 rows with exact
// scores, or a compressed copy with upper bounds of them (the candidates).
// Each query's answer lands in its hits and err.
func (m *Matrix) passTier(qs []*query, workers int, tier Tier) {
	m.stats.passes.Add(1)
	dim, nq := m.dim, len(qs)
	chunk := m.tierChunk(tier)
	workers = max(1, min(workers, (len(m.keys)+chunk-1)/chunk))
	sub := min(m.chunkRows, max(1, subFloats/dim))
	single := tier == TierFloat32 && nq < 3 // only rowDots, which needs sub floats
	if single && simd(dim) && haveAsm {
		// No query reads the rows after another from L1: the single-query
		// kernel takes the chunk whole, as two long streams side by side
		// (rowDots); in runs of sub rows the streams would be short.
		sub = chunk
	}

	// One allocation backs every heap of every query.
	caps := make([]int, nq)
	total := 0
	for i, q := range qs {
		caps[i] = min(q.k, len(m.keys))
		if tier != TierFloat32 {
			caps[i] = min(m.comp.candidates(q.k), len(m.keys))
			q.prep = m.comp.prepare(q.vec)
		}
		total += workers * caps[i]
	}
	buf := make([]Hit, total)
	for i, q := range qs {
		q.heaps = make([]topK, workers)
		for w := range q.heaps {
			c := caps[i]
			q.heaps[w] = topK{items: buf[:0:c], floor: q.minScore}
			buf = buf[c:]
		}
	}

	// Queries scored three at a time are packed side by side for rowDots3.
	var packed []float32
	if tier == TierFloat32 && nq >= 3 {
		packed = make([]float32, 0, nq/3*3*dim)
		for _, q := range qs[:nq/3*3] {
			packed = append(packed, q.vec...)
		}
	}
	// With AVX-512, several queries score a chunk's two halves side by
	// side, step rows of each at a time (visitHalves).
	halves := tier == TierFloat32 && nq >= 3 && have512 && simd(dim) && haveAsm
	step := max(1, sub/2)
	scratch := make([][]float32, workers)
	for w := range scratch {
		if single {
			scratch[w] = make([]float32, min(sub, len(m.keys))) // a chunk may hold more rows than the matrix
		} else {
			scratch[w] = make([]float32, max(3*sub, 6*step))
		}
	}

	visit := func(w, lo, hi int) {
		sc := scratch[w]
		for ; lo < hi; lo += sub {
			n := min(sub, hi-lo)
			keys := m.keys[lo : lo+n]
			if tier != TierFloat32 {
				for _, q := range qs {
					// Once a heap is full, most runs of rows hold no bound
					// that reaches its floor: nothing for take to offer.
					if top := m.comp.bounds(m, q.prep, lo, lo+n, sc); top >= q.heaps[w].floor {
						q.heaps[w].take(sc, 1, keys)
					}
				}
				continue
			}
			rows := m.rows(lo, lo+n)
			j := 0
			for ; j+3 <= nq; j += 3 {
				rowDots3(packed[j*dim:(j+3)*dim], rows, sc[:3*n], dim)
				qs[j].heaps[w].take(sc, 3, keys)
				qs[j+1].heaps[w].take(sc[1:], 3, keys)
				qs[j+2].heaps[w].take(sc[2:], 3, keys)
			}
			for ; j < nq; j++ {
				rowDots(qs[j].vec, rows, sc[:n])
				qs[j].heaps[w].take(sc, 1, keys)
			}
		}
	}
	// visitHalves scores [lo, hi) as visit does, but as two runs side by
	// side, its halves, step rows of each at a time: each half is one long
	// stream, and the 2*step rows of a step stay in L1 for every query.
	// Two adjacent rows at a time would make streams of a row each, which
	// the hardware prefetcher follows badly (see rowDots).
	plain := visit
	visitHalves := func(w, lo, hi int) {
		sc := scratch[w]
		h := (hi - lo) / 2
		for off := 0; off < h; off += step {
			n := min(step, h-off)
			a, b := lo+off, lo+h+off
			rowsA, rowsB := m.rows(a, a+n), m.rows(b, b+n)
			keysA, keysB := m.keys[a:a+n], m.keys[b:b+n]
			scA, scB := sc[:3*n], sc[3*n:6*n]
			j := 0
			for ; j+3 <= nq; j += 3 {
				rowDots3x2(packed[j*dim:(j+3)*dim], rowsA, rowsB, scA, scB, dim)
				for t := range 3 {
					qs[j+t].heaps[w].take(scA[t:], 3, keysA)
					qs[j+t].heaps[w].take(scB[t:], 3, keysB)
				}
			}
			for ; j < nq; j++ {
				rowDots(qs[j].vec, rowsA, scA[:n])
				qs[j].heaps[w].take(scA, 1, keysA)
				rowDots(qs[j].vec, rowsB, scB[:n])
				qs[j].heaps[w].take(scB, 1, keysB)
			}
		}
		if (hi-lo)%2 == 1 {
			plain(w, hi-1, hi) // the row left over
		}
	}
	if halves {
		visit = visitHalves
	}
	finish := func(w int) {
		for _, q := range qs {
			slices.SortFunc(q.heaps[w].items, CompareHits)
		}
	}
	err := m.scan(workers, chunk, stopAll(qs), visit, finish)
	for _, q := range qs {
		switch {
		case err != nil, q.ctx.Err() != nil:
			q.hits, q.err = nil, q.ctx.Err()
		case tier == TierFloat32:
			q.hits = merge(q.heaps, q.k)
		}
	}
}

// stopAll is a pass's stop function: the pass goes on while any of its
// queries is still wanted.
func stopAll(qs []*query) func() error {
	if len(qs) == 1 {
		return ctxStop(qs[0].ctx)
	}
	dones := make([]<-chan struct{}, len(qs))
	for i, q := range qs {
		if dones[i] = q.ctx.Done(); dones[i] == nil {
			return nil // this one is never cancelled
		}
	}
	return func() error {
		for _, d := range dones {
			select {
			case <-d:
			default:
				return nil
			}
		}
		return context.Canceled // each query reports its own ctx.Err()
	}
}

// coalescer batches concurrent searches as a group commit batches writes:
// a search that arrives while no pass runs starts one at once, alone;
// searches that arrive while a pass runs queue, and when it ends, one of
// them leads the next pass, for all of them. Nobody sleeps to wait for
// company: under load, batches form by themselves from what queued during
// the previous pass.
type coalescer struct {
	mu      sync.Mutex
	running bool // a pass is running, or a leader was named to start one
	queue   []*request
}

// A request's state, guarded by coalescer.mu.
const (
	reqQueued = iota // in coalescer.queue
	reqLeader        // named to lead the next pass
	reqMember        // taken into a pass another request leads
)

// request is one caller of SearchShared.
type request struct {
	query
	state int
	// wake is signalled once: when the request is named leader, or when
	// its pass is over and query.hits/err are set.
	wake chan struct{}
}

// SearchShared is [Matrix.Search] for callers that may arrive together:
// searches that arrive while a pass over the matrix is running wait for it
// to end and then share the next pass, which scores several queries per
// row loaded (a register-blocked kernel), so concurrent searches cost
// little more memory traffic than one. The results are exactly those of
// Search: the same hits, scores and order.
//
// The matrix must not change until every SearchShared call in flight has
// returned; the engine holds its read lock across the call, so a pass
// never sees a writer. A caller whose ctx is done returns ctx.Err() without
// disturbing the others: a pass is abandoned only when every query in it
// is cancelled.
func (m *Matrix) SearchShared(ctx context.Context, q []float32, k int, minScore float32) ([]Hit, error) {
	if len(m.keys)*m.dim < m.shareMin {
		return m.Search(ctx, q, k, minScore)
	}
	if ok, err := m.check(q, k); !ok {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.stats.searches.Add(1)
	r := &request{query: query{vec: q, k: k, minScore: minScore, ctx: ctx}}
	co := &m.shared
	co.mu.Lock()
	if !co.running {
		co.running = true
		co.mu.Unlock()
		return m.lead(r)
	}
	// The query is copied: a cancelled caller returns at once, and its
	// slice must not be read by a pass after that.
	r.vec = slices.Clone(q)
	r.wake = make(chan struct{}, 1)
	r.state = reqQueued
	co.queue = append(co.queue, r)
	co.mu.Unlock()

	select {
	case <-r.wake:
	case <-ctx.Done():
		co.mu.Lock()
		switch r.state {
		case reqQueued:
			i := slices.Index(co.queue, r)
			co.queue = slices.Delete(co.queue, i, i+1)
			co.mu.Unlock()
			return nil, ctx.Err()
		case reqMember:
			co.mu.Unlock()
			return nil, ctx.Err() // the pass goes on for the others
		}
		co.mu.Unlock()
		<-r.wake // named leader: the queue depends on this caller
	}
	if r.state == reqLeader {
		return m.lead(r)
	}
	return r.hits, r.err
}

// lead runs one pass for r and whatever queued, then hands the lead to the
// first request that queued meanwhile, or marks the coalescer idle.
func (m *Matrix) lead(r *request) ([]Hit, error) {
	co := &m.shared
	co.mu.Lock()
	n := min(len(co.queue), maxShared-1)
	members := slices.Clone(co.queue[:n])
	co.queue = slices.Delete(co.queue, 0, n)
	for _, x := range members {
		x.state = reqMember
	}
	co.mu.Unlock()

	defer func() {
		// Deferred so that a panic in the pass cannot leave the queue
		// waiting forever for a leader.
		for _, x := range members {
			x.wake <- struct{}{}
		}
		co.mu.Lock()
		if len(co.queue) == 0 {
			co.running = false
		} else {
			next := co.queue[0]
			co.queue = co.queue[1:]
			next.state = reqLeader
			next.wake <- struct{}{}
		}
		co.mu.Unlock()
	}()

	qs := make([]*query, 0, 1+len(members))
	qs = append(qs, &r.query)
	for _, x := range members {
		qs = append(qs, &x.query)
	}
	if len(qs) > 1 {
		m.stats.shared.Add(uint64(len(qs)))
	}
	if m.passHook != nil {
		m.passHook(qs)
	}
	m.pass(qs, m.workers())
	return r.hits, r.err
}
