package records

import (
	"bytes"
	"strconv"
)

// decodeFast decodes the plain form of a record, the one export writes and
// most tools write: an object whose keys are the record's field names,
// each once, with strings free of escapes and an array of JSON numbers. It
// reports false, leaving the rest to encoding/json, for anything else
// (escapes, nulls, unknown or repeated keys, invalid JSON, numbers out of
// float32 range), so where it answers it answers as encoding/json would.
//
// It exists for speed alone: parsing JSON Lines is most of an import's
// work, and on export's 512-d lines it takes about 0.4x encoding/json's
// time (go test -run '^$' -bench Decode ./internal/records/). A
// json.Decoder over the whole input would not do instead either: a bad
// line must be reported by its number and skipped by a dry run.
func decodeFast(b []byte, j *JSON) bool {
	p := fastParser{b: b}
	if !p.skip('{') {
		return false
	}
	p.space()
	if p.at('}') {
		p.i++
		p.space()
		return p.i == len(p.b)
	}
	var seen [5]bool
	for {
		key, ok := p.str()
		if !ok || !p.skip(':') {
			return false
		}
		var field int
		var dst *string
		switch key {
		case "embedding":
			field = 0
		case "face_id":
			field, dst = 1, &j.FaceID
		case "image_id":
			field, dst = 2, &j.ImageID
		case "external_image_id":
			field, dst = 3, &j.ExternalImageID
		case "user_id":
			field, dst = 4, &j.UserID
		default:
			return false
		}
		if seen[field] {
			return false
		}
		seen[field] = true
		if dst != nil {
			if *dst, ok = p.str(); !ok {
				return false
			}
		} else if j.Embedding, ok = floats[float32](&p, 32, nil); !ok {
			return false
		}
		if end, ok := p.next(); !ok || end {
			return ok
		}
	}
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) at(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) skip(c byte) bool {
	p.space()
	if !p.at(c) {
		return false
	}
	p.i++
	return true
}

// str reads a string of printable ASCII without escapes.
func (p *fastParser) str() (string, bool) {
	p.space()
	if !p.at('"') {
		return "", false
	}
	start := p.i + 1
	for i := start; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			p.i = i + 1
			return string(p.b[start:i]), true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// next steps over what follows an object's member: a comma, or the
// closing brace and the space after it, which must end the input. It
// reports whether the object ended, and false in ok for anything else.
func (p *fastParser) next() (end, ok bool) {
	p.space()
	switch {
	case p.at(','):
		p.i++
		return false, true
	case p.at('}'):
		p.i++
		p.space()
		return true, p.i == len(p.b)
	}
	return false, false
}

// floats reads an array of JSON numbers, each rounded to T (of bitSize
// bits) as strconv.ParseFloat rounds it, into dst[:0] (a new slice if
// dst is nil).
func floats[T float32 | float64](p *fastParser, bitSize int, dst []T) ([]T, bool) {
	if !p.skip('[') {
		return nil, false
	}
	out := dst[:0]
	if out == nil {
		out = make([]T, 0, 512)
	}
	p.space()
	if p.at(']') {
		p.i++
		return out, true
	}
	for {
		p.space()
		start := p.i
		if !p.number() {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(p.b[start:p.i]), bitSize)
		if err != nil {
			return nil, false
		}
		out = append(out, T(f))
		p.space()
		switch {
		case p.at(','):
			p.i++
		case p.at(']'):
			p.i++
			return out, true
		default:
			return nil, false
		}
	}
}

// scalar steps over a string as str reads it, a number, true, false or
// null.
func (p *fastParser) scalar() bool {
	p.space()
	if p.at('"') {
		_, ok := p.str()
		return ok
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
			p.i += len(lit)
			return true
		}
	}
	return p.number()
}

// number steps over one number of JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.at('-') {
		p.i++
	}
	switch {
	case p.at('0'):
		p.i++
	case digits() == 0:
		return false
	}
	if p.at('.') {
		p.i++
		if digits() == 0 {
			return false
		}
	}
	if p.at('e') || p.at('E') {
		p.i++
		if p.at('+') || p.at('-') {
			p.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
