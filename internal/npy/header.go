package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/facesearch/facesearch/internal/vector"
)

const (
	// MaxDim is the largest row length (embedding dimension) accepted, the
	// engine's collection limit; larger rows are rejected before any data is
	// read.
	MaxDim = vector.MaxDim

	// maxHeaderLen bounds the header we are willing to read, so a hostile
	// length field cannot make us allocate. NumPy itself refuses headers over
	// 10000 bytes by default; ours are under 128.
	maxHeaderLen = 1 << 16

	// maxDepth bounds tuple/list nesting in the header literal.
	maxDepth = 16

	// maxReprLen truncates values quoted in error messages.
	maxReprLen = 64
)

var magic = []byte("\x93NUMPY")

// header is a validated .npy header.
type header struct {
	descr    string // '<f4' or '<f8'
	itemSize int    // 4 or 8
	n, dim   int    // n is 1 for shape (d,)
	shape    string // as written, for messages
	boxes    []Box  // from BoxesKey; nil when the header has none
}

// readHeader reads and validates the preamble and header dict from r,
// leaving r at the first data byte.
func readHeader(r io.Reader) (header, error) {
	var pre [12]byte
	if n, err := io.ReadFull(r, pre[:8]); err != nil {
		switch {
		case err != io.EOF && err != io.ErrUnexpectedEOF:
			return header{}, fmt.Errorf("npy: reading header: %w", err)
		case n == 0:
			return header{}, formatErr("empty input, not a .npy file: send the bytes written by numpy.save")
		case !bytes.HasPrefix(magic, pre[:min(n, len(magic))]):
			return header{}, badMagic(pre[:n])
		}
		return header{}, formatErr("truncated header: only %d bytes", n)
	}
	if !bytes.Equal(pre[:6], magic) {
		return header{}, badMagic(pre[:8])
	}
	major, minor := pre[6], pre[7]
	var hlen uint64
	switch {
	case major == 1 && minor == 0:
		if err := readFullHeader(r, pre[8:10]); err != nil {
			return header{}, err
		}
		hlen = uint64(binary.LittleEndian.Uint16(pre[8:10]))
	case (major == 2 || major == 3) && minor == 0:
		if err := readFullHeader(r, pre[8:12]); err != nil {
			return header{}, err
		}
		hlen = uint64(binary.LittleEndian.Uint32(pre[8:12]))
	default:
		return header{}, formatErr("unsupported .npy format version %d.%d: want 1.0, 2.0 or 3.0", major, minor)
	}
	if hlen > maxHeaderLen {
		return header{}, formatErr("header length %d exceeds the limit of %d bytes", hlen, maxHeaderLen)
	}
	text := make([]byte, hlen)
	if err := readFullHeader(r, text); err != nil {
		return header{}, err
	}
	return parseHeader(text)
}

func readFullHeader(r io.Reader, b []byte) error {
	n, err := io.ReadFull(r, b)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return formatErr("truncated header: %d of %d header bytes present", n, len(b))
	case err != nil:
		return fmt.Errorf("npy: reading header: %w", err)
	}
	return nil
}

func badMagic(got []byte) error {
	return formatErr("not a .npy file (starts with %q, want \"\\x93NUMPY\"): send the bytes written by numpy.save", got)
}

// parseHeader validates the header dict against what the engine accepts.
func parseHeader(text []byte) (header, error) {
	dict, err := parseDict(text)
	if err != nil {
		return header{}, err
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if _, ok := dict[k]; !ok {
			return header{}, formatErr("header has no %q key: want exactly 'descr', 'fortran_order' and 'shape'", k)
		}
	}
	if len(dict) != 3 {
		for k := range dict {
			switch k {
			case "descr", "fortran_order", "shape", BoxesKey:
			default:
				return header{}, formatErr("header has unknown key %s: want exactly 'descr', 'fortran_order' and 'shape', and optionally '%s'", clip(pyQuote(k)), BoxesKey)
			}
		}
	}

	var h header
	descr := dict["descr"]
	switch {
	case descr.kind != pyStr:
		return header{}, formatErr("dtype %s is not a plain dtype (structured arrays are not embeddings): %s", clip(descr.repr()), accepted)
	case descr.text == "<f4":
		h.itemSize = 4
	case descr.text == "<f8":
		h.itemSize = 8
	case descr.text == ">f4" || descr.text == ">f8":
		return header{}, formatErr("dtype '%s' is big-endian (convert with arr.astype('<f4')): %s", descr.text, accepted)
	default:
		return header{}, formatErr("unsupported dtype %s: %s", clip(descr.repr()), accepted)
	}
	h.descr = descr.text

	switch fo := dict["fortran_order"]; {
	case fo.kind != pyBool:
		return header{}, formatErr("fortran_order is %s, want True or False", clip(fo.repr()))
	case fo.truth:
		return header{}, formatErr("array is in Fortran (column-major) order (convert with numpy.ascontiguousarray): %s", accepted)
	}

	shape := dict["shape"]
	h.shape = clip(shape.repr())
	if shape.kind != pyTuple {
		return header{}, formatErr("shape %s is not a tuple: %s", h.shape, accepted)
	}
	for _, v := range shape.items {
		switch {
		case v.kind != pyInt:
			return header{}, formatErr("shape %s has a non-integer dimension: %s", h.shape, accepted)
		case v.neg && (v.big || v.num != 0):
			return header{}, formatErr("shape %s has a negative dimension: %s", h.shape, accepted)
		case v.big:
			return header{}, formatErr("shape %s has a dimension too large for this platform", h.shape)
		}
	}
	switch len(shape.items) {
	case 0:
		return header{}, formatErr("shape () is 0-d (a scalar): %s", accepted)
	case 1:
		h.n, h.dim = 1, shape.items[0].num
	case 2:
		h.n, h.dim = shape.items[0].num, shape.items[1].num
	default:
		return header{}, formatErr("shape %s has %d dimensions: %s", h.shape, len(shape.items), accepted)
	}
	if h.n == 0 || h.dim == 0 {
		return header{}, formatErr("shape %s is empty: want at least one row of at least one value", h.shape)
	}
	if h.dim > MaxDim {
		return header{}, formatErr("dimension %d in shape %s exceeds the limit of %d", h.dim, h.shape, MaxDim)
	}
	if v, ok := dict[BoxesKey]; ok {
		if h.boxes, err = parseBoxes(v, h.n); err != nil {
			return header{}, err
		}
	}
	return h, nil
}
