package roc

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBin(t *testing.T) {
	tests := []struct {
		s    float32
		want int
	}{
		{-1, 0},
		{-2, 0},
		{0, Bins / 2},
		{0.5, 3 * Bins / 4},
		{1, Bins - 1},
		{2, Bins - 1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Bin(tt.s), "Bin(%g)", tt.s)
	}
}

// TestMerge checks the counters of several workers against one list of
// every score: the same counts, histograms and highest impostor scores.
func TestMerge(t *testing.T) {
	for _, tt := range []struct {
		name              string
		workers, impostor int
		tailLen           int
	}{
		{"one worker", 1, 500, 10},
		{"three workers", 3, 1000, 37},
		{"tail longer than the scores", 2, 20, 100},
		{"no impostors", 2, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tt.impostor)))
			counters := make([]*Counter, tt.workers)
			for w := range counters {
				counters[w] = NewCounter(tt.tailLen)
			}
			var all []float32
			wantImp := make([]int64, Bins)
			for i := range tt.impostor {
				s := float32(r.Float64()*2 - 1)
				all = append(all, s)
				wantImp[Bin(s)]++
				counters[i%tt.workers].Impostors([]float32{s})
			}
			genuine := []float32{0.9, 0.7, -0.1}
			wantGen := make([]int64, Bins)
			for i, s := range genuine {
				wantGen[Bin(s)]++
				counters[i%tt.workers].Genuine(s)
			}
			got := Merge(genuine, tt.tailLen, counters...)
			assert.Equal(t, descending(all)[:min(tt.tailLen, len(all))], descending(got.Tail))
			assert.EqualValues(t, tt.impostor, got.Impostors)
			assert.Equal(t, wantImp, got.ImpostorHist)
			assert.Equal(t, wantGen, got.GenuineHist)
			assert.Equal(t, genuine, got.Genuine)
		})
	}
}

// descending returns a sorted copy of scores, highest first.
func descending(scores []float32) []float32 {
	if len(scores) == 0 {
		return nil
	}
	out := slices.Clone(scores)
	slices.SortFunc(out, func(a, b float32) int { return cmp.Compare(b, a) })
	return out
}

// TestTopK: the kept values are the limit largest offered, whatever the
// order and however many repeat, across the buffer's compactions, in the
// room NewCounter gave the tail, in calls shorter and longer than the
// filter's step.
func TestTopK(t *testing.T) {
	for _, tt := range []struct {
		name          string
		n, limit, mod int // values 0..mod-1 repeat when mod is small
		call          int // scores per Impostors call
	}{
		{"none kept", 1000, 0, 1 << 30, 333},
		{"one kept", 5000, 1, 1 << 30, 333},
		{"distinct, many compactions", 50_000, 300, 1 << 30, 333},
		{"heavy repeats", 50_000, 700, 7, 333},
		{"all equal", 10_000, 10, 1, 333},
		{"all equal, long tail", 100_000, 5000, 1, 333},
		{"more kept than offered", 100, 500, 1 << 30, 333},
		{"calls past the filter's step", 200_000, 300, 1 << 30, 3*minFilter + 5},
		{"long tail, calls past the filter's step", 400_000, 20_000, 1 << 30, 9216},
		{"all equal, calls past the filter's step", 100_000, 5000, 1, 2*minFilter + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tt.n)))
			c := NewCounter(tt.limit)
			all := make([]float32, tt.n)
			for i := range all {
				all[i] = float32(r.IntN(tt.mod)) / float32(tt.mod)
			}
			room := cap(c.tail)
			for lo := 0; lo < len(all); lo += tt.call {
				c.Impostors(all[lo:min(lo+tt.call, len(all))])
				require.Less(t, len(c.tail), tt.limit+tt.limit/overshoot+max(tt.limit, minFilter), "the kept scores stay bounded")
				require.Equal(t, room, cap(c.tail), "the tail fits the room it was given")
			}
			got := Merge(nil, tt.limit, c)
			if tt.limit == 0 {
				assert.Empty(t, got.Tail)
				return
			}
			assert.Equal(t, descending(all)[:min(tt.limit, tt.n)], descending(got.Tail))
		})
	}
}

