package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
)

// searchK is MaxUsers for every timed search, and the top-k compared.
const searchK = 10

// Run builds the synthetic data set cfg describes in a fresh store and
// measures every figure of [Report], writing progress lines to progress
// (nil for none). It needs about 4·Users·FacesPerUser·Dim bytes for the
// generated faces plus what the engine holds (twice, with a compressed
// tier), and while eval is timed another 4·Users·Dim for its copy of the
// user vectors.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	h := &harness{cfg: cfg, log: progress, gen: NewGenerator(GenConfig{
		Identities: cfg.Users, FacesPerIdentity: cfg.FacesPerUser, Dim: cfg.Dim, Seed: cfg.Seed})}
	dir, cleanup, err := storeDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	h.dir = dir
	rep := &Report{Users: cfg.Users, FacesPerUser: cfg.FacesPerUser, Dim: cfg.Dim, Concurrency: cfg.Concurrency, Machine: Machine()}
	rep.LoadAvg[0] = loadAvg()
	if err := h.run(ctx, rep); err != nil {
		return nil, err
	}
	rep.LoadAvg[1] = loadAvg()
	rep.ElapsedS = time.Since(start).Seconds()
	rep.fill()
	return rep, nil
}

// storeDir returns the store directory: dir itself if it is empty or
// absent, else a fresh temporary one; cleanup removes only what Run made.
func storeDir(dir string) (string, func(), error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "facesearch-bench-")
		if err != nil {
			return "", nil, err
		}
		return tmp, func() { os.RemoveAll(tmp) }, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", nil, err
	}
	if len(entries) > 0 {
		return "", nil, fmt.Errorf("bench: %s is not empty: the benchmark needs a fresh store", dir)
	}
	return dir, func() {}, nil
}

// harness holds one run's state.
type harness struct {
	cfg    Config
	log    io.Writer
	gen    *Generator
	dir    string
	e      *engine.Engine
	faces  []float32       // every generated face, user-major
	probes [][]float32     // genuine queries: fresh faces of random users
	copy   *index.Matrix   // the user vectors, for the floor and the naive scan
	floors []time.Duration // every timed read of copy
	peaks  []float64       // every read of the FMA peak, GFLOP/s
}

const (
	collFloat32 = "bench-float32"
	collTier    = "bench-compressed"
	collAPI     = "bench-api"
)

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "bench: "+format+"\n", args...)
}

func (h *harness) run(ctx context.Context, rep *Report) (err error) {
	cfg := h.cfg
	defer func() {
		if h.e != nil {
			if cerr := h.e.Close(); err == nil {
				err = cerr
			}
		}
	}()

	h.logf("generating %d users x %d face(s), %d dims (seed %d)", cfg.Users, cfg.FacesPerUser, cfg.Dim, cfg.Seed)
	if err := h.generate(ctx); err != nil {
		return err
	}
	if h.e, err = engine.Open(h.dir, nil); err != nil {
		return err
	}

	// Ingest: bulk import into a fresh collection, durable at the end.
	rate, err := h.ingest(ctx, collFloat32, "float32")
	if err != nil {
		return err
	}
	rep.IngestFacesPerS = rate

	// Open: close the engine and time the reopen until a search is served.
	if err := h.e.Close(); err != nil {
		return err
	}
	h.e = nil
	runtime.GC()
	h.logf("reopening the store")
	read0, readOK := storageReadBytes()
	t0 := time.Now()
	if h.e, err = engine.Open(h.dir, nil); err != nil {
		return err
	}
	if _, err := h.search(ctx, collFloat32, h.probes[0]); err != nil {
		return err
	}
	rep.OpenS = time.Since(t0).Seconds()
	if read1, ok := storageReadBytes(); ok && readOK {
		n := read1 - read0
		rep.OpenReadBytes = &n
		h.logf("open %.2f s, %.0f MB read from storage", rep.OpenS, float64(n)/1e6)
	} else {
		h.logf("open %.2f s", rep.OpenS)
	}

	// The floor and the naive scan read a copy of the user matrix, built
	// from the same vectors the way the engine builds its own; building it
	// is also how bytes_per_user is measured. Floor reads are interleaved
	// with the timed searches, so that both see the same machine: other
	// load moves them together and leaves their ratio.
	h.logf("building a copy of the user matrix (floor, naive scan, bytes per user)")
	if h.copy, rep.BytesPerUser, err = h.userMatrix(ctx, index.TierFloat32); err != nil {
		return err
	}
	if cfg.DumpDir != "" {
		if err := h.dump(); err != nil {
			return err
		}
	}
	if rep.SearchP50Ms, rep.SearchP99Ms, err = h.latency(ctx, collFloat32); err != nil {
		return err
	}
	rep.FloorMs = ms(median(h.floors))
	h.logf("search p50 %.2f ms, p99 %.2f ms; floor %.2f ms", rep.SearchP50Ms, rep.SearchP99Ms, rep.FloorMs)
	rep.NaiveMs = h.naive(ctx, h.copy)
	h.logf("naive %.1f ms", rep.NaiveMs)

	if rep.QPSConcurrent, err = h.qps(ctx, collFloat32, cfg.Concurrency); err != nil {
		return err
	}
	h.logf("%d callers: %.1f searches/s", cfg.Concurrency, rep.QPSConcurrent)
	if !cfg.SkipThroughput {
		if rep.Throughput, err = h.throughput(ctx, collFloat32, rep.QPSConcurrent); err != nil {
			return err
		}
		if cfg.Eval != nil {
			if err := h.eval(ctx, rep); err != nil {
				return err
			}
		}
	}

	// IndexFaces through the API: one face and one sync per call.
	if rep.APIIndexFacesPerS, err = h.apiIndex(ctx); err != nil {
		return err
	}
	h.logf("IndexFaces: %.0f faces/s from %d callers", rep.APIIndexFacesPerS, cfg.APICallers)

	if cfg.Tier != "none" {
		if rep.Compressed, err = h.compressed(ctx); err != nil {
			return err
		}
	}
	h.copy = nil
	if len(h.peaks) > 0 {
		rep.FMAPeakGFLOPS, rep.FMAPeakKernel, rep.FMAPeakWorkers = h.peak(), index.FMAPeakKernel(), runtime.GOMAXPROCS(0)
	}
	return nil
}

// each runs f(i) for every i from 0 to n-1 on callers goroutines, each
// taking the next i in turn, and returns their errors joined: a goroutine
// stops at its first error, or once ctx is done.
func each(ctx context.Context, callers, n int, f func(i int) error) error {
	var next atomic.Int64
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if errs[c] = ctx.Err(); errs[c] != nil || i >= n {
					return
				}
				if errs[c] = f(i); errs[c] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ticker prints a phase's progress every couple of seconds.
type ticker struct {
	n    atomic.Int64
	quit chan struct{}
	done sync.WaitGroup
}

func (h *harness) ticker(verb, unit string, total int) *ticker {
	t := &ticker{quit: make(chan struct{})}
	t0 := time.Now()
	t.done.Go(func() {
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-t.quit:
				return
			case <-tk.C:
				n := t.n.Load()
				h.logf("  %s %d/%d %s (%.0f/s)", verb, n, total, unit, float64(n)/time.Since(t0).Seconds())
			}
		}
	})
	return t
}

func (t *ticker) add(n int) { t.n.Add(int64(n)) }

func (t *ticker) stop() {
	close(t.quit)
	t.done.Wait()
}
