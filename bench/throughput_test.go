package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/vector"
)

// TestRunThroughput checks the throughput phases: both batch sizes
// measured for both tiers, the FMA peak, and Config.Eval called with
// every user and EvalProbes probes, its time scaled to 10,000 probes.
func TestRunThroughput(t *testing.T) {
	cfg := tinyConfig("int8")
	var gotUsers, gotProbes int
	cfg.Eval = func(ctx context.Context, users *index.Matrix, probes [][]float32) error {
		gotUsers, gotProbes = users.Len(), len(probes)
		require.Equal(t, cfg.Dim, users.Dim())
		for _, u := range probes {
			require.Len(t, u, cfg.Dim)
		}
		return nil
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), cfg, &progress)
	require.NoError(t, err)
	assert.Contains(t, progress.String(), "batches of 8 queries")

	assert.Positive(t, rep.FMAPeakGFLOPS)
	assert.NotEmpty(t, rep.FMAPeakKernel)
	assert.Positive(t, rep.FMAPeakWorkers)
	require.NotNil(t, rep.Compressed)
	for name, ts := range map[string][]Throughput{"float32": rep.Throughput, "int8": rep.Compressed.Throughput} {
		require.Len(t, ts, 2, name)
		for i, want := range []int{cfg.Concurrency, cfg.Batch} {
			x := ts[i]
			assert.Equal(t, want, x.Batch, name)
			assert.Positive(t, x.BatchedQPS, name)
			assert.Positive(t, x.CoalescedQPS, name)
			assert.InDelta(t, 2*float64(cfg.Users*cfg.Dim)*x.BatchedQPS/1e9, x.BatchedGFLOPS, 1e-9, name)
			assert.InDelta(t, x.BatchedGFLOPS/rep.FMAPeakGFLOPS, x.BatchedVsPeak, 1e-9, name)
			assert.InDelta(t, x.CoalescedQPS/x.BatchedQPS, x.CoalescedVsBatched, 1e-9, name)
			if name == "float32" {
				assert.Positive(t, x.BestPassGFLOPS, name)
				assert.Positive(t, x.BestPassVsPeak, name)
			} else {
				assert.Zero(t, x.BestPassGFLOPS, name)
				assert.Zero(t, x.BestPassVsPeak, name)
			}
		}
	}
	assert.Contains(t, progress.String(), "best of 5 batches of 8 queries on bench-float32")
	assert.NotContains(t, progress.String(), "on bench-compressed, each after a peak read")
	assert.Equal(t, rep.QPSConcurrent, rep.Throughput[0].CoalescedQPS, "at Concurrency callers, coalesced is qps_concurrent")
	assert.Equal(t, rep.Compressed.QPSConcurrent, rep.Compressed.Throughput[0].CoalescedQPS)

	assert.Equal(t, cfg.Users, gotUsers)
	assert.Equal(t, cfg.EvalProbes, gotProbes)
	assert.Equal(t, cfg.EvalProbes, rep.EvalProbes)
	assert.Positive(t, rep.EvalS)
	assert.InDelta(t, rep.EvalS*10_000/float64(cfg.EvalProbes), rep.Eval10kS, 1e-9)
	assert.Len(t, rep.Targets, 15)

	fields := jsonFields(t, rep)
	for _, name := range []string{"fma_peak_gflops", "fma_peak_kernel", "throughput", "eval_s", "eval_10k_s", "eval_probes"} {
		assert.Contains(t, fields, name)
	}
	x := fields["throughput"].([]any)[1].(map[string]any)
	for _, name := range []string{"batch", "batched_qps", "batched_gflops", "batched_vs_peak", "best_pass_gflops", "best_pass_vs_peak", "coalesced_qps", "coalesced_vs_batched"} {
		assert.Contains(t, x, name)
	}
	assert.Contains(t, fields["compressed"], "throughput")
}

func TestRunSkipThroughput(t *testing.T) {
	cfg := tinyConfig("int8")
	cfg.SkipThroughput = true
	cfg.Eval = func(context.Context, *index.Matrix, [][]float32) error {
		t.Error("eval timed with SkipThroughput")
		return nil
	}
	rep, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	assert.Len(t, rep.Targets, 9, "only the targets of the other phases")
	fields := jsonFields(t, rep)
	for _, name := range []string{"fma_peak_gflops", "fma_peak_kernel", "fma_peak_workers", "throughput", "eval_s", "eval_10k_s"} {
		assert.NotContains(t, fields, name)
	}
	assert.NotContains(t, fields["compressed"], "throughput")
}

