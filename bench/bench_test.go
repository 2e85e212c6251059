package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
)

// tinyConfig runs every phase of Run in about a second (the FMA peak
// reads take most of it).
func tinyConfig(tier string) Config {
	return Config{Users: 400, FacesPerUser: 2, Dim: 32, Concurrency: 4, Tier: tier, Queries: 10,
		AgreementQueries: 30, APIFaces: 40, APICallers: 4, QPSDuration: 50 * time.Millisecond, Seed: 3,
		Batch: 8, EvalProbes: 16}
}

// TestRun runs the whole harness small and checks the report: every
// figure measured, the JSON names bench/README.md documents, the targets checked.
func TestRun(t *testing.T) {
	var progress bytes.Buffer
	rep, err := Run(context.Background(), tinyConfig("int8"), &progress)
	require.NoError(t, err)
	assert.Contains(t, progress.String(), "bench: importing")

	for name, v := range map[string]float64{
		"floor": rep.FloorMs, "naive": rep.NaiveMs, "p50": rep.SearchP50Ms, "p99": rep.SearchP99Ms,
		"qps": rep.QPSConcurrent, "ingest": rep.IngestFacesPerS, "api": rep.APIIndexFacesPerS,
		"open": rep.OpenS,
	} {
		assert.Positive(t, v, name)
	}
	assert.LessOrEqual(t, rep.SearchP50Ms, rep.SearchP99Ms)
	// A heap delta of a few hundred rows drowns in the store's own
	// allocations: only its presence is checked here; at the sizes the
	// README reports it is within a percent.
	assert.NotZero(t, rep.BytesPerUser)
	require.NotNil(t, rep.Compressed)
	assert.Equal(t, 1.0, rep.Compressed.Top10Agreement, "compressed searches are exact")
	// Nine, one for the batched figure's peak, two coalesced per tier; no
	// eval figure without Config.Eval.
	assert.Len(t, rep.Targets, 14)

	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	for _, name := range []string{"floor_ms", "naive_ms", "search_p50_ms", "search_p99_ms", "qps_concurrent",
		"ingest_faces_per_s", "api_index_faces_per_s", "open_s", "bytes_per_user", "compressed", "ratios", "targets", "machine"} {
		assert.Contains(t, fields, name)
	}
	if _, err := os.Stat("/proc/self/io"); err == nil {
		require.NotNil(t, rep.OpenReadBytes, "the system reports reads from storage")
		assert.GreaterOrEqual(t, *rep.OpenReadBytes, int64(0))
		assert.Contains(t, fields, "open_read_bytes")
	}
	compressed := fields["compressed"].(map[string]any)
	for _, name := range []string{"tier", "search_p50_ms", "top10_agreement", "fallback_rate"} {
		assert.Contains(t, compressed, name)
	}

	// Without a compressed tier the report has none, and four targets fewer.
	rep, err = Run(context.Background(), tinyConfig("none"), nil)
	require.NoError(t, err)
	assert.Nil(t, rep.Compressed)
	assert.Len(t, rep.Targets, 10)
}

func TestRunDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/x", nil, 0o644))
	cfg := tinyConfig("none")
	cfg.Dir = dir
	_, err := Run(context.Background(), cfg, nil)
	assert.ErrorContains(t, err, "not empty")

	cfg.Dir = t.TempDir() + "/store"
	_, err = Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	entries, err := os.ReadDir(cfg.Dir)
	require.NoError(t, err)
	assert.NotEmpty(t, entries, "a store given by the caller is kept")
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, tinyConfig("int8"), nil)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{}.Validate())
	for name, cfg := range map[string]Config{
		"users":     {Users: -1},
		"faces":     {FacesPerUser: 101},
		"dim":       {Dim: 5000},
		"tier":      {Tier: "float32"},
		"tier name": {Tier: "int4"},
		"callers":   {APICallers: -2},
		"duration":  {QPSDuration: -time.Second},
		"batch":     {Batch: -1},
		"big batch": {Batch: maxBatch + 1},
		"probes":    {EvalProbes: -1},
		"many":      {EvalProbes: maxEvalProbes + 1},
	} {
		assert.Error(t, cfg.Validate(), name)
	}
	err := Config{Users: -1, Dim: 1}.Validate()
	assert.ErrorContains(t, err, "Users")
	assert.ErrorContains(t, err, "Dim", "every problem at once")
}

