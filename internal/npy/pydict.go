package npy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

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
