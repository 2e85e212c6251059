package index

import (
	"sync"
	"sync/atomic"
	"time"
)

// FMAPeak measures this machine's float32 multiply-add peak in FLOP/s (a
// fused multiply-add counts as two): workers goroutines (at least one) at
// once, for about d, each running many independent multiply-add chains on
// registers, with no memory traffic at all. It is the ceiling a batched
// search, which does the same arithmetic and must also read the rows,
// can approach but not pass. The kernel is the widest this CPU and build
// offer ([FMAPeakKernel]); a build without assembly reports what a plain
// Go loop does.
//
// The first tenth of d is a warm-up, not counted: some CPUs reach their
// full vector speed only after a while of vector work.
func FMAPeak(workers int, d time.Duration) float64 {
	return measurePeak(hostPeak, workers, d)
}

// FMAPeakKernel names the kernel [FMAPeak] runs: "avx512", "avx2" or "go".
func FMAPeakKernel() string { return hostPeak.name }

// peakKernel is one register-only multiply-add loop.
type peakKernel struct {
	name string
	// flops is the work of one iteration: chains x lanes x 2.
	flops int
	// run does n iterations.
	run func(n int)
}

// peakIters is one call's iterations: about 0.1 ms of work, so that a
// worker looks at the clock rarely but stops close to the deadline.
const peakIters = 1 << 14

// measurePeak runs k on workers goroutines until d has passed and returns
// the FLOP/s of the calls started after the warm-up.
func measurePeak(k peakKernel, workers int, d time.Duration) float64 {
	workers = max(1, workers)
	start := time.Now()
	warm, deadline := start.Add(d/10), start.Add(d)
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := int64(0)
			for {
				t := time.Now()
				if t.After(deadline) && n > 0 {
					break
				}
				k.run(peakIters)
				if !t.Before(warm) {
					n++
				}
			}
			calls.Add(n)
		})
	}
	wg.Wait()
	el := time.Since(warm).Seconds()
	return float64(calls.Load()) * peakIters * float64(k.flops) / el
}

// peakGo is the pure-Go loop: eight independent chains of a = a*c + d,
// which the compiler may or may not fuse into single instructions; it
// reports what Go's own arithmetic does.
var peakGo = peakKernel{name: "go", flops: 8 * 2, run: func(n int) { peakSink.Store(fmaLoopGo(n, 0.5, 0.5)) }}

// peakSink keeps fmaLoopGo's result alive, so its loop is not dropped.
var peakSink atomic.Value

func fmaLoopGo(n int, c, d float32) float32 {
	a0, a1, a2, a3, a4, a5, a6, a7 := d, d, d, d, d, d, d, d
	for range n {
		a0 = a0*c + d
		a1 = a1*c + d
		a2 = a2*c + d
		a3 = a3*c + d
		a4 = a4*c + d
		a5 = a5*c + d
		a6 = a6*c + d
		a7 = a7*c + d
	}
	return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
}
