package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// killedEngineStore is a copy, taken while the engine was open, of a store
// that indexed n faces one call each: what a killed server leaves. It
// returns the copy and the log holding those calls.
func killedEngineStore(t *testing.T, n int) (dir, log string) {
	t.Helper()
	src := t.TempDir()
	ctx := context.Background()
	e, err := engine.Open(src, nil)
	require.NoError(t, err)
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "staff"})
	require.NoError(t, err)
	for i := range n {
		v := make([]float32, 64)
		v[i%64] = 1
		v[(i+1)%64] = float32(i + 1)
		_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "staff", Faces: []engine.FaceEmbedding{{Vector: v}}})
		require.NoError(t, err)
	}
	dir = filepath.Join(t.TempDir(), "copy")
	require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
	require.NoError(t, e.Close())
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	var biggest int64
	for _, l := range logs {
		if st, err := os.Stat(l); err == nil && st.Size() > biggest {
			log, biggest = l, st.Size()
		}
	}
	require.NotEmpty(t, log)
	return dir, log
}

// TestDamagedLogCheckAndSalvage: check reports a log damaged in its middle
// as a problem (exit 1) naming the log, and changes nothing; serve refuses
// the store, pointing at --salvage; serve --salvage opens it and logs what
// it dropped.
func TestDamagedLogCheckAndSalvage(t *testing.T) {
	dir, log := killedEngineStore(t, 100)
	raw, err := os.ReadFile(log)
	require.NoError(t, err)
	at := len(raw) / 2
	binary.LittleEndian.PutUint32(raw[at:], ^binary.LittleEndian.Uint32(raw[at:]))
	require.NoError(t, os.WriteFile(log, raw, 0o644))

	code, out, errOut := runCheck("--data", dir)
	require.Equal(t, exitFailure, code, errOut)
	require.Contains(t, out, "problem: store: corrupt write-ahead log "+log)
	require.Contains(t, out, "--salvage")
	require.NotContains(t, out, "no problems found")
	after, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, raw, after)

	var stderr bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr}
	code = m.Run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--data", dir})
	require.Equal(t, exitFailure, code)
	require.Contains(t, stderr.String(), "corrupt write-ahead log "+log)
	require.Contains(t, stderr.String(), "--salvage")

	_, serveErr, stop := startServe(t, "--listen", "127.0.0.1:0", "--data", dir, "--salvage")
	require.Equal(t, exitOK, stop())
	require.Contains(t, serveErr.String(), "salvaged the store")
	require.Contains(t, serveErr.String(), fmt.Sprintf("file=%s", log))

	code, out, errOut = runCheck("--data", dir)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
}

// TestCheckLostManifestMarker: a store whose manifest marker is gone is
// a problem for check, not an empty store with "no problems found".
func TestCheckLostManifestMarker(t *testing.T) {
	dir, _ := checkTestStore(t)
	markers, err := filepath.Glob(filepath.Join(dir, "marker.manifest.*"))
	require.NoError(t, err)
	require.Len(t, markers, 1)
	require.NoError(t, os.Remove(markers[0]))
	code, out, _ := runCheck("--data", dir)
	require.Equal(t, exitFailure, code)
	require.Contains(t, out, "problem: ")
	require.Contains(t, out, "marker.manifest")
	require.NotContains(t, out, "no problems found")
}

func TestMinFreeSpaceFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", -1, false},
		{"1048576", 1 << 20, false},
		{"512MiB", 512 << 20, false},
		{"2GiB", 2 << 30, false},
		{"1TiB", 1 << 40, false},
		{"10B", 10, false},
		{"-1", 0, true},
		{"1.5GiB", 0, true},
		{"lots", 0, true},
		{"99999999TiB", 0, true},
	} {
		var f freeSpaceFlag
		err := f.Set(tc.in)
		if tc.bad {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, f.bytes, tc.in)
	}
}
