package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tinyClusterConfig runs every phase of RunCluster in a few seconds.
func tinyClusterConfig() ClusterConfig {
	return ClusterConfig{Users: 60, FacesPerUser: 2, Dim: 32, IndexCallers: 4, Queries: 20, Concurrency: 8,
		QPSDuration: 200 * time.Millisecond, VisibleSamples: 10, Seed: 5}
}

// TestRunCluster runs the cluster benchmark small and checks its report:
// every figure measured on both sides, the ratios filled in, barriers
// shared by concurrent reads, and the JSON names bench/README.md documents.
func TestRunCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NATS nodes")
	}
	var progress bytes.Buffer
	cfg := tinyClusterConfig()
	cfg.Progress = &progress
	before := runtime.NumGoroutine()
	rep, err := RunCluster(context.Background(), cfg)
	require.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left running, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	require.Positive(t, rep.IndexFacesPerS.Single)
	require.Positive(t, rep.IndexFacesPerS.Cluster)
	require.InDelta(t, rep.IndexFacesPerS.Cluster/rep.IndexFacesPerS.Single, rep.IndexFacesPerS.Ratio, 1e-9)
	require.Len(t, rep.Search, 2)
	for i, s := range rep.Search {
		require.Equal(t, []int{1, cfg.Concurrency}[i], s.Concurrency)
		for _, st := range []SearchTiming{s.Single, s.Linearizable, s.Local} {
			require.Positive(t, st.P50Ms)
			require.GreaterOrEqual(t, st.P99Ms, st.P50Ms)
			require.Positive(t, st.QPS)
		}
		if s.Concurrency == 1 {
			for _, n := range []int{s.Single.Searches, s.Linearizable.Searches, s.Local.Searches} {
				require.Equal(t, cfg.Queries, n, "one at a time: Queries calls")
			}
		}
		require.Positive(t, s.LinearizableP50Ratio)
		require.Positive(t, s.LocalP50Ratio)
		require.Positive(t, s.BarriersPerRead)
		require.LessOrEqual(t, s.BarriersPerRead, 1.0, "a read publishes at most one barrier")
	}
	v := rep.WriteToVisible
	require.Positive(t, v.WriteP50Ms)
	require.Positive(t, v.VisibleP50Ms)
	require.Positive(t, v.SingleWriteP50Ms)
	require.Positive(t, v.VisibleRatio)
	require.Contains(t, progress.String(), "bench: cluster: indexing")

	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"index_faces_per_s", "search", "write_to_visible", "load_avg", "machine"} {
		require.Contains(t, m, k)
	}
}

func TestClusterConfigValidate(t *testing.T) {
	require.NoError(t, ClusterConfig{}.Validate())
	for _, bad := range []ClusterConfig{{Users: -1}, {Dim: 1}, {FacesPerUser: 101}, {QPSDuration: -time.Second}, {Concurrency: -2}} {
		require.Error(t, bad.Validate(), "%+v", bad)
	}
}

// BenchmarkCluster runs RunCluster at its defaults and reports its
// figures (the whole report with -v); run it with -benchtime=1x.
func BenchmarkCluster(b *testing.B) {
	var cfg ClusterConfig
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	var rep *ClusterReport
	for b.Loop() {
		var err error
		rep, err = RunCluster(context.Background(), cfg)
		require.NoError(b, err)
	}
	b.ReportMetric(rep.IndexFacesPerS.Cluster, "cluster_faces/s")
	b.ReportMetric(rep.IndexFacesPerS.Ratio, "faces/s_ratio")
	for _, s := range rep.Search {
		name := map[bool]string{true: "c1", false: "cN"}[s.Concurrency == 1]
		b.ReportMetric(s.LinearizableP50Ratio, name+"_linearizable_p50_ratio")
		b.ReportMetric(s.LocalP50Ratio, name+"_local_p50_ratio")
	}
	b.ReportMetric(rep.WriteToVisible.VisibleP50Ms, "visible_p50_ms")
	out, err := json.MarshalIndent(rep, "", "  ")
	require.NoError(b, err)
	b.Logf("%s", out)
}
