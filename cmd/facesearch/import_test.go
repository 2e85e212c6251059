package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/internal/npy"
)

// npyHeader is the header of an (n, d) float32 array.
func npyHeader(t *testing.T, n, d int) []byte {
	t.Helper()
	var b bytes.Buffer
	_, err := npy.NewWriter(&b, n, d)
	require.NoError(t, err)
	return b.Bytes()
}

// TestNpyRows: the import's size hint is the rows of its .npy inputs, from
// headers that the files have room for, and nothing for what it cannot
// count cheaply.
func TestNpyRows(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, header []byte, rows, dim int) importInput {
		t.Helper()
		b := append(header, make([]byte, 4*rows*dim)...)
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return importInput{path: p, format: "npy", size: int64(len(b))}
	}
	three := write("three.npy", npyHeader(t, 3, 4), 3, 4)
	five := write("five.npy", npyHeader(t, 5, 2), 5, 2)
	liar := write("liar.npy", npyHeader(t, 1<<40, 4), 2, 4) // claims 2^40 rows, holds 2
	garbage := write("garbage.npy", []byte("not an npy file"), 0, 0)
	f8 := write("f8.npy", bytes.Replace(npyHeader(t, 2, 4), []byte("<f4"), []byte("<f8"), 1), 4, 4) // 2 rows of 8-byte values
	one := write("one.npy", bytes.Replace(npyHeader(t, 1, 4), []byte("(1, 4)"), []byte("(4,)  "), 1), 1, 4)
	fifo := importInput{path: filepath.Join(dir, "fifo.npy"), format: "npy"}
	require.NoError(t, syscall.Mkfifo(fifo.path, 0o644))
	jsonl := importInput{path: filepath.Join(dir, "x.jsonl"), format: "jsonl", size: 1 << 30}
	stdin := importInput{path: "-", format: "npy"}
	missing := importInput{path: filepath.Join(dir, "missing.npy"), format: "npy", size: 1 << 30}
	many := make([]importInput, npyRowsMaxFiles+1)
	for i := range many {
		many[i] = three
	}
	tests := []struct {
		name   string
		inputs []importInput
		dim    int // the collection's, 0 if not fixed
		want   int
	}{
		{"one", []importInput{three}, 0, 3},
		{"summed", []importInput{three, five, jsonl, f8, one}, 0, 11},
		{"rows of another dimension", []importInput{three, five, f8, one}, 4, 6},
		{"header claims more than the file holds", []importInput{liar, five}, 0, 5},
		{"unreadable", []importInput{garbage, missing, stdin, three}, 0, 3},
		{"not a regular file", []importInput{fifo, three}, 0, 3}, // and not opened: that would block
		{"none", []importInput{jsonl}, 0, 0},
		{"at the file limit", many[:npyRowsMaxFiles], 0, 3 * npyRowsMaxFiles},
		{"past it", many, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, npyRows(tt.inputs, tt.dim))
		})
	}
}

// TestExpandInputs: a directory yields, in name order, the files of every
// extension inputExts lists (any case) and skips the others; a file named
// outright must have one, unless --format names the format; the synopsis
// lists every extension.
func TestExpandInputs(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for _, e := range inputExts {
		name := filepath.Join(dir, "a"+strings.ToUpper(e.ext))
		require.NoError(t, os.WriteFile(name, nil, 0o644))
		want = append(want, name)
		assert.Regexp(t, regexp.QuoteMeta(e.ext)+`\b`, importSynopsis, "the synopsis lists %s", e.ext)
	}
	other := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(other, nil, 0o644))
	slices.Sort(want)

	got, err := expandInputs([]string{dir}, "auto")
	require.NoError(t, err)
	var paths []string
	for _, in := range got {
		paths = append(paths, in.path)
		assert.Equal(t, inputFormat(in.path), in.format)
	}
	assert.Equal(t, want, paths)

	_, err = expandInputs([]string{other}, "auto")
	require.Error(t, err)
	got, err = expandInputs([]string{other}, "jsonl")
	require.NoError(t, err)
	require.Len(t, got, 1)
	_, err = expandInputs([]string{t.TempDir()}, "auto")
	require.Error(t, err, "a directory without inputs")
}
