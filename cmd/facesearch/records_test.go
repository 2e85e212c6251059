package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeFast must answer exactly as encoding/json does, or not at all.
func checkFastDecode(t *testing.T, line string) (fast bool) {
	t.Helper()
	var slow jsonRecord
	slowErr := decodeLine([]byte(line), &slow)
	var j jsonRecord
	if !decodeFast([]byte(line), &j) {
		return false
	}
	require.NoError(t, slowErr, "decodeFast took %q, encoding/json refuses it", line)
	require.Equal(t, slow, j, "%q", line)
	return true
}

func TestDecodeFast(t *testing.T) {
	tests := []struct {
		line string
		fast bool // the fast path answers
	}{
		{`{"embedding":[0.1,-2,3e-5,1E+2,0,-0,0.5e1]}`, true},
		{` { "face_id" : "00000000-0000-4000-8000-000000000001" , "embedding" : [ 1 , 2 ] , "user_id":"a" } `, true},
		{`{"external_image_id":"x.jpg","image_id":"i","user_id":"u:1"}`, true},
		{`{}`, true},
		{`{"embedding":[]}`, true},
		{"{\t\"embedding\":\r[1]}", true},
		{`{"embedding":[1,2],"embedding":[3]}`, false}, // repeated key: encoding/json's rule
		{`{"Embedding":[1]}`, false},                   // encoding/json matches case-insensitively
		{`{"user_id":"a\"b"}`, false},
		{`{"user_id":"é"}`, false},
		{`{"user_id":null}`, false},
		{`{"embedding":null}`, false},
		{`{"embedding":[1e39]}`, false},
		{`{"embedding":[01]}`, false},
		{`{"embedding":[.5]}`, false},
		{`{"embedding":[5.]}`, false},
		{`{"embedding":[+1]}`, false},
		{`{"embedding":[1,]}`, false},
		{`{"embedding":[NaN]}`, false},
		{`{"embedding":[0x10]}`, false},
		{`{"embedding":[1]`, false},
		{`{"embedding":[1]} x`, false},
		{`{"embedding":[1],}`, false},
		{`{"nope":1}`, false},
		{`[1,2]`, false},
		{`{"user_id":"a" "face_id":"b"}`, false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.fast, checkFastDecode(t, tc.line), "%q", tc.line)
	}
	// Export's own lines, with every float32 spelling encoding/json writes.
	r := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		v := make([]float32, 1+r.IntN(40))
		for i := range v {
			v[i] = float32(r.NormFloat64() * []float64{1e-30, 1e-7, 1, 1e7, 1e30}[r.IntN(5)])
		}
		line := fmt.Sprintf(`{"face_id":"f","user_id":"u","embedding":%s}`, strings.ReplaceAll(fmt.Sprint(v), " ", ","))
		recLine, err := jsonLine(jsonRecord{FaceID: "f", UserID: "u", Embedding: v})
		require.NoError(t, err)
		require.True(t, checkFastDecode(t, recLine), recLine)
		checkFastDecode(t, line)
	}
}

func jsonLine(r jsonRecord) (string, error) {
	var b strings.Builder
	err := newRecordEncoder(&b).Encode(r)
	return strings.TrimSpace(b.String()), err
}

func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"embedding":[0.1,-2,3e-5]}`, `{"face_id":"a","user_id":"b","external_image_id":"c","image_id":"d","embedding":[1]}`,
		`{}`, `{"embedding":[]}`, `{"embedding":[1e39]}`, `{"user_id":"a\"b"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		checkFastDecode(t, line)
	})
}

// TestNpyRows: the import's size hint is the rows of its .npy inputs, from
// headers that the files have room for, and nothing for what it cannot
// count cheaply.
func TestNpyRows(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, header []byte, rows, dim int) importInput {
		t.Helper()
		b := appendRow(header, make([]float32, rows*dim))
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return importInput{path: p, format: "npy", size: int64(len(b))}
	}
	three := write("three.npy", npyHeader(3, 4), 3, 4)
	five := write("five.npy", npyHeader(5, 2), 5, 2)
	liar := write("liar.npy", npyHeader(1<<40, 4), 2, 4) // claims 2^40 rows, holds 2
	garbage := write("garbage.npy", []byte("not an npy file"), 0, 0)
	f8 := write("f8.npy", bytes.Replace(npyHeader(2, 4), []byte("<f4"), []byte("<f8"), 1), 4, 4) // 2 rows of 8-byte values
	one := write("one.npy", bytes.Replace(npyHeader(1, 4), []byte("(1, 4)"), []byte("(4,)  "), 1), 1, 4)
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
