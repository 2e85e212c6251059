package npy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer streams an (n, d) float32 array row by row, for arrays too big to
// hold (an export): n goes in the header, so it is given up front.
type Writer struct {
	w      io.Writer
	n, dim int
	rows   int
	buf    []byte
}

// NewWriter writes the header of an (n, d) float32 array to w, laid out as
// numpy.save lays it out, and returns a Writer for its rows. n must be at
// least 1 and d 1 to [MaxDim], else it fails with [ErrFormat] and writes
// nothing.
func NewWriter(w io.Writer, n, d int) (*Writer, error) {
	if n < 1 || d < 1 || d > MaxDim {
		return nil, formatErr("cannot write shape (%d, %d): want at least one row of 1 to %d values", n, d, MaxDim)
	}
	h, err := encodeHeader(fmt.Sprintf("(%d, %d)", n, d), "")
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return &Writer{w: w, n: n, dim: d}, nil
}

// Write writes the next row, as little-endian float32. A row of another
// length than d, or past the n rows of the header, fails with [ErrFormat].
// It is the caller's part to write all n rows.
func (w *Writer) Write(row []float32) error {
	if len(row) != w.dim {
		return formatErr("cannot write a row of length %d into rows of %d", len(row), w.dim)
	}
	if w.rows == w.n {
		return formatErr("cannot write row %d: the header says %d rows", w.rows+1, w.n)
	}
	w.rows++
	w.buf = w.buf[:0]
	for _, x := range row {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, math.Float32bits(x))
	}
	_, err := w.w.Write(w.buf)
	return err
}
