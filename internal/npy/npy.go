// Package npy reads and writes embeddings as NumPy .npy arrays, the wire
// format of Image.Bytes: float32 or float64, little-endian, C order, shape
// (d,) for one face or (n, d) for n faces.
//
// Decode is for request-sized inputs held in memory; [Reader] streams big
// (n, d) files for bulk import with memory independent of the file size.
// Both reject anything else with an error wrapping [ErrFormat] that says what
// is accepted. Values are not checked (NaN, zero vectors): that is the
// engine's job.
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Decode parses a .npy array of little-endian float32 ('<f4') or float64
// ('<f8') in C order with shape (d,) or (n, d), format version 1.0, 2.0 or
// 3.0. It returns the n rows (one for shape (d,)) converted to float32, all
// sharing one backing array, and d.
//
// Any other input, including data longer or shorter than the shape says,
// fails with an error wrapping [ErrFormat]. Decode never allocates more than
// a small multiple of len(b), whatever the header claims.
func Decode(b []byte) (rows [][]float32, dim int, err error) {
	rows, h, err := decode(b)
	return rows, h.dim, err
}

func decode(b []byte) ([][]float32, header, error) {
	br := bytes.NewReader(b)
	h, err := readHeader(br)
	if err != nil {
		return nil, header{}, err
	}
	data := b[len(b)-br.Len():]
	rowBytes := h.dim * h.itemSize
	// Compare by division so a hostile n cannot overflow n*rowBytes.
	if h.n > len(data)/rowBytes {
		return nil, header{}, formatErr("data is truncated: shape %s of '%s' needs %d rows of %d bytes, only %d bytes present",
			h.shape, h.descr, h.n, rowBytes, len(data))
	}
	if extra := len(data) - h.n*rowBytes; extra != 0 {
		return nil, header{}, formatErr("%d unexpected bytes after the data of shape %s", extra, h.shape)
	}
	flat := make([]float32, h.n*h.dim)
	convert(flat, data, h.itemSize)
	rows := make([][]float32, h.n)
	for i := range rows {
		// Full slice expressions: appending to one row must not overwrite the next.
		rows[i] = flat[i*h.dim : (i+1)*h.dim : (i+1)*h.dim]
	}
	return rows, h, nil
}

// convert decodes little-endian floats of itemSize bytes from src into dst.
func convert(dst []float32, src []byte, itemSize int) {
	if itemSize == 4 {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return
	}
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

// Encode writes rows, which must all have the same length d (1 to [MaxDim]),
// to w as a float32 .npy array: shape (d,) when oneD is true and there is one
// row, else (n, d). The header is version 1.0, padded so the data starts at a
// multiple of 64 bytes as the format recommends.
//
// Encode refuses (with [ErrFormat]) what Decode would refuse, so whatever it
// writes can be read back.
func Encode(w io.Writer, rows [][]float32, oneD bool) error {
	return encode(w, rows, oneD, "")
}

// encode is Encode with extra, rendered entries of the header dict.
func encode(w io.Writer, rows [][]float32, oneD bool, extra string) error {
	if len(rows) == 0 {
		return formatErr("cannot encode zero rows: want at least one")
	}
	d := len(rows[0])
	if d == 0 || d > MaxDim {
		return formatErr("cannot encode rows of length %d: want 1 to %d", d, MaxDim)
	}
	for i, r := range rows {
		if len(r) != d {
			return formatErr("cannot encode row %d of length %d: row 0 has length %d, want equal lengths", i, len(r), d)
		}
	}
	shape := fmt.Sprintf("(%d, %d)", len(rows), d)
	if oneD && len(rows) == 1 {
		shape = fmt.Sprintf("(%d,)", d)
	}
	return write(w, shape, extra, rows)
}

// EncodeVector returns v as a float32 .npy array of shape (d,), the form a
// single face takes in Image.Bytes. It does not check len(v): a vector that
// is empty or longer than [MaxDim] encodes, but Decode rejects it.
func EncodeVector(v []float32) []byte {
	var buf bytes.Buffer
	buf.Grow(128 + 4*len(v))
	_ = write(&buf, fmt.Sprintf("(%d,)", len(v)), "", [][]float32{v}) // a bytes.Buffer never fails
	return buf.Bytes()
}

// writeChunk is how many bytes of data Encode buffers per Write.
const writeChunk = 64 << 10

func write(w io.Writer, shape, extra string, rows [][]float32) error {
	h, err := encodeHeader(shape, extra)
	if err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	var buf []byte
	for _, r := range rows {
		if buf == nil {
			buf = make([]byte, 0, max(writeChunk, 4*len(r)))
		}
		for _, x := range r {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
		if len(buf) >= writeChunk {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// encodeHeader builds a version 1.0 preamble and header for a '<f4' array,
// laid out as numpy.save does: dict, spaces, newline, total a multiple of 64.
func encodeHeader(shape, extra string) ([]byte, error) {
	dict := "{'descr': '<f4', " + extra + "'fortran_order': False, 'shape': " + shape + ", }"
	const preamble = 10 // magic, version, uint16 length
	pad := (64 - (preamble+len(dict)+1)%64) % 64
	hlen := len(dict) + pad + 1
	if hlen > math.MaxUint16 {
		return nil, formatErr("cannot encode a header of %d bytes: version 1.0 holds at most %d", hlen, math.MaxUint16)
	}
	out := make([]byte, 0, preamble+hlen)
	out = append(out, magic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
	out = append(out, dict...)
	out = append(out, bytes.Repeat([]byte{' '}, pad)...)
	return append(out, '\n'), nil
}
