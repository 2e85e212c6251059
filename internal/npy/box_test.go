package npy_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/internal/npy"
)

func boxedDict(shape, boxes string) string {
	return "{'descr': '<f4', 'facesearch:bounding_boxes': " + boxes + ", 'fortran_order': False, 'shape': " + shape + ", }\n"
}

func TestDecodeBoxed(t *testing.T) {
	one := f4(1, 2, 3)
	two := f4(1, 2, 3, 4, 5, 6)
	tests := []struct {
		name string
		file []byte
		want []npy.Box
	}{
		{"no boxes", npyFile(1, dictFor("<f4", "(3,)"), one), nil},
		{"one row", npyFile(1, boxedDict("(3,)", "[{'Width': 0.5, 'Height': 0.25, 'Left': 0.125, 'Top': 0.0625}]"), one),
			[]npy.Box{{Width: 0.5, Height: 0.25, Left: 0.125, Top: 0.0625}}},
		{"two rows, tuple, ints, exponents, negatives", npyFile(1, boxedDict("(2, 3)", "({'Top': -0.1, 'Left': 1e-05, 'Height': 1, 'Width': 2.5E-1}, {'Width': .5, 'Height': 0.5, 'Left': 0.5, 'Top': 0.5},)"), two),
			[]npy.Box{{Width: 0.25, Height: 1, Left: 1e-5, Top: -0.1}, {Width: 0.5, Height: 0.5, Left: 0.5, Top: 0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, boxes, err := npy.DecodeBoxed(tt.file)
			require.NoError(t, err)
			require.NotEmpty(t, rows)
			require.Equal(t, tt.want, boxes)
			r, err := npy.NewReader(bytes.NewReader(tt.file))
			require.NoError(t, err)
			require.Equal(t, tt.want, r.Boxes())
		})
	}
}

func TestDecodeBoxedRejects(t *testing.T) {
	one := f4(1, 2, 3)
	good := "{'Width': 0.5, 'Height': 0.5, 'Left': 0, 'Top': 0}"
	tests := []struct {
		name, boxes, shape, want string
	}{
		{"not a list", good, "(3,)", "not a list"},
		{"too few", "[]", "(3,)", "has 0 entries but the array has 1 rows"},
		{"too many", "[" + good + ", " + good + "]", "(3,)", "has 2 entries but the array has 1 rows"},
		{"not a dict", "[(0.5, 0.5, 0, 0)]", "(3,)", "[0] is (0.5, 0.5, 0, 0)"},
		{"missing member", "[{'Width': 0.5, 'Height': 0.5, 'Left': 0, 'Right': 0}]", "(3,)", "has no 'Top'"},
		{"extra member", "[{'Width': 0.5, 'Height': 0.5, 'Left': 0, 'Top': 0, 'X': 1}]", "(3,)", "[0] is {...}"},
		{"string member", "[{'Width': '0.5', 'Height': 0.5, 'Left': 0, 'Top': 0}]", "(3,)", "['Width'] is '0.5', not a number"},
		{"numpy repr", "[{'Width': np.float64(0.5), 'Height': 0.5, 'Left': 0, 'Top': 0}]", "(3,)", "unknown name"},
		{"overflow", "[{'Width': 1e999, 'Height': 0.5, 'Left': 0, 'Top': 0}]", "(3,)", "malformed number"},
		{"bad float", "[{'Width': 1.5.5, 'Height': 0.5, 'Left': 0, 'Top': 0}]", "(3,)", "malformed number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := npy.DecodeBoxed(npyFile(1, boxedDict(tt.shape, tt.boxes), one))
			require.ErrorIs(t, err, npy.ErrFormat)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, _, err := npy.DecodeBoxed(npyFile(1, "{'descr': '<f4', 'facesearch:boxes': [], 'fortran_order': False, 'shape': (3,)}", one))
	require.ErrorIs(t, err, npy.ErrFormat)
	require.ErrorContains(t, err, "unknown key 'facesearch:boxes'")
}

func TestEncodeBoxedRoundTrip(t *testing.T) {
	rows := [][]float32{{1, 2}, {3, 4}}
	boxes := []npy.Box{{Width: 1, Height: 0.5, Left: -0.25, Top: 1e-7}, {Width: 0.1, Height: 0.2, Left: 0.3, Top: 0.4}}
	var buf bytes.Buffer
	require.NoError(t, npy.EncodeBoxed(&buf, rows, false, boxes))
	got, gotBoxes, err := npy.DecodeBoxed(buf.Bytes())
	require.NoError(t, err)
	require.Equal(t, rows, got)
	require.Equal(t, boxes, gotBoxes)
	require.Zero(t, (buf.Len()-4*4)%64, "the data starts at a multiple of 64")

	err = npy.EncodeBoxed(&buf, rows, false, boxes[:1])
	require.True(t, errors.Is(err, npy.ErrFormat), "%v", err)
}
