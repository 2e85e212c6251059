package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/records"
)

// TestImportExportBoundingBoxes: a face's box comes in through JSON Lines
// ("bounding_box") or a .npy header ('facesearch:bounding_boxes') and goes
// out through export, which import reads back.
func TestImportExportBoundingBoxes(t *testing.T) {
	dir := t.TempDir()
	box := &engine.BoundingBox{Width: 0.5, Height: 0.25, Left: 0.125, Top: 0.75}
	src := filepath.Join(dir, "in.jsonl")
	writeLines(t, src, []records.JSON{
		{Embedding: []float32{1, 0, 0}, ExternalImageID: "boxed.jpg", BoundingBox: box},
		{Embedding: []float32{0, 1, 0}, ExternalImageID: "whole.jpg"},
	})
	var img bytes.Buffer
	require.NoError(t, npy.EncodeBoxed(&img, [][]float32{{0, 0, 1}}, true, []npy.Box{{Width: 0.5, Height: 0.25, Left: 0.125, Top: 0.75}}))
	npyPath := filepath.Join(dir, "header.npy")
	require.NoError(t, os.WriteFile(npyPath, img.Bytes(), 0o644))

	d1, d2 := filepath.Join(dir, "d1"), filepath.Join(dir, "d2")
	cliOK(t, "import", "--data", d1, "--collection", "c", "--create", src)
	cliOK(t, "import", "--data", d1, "--collection", "c", npyPath)
	first := cliOK(t, "export", "--data", d1, "--collection", "c")
	recs := parseExport(t, first)
	require.Len(t, recs, 3)
	byExt := map[string]*engine.BoundingBox{}
	for _, r := range recs {
		byExt[r.ExternalImageID] = r.BoundingBox
	}
	require.Equal(t, map[string]*engine.BoundingBox{"boxed.jpg": box, "whole.jpg": nil, "header": box}, byExt)

	exported := filepath.Join(dir, "out.jsonl")
	require.NoError(t, os.WriteFile(exported, []byte(first), 0o644))
	cliOK(t, "import", "--data", d2, "--collection", "c", "--create", exported)
	require.Equal(t, first, cliOK(t, "export", "--data", d2, "--collection", "c"))
	require.Equal(t, 2, strings.Count(first, `"bounding_box":{"Height":0.25,"Left":0.125,"Top":0.75,"Width":0.5}`))
}
