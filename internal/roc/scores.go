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
	"math"
	"slices"
	"sync"
)

// Bins is the resolution of the score histograms over cosine [-1, 1]:
// fine enough that a ROC drawn from them is smooth.
const Bins = 4000

// Bin is the histogram bin of cosine s; scores outside [-1, 1] land in the
// end bins.
func Bin(s float32) int {
	return min(max(int((float64(s)+1)*(Bins/2)), 0), Bins-1)
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
//
// Of the impostor scores it keeps every one at or above floor: the low
// edge of the bin that holds its tailLen-th highest so far, or that score
// itself once the kept ones are filtered. None below can be among the
// highest at the end, of its own scores or of all. Keeping costs a
// comparison and a store per score, filtering a pass over the kept ones
// each time another tailLen have come; a heap of tens of millions, as the
// tail of 10^10 pairs is, would miss the cache at every level of every
// insert.
type Counter struct {
	tail     []float32
	tailLen  int
	floorBin int
	floor    float32 // at least binFloor(floorBin)
	above    int64   // impostor scores in bins from floorBin up, or fewer once floor is above binFloor(floorBin)
	filterAt int     // len(tail) at which to drop the kept scores below floor

	genHist []int64
	// impHist is two histograms, of the even and odd places of Impostors'
	// scores, so that counts of one bin in a row do not wait on each other.
	impHist   []int64
	impostors int64
}

// NewCounter returns a counter that keeps the tailLen highest impostor
// scores (see [TailLength]).
func NewCounter(tailLen int) *Counter {
	c := &Counter{tailLen: max(tailLen, 0), floor: float32(math.Inf(-1)), genHist: make([]int64, Bins), impHist: make([]int64, 2*Bins)}
	if c.tailLen == 0 {
		c.floor = float32(math.Inf(1))
	}
	c.filterAt = c.tailLen + minFilter
	// All the room the tail takes between filters, at once: grown step by
	// step, a tail of millions is copied and zeroed, and its fresh pages
	// faulted in, over and over. Untouched pages cost nothing.
	c.tail = make([]float32, 0, max(2*c.tailLen, c.filterAt)+c.tailLen/overshoot+minFilter)
	return c
}

// minFilter keeps a short tail from being filtered at almost every call.
const minFilter = 4096

// overshoot: a filtered tail longer than tailLen by more than
// tailLen/overshoot is cut to tailLen.
const overshoot = 8

// Genuine counts a genuine pair's score in the histogram; the caller keeps
// the score itself, in probe order, for [Merge].
func (c *Counter) Genuine(s float32) { c.genHist[Bin(s)]++ }

// Impostors counts impostor pairs' scores.
func (c *Counter) Impostors(scores []float32) {
	// At most minFilter at a time, the filter checked between them: the
	// tail's room holds that many past filterAt (see NewCounter), however
	// many the caller passes.
	for len(scores) > minFilter {
		c.count(scores[:minFilter])
		scores = scores[minFilter:]
	}
	c.count(scores)
}

// count is Impostors of at most minFilter scores.
func (c *Counter) count(scores []float32) {
	c.impostors += int64(len(scores))
	h0, h1 := c.impHist[:Bins], c.impHist[Bins:2*Bins]
	i := 0
	for ; i+1 < len(scores); i += 2 {
		h0[Bin(scores[i])]++
		h1[Bin(scores[i+1])]++
	}
	if i < len(scores) {
		h0[Bin(scores[i])]++
	}
	// A second pass: apart, both loops keep their values in registers.
	if c.tailLen == 0 {
		return
	}
	kept := len(c.tail)
	c.tail = appendFrom(c.tail, scores, c.floor)
	c.above += int64(len(c.tail) - kept) // s >= floor is Bin(s) >= floorBin
	if c.above-c.inBin(c.floorBin) >= int64(c.tailLen) {
		for c.floorBin < Bins-1 && c.above-c.inBin(c.floorBin) >= int64(c.tailLen) {
			c.above -= c.inBin(c.floorBin)
			c.floorBin++
		}
		c.floor = max(c.floor, binFloors()[c.floorBin])
	}
	if len(c.tail) >= c.filterAt {
		c.tail = appendFrom(c.tail[:0], c.tail, c.floor)
		if len(c.tail) > c.tailLen+c.tailLen/overshoot {
			// The floor's bin holds more than the tail needs (many equal
			// scores, at worst): the tailLen-th highest score itself is a
			// floor too, and keeps the tail bounded whatever the scores.
			// A few over are left: selecting costs more than the next
			// filter's pass over them.
			selectTop(c.tail, c.tailLen)
			c.tail = c.tail[:c.tailLen]
			c.floor = c.tail[c.tailLen-1]
		}
		c.filterAt = len(c.tail) + max(c.tailLen, minFilter)
	}
}

// inBin is how many impostor scores were counted in bin b.
func (c *Counter) inBin(b int) int64 { return c.impHist[b] + c.impHist[Bins+b] }

// appendFrom appends the values of src at or above floor to dst, which may
// be src[:0]. It has no branch per value: early on, before the floor has
// risen, whether a score enters is a coin toss the CPU would mispredict.
func appendFrom(dst, src []float32, floor float32) []float32 {
	n := len(dst)
	dst = slices.Grow(dst, len(src))
	buf := dst[:n+len(src)]
	for _, s := range src {
		buf[n] = s
		if s >= floor {
			n++
		}
	}
	return dst[:n]
}

// binFloors holds binFloor of every bin.
var binFloors = sync.OnceValue(func() []float32 {
	f := make([]float32, Bins)
	for b := range f {
		f[b] = binFloor(b)
	}
	return f
})

// binFloor is the least score of bin b, found by bisection over the
// float32 values between -1 (bin 0) and 1 (the last bin) in order.
func binFloor(b int) float32 {
	if b <= 0 {
		return float32(math.Inf(-1))
	}
	lo, hi := orderKey(-1), orderKey(1) // Bin(lo) < b <= Bin(hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if Bin(fromOrderKey(mid)) >= b {
			hi = mid
		} else {
			lo = mid
		}
	}
	return fromOrderKey(hi)
}

