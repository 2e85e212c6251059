package index

import "math/bits"

// passBatchI8 answers qs with one scan of the int8 copy for all of them
// (the batched kernel), then each query's rerank and, where that cannot
// prove the answer, one float32 pass for those left. It reports false,
// doing nothing, where the float32 rows score qs faster: other tiers,
// groups below the kernel set's batchI8Min, rows past maxBatchI8Stride.
func (m *Matrix) passBatchI8(qs []*query, workers int) bool {
	if m.tier != TierInt8 || len(qs) < kernels.batchI8Min || paddedDim(m.dim) > maxBatchI8Stride {
		return false
	}
	p := m.newPlan(qs, workers, m.tier) // the chunks, workers and heaps of a compressed pass
	b := newI8Batch(m.comp, qs)
	codes := m.comp.codes.(*int8Codes)
	boundsI8Batch := kernels.boundsI8Batch
	tiles := make([]*i8Tile, p.workers)
	cands := make([][]candidates, p.workers)
	for w := range tiles {
		tiles[w] = b.newTile()
		cands[w] = make([]candidates, len(qs))
		for j, q := range qs {
			cands[w][j] = newCandidates(&q.heaps[w])
			tiles[w].floor[j] = q.heaps[w].floor
		}
	}
	visit := func(w, lo, hi int) {
		t, cs := tiles[w], cands[w]
		for ; lo < hi; lo += tileRows {
			n := min(tileRows, hi-lo)
			boundsI8Batch(b, codes.run(lo, lo+n), codes.scale[lo:lo+n], m.comp.resid[lo:lo+n], t)
			keys := m.keys[lo : lo+n]
			valid := uint32(1)<<n - 1
			for j := range cs {
				mask := uint32(t.mask[j]) & valid
				if mask == 0 {
					continue
				}
				c := &cs[j]
				for ; mask != 0; mask &= mask - 1 {
					r := bits.TrailingZeros32(mask)
					c.items = append(c.items, Hit{Key: keys[r], Score: t.out[j*tileRows+r]})
				}
				if len(c.items) >= c.limit {
					t.floor[j] = c.shrink()
				}
			}
		}
	}
	finish := func(w int) {
		for j, q := range qs {
			cands[w][j].into(&q.heaps[w])
		}
		p.finish(w)
	}
	err := m.scan(p.workers, p.chunk, stopAll(qs), visit, finish)
	m.countPass(qs, err)
	p.collect(err)
	m.rerankAll(qs, workers)
	return true
}

// candidates collects a query's candidates in a worker as its heap would,
// but by appending: a compressed scan's heap keeps 2k+slack rows, and
// streaming rows through a heap that deep costs more than the batched
// kernel's bounds. Once the buffer holds limit rows it keeps the best
// keep, whose least bound becomes the floor: every row dropped, then or
// before, has a bound at most the floor, as a heap's rows left out do.
type candidates struct {
	items []Hit
	keep  int     // the heap's capacity
	limit int     // the rows that make the buffer drop to keep
	floor float32 // the heap's floor: minScore until rows were dropped
}

// candidatesRoom is how many rows past 2*keep a candidates buffer holds:
// with the usual keep (2k+candidateSlack) it selects once per about three
// times keep rows taken, which keeps the selections a small part of a
// pass, while a large k's buffer holds about twice keep, not four times.
const candidatesRoom = 512

func newCandidates(h *topK) candidates {
	keep := cap(h.items)
	limit := 2*keep + candidatesRoom
	return candidates{items: make([]Hit, 0, limit+tileRows), keep: keep, limit: limit, floor: h.floor}
}

// shrink keeps the best keep rows and returns the new floor.
func (c *candidates) shrink() float32 {
	selectNth(c.items, c.keep-1)
	c.items = c.items[:c.keep]
	c.floor = c.items[c.keep-1].Score
	return c.floor
}

// into hands the candidates to h as a full or partly full heap (its
// items unordered; the pass's finish sorts them).
func (c *candidates) into(h *topK) {
	if len(c.items) >= c.keep {
		h.floor = c.shrink()
	}
	h.items = c.items[:len(c.items):c.keep]
}

// selectNth reorders a so that a[n] is what a sorted a (CompareHits) would
// hold there, with the better rows before it and the worse after: the
// best n+1 rows first, the worst of them at n.
func selectNth(a []Hit, n int) {
	lo, hi := 0, len(a)-1
	for lo < hi {
		// The middle row as pivot (moved to hi): rows that come already
		// ordered would make a first or last pivot quadratic.
		mid := lo + (hi-lo)/2
		a[mid], a[hi] = a[hi], a[mid]
		pivot, i := a[hi], lo
		for j := lo; j < hi; j++ {
			if worse(pivot, a[j]) {
				a[i], a[j] = a[j], a[i]
				i++
			}
		}
		a[i], a[hi] = a[hi], a[i]
		switch {
		case i == n:
			return
		case i < n:
			lo = i + 1
		default:
			hi = i - 1
		}
	}
}