// TestCompressedAgreement asks on synthetic data how often the compressed
// tiers' top-MaxUsers differs from exact search. The answer must be
// never: their candidates are re-scored with the float32 vectors, and a
// search that cannot prove its candidates complete scans the float32 rows.
func TestCompressedAgreement(t *testing.T) {
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer e.Close()
	const users, dim = 3000, 64
	gen := NewGenerator(GenConfig{Identities: users, FacesPerIdentity: 3, Dim: dim, Seed: 5})
	tiers := []string{"float32", "int8", "float16"}
	for _, tier := range tiers {
		_, err := e.CreateCollection(context.Background(), &engine.CreateCollectionInput{CollectionId: tier, Tier: tier, Dimension: dim})
		require.NoError(t, err)
		im, err := e.NewImporter(context.Background(), tier, nil)
		require.NoError(t, err)
		for i := range users {
			for _, f := range gen.Faces(i) {
				require.NoError(t, im.Add(engine.ImportRecord{Vector: f, UserId: userID(i)}))
			}
		}
		require.NoError(t, im.Close())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const queries = 200
	differ := map[string]int{}
	for i := range queries {
		q := gen.Probe(rng.IntN(users), i)
		if i%4 == 0 {
			q = gen.Impostor(i)
		}
		k := int32(1 + rng.IntN(25))
		var want []engine.UserMatch
		for _, tier := range tiers {
			out, err := e.SearchUsersByImage(context.Background(), &engine.SearchUsersByImageInput{
				CollectionId: tier, Vector: q, MaxUsers: &k, UserMatchThreshold: ptr[float32](0)})
			require.NoError(t, err)
			if tier == "float32" {
				want = out.UserMatches
				require.Len(t, want, int(k))
				continue
			}
			if !sameMatches(want, out.UserMatches) {
				differ[tier]++
			}
			// The similarities are the float32 path's, exactly.
			require.Equal(t, want, out.UserMatches, "%s, query %d", tier, i)
		}
	}
	for _, tier := range tiers[1:] {
		t.Logf("%s: top-k differs from exact on %d of %d queries", tier, differ[tier], queries)
	}
}

// The benchmarks share one fixture: a collection per tier of
// benchUsers x 512 (100 MB of user vectors, past the last-level cache, so
// memory traffic counts as it does at scale).
const benchUsers = 50_000

var (
	fixtureOnce sync.Once
	fixture     *harness
	fixtureErr  error
	fixtureDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture != nil {
		fixture.e.Close()
	}
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func benchFixture(b *testing.B) *harness {
	b.Helper()
	fixtureOnce.Do(func() {
		cfg := Config{Users: benchUsers, FacesPerUser: 1, Dim: 512, Queries: 256}.withDefaults()
		h := &harness{cfg: cfg, log: &bytes.Buffer{}, gen: NewGenerator(GenConfig{Identities: cfg.Users, FacesPerIdentity: 1, Dim: cfg.Dim})}
		if fixtureDir, fixtureErr = os.MkdirTemp("", "facesearch-benchtest-"); fixtureErr != nil {
			return
		}
		h.dir = fixtureDir
		ctx := context.Background()
		if fixtureErr = h.generate(ctx); fixtureErr != nil {
			return
		}
		if h.e, fixtureErr = engine.Open(h.dir, nil); fixtureErr != nil {
			return
		}
		for _, tier := range []string{"float32", "int8", "float16"} {
			if _, fixtureErr = h.ingest(ctx, "bench-"+tier, tier); fixtureErr != nil {
				return
			}
		}
		fixture = h
	})
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixture
}

func matrixBytes(h *harness) int64 { return int64(h.cfg.Users * h.cfg.Dim * 4) }

// BenchmarkFloor is the read every scan is measured against.
func BenchmarkFloor(b *testing.B) {
	h := benchFixture(b)
	m, _, err := h.userMatrix(context.Background(), index.TierFloat32)
	require.NoError(b, err)
	b.SetBytes(matrixBytes(h))
	for b.Loop() {
		if _, err := m.Sum(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNaive is the plain Go loop the scan is compared with.
func BenchmarkNaive(b *testing.B) {
	h := benchFixture(b)
	m, _, err := h.userMatrix(context.Background(), index.TierFloat32)
	require.NoError(b, err)
	keys, rows := rowMajor(m)
	b.SetBytes(matrixBytes(h))
	for b.Loop() {
		naiveSearch(keys, rows, h.probes[0], searchK)
	}
}

// BenchmarkSearchUsers is Engine.SearchUsersByImage, one query at a time,
// per tier. SetBytes counts the float32 matrix, so MB/s compares tiers as
// "bytes of vectors searched per second".
func BenchmarkSearchUsers(b *testing.B) {
	h := benchFixture(b)
	for _, tier := range []string{"float32", "int8", "float16"} {
		b.Run(tier, func(b *testing.B) {
			b.SetBytes(matrixBytes(h))
			i := 0
			for b.Loop() {
				if _, err := h.search(context.Background(), "bench-"+tier, h.probes[i%len(h.probes)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkSearchUsersConcurrent runs 32 callers at once: coalesced passes
// serve several queries per read of the matrix, so MB/s (per query) can
// pass the floor's.
func BenchmarkSearchUsersConcurrent(b *testing.B) {
	h := benchFixture(b)
	for _, tier := range []string{"float32", "int8"} {
		b.Run(tier, func(b *testing.B) {
			b.SetBytes(matrixBytes(h))
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0))) // 32 callers
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := h.search(context.Background(), "bench-"+tier, h.probes[i%len(h.probes)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkIngest bulk-imports 20k faces of 512 dims into a fresh
// collection per iteration, durable at the end.
func BenchmarkIngest(b *testing.B) {
	h := benchFixture(b)
	const faces = 20_000
	b.SetBytes(faces * int64(h.cfg.Dim) * 4)
	n := 0
	for b.Loop() {
		coll := fmt.Sprintf("ingest-%d", n)
		n++
		if _, err := h.e.CreateCollection(context.Background(), &engine.CreateCollectionInput{CollectionId: coll, Dimension: h.cfg.Dim}); err != nil {
			b.Fatal(err)
		}
		im, err := h.e.NewImporter(context.Background(), coll, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range faces {
			if err := im.Add(engine.ImportRecord{Vector: h.face(i, 0), UserId: userID(i)}); err != nil {
				b.Fatal(err)
			}
		}
		if err := im.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		h.e.DeleteCollection(context.Background(), &engine.DeleteCollectionInput{CollectionId: coll})
		b.StartTimer()
	}
	b.ReportMetric(float64(faces*b.N)/b.Elapsed().Seconds(), "faces/s")
}

var apiRuns int

// BenchmarkIndexFaces is one synced IndexFaces call per face from 16
// callers, whose commits share fsyncs.
func BenchmarkIndexFaces(b *testing.B) {
	h := benchFixture(b)
	apiRuns++ // the function runs once per b.N tried: a fresh collection each time
	coll := fmt.Sprintf("api-%d", apiRuns)
	if _, err := h.e.CreateCollection(context.Background(), &engine.CreateCollectionInput{CollectionId: coll, Dimension: h.cfg.Dim}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // 16 callers
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, err := h.e.IndexFaces(context.Background(), &engine.IndexFacesInput{CollectionId: coll,
				Faces: []engine.FaceEmbedding{{Vector: h.probes[i%len(h.probes)]}}})
			if err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "faces/s")
}

func TestParseReadBytes(t *testing.T) {
	for _, tt := range []struct {
		name string
		io   string
		want int64
		ok   bool
	}{
		{"linux", "rchar: 15310983\nwchar: 2258961835\nsyscr: 2819\nsyscw: 143581\nread_bytes: 1052672\nwrite_bytes: 2261098496\ncancelled_write_bytes: 0\n", 1052672, true},
		{"zero", "read_bytes: 0\n", 0, true},
		{"last line without newline", "rchar: 1\nread_bytes: 4096", 4096, true},
		{"missing", "rchar: 1\nwchar: 2\n", 0, false},
		{"not a number", "read_bytes: lots\n", 0, false},
		{"negative", "read_bytes: -1\n", 0, false},
		{"empty", "", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := parseReadBytes(tt.io)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.want, n)
			}
		})
	}
}
