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
	// Tail holds the highest impostor scores, in no particular order:
	// ordering tens of millions of them would cost more than reading the
	// few thresholds [OperatingPoints] needs off them.
	Tail []float32
	// GenuineHist and ImpostorHist count the scores per [Bin].
	GenuineHist, ImpostorHist []int64
}

// Counter gathers one worker's share of the scores; [Merge] adds the
// workers' counters up.
type Counter struct {
	tail      topK
	genHist   []int64
	impHist   []int64
	impostors int64
}

// NewCounter returns a counter that keeps the tailLen highest impostor
// scores (see [TailLength]).
func NewCounter(tailLen int) *Counter {
	return &Counter{tail: newTopK(tailLen), genHist: make([]int64, Bins), impHist: make([]int64, Bins)}
}

// Genuine counts a genuine pair's score in the histogram; the caller keeps
// the score itself, in probe order, for [Merge].
func (c *Counter) Genuine(s float32) { c.genHist[Bin(s)]++ }

// Impostor counts an impostor pair's score.
func (c *Counter) Impostor(s float32) { c.Impostors([]float32{s}) }

// Impostors counts impostor pairs' scores: a row of them costs a bin
// increment and one comparison per score.
func (c *Counter) Impostors(scores []float32) {
	c.impostors += int64(len(scores))
	h := c.impHist[:Bins]
	t := &c.tail
	for _, s := range scores {
		h[Bin(s)]++
		if s > t.floor {
			t.add(s)
		}
	}
}

// Merge adds counters up into the Scores of genuine (every genuine score,
// in probe order), keeping the tailLen highest impostor scores of all.
func Merge(genuine []float32, tailLen int, counters ...*Counter) Scores {
	s := Scores{Genuine: genuine, GenuineHist: make([]int64, Bins), ImpostorHist: make([]int64, Bins)}
	n := 0
	for _, c := range counters {
		n += len(c.tail.items)
	}
	if len(counters) == 1 {
		s.Tail = counters[0].tail.items // no copy of what may be most of the memory
	} else if n > 0 {
		s.Tail = make([]float32, 0, n)
	}
	for _, c := range counters {
		s.Impostors += c.impostors
		if len(counters) > 1 {
			s.Tail = append(s.Tail, c.tail.items...)
		}
		for b := range Bins {
			s.GenuineHist[b] += c.genHist[b]
			s.ImpostorHist[b] += c.impHist[b]
		}
	}
	tailLen = max(tailLen, 0)
	if len(s.Tail) > tailLen {
		selectTop(s.Tail, tailLen)
		s.Tail = s.Tail[:tailLen]
	}
	return s
}