// orderKey maps float32s to uint32s in the same order (for non-NaNs).
func orderKey(x float32) uint32 {
	u := math.Float32bits(x)
	if u>>31 != 0 {
		return ^u
	}
	return u | 1<<31
}

func fromOrderKey(k uint32) float32 {
	if k>>31 != 0 {
		return math.Float32frombits(k &^ (1 << 31))
	}
	return math.Float32frombits(^k)
}

// Merge adds counters up into the Scores of genuine (every genuine score,
// in probe order), keeping the tailLen highest impostor scores of all.
// The counters are spent.
func Merge(genuine []float32, tailLen int, counters ...*Counter) Scores {
	s := Scores{Genuine: genuine, GenuineHist: make([]int64, Bins), ImpostorHist: make([]int64, Bins)}
	// Every counter's floor is below its own tailLen-th highest score, so
	// below the tailLen-th highest of all: the highest floor holds for all.
	floor := float32(math.Inf(-1))
	for _, c := range counters {
		floor = max(floor, c.floor)
	}
	for i, c := range counters {
		s.Impostors += c.impostors
		if i == 0 {
			// The first counter's room, filtered in place, takes the
			// others' scores: no fresh copy of what may be most of the
			// memory.
			s.Tail = appendFrom(c.tail[:0], c.tail, floor)
		} else {
			s.Tail = appendFrom(s.Tail, c.tail, floor)
		}
		for b := range Bins {
			s.GenuineHist[b] += c.genHist[b]
			s.ImpostorHist[b] += c.inBin(b)
		}
	}
	tailLen = max(tailLen, 0)
	if len(s.Tail) > tailLen {
		selectTop(s.Tail, tailLen)
		s.Tail = s.Tail[:tailLen]
	}
	if len(s.Tail) == 0 {
		s.Tail = nil
	}
	return s
}
