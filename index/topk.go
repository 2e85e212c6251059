package index

import "cmp"

// Hit is one search result: a row's key and its dot product with the query.
type Hit struct {
	Key   uint64
	Score float32
}

// topK keeps the best cap(items) hits seen so far.
type topK struct {
	// items is a heap whose root is the worst kept hit, so a better
	// candidate replaces it in O(log k).
	items []Hit
	// floor is the least score that can still enter: minScore until the
	// heap is full, then the root's score. Most rows fail this one compare.
	floor float32
	// key, when not nil, is the key a row ranks and is reported under
	// (see [Matrix.SearchSharedAs]). Until settle, items hold the rows' own
	// keys, and key is asked only to break a tie of scores: most rows that
	// enter the heap leave it again, and asking for their keys (map
	// lookups in the engine) cost a pass more than its heaps' own work.
	key func(uint64) uint64
	_   [64]byte // workers' heaps sit side by side; keep them off each other's cache lines
}

// take offers the rows keys[i], whose scores are scores[i*stride]. Most
// rows fail the one compare with the floor.
func (h *topK) take(scores []float32, stride int, keys []uint64) {
	floor := h.floor
	for i, key := range keys {
		s := scores[i*stride]
		if !(s >= floor) { // also drops NaN
			continue
		}
		h.offer(Hit{Key: key, Score: s})
		floor = h.floor
	}
}

// offer adds x if it beats the worst kept hit, or if there is still room.
func (h *topK) offer(x Hit) {
	if len(h.items) < cap(h.items) {
		h.items = append(h.items, x)
		h.up(len(h.items) - 1)
		if len(h.items) == cap(h.items) {
			h.floor = h.items[0].Score
		}
		return
	}
	if !h.worse(h.items[0], x) {
		return // an equal score with a larger (mapped) key, or below the root
	}
	h.items[0] = x
	h.down(0)
	h.floor = h.items[0].Score
}

func (h *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.worse(h.items[i], h.items[p]) {
			return
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *topK) down(i int) {
	n := len(h.items)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && h.worse(h.items[r], h.items[c]) {
			c = r
		}
		if !h.worse(h.items[c], h.items[i]) {
			return
		}
		h.items[i], h.items[c] = h.items[c], h.items[i]
		i = c
	}
}

// worse is the package's worse for the heap's items: with a key, a tie
// of scores ranks by the keys the items' rows stand for, asked anew at
// each tie (ties are rare; a heap of many equal scores asks O(log k)
// times a row).
func (h *topK) worse(a, b Hit) bool {
	if h.key == nil || a.Score != b.Score {
		return worse(a, b)
	}
	return h.key(a.Key) > h.key(b.Key)
}

// settle gives the items the keys they are reported under, once the heap
// has taken its last row.
func (h *topK) settle() {
	if h.key == nil {
		return
	}
	for i := range h.items {
		h.items[i].Key = h.key(h.items[i].Key)
	}
	h.key = nil
}

// worse reports whether a ranks below b. The order is total (score, then
// key descending), so which of two tied rows makes the cut never depends on
// scan order or worker count.
func worse(a, b Hit) bool {
	return a.Score < b.Score || (a.Score == b.Score && a.Key > b.Key)
}

// CompareHits is the order of every search's results, best first: score
// descending, then key ascending.
func CompareHits(a, b Hit) int {
	if a.Score != b.Score {
		if a.Score > b.Score {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.Key, b.Key)
}

// merge takes the best k hits from the workers' sorted heaps.
func merge(heaps []topK, k int) []Hit {
	if len(heaps) == 1 {
		return nilIfEmpty(heaps[0].items)
	}
	total := 0
	for _, h := range heaps {
		total += len(h.items)
	}
	out := make([]Hit, 0, min(k, total))
	head := make([]int, len(heaps))
	for len(out) < cap(out) {
		best := -1
		for w, h := range heaps {
			if head[w] < len(h.items) && (best < 0 || worse(heaps[best].items[head[best]], h.items[head[w]])) {
				best = w
			}
		}
		out = append(out, heaps[best].items[head[best]])
		head[best]++
	}
	return nilIfEmpty(out)
}

func nilIfEmpty(h []Hit) []Hit {
	if len(h) == 0 {
		return nil
	}
	return h
}
