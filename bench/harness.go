package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/vector"
)

// Config describes one benchmark run: a synthetic collection (see
// [GenConfig]) loaded into a fresh store and measured. The zero value of
// each field selects its default; the defaults finish in about a minute on
// a 2-core machine.
type Config struct {
	// Users is the number of users (identities). The default value is
	// 200000.
	Users int
	// FacesPerUser is the number of faces each user has. The default value
	// is 2.
	FacesPerUser int
	// Dim is the embedding dimension. The default value is 512.
	Dim int
	// Concurrency is the number of callers measuring qps_concurrent. The
	// default value is 32.
	Concurrency int
	// Tier is the compressed tier measured besides float32: "int8",
	// "float16", or "none" to skip it. The default value is "int8".
	Tier string
	// Dir is the store directory, which must be empty or absent; it is
	// left in place afterwards. The default value is "": a temporary
	// directory, removed at the end.
	Dir string
	// Queries is the number of single searches timed for the latency
	// percentiles. The default value is 100.
	Queries int
	// AgreementQueries is the number of searches whose top-10 the
	// compressed tier is compared on with float32. The default value is
	// 1000.
	AgreementQueries int
	// APIFaces is the number of faces indexed through IndexFaces, one per
	// call, for api_index_faces_per_s. The default value is 20000.
	APIFaces int
	// APICallers is the number of concurrent IndexFaces callers. The
	// default value is 16.
	APICallers int
	// QPSDuration is how long the concurrent callers run. The default
	// value is 5s.
	QPSDuration time.Duration
	// Seed selects the synthetic data set. The default value is 0.
	Seed int64
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Users, 200_000)
	def(&c.FacesPerUser, 2)
	def(&c.Dim, 512)
	def(&c.Concurrency, 32)
	def(&c.Queries, 100)
	def(&c.AgreementQueries, 1000)
	def(&c.APIFaces, 20_000)
	def(&c.APICallers, 16)
	if c.Tier == "" {
		c.Tier = "int8"
	}
	if c.QPSDuration == 0 {
		c.QPSDuration = 5 * time.Second
	}
	return c
}

// Validate reports every problem with c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	pos := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("bench: %s is %d, want at least 1", name, v))
		}
	}
	pos("Users", c.Users)
	pos("FacesPerUser", c.FacesPerUser)
	pos("Concurrency", c.Concurrency)
	pos("Queries", c.Queries)
	pos("AgreementQueries", c.AgreementQueries)
	pos("APIFaces", c.APIFaces)
	pos("APICallers", c.APICallers)
	if c.Dim < 2 || c.Dim > 4096 {
		errs = append(errs, fmt.Errorf("bench: Dim is %d, want 2 to 4096", c.Dim))
	}
	if c.FacesPerUser > 100 {
		errs = append(errs, fmt.Errorf("bench: FacesPerUser is %d, a user holds at most 100", c.FacesPerUser))
	}
	if c.Tier != "none" {
		if t, err := index.ParseTier(c.Tier); err != nil || t == index.TierFloat32 {
			errs = append(errs, fmt.Errorf("bench: Tier is %q, want int8, float16 or none", c.Tier))
		}
	}
	if c.QPSDuration < 0 {
		errs = append(errs, fmt.Errorf("bench: QPSDuration %v is negative", c.QPSDuration))
	}
	return errors.Join(errs...)
}

