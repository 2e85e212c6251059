package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

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

// The header is a Python dict literal. NumPy reads it with
// ast.literal_eval; we parse the subset literal_eval accepts that can matter
// here (strings, integers, booleans, None, tuples, lists) so that every
// header NumPy writes parses, and anything else fails with a position.

type pyKind uint8

const (
	pyStr pyKind = iota + 1
	pyInt
	pyBool
	pyNone
	pyTuple
	pyList
	pyFloat
	pyDict
)

type pyValue struct {
	kind  pyKind
	text  string // pyStr: contents; pyInt: digits as written
	num   int    // pyInt, valid unless big
	neg   bool   // pyInt had a leading '-'
	big   bool   // pyInt does not fit in an int
	truth bool   // pyBool
	items []pyValue
	f     float64            // pyFloat (and pyInt, for numbers)
	dict  map[string]pyValue // pyDict
}

// repr renders v as Python would, for error messages.
func (v pyValue) repr() string {
	switch v.kind {
	case pyStr:
		return pyQuote(v.text)
	case pyInt:
		if v.neg {
			return "-" + v.text
		}
		return v.text
	case pyBool:
		if v.truth {
			return "True"
		}
		return "False"
	case pyNone:
		return "None"
	case pyFloat:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case pyDict:
		return "{...}"
	}
	var b strings.Builder
	open, close := "(", ")"
	if v.kind == pyList {
		open, close = "[", "]"
	}
	b.WriteString(open)
	for i, it := range v.items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(it.repr())
		if b.Len() > maxReprLen {
			break
		}
	}
	if v.kind == pyTuple && len(v.items) == 1 {
		b.WriteString(",")
	}
	b.WriteString(close)
	return b.String()
}

func pyQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// clip keeps error messages short when a hostile header holds huge values.
func clip(s string) string {
	if len(s) > maxReprLen {
		return s[:maxReprLen] + "..."
	}
	return s
}

type pyParser struct {
	s     []byte
	pos   int
	depth int
}

func (p *pyParser) fail(format string, args ...any) error {
	return formatErr("header is not a valid Python dict literal (at byte %d: %s): want {'descr': '<f4', 'fortran_order': False, 'shape': (n, d)}",
		p.pos, fmt.Sprintf(format, args...))
}

func (p *pyParser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.pos++
		default:
			return
		}
	}
}

func (p *pyParser) eat(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// parseDict parses the whole header: one dict with string keys, then
// optional whitespace (NumPy pads with spaces and a newline).
func parseDict(s []byte) (map[string]pyValue, error) {
	p := &pyParser{s: s}
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != '{' {
		return nil, p.fail("want '{'")
	}
	d, err := p.dict()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return nil, p.fail("unexpected %q after the closing '}'", p.s[p.pos])
	}
	return d.dict, nil
}

// dict parses a dict with string keys, the header itself or a value in it.
func (p *pyParser) dict() (pyValue, error) {
	if p.depth++; p.depth > maxDepth {
		return pyValue{}, p.fail("nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++ // '{'
	m := make(map[string]pyValue, 4)
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		key, err := p.value()
		if err != nil {
			return pyValue{}, err
		}
		if key.kind != pyStr {
			return pyValue{}, p.fail("key %s is not a string", clip(key.repr()))
		}
		p.skipSpace()
		if !p.eat(':') {
			return pyValue{}, p.fail("want ':' after key %s", clip(key.repr()))
		}
		val, err := p.value()
		if err != nil {
			return pyValue{}, err
		}
		if _, dup := m[key.text]; dup {
			// Python would keep the last one; an ambiguous header is more
			// likely corruption than intent.
			return pyValue{}, p.fail("duplicate key %s", clip(key.repr()))
		}
		m[key.text] = val
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return pyValue{}, p.fail("want ',' or '}'")
	}
	return pyValue{kind: pyDict, dict: m}, nil
}

func (p *pyParser) value() (pyValue, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return pyValue{}, p.fail("unexpected end of header")
	}
	switch c := p.s[p.pos]; {
	case c == '\'' || c == '"':
		return p.str()
	case c == '(':
		return p.seq('(', ')')
	case c == '[':
		return p.seq('[', ']')
	case c == '{':
		return p.dict()
	case c == '-' || c == '+' || isDigit(c) || c == '.':
		return p.int()
	case isNameByte(c):
		start := p.pos
		for p.pos < len(p.s) && isNameByte(p.s[p.pos]) {
			p.pos++
		}
		switch w := string(p.s[start:p.pos]); w {
		case "True", "False":
			return pyValue{kind: pyBool, truth: w == "True"}, nil
		case "None":
			return pyValue{kind: pyNone}, nil
		default:
			p.pos = start
			return pyValue{}, p.fail("unknown name %q", clip(w))
		}
	default:
		return pyValue{}, p.fail("unexpected %q", c)
	}
}

