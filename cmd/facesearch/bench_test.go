package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runBench runs facesearch bench with arguments small enough for a test.
func runBench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	small := []string{"bench", "--users", "300", "--faces-per-user", "2", "--dim", "32", "--concurrency", "4",
		"--queries", "10", "--agreement-queries", "20", "--api-faces", "30", "--qps-duration", "50ms",
		"--batch", "8", "--eval-probes", "16"}
	var out, errOut bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	code = m.Run(context.Background(), append(small, args...))
	return code, out.String(), errOut.String()
}

func TestBenchJSON(t *testing.T) {
	code, out, errOut := runBench(t, "--json", "--tier", "float16")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, errOut, "bench: ", "progress goes to standard error")
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "one JSON object: %s", out)
	for _, k := range []string{"floor_ms", "naive_ms", "search_p50_ms", "search_p99_ms", "qps_concurrent",
		"ingest_faces_per_s", "api_index_faces_per_s", "open_s", "bytes_per_user", "fma_peak_gflops", "eval_s", "eval_10k_s"} {
		v, ok := rep[k].(float64)
		assert.True(t, ok && v > 0, "%s = %v", k, rep[k])
	}
	assert.Equal(t, float64(300), rep["users"])
	assert.Equal(t, "float16", rep["compressed"].(map[string]any)["tier"])
	for _, ts := range []any{rep["throughput"], rep["compressed"].(map[string]any)["throughput"]} {
		require.Len(t, ts, 2, "batches of --concurrency and --batch queries")
		assert.Equal(t, float64(8), ts.([]any)[1].(map[string]any)["batch"])
	}
}

func TestBenchNoThroughput(t *testing.T) {
	dump := t.TempDir()
	code, out, errOut := runBench(t, "--json", "--tier", "none", "--no-throughput", "--dump", dump)
	require.Equal(t, exitOK, code, errOut)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "one JSON object: %s", out)
	for _, k := range []string{"fma_peak_gflops", "throughput", "eval_s", "eval_10k_s"} {
		assert.NotContains(t, rep, k)
	}
	for _, name := range []string{"users.npy", "probes.npy"} {
		st, err := os.Stat(filepath.Join(dump, name))
		require.NoError(t, err)
		assert.Positive(t, st.Size())
	}
}

// TestBenchEval checks that the eval timing runs eval's scorer to the end.
func TestBenchEval(t *testing.T) {
	users := newGallery([][]float32{{1, 0}, {0, 1}})
	probes := [][]float32{{1, 0}, {0.6, 0.8}, {0, 1}}
	require.NoError(t, benchEval(context.Background(), users, probes))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, benchEval(ctx, users, probes), context.Canceled)
}

func TestBenchTable(t *testing.T) {
	code, out, errOut := runBench(t)
	require.Equal(t, exitOK, code, errOut)
	for _, want := range []string{"floor_ms", "search_p50_ms", "x floor", "int8 top10_agreement", "targets", "machine: ",
		"fma_peak_gflops", "batched_8_qps", "x its peak reads", "coalesced_4_qps", "x batched_8", "int8 batched_4_qps", "eval_10k_s", "scaled from 16 probes"} {
		assert.Contains(t, out, want)
	}
	if _, err := os.Stat("/proc/self/io"); err == nil {
		assert.Regexp(t, `open_s +[0-9.]+ +[0-9]+ MB read from storage`, out)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"--users", "-5"}, {"--tier", "int4"}, {"--faces-per-user", "101"}, {"extra"},
		{"--batch", "-1"}, {"--batch", "70000"}, {"--eval-probes", "-1"}} {
		code, _, errOut := runBench(t, args...)
		assert.Equal(t, exitUsage, code, "%v: %s", args, errOut)
		assert.Contains(t, errOut, "Usage: facesearch bench")
	}
}
