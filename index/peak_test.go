package index

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestFMAPeak checks that every multiply-add loop this CPU runs, and
// FMAPeak itself, report a positive finite rate, however small the
// duration or the worker count asked for.
func TestFMAPeak(t *testing.T) {
	for _, k := range peakKernels {
		for _, c := range []struct {
			workers int
			d       time.Duration
		}{{1, 20 * time.Millisecond}, {2, 20 * time.Millisecond}, {0, 0}, {-3, -time.Second}} {
			got := measurePeak(k, c.workers, c.d)
			assert.True(t, got > 0 && !math.IsInf(got, 0) && !math.IsNaN(got),
				"%s, %d workers, %v: %v FLOP/s", k.name, c.workers, c.d, got)
		}
	}
	got := FMAPeak(2, 20*time.Millisecond)
	assert.True(t, got > 0 && !math.IsInf(got, 0), "FMAPeak: %v FLOP/s", got)
	assert.Equal(t, peakKernels[0].name, FMAPeakKernel())
	t.Logf("%s: %.1f GFLOP/s on 2 workers", FMAPeakKernel(), got/1e9)
}

// TestFMALoopGo checks the pure-Go loop's arithmetic: the chains converge
// to d/(1-c), so the values stay normal however long the loop runs.
func TestFMALoopGo(t *testing.T) {
	for _, n := range []int{0, 1, 2, 100, peakIters} {
		got := fmaLoopGo(n, 0.5, 0.5)
		want := float32(8 * (1 - math.Pow(0.5, float64(n+1))))
		assert.InDelta(t, want, got, 1e-5, "n=%d", n)
	}
}
