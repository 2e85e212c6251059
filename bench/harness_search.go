package bench

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/vector"
)

// The phases that search: the floor and the naive scan on a copy of the user
// matrix, latency, throughput, and the compressed tier against float32.

// userMatrix builds an index.Matrix of every user's vector (the normalized
// mean of its faces, as the engine computes it) and measures its heap cost
// per user.
func (h *harness) userMatrix(ctx context.Context, tier index.Tier) (*index.Matrix, float64, error) {
	cfg := h.cfg
	vec := make([]float32, cfg.Dim)
	sum := make([]float64, cfg.Dim)
	var before, after runtime.MemStats
	// Twice: the first collection only moves sync.Pool contents to the
	// pools' victim caches, which the second frees; otherwise they would be
	// freed during the measurement and count against the matrix.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := index.NewMatrixTier(cfg.Dim, tier)
	for i := range cfg.Users {
		if i%65536 == 0 && ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		vector.Mean(vec, sum, cfg.FacesPerUser, func(j int) []float32 { return h.face(i, j) })
		m.Upsert(uint64(i+1), vec)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perUser := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(cfg.Users)
	return m, perUser, nil
}

// naive is the median time of a plain Go top-10 scan of m's rows, one
// goroutine, over a copy of them one after another, as a newcomer would
// keep them (laid out before the timing, and handed back to the OS after
// it, so that the phases after this one do not run beside it).
func (h *harness) naive(ctx context.Context, m *index.Matrix) float64 {
	keys, rows := rowMajor(m)
	defer debug.FreeOSMemory()
	var ds []time.Duration
	for i := range 3 {
		t0 := time.Now()
		naiveSearch(keys, rows, h.probes[i], searchK)
		ds = append(ds, time.Since(t0))
		if ctx.Err() != nil {
			break
		}
	}
	return ms(median(ds))
}

// rowMajor is m's keys and its rows one after another, in row order.
func rowMajor(m *index.Matrix) ([]uint64, []float32) {
	keys := make([]uint64, 0, m.Len())
	rows := make([]float32, 0, m.Len()*m.Dim())
	for key, row := range m.All() {
		keys = append(keys, key)
		rows = append(rows, row...)
	}
	return keys, rows
}

// naiveSearch is the scan a newcomer writes first: a loop per row, one
// accumulator, a sorted slice for the top k. Row r, of key keys[r], is
// rows[r*len(q):].
func naiveSearch(keys []uint64, rows, q []float32, k int) []index.Hit {
	top := make([]index.Hit, 0, k+1)
	for r, key := range keys {
		row := rows[r*len(q) : (r+1)*len(q)]
		var s float32
		for i := range q {
			s += q[i] * row[i]
		}
		if len(top) == k && s <= top[k-1].Score {
			continue
		}
		i := len(top)
		for i > 0 && top[i-1].Score < s {
			i--
		}
		top = slices.Insert(top, i, index.Hit{Key: key, Score: s})
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// search runs one SearchUsersByImage on coll.
func (h *harness) search(ctx context.Context, coll string, q []float32) ([]engine.UserMatch, error) {
	out, err := h.e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{
		CollectionId: coll, Vector: q, MaxUsers: ptr(int32(searchK)), UserMatchThreshold: ptr[float32](0)})
	if err != nil {
		return nil, err
	}
	return out.UserMatches, nil
}

func ptr[T any](v T) *T { return &v }

// latency times Queries searches one after another.
func (h *harness) latency(ctx context.Context, coll string) (p50, p99 float64, err error) {
	n := h.cfg.Queries
	h.logf("timing %d searches on %s, one at a time", n, coll)
	p := h.ticker("searched", "queries", n)
	defer p.stop()
	ds := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		if _, err := h.copy.Sum(ctx); err != nil {
			return 0, 0, err
		}
		h.floors = append(h.floors, time.Since(t0))
		t0 = time.Now()
		if _, err := h.search(ctx, coll, h.probes[i]); err != nil {
			return 0, 0, err
		}
		ds[i] = time.Since(t0)
		p.add(1)
	}
	slices.Sort(ds)
	return ms(percentile(ds, 0.50)), ms(percentile(ds, 0.99)), nil
}

// qps runs callers concurrent searches for QPSDuration and returns
// searches per second.
func (h *harness) qps(ctx context.Context, coll string, callers int) (float64, error) {
	cfg := h.cfg
	h.logf("%d callers searching %s for %v", callers, coll, cfg.QPSDuration)
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(cfg.QPSDuration)
	t0 := time.Now()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := c; time.Now().Before(deadline) && ctx.Err() == nil; i += callers {
				if _, err := h.search(ctx, coll, h.probes[i%len(h.probes)]); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(done.Load()) / time.Since(t0).Seconds(), nil
}

// compressed measures the compressed tier: its own collection of the same
// faces, searched alone and concurrently, and compared with float32.
func (h *harness) compressed(ctx context.Context) (*CompressedReport, error) {
	cfg := h.cfg
	tier, _ := index.ParseTier(cfg.Tier)
	cr := &CompressedReport{Tier: cfg.Tier, AgreementQueries: cfg.AgreementQueries}

	// The fallback rate and memory come from an index.Matrix of the
	// users: the engine does not expose its matrices' statistics.
	h.logf("building a %s copy of the user matrix (bytes per user, fallback rate)", cfg.Tier)
	m, perUser, err := h.userMatrix(ctx, tier)
	if err != nil {
		return nil, err
	}
	cr.BytesPerUser = perUser
	for _, q := range h.probes[:cfg.Queries] {
		if _, err := m.Search(ctx, q, searchK, -1); err != nil {
			return nil, err
		}
	}
	st := m.Stats()
	cr.FallbackRate = float64(st.Fallbacks) / float64(max(st.Searches, 1))
	runtime.GC() // m is garbage from here

	if cr.IngestFacesPerS, err = h.ingest(ctx, collTier, cfg.Tier); err != nil {
		return nil, err
	}
	h.faces = nil // everything that needed the faces is done
	runtime.GC()
	h.floors = nil
	if cr.SearchP50Ms, cr.SearchP99Ms, err = h.latency(ctx, collTier); err != nil {
		return nil, err
	}
	cr.FloorMs = ms(median(h.floors))
	h.logf("%s search p50 %.2f ms, p99 %.2f ms; floor %.2f ms", cfg.Tier, cr.SearchP50Ms, cr.SearchP99Ms, cr.FloorMs)
	if cr.QPSConcurrent, err = h.qps(ctx, collTier, cfg.Concurrency); err != nil {
		return nil, err
	}
	h.logf("%s, %d callers: %.1f searches/s", cfg.Tier, cfg.Concurrency, cr.QPSConcurrent)
	if !cfg.SkipThroughput {
		if cr.Throughput, err = h.throughput(ctx, collTier, cr.QPSConcurrent); err != nil {
			return nil, err
		}
	}

	// Agreement: the same queries on both collections, from concurrent
	// callers (coalesced) so that a thousand exact scans stay quick.
	h.logf("comparing the top %d of %d queries on %s and float32", searchK, cfg.AgreementQueries, cfg.Tier)
	p := h.ticker("compared", "queries", cfg.AgreementQueries)
	defer p.stop()
	var same atomic.Int64
	err = each(ctx, cfg.Concurrency, cfg.AgreementQueries, func(i int) error {
		want, err := h.search(ctx, collFloat32, h.probes[i])
		if err != nil {
			return err
		}
		got, err := h.search(ctx, collTier, h.probes[i])
		if err != nil {
			return err
		}
		if sameMatches(want, got) {
			same.Add(1)
		}
		p.add(1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	cr.Top10Agreement = float64(same.Load()) / float64(cfg.AgreementQueries)
	h.logf("%s top-%d agreement %.4f, fallback rate %.4f", cfg.Tier, searchK, cr.Top10Agreement, cr.FallbackRate)
	return cr, nil
}

func sameMatches(a, b []engine.UserMatch) bool {
	return slices.EqualFunc(a, b, func(x, y engine.UserMatch) bool {
		return x.Similarity == y.Similarity && x.User.UserId == y.User.UserId
	})
}
