package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/bench"
)

// bench --cluster runs the cluster benchmark with the flags given (the
// others at its own defaults) and prints its report as JSON or a table.
func TestBenchCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three NATS nodes")
	}
	var out, errOut bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	code := m.Run(context.Background(), []string{"bench", "--cluster", "--users", "60", "--faces-per-user", "2", "--dim", "32",
		"--index-callers", "4", "--queries", "20", "--concurrency", "8", "--qps-duration", "200ms", "--visible-samples", "10", "--seed", "5", "--json"})
	require.Equal(t, exitOK, code, errOut.String())
	var rep bench.ClusterReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "one JSON object: %s", &out)
	assert.Equal(t, 60, rep.Users)
	assert.Equal(t, 32, rep.Dim)
	assert.Positive(t, rep.IndexFacesPerS.Cluster)
	assert.Positive(t, rep.IndexFacesPerS.Ratio)
	require.Len(t, rep.Search, 2, "at concurrency 1 and --concurrency")
	assert.Equal(t, 8, rep.Search[1].Concurrency)
	assert.Positive(t, rep.WriteToVisible.VisibleP50Ms)
	assert.NotEmpty(t, errOut.String(), "progress goes to standard error")

	var table bytes.Buffer
	require.NoError(t, printClusterReport(&table, &rep))
	for _, want := range []string{"60 users x 2 faces, 32 dims", "index_faces_per_s", "search c=8 p50_ms linearizable",
		"search c=1 qps local", "barriers_per_read", "visible_p50_ms"} {
		assert.Contains(t, table.String(), want)
	}
}

// Flags of one mode are refused in the other.
func TestBenchClusterFlagRefusals(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"single-node flag with cluster", []string{"--cluster", "--tier", "float16"}, "--tier is not for --cluster"},
		{"dump with cluster", []string{"--cluster", "--dump", "x"}, "--dump is not for --cluster"},
		{"cluster flag without cluster", []string{"--index-callers", "4"}, "--index-callers is for --cluster"},
		{"visible samples without cluster", []string{"--visible-samples", "4"}, "--visible-samples is for --cluster"},
		{"invalid cluster config", []string{"--cluster", "--users", "-3"}, "Users is -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr}
			assert.Equal(t, exitUsage, m.Run(context.Background(), append([]string{"bench"}, tt.args...)))
			assert.Contains(t, stderr.String(), tt.wantErr)
		})
	}
}