// Report is what one [Run] measured. Times are wall-clock medians unless
// named as percentiles; every figure comes from the same run, so the ratios
// to the floor compare like with like.
type Report struct {
	Users        int    `json:"users"`
	FacesPerUser int    `json:"faces_per_user"`
	Dim          int    `json:"dim"`
	Concurrency  int    `json:"concurrency"`
	Machine      string `json:"machine"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start and the end:
	// other work on the machine shows up in every timing.
	LoadAvg [2]float64 `json:"load_avg"`

	// FloorMs is one read of the user matrix: the sum of all its floats,
	// with the workers and chunks a search uses ([index.Matrix.Sum]); the
	// median of reads interleaved with the timed float32 searches.
	FloorMs float64 `json:"floor_ms"`
	// NaiveMs is a straightforward Go loop over the same rows, one
	// goroutine, scalar dot products, keeping the top 10.
	NaiveMs float64 `json:"naive_ms"`
	// SearchP50Ms and SearchP99Ms time Engine.SearchUsersByImage, one query
	// at a time (MaxUsers 10, UserMatchThreshold 0).
	SearchP50Ms float64 `json:"search_p50_ms"`
	SearchP99Ms float64 `json:"search_p99_ms"`
	// QPSConcurrent is SearchUsersByImage throughput with Concurrency
	// callers (coalesced passes).
	QPSConcurrent float64 `json:"qps_concurrent"`
	// IngestFacesPerS is Engine.NewImporter over every face, into a fresh
	// collection, durable at the end (Close syncs).
	IngestFacesPerS float64 `json:"ingest_faces_per_s"`
	// APIIndexFacesPerS is IndexFaces through the engine, one face and one
	// synced commit per call, from APICallers callers sharing fsyncs.
	APIIndexFacesPerS float64 `json:"api_index_faces_per_s"`
	// OpenS is Engine.Open of the store until the first search is served.
	OpenS float64 `json:"open_s"`
	// OpenReadBytes is what the process had read from storage during that
	// reopen (/proc/self/io's read_bytes): near 0 when the import's tables
	// were still in the page cache, up to their size when the kernel had
	// dropped them, which makes the reopen several times slower. Absent
	// where the system does not report it.
	OpenReadBytes *int64 `json:"open_read_bytes,omitempty"`
	// BytesPerUser is the resident memory of the user index per user:
	// runtime.MemStats.HeapAlloc after GC, before and after building an
	// index.Matrix of the users' vectors as the engine builds its own.
	BytesPerUser float64 `json:"bytes_per_user"`

	// The compressed tier: empty when Tier is "none".
	Compressed *CompressedReport `json:"compressed,omitempty"`

	// Ratios puts each figure beside the floor: times as multiples of
	// floor_ms, qps as queries served per floor_ms, bytes per user as a
	// multiple of the raw 4·dim.
	Ratios Ratios `json:"ratios"`
	// Targets are the goals (stated for 1M users x 512 dims),
	// checked against this run.
	Targets []Target `json:"targets"`
	// ElapsedS is the whole run.
	ElapsedS float64 `json:"elapsed_s"`
}

// CompressedReport is the compressed tier's figures.
type CompressedReport struct {
	Tier string `json:"tier"`
	// FloorMs is the floor read interleaved with this tier's timed
	// searches (the same float32 matrix as the report's floor_ms, minutes
	// later): its search ratios are to this one.
	FloorMs     float64 `json:"floor_ms"`
	SearchP50Ms float64 `json:"search_p50_ms"`
	SearchP99Ms float64 `json:"search_p99_ms"`
	// QPSConcurrent is as for float32.
	QPSConcurrent float64 `json:"qps_concurrent"`
	// Top10Agreement is the fraction of AgreementQueries whose top-10
	// (users, similarities and order) equals the float32 collection's.
	Top10Agreement float64 `json:"top10_agreement"`
	// AgreementQueries is how many queries that fraction is of.
	AgreementQueries int `json:"agreement_queries"`
	// FallbackRate is the fraction of searches, on an index.Matrix of the
	// same users, that could not prove their candidates complete and
	// scanned the float32 rows too.
	FallbackRate float64 `json:"fallback_rate"`
	// BytesPerUser is as for float32, with the compressed copy included.
	BytesPerUser float64 `json:"bytes_per_user"`
	// IngestFacesPerS is the bulk import into the compressed collection.
	IngestFacesPerS float64 `json:"ingest_faces_per_s"`
}

// Ratios are the report's figures relative to the floor.
type Ratios struct {
	NaiveMs               float64 `json:"naive_ms"`
	SearchP50Ms           float64 `json:"search_p50_ms"`
	SearchP99Ms           float64 `json:"search_p99_ms"`
	QPSConcurrent         float64 `json:"qps_concurrent"`
	CompressedSearchP50Ms float64 `json:"compressed_search_p50_ms,omitempty"`
	CompressedQPS         float64 `json:"compressed_qps_concurrent,omitempty"`
	BytesPerUser          float64 `json:"bytes_per_user"`
}

// Target is one goal and whether this run met it.
type Target struct {
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Measured float64 `json:"measured"`
	Met      bool    `json:"met"`
}

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

// fill derives the ratios and checks the targets.
func (r *Report) fill() {
	f := r.FloorMs
	r.Ratios = Ratios{
		NaiveMs:       r.NaiveMs / f,
		SearchP50Ms:   r.SearchP50Ms / f,
		SearchP99Ms:   r.SearchP99Ms / f,
		QPSConcurrent: r.QPSConcurrent * f / 1000,
		BytesPerUser:  r.BytesPerUser / float64(4*r.Dim),
	}
	t := func(name, goal string, measured float64, met bool) {
		r.Targets = append(r.Targets, Target{Name: name, Goal: goal, Measured: measured, Met: met})
	}
	t("search_p50_ms", "<= 1.10 x floor_ms", r.Ratios.SearchP50Ms, r.Ratios.SearchP50Ms <= 1.10)
	t("naive_ms", ">= 8 x search_p50_ms", r.NaiveMs/r.SearchP50Ms, r.NaiveMs >= 8*r.SearchP50Ms)
	t("qps_concurrent", ">= 4 / floor_ms", r.Ratios.QPSConcurrent, r.Ratios.QPSConcurrent >= 4)
	if c := r.Compressed; c != nil {
		r.Ratios.CompressedSearchP50Ms = c.SearchP50Ms / c.FloorMs
		r.Ratios.CompressedQPS = c.QPSConcurrent * c.FloorMs / 1000
		t("compressed search_p50_ms", "<= 0.4 x floor_ms", r.Ratios.CompressedSearchP50Ms, r.Ratios.CompressedSearchP50Ms <= 0.4)
		t("compressed top10_agreement", ">= 0.999", c.Top10Agreement, c.Top10Agreement >= 0.999)
	}
	t("ingest_faces_per_s", ">= 100000", r.IngestFacesPerS, r.IngestFacesPerS >= 100_000)
	t("api_index_faces_per_s", ">= 10000", r.APIIndexFacesPerS, r.APIIndexFacesPerS >= 10_000)
	t("open_s", "<= 3", r.OpenS, r.OpenS <= 3)
	t("bytes_per_user", "<= 1.15 x 4·dim", r.Ratios.BytesPerUser, r.Ratios.BytesPerUser <= 1.15)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentile(s, 0.5)
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Machine describes the CPU the benchmark runs on: its model name, core
// count and GOMAXPROCS, the Go version and the platform.
func Machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d CPUs (GOMAXPROCS %d), %s %s/%s", model, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// loadAvg is the 1-minute load average, 0 where /proc has none.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

// storageReadBytes is /proc/self/io's read_bytes: what this process has
// had read from storage, page-cache hits excluded. ok is false where the
// system does not report it.
func storageReadBytes() (n int64, ok bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	return parseReadBytes(string(b))
}

// parseReadBytes finds the read_bytes line of a /proc/<pid>/io file.
func parseReadBytes(io string) (int64, bool) {
	for line := range strings.Lines(io) {
		if v, found := strings.CutPrefix(line, "read_bytes:"); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
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
