package index

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// workers picks the fan-out: one goroutine per workerFloats of data, at most
// GOMAXPROCS.
func (m *Matrix) workers() int {
	return max(1, min(runtime.GOMAXPROCS(0), len(m.keys)*m.dim/workerFloats))
}

func (m *Matrix) chunks() int { return (len(m.keys) + m.chunkRows - 1) / m.chunkRows }

const (
	// chunkFloats is the unit a search worker claims at a time: the
	// granularity of load balancing and of noticing a cancelled context
	// (within 0.2-0.3 ms of one query's scan), and the length of the
	// streams a worker reads. It is a whole block because long streams
	// keep the hardware prefetcher ramped up: at 1M x 512 a search in
	// 4 MiB chunks took about 0.9x the time it took in 256 KiB chunks
	// (BenchmarkSearchTier, with chunkFloats changed).
	chunkFloats = blockFloats
	// workerFloats (8 MiB) is the least work, in rows x dim, worth a
	// goroutine of its own: two workers beat one from 8k rows at d=512
	// (2 x workerFloats), not below (BenchmarkSearchWorkers).
	workerFloats = 1 << 21
)

// scan runs workers goroutines (the caller's is one of them) that claim
// chunks of chunkRows contiguous rows (a power of two, at most blockRows,
// so no chunk straddles blocks) in turn and pass each, as the row range
// [lo, hi), to visit; a worker calls finish once it runs out of chunks.
// Worker w's calls are sequential, so visit may keep per-worker state
// without locks. Claiming chunks one at a time, rather than splitting rows
// up front, keeps all workers busy to the end when some are descheduled.
// Before each chunk a worker calls stop (when not nil) and gives up with
// its error.
//
// The visitor is the seam for the kernels (one query or several per pass,
// float32 or compressed rows): the driver only knows row ranges.
func (m *Matrix) scan(workers, chunkRows int, stop func() error, visit func(w, lo, hi int), finish func(w int)) error {
	n := len(m.keys)
	chunks := (n + chunkRows - 1) / chunkRows
	var next atomic.Int64
	run := func(w int) error {
		for {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				break
			}
			if stop != nil {
				if err := stop(); err != nil {
					return err
				}
			}
			lo := c * chunkRows
			visit(w, lo, min(lo+chunkRows, n))
		}
		if finish != nil {
			finish(w)
		}
		return nil
	}
	workers = max(1, min(workers, chunks))
	if workers <= 1 {
		return run(0)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { errs[w] = run(w) })
	}
	errs[0] = run(0)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ctxStop is a scan's stop function for one context: a non-blocking
// receive, cheap enough per chunk.
func ctxStop(ctx context.Context) func() error {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	return func() error {
		select {
		case <-done:
			return ctx.Err()
		default:
			return nil
		}
	}
}

// Sum returns the sum of every value of every row, read with the same
// workers and chunks as [Matrix.Search] and the least work per value. It
// measures the memory-bandwidth floor: no exact scan of the matrix can take
// less time than reading it once.
//
// Each chunk is read as the single-query scan reads it, its four quarters
// side by side where the assembly runs (kernelSet.sum): with the rows in
// panels, four streams a core read faster than two, so the floor is the
// faster read (BenchmarkFloor in bench/). The last panel's lanes past the
// rows are read too, as a search reads them.
func (m *Matrix) Sum(ctx context.Context) (float64, error) {
	workers := max(1, min(m.workers(), m.chunks()))
	sums := make([]float64, workers*8) // 64 bytes apart: no false sharing
	err := m.scan(workers, m.chunkRows, ctxStop(ctx), func(w, lo, hi int) {
		sums[w*8] += float64(kernels.sum(m.panels(lo, hi)))
	}, nil)
	if err != nil {
		return 0, err
	}
	var total float64
	for w := range workers {
		total += sums[w*8]
	}
	return total, nil
}

// stopAll is a pass's stop function: the pass goes on while any of its
// queries is still wanted.
func stopAll(qs []*query) func() error {
	if len(qs) == 1 {
		return ctxStop(qs[0].ctx)
	}
	dones := make([]<-chan struct{}, len(qs))
	for i, q := range qs {
		if dones[i] = q.ctx.Done(); dones[i] == nil {
			return nil // this one is never cancelled
		}
	}
	return func() error {
		for _, d := range dones {
			select {
			case <-d:
			default:
				return nil
			}
		}
		return context.Canceled // each query reports its own ctx.Err()
	}
}
