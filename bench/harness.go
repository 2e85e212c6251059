package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/vector"
)

// searchK is MaxUsers for every timed search, and the top-k compared.
const searchK = 10

// Run builds the synthetic data set cfg describes in a fresh store and
// measures every figure of [Report], writing progress lines to progress
// (nil for none). It needs about 4·Users·FacesPerUser·Dim bytes for the
// generated faces plus what the engine holds (twice, with a compressed
// tier).
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
	if rep.SearchP50Ms, rep.SearchP99Ms, err = h.latency(ctx, collFloat32); err != nil {
		return err
	}
	rep.FloorMs = ms(median(h.floors))
	h.logf("search p50 %.2f ms, p99 %.2f ms; floor %.2f ms", rep.SearchP50Ms, rep.SearchP99Ms, rep.FloorMs)
	rep.NaiveMs = h.naive(ctx, h.copy)
	h.logf("naive %.1f ms", rep.NaiveMs)

	if rep.QPSConcurrent, err = h.qps(ctx, collFloat32); err != nil {
		return err
	}
	h.logf("%d callers: %.1f searches/s", cfg.Concurrency, rep.QPSConcurrent)

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
	return nil
}

// generate makes every face, and the probes, on all cores.
func (h *harness) generate(ctx context.Context) error {
	cfg := h.cfg
	per := cfg.FacesPerUser * cfg.Dim
	h.faces = make([]float32, cfg.Users*per)
	var next atomic.Int64
	p := h.ticker("generated", "users", cfg.Users)
	defer p.stop()
	err := parallel(ctx, func() error {
		for {
			i := int(next.Add(1) - 1)
			if i >= cfg.Users {
				return nil
			}
			if i%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			for j, f := range h.gen.Faces(i) {
				copy(h.faces[i*per+j*cfg.Dim:], f)
			}
			p.add(1)
		}
	})
	if err != nil {
		return err
	}
	n := max(cfg.Queries, cfg.AgreementQueries)
	h.probes = make([][]float32, n)
	for i := range h.probes {
		h.probes[i] = h.gen.Probe(int(genMix(uint64(i)^uint64(cfg.Seed))%uint64(cfg.Users)), i)
	}
	return nil
}

