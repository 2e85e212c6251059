package bench

import (
	"context"
	"runtime"
	"slices"
	"time"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
)

// The throughput phases: the machine's FMA peak, batched searches, many
// concurrent callers, and eval's all-pairs scoring.

// peakRead is how long each read of the FMA peak runs.
const peakRead = 500 * time.Millisecond

// bestOfPairs is how many pairs of a short peak read (bestOfRead) and one
// timed batched call the float32 collection's best-pass reading takes.
const (
	bestOfPairs = 5
	bestOfRead  = 200 * time.Millisecond
)

// throughput measures coll's many-query figures at Concurrency and Batch
// queries. coalesced is qps_concurrent, already measured at Concurrency
// callers; each batched measurement follows a read of the FMA peak, so
// that the two see the same machine.
func (h *harness) throughput(ctx context.Context, coll string, coalesced float64) ([]Throughput, error) {
	cfg := h.cfg
	var out []Throughput
	for _, size := range slices.Compact([]int{cfg.Concurrency, cfg.Batch}) {
		h.peaks = append(h.peaks, index.FMAPeak(runtime.GOMAXPROCS(0), peakRead)/1e9)
		qps, err := h.batched(ctx, coll, size)
		if err != nil {
			return nil, err
		}
		x := Throughput{Batch: size, BatchedQPS: qps,
			BatchedGFLOPS: 2 * float64(cfg.Users) * float64(cfg.Dim) * qps / 1e9, CoalescedQPS: coalesced}
		if coll == collFloat32 {
			if x.BestPassGFLOPS, x.BestPassVsPeak, err = h.bestPass(ctx, coll, size); err != nil {
				return nil, err
			}
		}
		if size != cfg.Concurrency {
			if x.CoalescedQPS, err = h.qps(ctx, coll, size); err != nil {
				return nil, err
			}
		}
		h.logf("%s: batches of %d %.1f queries/s (%.1f GFLOP/s, peak %.1f); %d callers %.1f queries/s",
			coll, size, x.BatchedQPS, x.BatchedGFLOPS, h.peaks[len(h.peaks)-1], size, x.CoalescedQPS)
		out = append(out, x)
	}
	return out, nil
}

// batchInput is one SearchUsersBatch call of size probes on coll.
func (h *harness) batchInput(coll string, size int) *engine.SearchUsersBatchInput {
	return &engine.SearchUsersBatchInput{CollectionId: coll, Vectors: h.probes[:size],
		MaxUsers: ptr(int32(searchK)), UserMatchThreshold: ptr[float32](0)}
}

// batched calls SearchUsersBatch with size probes at a time, one call
// after another, for QPSDuration (at least one call), and returns queries
// answered per second.
func (h *harness) batched(ctx context.Context, coll string, size int) (float64, error) {
	in := h.batchInput(coll, size)
	h.logf("batches of %d queries on %s for %v", size, coll, h.cfg.QPSDuration)
	deadline := time.Now().Add(h.cfg.QPSDuration)
	t0 := time.Now()
	n := 0
	for n == 0 || time.Now().Before(deadline) {
		if _, err := h.e.SearchUsersBatch(ctx, in); err != nil {
			return 0, err
		}
		n += size
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// bestPass is the symmetric reading of a batched call against the peak:
// bestOfPairs times, a bestOfRead read of the FMA peak and right after it
// one timed SearchUsersBatch call of size probes. It returns the fastest
// call's GFLOP/s (2·users·dim·size over its time) and its ratio to the
// best of those reads: other work on the machine only ever lowers either,
// so the best of each is each at its least disturbed. These reads stay
// out of fma_peak_gflops, which keeps its own.
func (h *harness) bestPass(ctx context.Context, coll string, size int) (gflops, vsPeak float64, err error) {
	in := h.batchInput(coll, size)
	h.logf("best of %d batches of %d queries on %s, each after a peak read", bestOfPairs, size, coll)
	flops := 2 * float64(h.cfg.Users) * float64(h.cfg.Dim) * float64(size)
	peak := 0.0
	for range bestOfPairs {
		peak = max(peak, index.FMAPeak(runtime.GOMAXPROCS(0), bestOfRead)/1e9)
		t0 := time.Now()
		if _, err := h.e.SearchUsersBatch(ctx, in); err != nil {
			return 0, 0, err
		}
		gflops = max(gflops, flops/time.Since(t0).Seconds()/1e9)
	}
	return gflops, gflops / peak, nil
}

// eval times cfg.Eval over EvalProbes probes and every user vector (the
// copy of the user matrix, laid out as `facesearch eval` lays out its
// gallery), and scales the time to 10,000 probes: the scoring is all
// pairs, so its time is linear in the probes.
func (h *harness) eval(ctx context.Context, rep *Report) error {
	cfg := h.cfg
	h.logf("eval: %d probes x %d users", cfg.EvalProbes, h.copy.Len())
	t0 := time.Now()
	if err := cfg.Eval(ctx, h.copy, h.probes[:cfg.EvalProbes]); err != nil {
		return err
	}
	rep.EvalProbes = cfg.EvalProbes
	rep.EvalS = time.Since(t0).Seconds()
	rep.Eval10kS = rep.EvalS * 10_000 / float64(cfg.EvalProbes)
	h.logf("eval: %.2f s, %.1f s scaled to 10,000 probes", rep.EvalS, rep.Eval10kS)
	return nil
}

// peak is the best of the run's FMA peak reads: other work on the
// machine only ever lowers a read.
func (h *harness) peak() float64 { return slices.Max(h.peaks) }
