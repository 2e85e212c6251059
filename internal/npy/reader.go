package npy

import (
	"bufio"
	"fmt"
	"io"
)

// Reader streams the rows of a .npy array one at a time, for bulk imports
// whose files do not fit in memory: it holds one row, whatever n is. It
// accepts exactly what [Decode] accepts.
type Reader struct {
	r   *bufio.Reader
	h   header
	buf []byte // one row of raw data
	row int    // rows returned so far
	err error  // sticky: io.EOF or the first failure
}

// NewReader reads and validates the header from r, returning an error
// wrapping [ErrFormat] if the array is not one [Decode] accepts. Reads are
// buffered, so r need not be.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	h, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	return &Reader{r: br, h: h, buf: make([]byte, h.dim*h.itemSize)}, nil
}

// Shape returns the number of rows and the row length; n is 1 for shape (d,).
func (r *Reader) Shape() (n, dim int) { return r.h.n, r.h.dim }

// Next reads the next row into dst, which must have length dim, converting
// float64 data to float32. After the last row it returns io.EOF, once the
// input is confirmed to end there; bytes past the last row are an error
// wrapping [ErrFormat]. Input that ends early gives an error wrapping both
// [ErrFormat] and io.ErrUnexpectedEOF. Errors other than a wrong dst are
// sticky.
func (r *Reader) Next(dst []float32) error {
	if r.err != nil {
		return r.err
	}
	if len(dst) != r.h.dim {
		return fmt.Errorf("npy: Next: dst has length %d, want %d", len(dst), r.h.dim)
	}
	if r.row == r.h.n {
		// Decode rejects trailing bytes; so must the stream, so a file
		// that imports is one that decodes.
		switch _, err := r.r.ReadByte(); err {
		case io.EOF:
			r.err = io.EOF
		case nil:
			r.err = formatErr("unexpected bytes after the %d rows of shape %s", r.h.n, r.h.shape)
		default:
			r.err = fmt.Errorf("npy: reading after row %d: %w", r.row, err)
		}
		return r.err
	}
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			r.err = fmt.Errorf("%w: data is truncated: shape %s ends at row %d of %d: %w",
				ErrFormat, r.h.shape, r.row, r.h.n, io.ErrUnexpectedEOF)
		} else {
			r.err = fmt.Errorf("npy: reading row %d: %w", r.row, err)
		}
		return r.err
	}
	convert(dst, r.buf, r.h.itemSize)
	r.row++
	return nil
}
