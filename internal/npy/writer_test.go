package npy_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/internal/npy"
)

// TestWriter: rows streamed through a Writer read back as the same array,
// byte for byte what Encode writes.
func TestWriter(t *testing.T) {
	rows := [][]float32{{1, -2, 0.5}, {0, 3.25, -1e-7}}
	var b bytes.Buffer
	w, err := npy.NewWriter(&b, len(rows), 3)
	require.NoError(t, err)
	for _, r := range rows {
		require.NoError(t, w.Write(r))
	}
	var want bytes.Buffer
	require.NoError(t, npy.Encode(&want, rows, false))
	assert.Equal(t, want.Bytes(), b.Bytes())
	got, dim, err := npy.Decode(b.Bytes())
	require.NoError(t, err)
	assert.Equal(t, 3, dim)
	assert.Equal(t, rows, got)

	assert.True(t, errors.Is(w.Write(rows[0]), npy.ErrFormat), "a row past the header's count")
}

func TestWriterRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		n, d int
	}{
		{"no rows", 0, 3},
		{"no values", 2, 0},
		{"rows too long", 2, npy.MaxDim + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			_, err := npy.NewWriter(&b, tt.n, tt.d)
			assert.ErrorIs(t, err, npy.ErrFormat)
			assert.Zero(t, b.Len(), "nothing written")
		})
	}
	var b bytes.Buffer
	w, err := npy.NewWriter(&b, 1, 3)
	require.NoError(t, err)
	assert.ErrorIs(t, w.Write([]float32{1, 2}), npy.ErrFormat, "a row of another length")
}