// parallel runs f on GOMAXPROCS goroutines and returns the first error.
func parallel(ctx context.Context, f func() error) error {
	n := runtime.GOMAXPROCS(0)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (h *harness) face(user, j int) []float32 {
	per := h.cfg.FacesPerUser * h.cfg.Dim
	off := user*per + j*h.cfg.Dim
	return h.faces[off : off+h.cfg.Dim : off+h.cfg.Dim]
}

func userID(i int) string { return fmt.Sprintf("user-%08d", i) }

// ingest creates coll in tier and bulk-imports every face into it,
// returning faces per second from NewImporter to a durable Close.
func (h *harness) ingest(ctx context.Context, coll, tier string) (float64, error) {
	cfg := h.cfg
	if _, err := h.e.CreateCollection(ctx, &engine.CreateCollectionInput{
		CollectionId: coll, Dimension: cfg.Dim, Tier: tier}); err != nil {
		return 0, err
	}
	total := cfg.Users * cfg.FacesPerUser
	h.logf("importing %d faces into %s (%s)", total, coll, tier)
	p := h.ticker("imported", "faces", total)
	defer p.stop()
	t0 := time.Now()
	im, err := h.e.NewImporter(ctx, coll, &engine.ImportOptions{ExpectedFaces: min(total, math.MaxInt32), ExpectedUsers: min(cfg.Users, math.MaxInt32)})
	if err != nil {
		return 0, err
	}
	for i := range cfg.Users {
		id := userID(i)
		for j := range cfg.FacesPerUser {
			if err := im.Add(engine.ImportRecord{Vector: h.face(i, j), UserId: id}); err != nil {
				im.Close()
				return 0, err
			}
		}
		p.add(cfg.FacesPerUser)
	}
	if err := im.Close(); err != nil {
		return 0, err
	}
	el := time.Since(t0)
	rate := float64(total) / el.Seconds()
	h.logf("imported %d faces in %.1f s: %.0f faces/s", total, el.Seconds(), rate)
	return rate, nil
}

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

// naive is the median time of a plain Go top-10 scan of m, one goroutine.
func (h *harness) naive(ctx context.Context, m *index.Matrix) float64 {
	var ds []time.Duration
	for i := range 3 {
		t0 := time.Now()
		naiveSearch(m, h.probes[i], searchK)
		ds = append(ds, time.Since(t0))
		if ctx.Err() != nil {
			break
		}
	}
	return ms(median(ds))
}

// naiveSearch is the scan a newcomer writes first: a loop per row, one
// accumulator, a sorted slice for the top k.
func naiveSearch(m *index.Matrix, q []float32, k int) []index.Hit {
	top := make([]index.Hit, 0, k+1)
	for key, row := range m.All() {
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

// qps runs Concurrency callers for QPSDuration and counts the searches.
func (h *harness) qps(ctx context.Context, coll string) (float64, error) {
	cfg := h.cfg
	h.logf("%d callers searching %s for %v", cfg.Concurrency, coll, cfg.QPSDuration)
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(cfg.QPSDuration)
	t0 := time.Now()
	var wg sync.WaitGroup
	for c := range cfg.Concurrency {
		wg.Go(func() {
			for i := c; time.Now().Before(deadline) && ctx.Err() == nil; i += cfg.Concurrency {
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

// apiIndex indexes APIFaces fresh faces into a new collection through
// IndexFaces, one face per call, from APICallers goroutines.
func (h *harness) apiIndex(ctx context.Context) (float64, error) {
	cfg := h.cfg
	if _, err := h.e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: collAPI, Dimension: cfg.Dim}); err != nil {
		return 0, err
	}
	h.logf("indexing %d faces through IndexFaces from %d callers", cfg.APIFaces, cfg.APICallers)
	p := h.ticker("indexed", "faces", cfg.APIFaces)
	defer p.stop()
	var next atomic.Int64
	t0 := time.Now()
	errs := make([]error, cfg.APICallers)
	var wg sync.WaitGroup
	for c := range cfg.APICallers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.APIFaces || ctx.Err() != nil {
					errs[c] = ctx.Err()
					return
				}
				// Impostors: fresh vectors, none of them a user's.
				_, err := h.e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: collAPI,
					Faces: []engine.FaceEmbedding{{Vector: h.gen.Impostor(i)}}})
				if err != nil {
					errs[c] = err
					return
				}
				p.add(1)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(cfg.APIFaces) / time.Since(t0).Seconds(), nil
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
	if cr.QPSConcurrent, err = h.qps(ctx, collTier); err != nil {
		return nil, err
	}
	h.logf("%s, %d callers: %.1f searches/s", cfg.Tier, cfg.Concurrency, cr.QPSConcurrent)

	// Agreement: the same queries on both collections, from concurrent
	// callers (coalesced) so that a thousand exact scans stay quick.
	h.logf("comparing the top %d of %d queries on %s and float32", searchK, cfg.AgreementQueries, cfg.Tier)
	p := h.ticker("compared", "queries", cfg.AgreementQueries)
	defer p.stop()
	var next, same atomic.Int64
	errs := make([]error, cfg.Concurrency)
	var wg sync.WaitGroup
	for c := range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.AgreementQueries {
					return
				}
				want, err := h.search(ctx, collFloat32, h.probes[i])
				if err != nil {
					errs[c] = err
					return
				}
				got, err := h.search(ctx, collTier, h.probes[i])
				if err != nil {
					errs[c] = err
					return
				}
				if sameMatches(want, got) {
					same.Add(1)
				}
				p.add(1)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
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