func (p *pyParser) str() (pyValue, error) {
	q := p.s[p.pos]
	p.pos++
	var b []byte
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			return pyValue{kind: pyStr, text: string(b)}, nil
		case c == '\n' || c == '\r':
			return pyValue{}, p.fail("newline in string")
		case c == '\\' && p.pos+1 < len(p.s):
			// Only \\, \' and \" can occur in a dtype string; other
			// escapes keep the escaped byte, which no accepted dtype has.
			b = append(b, p.s[p.pos+1])
			p.pos += 2
		default:
			b = append(b, c)
			p.pos++
		}
	}
	return pyValue{}, p.fail("unterminated string")
}

// int parses [+-] digits [L], as literal_eval does (the L suffix is Python 2's
// long, found in old files; NumPy strips it too), or a float as Python's
// repr writes it (digits with a fraction or an exponent).
func (p *pyParser) int() (pyValue, error) {
	v := pyValue{kind: pyInt}
	if c := p.s[p.pos]; c == '-' || c == '+' {
		v.neg = c == '-'
		p.pos++
		p.skipSpace()
	}
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if isDigit(c) {
			p.pos++
			continue
		}
		// Python allows single underscores between digits: 1_000.
		if c == '_' && p.pos > start && isDigit(p.s[p.pos-1]) && p.pos+1 < len(p.s) && isDigit(p.s[p.pos+1]) {
			p.pos++
			continue
		}
		break
	}
	if p.pos < len(p.s) && (p.s[p.pos] == '.' || p.s[p.pos] == 'e' || p.s[p.pos] == 'E') {
		return p.float(start, v.neg)
	}
	digits := strings.ReplaceAll(string(p.s[start:p.pos]), "_", "")
	if digits == "" {
		return pyValue{}, p.fail("want digits")
	}
	if digits[0] == '0' && strings.Trim(digits, "0") != "" {
		return pyValue{}, p.fail("integer %s has a leading zero", clip(digits))
	}
	if p.pos < len(p.s) && (p.s[p.pos] == 'L' || p.s[p.pos] == 'l') {
		p.pos++
	}
	if p.pos < len(p.s) && (isNameByte(p.s[p.pos]) || p.s[p.pos] == '.') {
		return pyValue{}, p.fail("malformed integer")
	}
	v.text = clip(digits)
	for i := 0; i < len(digits); i++ {
		d := int(digits[i] - '0')
		if v.num > (math.MaxInt-d)/10 {
			v.big = true
			break
		}
		v.num = v.num*10 + d
	}
	v.f, _ = strconv.ParseFloat(digits, 64)
	if v.neg {
		v.f = -v.f
	}
	return v, nil
}

// float parses the rest of a float whose digits before the point start at
// start: [.digits][e[+-]digits].
func (p *pyParser) float(start int, neg bool) (pyValue, error) {
	digits := func() {
		for p.pos < len(p.s) && isDigit(p.s[p.pos]) {
			p.pos++
		}
	}
	if p.eat('.') {
		digits()
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('-') {
			p.eat('+')
		}
		digits()
	}
	text := string(p.s[start:p.pos])
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || p.pos < len(p.s) && (isNameByte(p.s[p.pos]) || p.s[p.pos] == '.') {
		return pyValue{}, p.fail("malformed number %s", clip(text))
	}
	if neg {
		f = -f
	}
	return pyValue{kind: pyFloat, f: f, neg: neg, text: clip(text)}, nil
}

// seq parses a tuple or list. As in Python, "(x)" is just x and "(x,)" is a
// 1-tuple.
func (p *pyParser) seq(open, close byte) (pyValue, error) {
	if p.depth++; p.depth > maxDepth {
		return pyValue{}, p.fail("nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++ // open
	var items []pyValue
	trailingComma := false
	for {
		p.skipSpace()
		if p.eat(close) {
			break
		}
		v, err := p.value()
		if err != nil {
			return pyValue{}, err
		}
		items = append(items, v)
		p.skipSpace()
		if p.eat(',') {
			trailingComma = true
			continue
		}
		if p.eat(close) {
			trailingComma = false
			break
		}
		return pyValue{}, p.fail("want ',' or '%c'", close)
	}
	if open == '(' {
		if len(items) == 1 && !trailingComma {
			return items[0], nil
		}
		return pyValue{kind: pyTuple, items: items}, nil
	}
	return pyValue{kind: pyList, items: items}, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isNameByte(c byte) bool {
	return c == '_' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
