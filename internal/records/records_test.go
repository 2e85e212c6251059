package records

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// got is what a reader yielded: a record at its place, or an error.
type got struct {
	pos Pos
	rec engine.ImportRecord
	err string
}

func collect(seq func(func(Sourced, error) bool)) []got {
	var out []got
	for s, err := range seq {
		if err != nil {
			var re *Error
			if errors.As(err, &re) {
				out = append(out, got{pos: re.Pos, err: re.Err.Error()})
			} else {
				out = append(out, got{err: err.Error()})
			}
			continue
		}
		out = append(out, got{pos: s.Pos, rec: s.Rec})
	}
	return out
}

func TestReadJSONL(t *testing.T) {
	line := func(n int) Pos { return Pos{File: "in.jsonl", N: n} }
	tests := []struct {
		name  string
		input string
		want  []got
	}{
		{
			name:  "records in order, blank lines skipped, numbered from 1",
			input: `{"user_id":"a"}` + "\n\n  \n" + `{"embedding":[1,2],"external_image_id":"x.jpg"}` + "\r\n",
			want: []got{
				{pos: line(1), rec: engine.ImportRecord{UserId: "a"}},
				{pos: line(4), rec: engine.ImportRecord{Vector: []float32{1, 2}, ExternalImageId: "x.jpg"}},
			},
		},
		{
			name:  "a bad line is an error at its place, and the next line still reads",
			input: `{"embedding":[1]}` + "\n" + `{"embeding":[1]}` + "\n" + `{"embedding":[2]}`,
			want: []got{
				{pos: line(1), rec: engine.ImportRecord{Vector: []float32{1}}},
				{pos: line(2), err: `unknown field "embeding" (the fields are ` + fields + ")"},
				{pos: line(3), rec: engine.ImportRecord{Vector: []float32{2}}},
			},
		},
		{
			name:  "a line past MaxLine ends the input",
			input: `{"user_id":"a"}` + "\n" + `{"user_id":"` + strings.Repeat("b", MaxLine) + `"}`,
			want: []got{
				{pos: line(1), rec: engine.ImportRecord{UserId: "a"}},
				{pos: line(2), err: "line longer than 16 MiB"},
			},
		},
		{name: "empty", input: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, collect(ReadJSONL("in.jsonl", strings.NewReader(tt.input))))
		})
	}
}

// TestReadJSONLOrder: lines parsed on several goroutines come back in file
// order, across many chunks, and a caller may stop early.
func TestReadJSONLOrder(t *testing.T) {
	const n = 5*chunkLines + 7
	var b strings.Builder
	for i := range n {
		b.WriteString(`{"embedding":[` + strings.Repeat("0,", i%3) + `1]}` + "\n")
	}
	i := 0
	for s, err := range ReadJSONL("in", strings.NewReader(b.String())) {
		require.NoError(t, err)
		require.Equal(t, i+1, s.Pos.N)
		require.Len(t, s.Rec.Vector, i%3+1)
		i++
	}
	assert.Equal(t, n, i)
	for range ReadJSONL("in", strings.NewReader(b.String())) {
		break
	}
}

func writeNPY(t *testing.T, dir, name string, rows [][]float32, oneD bool) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, npy.Encode(&b, rows, oneD))
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
	return p
}

func TestReadNPY(t *testing.T) {
	dir := t.TempDir()
	two := writeNPY(t, dir, "two.npy", [][]float32{{1, 0}, {0, 1}}, false)
	alice := writeNPY(t, dir, "alice-1.npy", [][]float32{{1, 0}}, true)
	bad := writeNPY(t, dir, "bad name!.npy", [][]float32{{1, 0}}, true)
	sidecar := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	row := func(file string, n int) Pos { return Pos{File: file, N: n, Row: true} }
	tests := []struct {
		name    string
		file    string
		sidecar string
		want    []got
	}{
		{
			name: "rows without IDs", file: two,
			want: []got{
				{pos: row(two, 1), rec: engine.ImportRecord{Vector: []float32{1, 0}}},
				{pos: row(two, 2), rec: engine.ImportRecord{Vector: []float32{0, 1}}},
			},
		},
		{
			name: "a (d,) file is named after itself", file: alice,
			want: []got{{pos: row(alice, 1), rec: engine.ImportRecord{Vector: []float32{1, 0}, ExternalImageId: "alice-1"}}},
		},
		{
			name: "unless its name is no valid ID", file: bad,
			want: []got{{pos: row(bad, 1), rec: engine.ImportRecord{Vector: []float32{1, 0}}}},
		},
		{
			name: "IDs from the sidecar, trailing blank lines allowed", file: two,
			sidecar: sidecar("full.ids", "a.jpg\talice\tf1\ti1\r\n\tbob\n\n"),
			want: []got{
				{pos: row(two, 1), rec: engine.ImportRecord{Vector: []float32{1, 0}, ExternalImageId: "a.jpg", UserId: "alice", FaceId: "f1", ImageId: "i1"}},
				{pos: row(two, 2), rec: engine.ImportRecord{Vector: []float32{0, 1}, UserId: "bob"}},
			},
		},
		{
			name: "a sidecar too short", file: two, sidecar: sidecar("short.ids", "a.jpg\n"),
			want: []got{
				{pos: row(two, 1), rec: engine.ImportRecord{Vector: []float32{1, 0}, ExternalImageId: "a.jpg"}},
				{pos: row(two, 2), err: filepath.Join(dir, "short.ids") + " has 1 lines, fewer than the 2 rows of " + two},
			},
		},
		{
			name: "a sidecar too long", file: two, sidecar: sidecar("long.ids", "a\nb\nc\n"),
			want: []got{
				{pos: row(two, 1), rec: engine.ImportRecord{Vector: []float32{1, 0}, ExternalImageId: "a"}},
				{pos: row(two, 2), rec: engine.ImportRecord{Vector: []float32{0, 1}, ExternalImageId: "b"}},
				{pos: Pos{File: filepath.Join(dir, "long.ids"), N: 3}, err: "more lines than the 2 rows of " + two},
			},
		},
		{
			name: "a sidecar line of too many fields", file: two, sidecar: sidecar("wide.ids", "a\tb\tc\td\te\n"),
			want: []got{{pos: Pos{File: filepath.Join(dir, "wide.ids"), N: 1}, err: "5 tab-separated fields; want at most 4: external_image_id, user_id, face_id, image_id"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(tt.file)
			require.NoError(t, err)
			defer f.Close()
			assert.Equal(t, tt.want, collect(ReadNPY(tt.file, f, tt.sidecar)))
		})
	}

	t.Run("not an array", func(t *testing.T) {
		gots := collect(ReadNPY("x.npy", strings.NewReader("not an npy file"), ""))
		require.Len(t, gots, 1)
		assert.Equal(t, row("x.npy", 1), gots[0].pos)
	})
	t.Run("a record of each row, then export's sidecar line gives it back", func(t *testing.T) {
		rec := engine.ImportRecord{ExternalImageId: "a.jpg", FaceId: "f"}
		var back engine.ImportRecord
		require.NoError(t, parseSidecarLine(SidecarLine(rec), &back))
		assert.Equal(t, rec, back)
		assert.Equal(t, "a.jpg\t\tf", SidecarLine(rec))
	})
}

func TestSidecarPath(t *testing.T) {
	dir := t.TempDir()
	with := filepath.Join(dir, "faces.npy")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "faces.ids"), nil, 0o644))
	assert.Equal(t, filepath.Join(dir, "faces.ids"), SidecarPath(with))
	assert.Empty(t, SidecarPath(filepath.Join(dir, "other.npy")))
}
