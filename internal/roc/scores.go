// Package roc reads a face model's operating points off its score
// distributions: from the cosines of genuine pairs (a probe and its own
// user) and impostor pairs (a probe and anyone else), the threshold that
// holds a false-accept rate (FAR), the true-accept rate (TAR) there, and a
// similarity curve that puts chosen percentages at those thresholds.
//
// Impostor pairs outnumber genuine ones by the number of users, so they are
// kept as a histogram plus only their highest scores: the thresholds of
// small FARs lie among those.
package roc

import (
	"cmp"
	"slices"
)

// Bins is the resolution of the score histograms over cosine [-1, 1]:
// fine enough that a ROC drawn from them is smooth.
const Bins = 4000

// Bin is the histogram bin of cosine s; scores outside [-1, 1] land in the
// end bins.
func Bin(s float32) int {
	return min(max(int((float64(s)+1)/2*Bins), 0), Bins-1)
}

// Scores summarizes every pair's cosine.
type Scores struct {
	// Genuine holds every genuine score, in probe order.
	Genuine []float32
	// Impostors is how many impostor pairs were scored.
	Impostors int64
	// Tail holds the highest impostor scores, descending.
	Tail []float32
	// GenuineHist and ImpostorHist count the scores per [Bin].
	GenuineHist, ImpostorHist []int64
}

// Counter gathers one worker's share of the scores; [Merge] adds the
// workers' counters up.
type Counter struct {
	tail      minHeap
	genHist   []int64
	impHist   []int64
	impostors int64
}

// NewCounter returns a counter that keeps the tailLen highest impostor
// scores (see [TailLength]).
func NewCounter(tailLen int) *Counter {
	return &Counter{tail: minHeap{limit: max(tailLen, 0)}, genHist: make([]int64, Bins), impHist: make([]int64, Bins)}
}

// Genuine counts a genuine pair's score in the histogram; the caller keeps
// the score itself, in probe order, for [Merge].
func (c *Counter) Genuine(s float32) { c.genHist[Bin(s)]++ }

// Impostor counts an impostor pair's score.
func (c *Counter) Impostor(s float32) {
	c.impostors++
	c.impHist[Bin(s)]++
	c.tail.offer(s)
}

// Merge adds counters up into the Scores of genuine (every genuine score,
// in probe order), keeping the tailLen highest impostor scores of all.
func Merge(genuine []float32, tailLen int, counters ...*Counter) Scores {
	s := Scores{Genuine: genuine, GenuineHist: make([]int64, Bins), ImpostorHist: make([]int64, Bins)}
	for _, c := range counters {
		s.Impostors += c.impostors
		s.Tail = append(s.Tail, c.tail.items...)
		for b := range Bins {
			s.GenuineHist[b] += c.genHist[b]
			s.ImpostorHist[b] += c.impHist[b]
		}
	}
	slices.SortFunc(s.Tail, func(a, b float32) int { return cmp.Compare(b, a) })
	if len(s.Tail) > tailLen {
		s.Tail = s.Tail[:max(tailLen, 0)]
	}
	return s
}

// minHeap keeps the limit largest values offered, the least on top, so a
// value that cannot enter costs one comparison.
type minHeap struct {
	items []float32
	limit int
}

func (h *minHeap) offer(x float32) {
	if len(h.items) < h.limit {
		h.items = append(h.items, x)
		for i := len(h.items) - 1; i > 0; {
			p := (i - 1) / 2
			if h.items[p] <= h.items[i] {
				break
			}
			h.items[p], h.items[i] = h.items[i], h.items[p]
			i = p
		}
		return
	}
	if h.limit == 0 || x <= h.items[0] {
		return
	}
	h.items[0] = x
	for i, n := 0, len(h.items); ; {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && h.items[c+1] < h.items[c] {
			c++
		}
		if h.items[i] <= h.items[c] {
			return
		}
		h.items[i], h.items[c] = h.items[c], h.items[i]
		i = c
	}
}
