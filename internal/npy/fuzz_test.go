package npy_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/facesearch/facesearch/internal/npy"
)

// FuzzDecode checks that Decode never panics, that every failure is
// ErrFormat, that whatever decodes survives Encode and Decode bit for bit
// (f8 inputs after their conversion to f4), and that the streaming Reader
// agrees with Decode on every input.
func FuzzDecode(f *testing.F) {
	f.Add(npyFile(1, dictFor("<f4", "(3,)"), f4(1, -2, 0.5)))
	f.Add(npyFile(1, dictFor("<f4", "(2, 2)"), f4(1, 2, 3, 4)))
	f.Add(npyFile(1, dictFor("<f8", "(3,)"), f8(1e300, -2, 0.1)))
	f.Add(npyFile(1, dictFor("<f8", "(2, 2)"), f8(1, 2, 3, 4)))
	f.Add(npyFile(2, dictFor("<f4", "(1, 3)"), f4(1, 2, 3)))
	f.Add(npyFile(3, dictFor("<f8", "(1,)"), f8(7)))
	f.Add(npy.EncodeVector([]float32{0.25, 0.5}))
	f.Add(npyFile(1, "{'shape':(2L,1,),'descr':\"<f4\",'fortran_order':False,}", f4(1, 2)))
	f.Add(npyFile(1, dictFor("<f4", "(3,)"), f4(1, 2)))
	f.Add(npyFile(1, dictFor(">f4", "(1,)"), f4(1)))
	f.Add(npyFile(1, dictFor("<f4", "(0,)"), nil))
	f.Add(npyFile(1, dictFor("<f4", "(9223372036854775807, 4096)"), f4(1)))
	f.Add(npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': ((1),)}", f4(1)))
	f.Add(npyFile(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", f4(1)))
	f.Add([]byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f{"))
	f.Add([]byte("\x93NUMPY"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		rows, dim, err := npy.Decode(b)
		checkReaderAgrees(t, b, rows, err)
		if err != nil {
			if !errors.Is(err, npy.ErrFormat) {
				t.Fatalf("Decode error %v is not ErrFormat", err)
			}
			return
		}
		if len(rows) == 0 || dim < 1 || dim > npy.MaxDim {
			t.Fatalf("Decode succeeded with %d rows of dim %d", len(rows), dim)
		}
		for i, r := range rows {
			if len(r) != dim {
				t.Fatalf("row %d has length %d, dim %d", i, len(r), dim)
			}
		}
		for _, oneD := range []bool{false, true} {
			var buf bytes.Buffer
			if err := npy.Encode(&buf, rows, oneD); err != nil {
				t.Fatalf("Encode of decoded rows: %v", err)
			}
			again, dim2, err := npy.Decode(buf.Bytes())
			if err != nil {
				t.Fatalf("Decode of Encode output: %v", err)
			}
			if dim2 != dim || !sameBits(again, rows) {
				t.Fatalf("round trip changed the rows")
			}
		}
	})
}

// checkReaderAgrees streams b and requires the same rows as Decode, or a
// failure exactly when Decode failed.
func checkReaderAgrees(t *testing.T, b []byte, want [][]float32, decodeErr error) {
	t.Helper()
	r, err := npy.NewReader(bytes.NewReader(b))
	var got [][]float32
	if err == nil {
		got, err = readAll(r)
	}
	switch {
	case decodeErr != nil && err == nil:
		t.Fatalf("Decode failed (%v) but Reader read %d rows", decodeErr, len(got))
	case decodeErr != nil && !errors.Is(err, npy.ErrFormat):
		t.Fatalf("Reader error %v is not ErrFormat", err)
	case decodeErr == nil && err != nil:
		t.Fatalf("Decode succeeded but Reader failed: %v", err)
	case decodeErr == nil && !sameBits(got, want):
		t.Fatalf("Reader rows differ from Decode rows")
	}
}
