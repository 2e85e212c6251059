package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/bench"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/records"
)

// TestSearchQueries: search --queries answers every probe of a .npy or of
// JSON Lines with one line, in input order, each exactly what --vector
// answers for that probe alone, over more probes than one batch holds.
func TestSearchQueries(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	src := filepath.Join(dir, "people.jsonl")
	writeLines(t, src, people(30, 4, 64, 3))
	cliOK(t, "import", "--data", data, "--collection", "staff", "--create", "--similarity", "cosine", src)

	g := bench.NewGenerator(bench.GenConfig{Identities: 30, FacesPerIdentity: 4, Dim: 64, IntraCosine: 0.7, Seed: 3})
	probes := make([][]float32, probeChunk+5)
	recs := make([]records.JSON, len(probes))
	for i := range probes {
		probes[i] = g.Probe(i%30, i/30)
		recs[i] = records.JSON{Embedding: probes[i], ExternalImageID: fmt.Sprintf("probe-%d.jpg", i)}
	}
	npyPath, jsonlPath := filepath.Join(dir, "probes.npy"), filepath.Join(dir, "probes.jsonl")
	f, err := os.Create(npyPath)
	require.NoError(t, err)
	require.NoError(t, npy.Encode(f, probes, false))
	require.NoError(t, f.Close())
	writeLines(t, jsonlPath, recs)

	// The lines for the probes each search alone, from --vector.
	single := func(what string, i int) map[string]any {
		p := filepath.Join(dir, fmt.Sprintf("one-%d.npy", i))
		require.NoError(t, os.WriteFile(p, npy.EncodeVector(probes[i]), 0o644))
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(cliOK(t, "search", what, "--data", data, "--collection", "staff", "--vector", p, "--threshold", "30", "--max", "5", "--output", "json")), &out))
		return out
	}
	checked := []int{0, 1, 2, 29, 30, probeChunk - 1, probeChunk, len(probes) - 1}
	for _, what := range []string{"users", "faces"} {
		want := map[int]map[string]any{}
		for _, i := range checked {
			want[i] = single(what, i)
		}
		for _, path := range []string{npyPath, jsonlPath} {
			t.Run(what+"/"+filepath.Ext(path), func(t *testing.T) {
				out := cliOK(t, "search", what, "--data", data, "--collection", "staff", "--queries", path, "--threshold", "30", "--max", "5", "--quiet")
				sc := bufio.NewScanner(strings.NewReader(out))
				sc.Buffer(nil, 1<<20)
				n := 0
				for ; sc.Scan(); n++ {
					var line map[string]any
					require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
					require.Equal(t, float64(n), line["Probe"], "line %d", n+1)
					delete(line, "Probe")
					if path == jsonlPath {
						assert.Equal(t, fmt.Sprintf("probe-%d.jpg", n), line["ExternalImageId"])
						delete(line, "ExternalImageId")
					}
					if w, ok := want[n]; ok {
						require.Equal(t, w, line, "probe %d", n)
					}
				}
				require.NoError(t, sc.Err())
				require.Equal(t, len(probes), n)
			})
		}
	}

	// Misuse is a usage error; a bad probe names where it is.
	code, _, _ := cli(t, nil, "search", "users", "--data", data, "--collection", "staff", "--queries", npyPath, "--output", "table")
	assert.Equal(t, exitUsage, code)
	code, _, _ = cli(t, nil, "search", "users", "--data", data, "--collection", "staff", "--queries", npyPath, "--vector", npyPath)
	assert.Equal(t, exitUsage, code)
	bad := filepath.Join(dir, "bad.jsonl")
	writeLines(t, bad, []records.JSON{{Embedding: probes[0]}, {Embedding: make([]float32, 64)}})
	code, _, errOut := cli(t, nil, "search", "users", "--data", data, "--collection", "staff", "--queries", bad)
	assert.NotEqual(t, exitOK, code)
	assert.Contains(t, errOut, "bad.jsonl:1 to")
}
