package roc

import "math"

// topK keeps the limit largest values offered. It takes every value above
// floor into a buffer and, when the buffer holds twice the limit, keeps
// only the limit largest and raises floor to the least of them: a value
// that cannot enter costs one comparison, one that can an append, and the
// buffer is rescanned once per limit values taken, not reordered per value
// as a heap is (a heap of tens of millions misses the cache at every level).
type topK struct {
	items []float32
	limit int
	// floor is a value no longer worth taking: the least kept value after
	// a compaction (an equal value would not change which values are
	// kept), -Inf before the first.
	floor float32
}

func newTopK(limit int) topK {
	t := topK{limit: max(limit, 0), floor: float32(math.Inf(-1))}
	if t.limit == 0 {
		t.floor = float32(math.Inf(1))
	}
	return t
}

func (t *topK) add(s float32) {
	t.items = append(t.items, s)
	if len(t.items) >= 2*t.limit+minBuffer {
		selectTop(t.items, t.limit)
		t.items = t.items[:t.limit]
		t.floor = t.items[t.limit-1]
	}
}

// minBuffer keeps a short tail from being compacted at almost every value.
const minBuffer = 1024

// selectTop reorders a so that a[:k] hold its k largest values and a[k-1]
// the least of those (quickselect with three-way partitions, so that runs
// of equal scores do not make it quadratic). 0 <= k <= len(a).
func selectTop(a []float32, k int) {
	if k <= 0 || k >= len(a) {
		if k == len(a) && k > 0 {
			moveMinLast(a)
		}
		return
	}
	lo, hi := 0, len(a) // a[k-1]'s place lies in a[lo:hi]
	x := uint64(0x9e3779b97f4a7c15)
	for hi-lo > 1 {
		x = x*6364136223846793005 + 1442695040888963407 // a fixed LCG: pivots at random, runs repeatable
		p := a[lo+int((x>>33)%uint64(hi-lo))]
		lt, i, gt := lo, lo, hi // a[lo:lt] > p, a[lt:i] == p, a[gt:hi] < p
		for i < gt {
			switch v := a[i]; {
			case v > p:
				a[lt], a[i] = v, a[lt]
				lt++
				i++
			case v < p:
				gt--
				a[i], a[gt] = a[gt], v
			default:
				i++
			}
		}
		switch {
		case k-1 < lt:
			hi = lt
		case k-1 >= gt:
			lo = gt
		default:
			return
		}
	}
}

// moveMinLast swaps a's least value into its last place.
func moveMinLast(a []float32) {
	m := len(a) - 1
	for i, v := range a {
		if v < a[m] {
			m = i
		}
	}
	a[m], a[len(a)-1] = a[len(a)-1], a[m]
}
