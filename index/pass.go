package index

import (
	"context"
	"slices"
)

// tierChunk is the rows per chunk a scan of tier claims: up to the same
// bytes per chunk whatever the tier, and at most a block, so that a
// compressed scan's workers also stream runs long enough for the hardware
// prefetcher (with a quarter of the bytes per row, 256 KiB float32 chunks
// halved an int8 scan's speed). Where chunks are whole blocks, as from
// NewMatrix, every tier claims whole blocks.
func (m *Matrix) tierChunk(tier Tier) int {
	switch tier {
	case TierInt8:
		return min(m.blockRows, 4*m.chunkRows)
	case TierFloat16:
		return min(m.blockRows, 2*m.chunkRows)
	}
	return m.chunkRows
}

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