// TestSelectTop: a[:k] are the k largest and a[k-1] the least of them,
// against a sort.
func TestSelectTop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 10, 101, 4096} {
		for _, mod := range []int{1, 3, 1 << 20} {
			a := make([]float32, n)
			for i := range a {
				a[i] = float32(r.IntN(mod))
			}
			want := descending(a)
			for _, k := range []int{1, n / 2, n - 1, n} {
				if k < 1 {
					continue
				}
				b := slices.Clone(a)
				selectTop(b, k)
				require.Equal(t, want[k-1], b[k-1], "n=%d mod=%d k=%d", n, mod, k)
				require.Equal(t, want[:k], descending(b[:k]), "n=%d mod=%d k=%d", n, mod, k)
			}
		}
	}
}

func TestOperatingPoints(t *testing.T) {
	impostors := []float32{0.9, 0.5, 0.1, -0.2}
	fars := []float64{0.5, 0.25, 0.01}
	above := func(x float32) float64 { return float64(math.Nextafter32(x, 2)) }
	f := func(x float64) *float64 { return &x }
	tests := []struct {
		name        string
		tailLen     int
		impostors   []float32
		strangerTop []float32
		want        []OperatingPoint
	}{
		{
			name: "thresholds just above the k-th highest impostor score", tailLen: TailLength(fars[0], 4),
			impostors: impostors, strangerTop: []float32{0.55, 0.2},
			want: []OperatingPoint{
				{FAR: 0.5, Cosine: above(0.1), TAR: 0.75, AchievedFAR: 0.5, ImpostorPairsAbove: 2, StrangersMatched: f(1)},
				{FAR: 0.25, Cosine: above(0.5), TAR: 0.5, AchievedFAR: 0.25, ImpostorPairsAbove: 1, StrangersMatched: f(0.5)},
				{FAR: 0.01, Cosine: above(0.9), TAR: 0.25, AchievedFAR: 0, ImpostorPairsAbove: 0, StrangersMatched: f(0)},
			},
		},
		{
			name: "a tail too short gives stricter thresholds", tailLen: 1, impostors: impostors,
			want: []OperatingPoint{
				{FAR: 0.5, Cosine: above(0.9), TAR: 0.25, AchievedFAR: 0, ImpostorPairsAbove: 2},
				{FAR: 0.25, Cosine: above(0.9), TAR: 0.25, AchievedFAR: 0, ImpostorPairsAbove: 1},
				{FAR: 0.01, Cosine: above(0.9), TAR: 0.25, AchievedFAR: 0, ImpostorPairsAbove: 0},
			},
		},
		{
			name: "an empty tail accepts everything rather than fail", tailLen: 0, impostors: impostors,
			want: []OperatingPoint{
				{FAR: 0.5, Cosine: -1, TAR: 1, ImpostorPairsAbove: 2},
				{FAR: 0.25, Cosine: -1, TAR: 1, ImpostorPairsAbove: 1},
				{FAR: 0.01, Cosine: -1, TAR: 1},
			},
		},
		{
			name: "no impostors accepts everything", tailLen: 1,
			want: []OperatingPoint{
				{FAR: 0.5, Cosine: -1, TAR: 1},
				{FAR: 0.25, Cosine: -1, TAR: 1},
				{FAR: 0.01, Cosine: -1, TAR: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCounter(tt.tailLen)
			for _, s := range tt.impostors {
				c.Impostors([]float32{s})
			}
			s := Merge([]float32{0.95, 0.6, 0.3, 0.05}, tt.tailLen, c)
			assert.Equal(t, tt.want, OperatingPoints(s, fars, tt.strangerTop))
		})
	}
}

func TestTailLength(t *testing.T) {
	assert.Equal(t, 1, TailLength(1e-2, 0))
	assert.Equal(t, 1, TailLength(1e-2, 99))
	assert.Equal(t, 2, TailLength(1e-2, 100))
	assert.Equal(t, 10_001, TailLength(1e-2, 1_000_000))
}

func TestSuggestCurve(t *testing.T) {
	percents := []float64{60, 70, 80}
	tests := []struct {
		name    string
		cosines []float64
		want    string
	}{
		{"rounded up to 4 decimals", []float64{0.28881, 0.37849, 0.44705}, "-1:0,0:0,0.2889:60,0.3785:70,0.4471:80,1:100"},
		{"a threshold that does not rise gives way", []float64{0.3, 0.3, 0.5}, "-1:0,0:0,0.3:70,0.5:80,1:100"},
		{"zero moves off the knee", []float64{0, 0.2, 0.4}, "-1:0,0:0,0.0001:60,0.2:70,0.4:80,1:100"},
		{"a negative first threshold: no zero knee", []float64{-0.2, -0.1, 0.3}, "-1:0,-0.2:60,-0.1:70,0.3:80,1:100"},
		{"thresholds at the ends are left out", []float64{-1, 0.5, 1}, "-1:0,0:0,0.5:70,1:100"},
		{"no points", nil, "-1:0,1:100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			points := make([]OperatingPoint, len(tt.cosines))
			for i, c := range tt.cosines {
				points[i].Cosine = c
			}
			require.Equal(t, tt.want, SuggestCurve(points, percents))
		})
	}
}

