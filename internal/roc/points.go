package roc

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// TailLength is how many of the highest impostor scores [OperatingPoints]
// needs for FARs down from loosest, of impostors pairs: the threshold of a
// FAR is the score just past floor(FAR * impostors) of them.
func TailLength(loosest float64, impostors int64) int {
	return int(math.Floor(loosest*float64(impostors))) + 1
}

// OperatingPoint is what accepting cosines from a threshold on gives.
type OperatingPoint struct {
	FAR float64 `json:"FAR"`
	// Cosine is the least cosine accepted at this FAR: accepting cosines
	// >= Cosine accepts at most FAR of the impostor pairs.
	Cosine float64 `json:"Cosine"`
	// TAR is the share of genuine pairs accepted.
	TAR float64 `json:"TAR"`
	// AchievedFAR is the share of impostor pairs accepted, at most FAR.
	AchievedFAR float64 `json:"AchievedFAR"`
	// ImpostorPairsAbove is how many impostor pairs the FAR allows:
	// below 10 the threshold is rough.
	ImpostorPairsAbove int64 `json:"ImpostorPairsAbove"`
	// StrangersMatched is the share of strangers' searches whose best
	// user reaches Cosine (the false-positive identification rate); null
	// without strangers.
	StrangersMatched *float64 `json:"StrangersMatched"`
}

// OperatingPoints reads the threshold of every FAR in fars off the
// impostor tail and the TAR off the genuine scores. strangerTop is each
// stranger search's best cosine. The tail must hold at least
// [TailLength] of the loosest FAR scores, or the thresholds of the
// loosest FARs are too strict; with no impostor scores at all, every
// threshold is -1. s is left as it was: the tail is ranked in a copy.
func OperatingPoints(s Scores, fars []float64, strangerTop []float32) []OperatingPoint {
	tail := ranker{a: slices.Clone(s.Tail)}
	out := make([]OperatingPoint, len(fars))
	for i, far := range fars {
		k := int64(math.Floor(far * float64(s.Impostors)))
		var t float32
		switch {
		case s.Impostors == 0 || len(s.Tail) == 0:
			t = -1
		default:
			// Just above the (k+1)-th highest impostor score, so at most
			// k impostor pairs reach it; the least kept one if the tail is
			// shorter.
			t = math.Nextafter32(tail.largest(int(min(k, int64(len(s.Tail)-1)))+1), 2)
		}
		p := OperatingPoint{FAR: far, Cosine: float64(t), ImpostorPairsAbove: k}
		if s.Impostors > 0 {
			p.AchievedFAR = float64(countFrom(s.Tail, t)) / float64(s.Impostors)
		}
		if len(s.Genuine) > 0 {
			p.TAR = float64(countFrom(s.Genuine, t)) / float64(len(s.Genuine))
		}
		if len(strangerTop) > 0 {
			f := float64(countFrom(strangerTop, t)) / float64(len(strangerTop))
			p.StrangersMatched = &f
		}
		out[i] = p
	}
	return out
}

// ranker finds the n-th largest values of a for a few n, narrowing the
// search as n falls (the FARs of a report come loosest first).
type ranker struct {
	a      []float32
	ranked int // a[:ranked] are the ranked largest values, a[ranked-1] the least of them; 0 before the first
}

// largest returns the n-th largest value of a, 1 <= n <= len(a).
func (r *ranker) largest(n int) float32 {
	if r.ranked == 0 || n > r.ranked {
		selectTop(r.a, n)
	} else {
		selectTop(r.a[:r.ranked], n)
	}
	r.ranked = n
	return r.a[n-1]
}

// countFrom counts the scores at or above t.
func countFrom(scores []float32, t float32) int {
	n := 0
	for _, s := range scores {
		if s >= t {
			n++
		}
	}
	return n
}

// SuggestCurve builds a similarity curve spec ("c:p,...", the engine's
// collection setting) putting percents[i] at the threshold of points[i],
// zero at and below cosine 0 (unrelated faces), 100 at cosine 1.
// Thresholds are rounded up to 4 decimals, so each FAR holds; one that
// does not rise above the point before it is left out (the stricter FAR
// keeps the spot). points run from the loosest FAR to the strictest, and
// percents rise with them.
func SuggestCurve(points []OperatingPoint, percents []float64) string {
	type pt struct{ c, p float64 }
	pts := []pt{{-1, 0}}
	for i, op := range points {
		if i >= len(percents) {
			break
		}
		c := math.Ceil(op.Cosine*1e4) / 1e4
		if c <= -1 || c >= 1 {
			continue
		}
		if c == 0 { // (0, 0) would clash with the zero knee below
			c = 0.0001
		}
		for len(pts) > 1 && pts[len(pts)-1].c >= c {
			pts = pts[:len(pts)-1]
		}
		if len(pts) == 1 && c > 0 {
			pts = append(pts, pt{0, 0})
		}
		pts = append(pts, pt{c, percents[i]})
	}
	pts = append(pts, pt{1, 100})
	parts := make([]string, len(pts))
	for i, p := range pts {
		parts[i] = strconv.FormatFloat(p.c, 'f', -1, 64) + ":" + strconv.FormatFloat(p.p, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}
