package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/internal/records"
)

// readLabelsOnePass is readLabels as one sequential pass: the reference
// its batches on every core must equal.
func readLabelsOnePass(name, text string) ([]identity, int, error) {
	var ids []identity
	at := map[string]int{}
	dim := 0
	for k, raw := range strings.Split(text, "\n") {
		line := []byte(strings.TrimSpace(raw))
		if len(line) == 0 {
			continue
		}
		var rec records.Labeled
		if err := records.DecodeLabeled(line, &rec); err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %v", name, k+1, err)
		}
		if dim == 0 {
			dim = len(rec.Embedding)
		}
		if len(rec.Embedding) != dim {
			return nil, 0, fmt.Errorf("%s:%d: the embedding has %d dimensions, the first one had %d", name, k+1, len(rec.Embedding), dim)
		}
		v, err := unit(rec.Embedding)
		if err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %v", name, k+1, err)
		}
		i, ok := at[rec.Identity]
		if !ok {
			i = len(ids)
			at[rec.Identity] = i
			ids = append(ids, identity{name: rec.Identity})
		}
		ids[i].samples = append(ids[i].samples, v)
	}
	if len(ids) == 0 {
		return nil, 0, fmt.Errorf("%s: no labeled embeddings", name)
	}
	return ids, dim, nil
}

// TestReadLabelsInBatches: over several batches, readLabels gives what one
// pass gives: identities and samples in file order, and the first bad
// line, whichever batch it is in and whatever follows it.
func TestReadLabelsInBatches(t *testing.T) {
	const lines, dim = 4000, 96 // about 7 batches
	r := rand.New(rand.NewPCG(7, 8))
	good := make([]string, lines)
	for i := range good {
		v := make([]float64, dim)
		for j := range v {
			v[j] = r.NormFloat64()
		}
		var id any = fmt.Sprintf("p%d", r.IntN(lines/3))
		if i%7 == 0 {
			id = r.IntN(50) // a number as identity
		}
		b, err := json.Marshal(map[string]any{"identity": id, "embedding": v, "path": fmt.Sprintf("%d.jpg", i)})
		require.NoError(t, err)
		good[i] = string(b)
	}
	good[10], good[2500] = "", "   " // blank lines are skipped
	with := func(at map[int]string) string {
		ls := append([]string(nil), good...)
		for i, l := range at {
			ls[i] = l
		}
		return strings.Join(ls, "\n") + "\n"
	}
	zero := `{"identity":"z","embedding":[0,0]}`
	tests := []struct {
		name string
		text string
		bad  bool
	}{
		{"all good", with(nil), false},
		{"a bad line in a late batch", with(map[int]string{3900: `{"identity":"a","embedding":[1,`}), true},
		{"a bad line in the first batch", with(map[int]string{5: `{"embedding":[1]}`}), true},
		{"two bad lines in one batch: the first", with(map[int]string{3000: `[]`, 3001: `{}`}), true},
		{"a wrong dimension before a bad line of its batch", with(map[int]string{2001: `{"identity":"a","embedding":[1,2]}`, 2002: `x`}), true},
		{"a zero vector of the wrong dimension", with(map[int]string{1500: zero}), true},
		{"a zero vector at the start", zero + "\n" + with(nil), true},
		{"only blank lines", "\n \n\t\n", true},
	}
	// A line over records.MaxLine stops the scanner: the lines before it
	// are checked first.
	long := `{"identity":"a","embedding":[` + strings.Repeat("1,", records.MaxLine/2) + `1]}`
	t.Run("a line too long after a bad one", func(t *testing.T) {
		text := with(map[int]string{3000: `{"identity":"a"}`})
		_, _, want := readLabelsOnePass("l.jsonl", text)
		require.Error(t, want)
		_, _, err := readLabels("l.jsonl", strings.NewReader(text+long+"\n"))
		require.EqualError(t, err, want.Error())
	})
	t.Run("a line too long after good ones", func(t *testing.T) {
		_, _, err := readLabels("l.jsonl", strings.NewReader(with(nil)+long+"\n"))
		require.ErrorIs(t, err, bufio.ErrTooLong)
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.text) > len(zero)+10 {
				require.Greater(t, len(tt.text)/labelBatchBytes, 2, "the input spans batches")
			}
			wantIDs, wantDim, wantErr := readLabelsOnePass("l.jsonl", tt.text)
			ids, gotDim, err := readLabels("l.jsonl", bytes.NewReader([]byte(tt.text)))
			if tt.bad {
				require.Error(t, wantErr)
				require.EqualError(t, err, wantErr.Error())
				return
			}
			require.NoError(t, wantErr)
			require.NoError(t, err)
			require.Equal(t, wantDim, gotDim)
			require.Equal(t, wantIDs, ids)
		})
	}
}

// BenchmarkReadLabels reads 20,000 lines of 512-d embeddings as an
// embedding pipeline writes them, identity and path beside each.
func BenchmarkReadLabels(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var text bytes.Buffer
	for i := range 20000 {
		v := make([]float32, 512)
		for j := range v {
			v[j] = float32(r.NormFloat64() / 22.6)
		}
		line, err := json.Marshal(map[string]any{"identity": fmt.Sprint("p", i/4), "path": fmt.Sprint(i, ".jpg"), "embedding": v})
		require.NoError(b, err)
		text.Write(line)
		text.WriteByte('\n')
	}
	b.SetBytes(int64(text.Len()))
	for b.Loop() {
		if _, _, err := readLabels("l.jsonl", bytes.NewReader(text.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