// TestBinFloor: binFloor(b) is in bin b and the float32 just below it is
// not, for every bin.
func TestBinFloor(t *testing.T) {
	for b := 1; b < Bins; b++ {
		f := binFloor(b)
		require.Equal(t, b, Bin(f), "bin %d", b)
		require.Equal(t, b-1, Bin(math.Nextafter32(f, -2)), "bin %d", b)
	}
}

// sortedPoints is OperatingPoints as it was over a tail sorted highest
// first, a heap's output: the reference for the selection over the
// unordered tail.
func sortedPoints(s Scores, fars []float64, strangerTop []float32) []OperatingPoint {
	tail := descending(s.Tail)
	out := make([]OperatingPoint, len(fars))
	for i, far := range fars {
		k := int64(math.Floor(far * float64(s.Impostors)))
		var t float32
		switch {
		case s.Impostors == 0 || len(tail) == 0:
			t = -1
		case int(k) < len(tail):
			t = math.Nextafter32(tail[k], 2)
		default:
			t = math.Nextafter32(tail[len(tail)-1], 2)
		}
		p := OperatingPoint{FAR: far, Cosine: float64(t), ImpostorPairsAbove: k}
		if s.Impostors > 0 {
			p.AchievedFAR = float64(countFrom(tail, t)) / float64(s.Impostors)
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

// TestOperatingPointsSeeded: on seeded scores, coarse (many repeats) and
// fine, from several workers and tails long and short, the operating
// points are those read off the sorted tail of every impostor score.
func TestOperatingPointsSeeded(t *testing.T) {
	fars := []float64{1e-2, 1e-3, 1e-4, 0.3}
	for _, tt := range []struct {
		name               string
		impostors, workers int
		levels             float64 // scores are multiples of 1/levels
		tailLen            func(n int64) int
	}{
		{"fine", 200_000, 2, 1 << 24, func(n int64) int { return TailLength(0.3, n) }},
		{"coarse", 200_000, 3, 200, func(n int64) int { return TailLength(0.3, n) }},
		{"tail too short", 50_000, 2, 1 << 20, func(int64) int { return 7 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, uint64(tt.impostors)))
			score := func(mean float64) float32 {
				return float32(math.Round(math.Max(-1, math.Min(1, mean+r.NormFloat64()*0.1))*tt.levels) / tt.levels)
			}
			tailLen := tt.tailLen(int64(tt.impostors))
			counters := make([]*Counter, tt.workers)
			for w := range counters {
				counters[w] = NewCounter(tailLen)
			}
			row := make([]float32, 0, 100)
			for i := range tt.impostors {
				row = append(row, score(0))
				if len(row) == cap(row) || i == tt.impostors-1 {
					counters[i%tt.workers].Impostors(row)
					row = row[:0]
				}
			}
			genuine := make([]float32, 1000)
			for i := range genuine {
				genuine[i] = score(0.4)
			}
			strangers := genuine[:100]
			s := Merge(genuine, tailLen, counters...)
			require.Len(t, s.Tail, min(tailLen, tt.impostors))
			assert.Equal(t, sortedPoints(s, fars, strangers), OperatingPoints(s, fars, strangers))
		})
	}
}