func TestRunEvalError(t *testing.T) {
	cfg := tinyConfig("none")
	cfg.Eval = func(context.Context, *index.Matrix, [][]float32) error { return context.DeadlineExceeded }
	_, err := Run(context.Background(), cfg, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func jsonFields(t *testing.T, rep *Report) map[string]any {
	t.Helper()
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	return fields
}

// TestThroughputTargets checks the throughput targets against figures
// on either side of each goal.
func TestThroughputTargets(t *testing.T) {
	for _, tt := range []struct {
		name     string
		gflops   float64 // batched_256_gflops, of a 100 GFLOP/s peak
		coal     float64 // coalesced qps, of 1000 batched
		eval10k  float64 // at 200k users: x5 at 1M
		met      map[string]bool
		measured map[string]float64
	}{
		{"all met", 85, 800, 12, map[string]bool{"batched_256_gflops": true, "coalesced_256_qps": true,
			"compressed coalesced_256_qps": true, "eval_10k_s": true},
			map[string]float64{"batched_256_gflops": 0.85, "coalesced_256_qps": 0.8, "eval_10k_s": 60}},
		{"all missed", 84, 799, 12.1, map[string]bool{"batched_256_gflops": false, "coalesced_256_qps": false,
			"compressed coalesced_256_qps": false, "eval_10k_s": false},
			map[string]float64{"batched_256_gflops": 0.84, "coalesced_256_qps": 0.799, "eval_10k_s": 60.5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := Throughput{Batch: 256, BatchedQPS: 1000, BatchedGFLOPS: tt.gflops, CoalescedQPS: tt.coal}
			r := &Report{Users: 200_000, Dim: 512, FloorMs: 10, FMAPeakGFLOPS: 100, Throughput: []Throughput{x},
				EvalS: 1, Eval10kS: tt.eval10k, Compressed: &CompressedReport{Tier: "int8", FloorMs: 10, Throughput: []Throughput{x}}}
			r.fill()
			got := map[string]Target{}
			for _, target := range r.Targets {
				got[target.Name] = target
			}
			for name, met := range tt.met {
				require.Contains(t, got, name)
				assert.Equal(t, met, got[name].Met, name)
			}
			for name, v := range tt.measured {
				assert.InDelta(t, v, got[name].Measured, 1e-9, name)
			}
			assert.NotContains(t, got, "compressed batched_256_gflops", "a compressed tier's arithmetic is not float32's")
			assert.InDelta(t, tt.gflops/100, r.Throughput[0].BatchedVsPeak, 1e-9)
			assert.InDelta(t, tt.coal/1000, r.Compressed.Throughput[0].CoalescedVsBatched, 1e-9)
		})
	}
}

// TestDump checks the .npy files Config.DumpDir receives: every user's
// vector (the normalized mean of its faces) in user order, and the
// probes in the order the phases use them.
func TestDump(t *testing.T) {
	cfg := tinyConfig("none")
	cfg.SkipThroughput = true
	cfg.DumpDir = filepath.Join(t.TempDir(), "new", "dir")
	_, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)

	gen := NewGenerator(GenConfig{Identities: cfg.Users, FacesPerIdentity: cfg.FacesPerUser, Dim: cfg.Dim, Seed: cfg.Seed})
	users := readNpy(t, filepath.Join(cfg.DumpDir, DumpUsers), cfg.Dim)
	require.Len(t, users, cfg.Users)
	want := make([]float32, cfg.Dim)
	for i, got := range users {
		faces := gen.Faces(i)
		vector.Mean(want, nil, len(faces), func(j int) []float32 { return faces[j] })
		require.Equal(t, want, got, "user %d", i)
	}
	probes := readNpy(t, filepath.Join(cfg.DumpDir, DumpProbes), cfg.Dim)
	require.Len(t, probes, cfg.withDefaults().probeCount())
	for i, got := range probes {
		require.Equal(t, probe(gen, cfg, i), got, "probe %d", i)
	}

	// A dump directory that cannot be made fails the run.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	cfg.DumpDir = file
	_, err = Run(context.Background(), cfg, nil)
	assert.Error(t, err)
}

func readNpy(t *testing.T, path string, dim int) [][]float32 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := npy.NewReader(f)
	require.NoError(t, err)
	n, d := r.Shape()
	require.Equal(t, dim, d)
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = make([]float32, d)
		require.NoError(t, r.Next(rows[i]))
	}
	return rows
}

// TestFaissCompare runs bench/faiss_compare.py on a tiny dump, where
// Debian's python3-faiss is installed: it must find the BLAS it loaded and
// print every configuration's rate as JSON.
func TestFaissCompare(t *testing.T) {
	const python = "/usr/bin/python3"
	if testing.Short() {
		t.Skip("runs FAISS")
	}
	if err := exec.Command(python, "-c", "import faiss").Run(); err != nil {
		t.Skipf("no FAISS for %s: %v", python, err)
	}
	cfg := tinyConfig("none")
	cfg.SkipThroughput = true
	cfg.DumpDir = t.TempDir()
	_, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	out, err := exec.Command(python, "faiss_compare.py", cfg.DumpDir, "--batch", "8", "--single", "4",
		"--duration", "0.01", "--allow-reference-blas").Output()
	require.NoError(t, err)
	var res map[string]any
	require.NoError(t, json.Unmarshal(out, &res), "%s", out)
	assert.Equal(t, float64(cfg.Users), res["users"])
	assert.NotEmpty(t, res["blas"], "the script finds the BLAS FAISS loaded")
	for _, name := range []string{"flat_1_qps", "flat_1_p50_ms", "flat_8_qps", "sq8_8_qps"} {
		assert.Positive(t, res[name], name)
	}
}

// BenchmarkSearchUsersBatch is Engine.SearchUsersBatch of 256 probes a
// call, per tier, reported as queries/s and as the float32 arithmetic
// those answers stand for (GFLOP/s), the figures of batched_256_qps.
func BenchmarkSearchUsersBatch(b *testing.B) {
	h := benchFixture(b)
	const size = 256
	for _, tier := range []string{"float32", "int8"} {
		b.Run(tier, func(b *testing.B) {
			in := &engine.SearchUsersBatchInput{CollectionId: "bench-" + tier, Vectors: h.probes[:size],
				MaxUsers: ptr(int32(searchK)), UserMatchThreshold: ptr[float32](0)}
			for b.Loop() {
				if _, err := h.e.SearchUsersBatch(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			qps := float64(size*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(qps, "queries/s")
			b.ReportMetric(2*float64(h.cfg.Users*h.cfg.Dim)*qps/1e9, "GFLOP/s")
		})
	}
}
