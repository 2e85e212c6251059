package records

import (
	"encoding/json"
	"errors"
	"strings"
)

// Labeled is one line of the labeled set `facesearch eval` reads:
//
//	{"identity": "alice", "embedding": [0.1, ...]}
//
// the identity a string or a number (kept as written), other fields
// ignored.
type Labeled struct {
	Identity  string
	Embedding []float64
}

// DecodeLabeled decodes one line of a labeled set: through the fast parser
// when the line is in the plain form, else through encoding/json, which
// also words the errors. The fast parser reuses l.Embedding's array.
func DecodeLabeled(b []byte, l *Labeled) error {
	if decodeLabeledFast(b, l) {
		return nil
	}
	*l = Labeled{}
	return decodeLabeledStrict(b, l)
}

func decodeLabeledStrict(b []byte, l *Labeled) error {
	var rec struct {
		Identity  json.RawMessage `json:"identity"`
		Embedding []float64       `json:"embedding"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return Explain(err)
	}
	label, err := identityLabel(rec.Identity)
	if err != nil {
		return err
	}
	if len(rec.Embedding) == 0 {
		return errors.New(`no "embedding"`)
	}
	l.Identity, l.Embedding = label, rec.Embedding
	return nil
}

func identityLabel(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && s != "" {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && n != "" {
		return n.String(), nil
	}
	return "", errors.New(`no "identity": want a string or a number`)
}

// decodeLabeledFast decodes the plain form of a labeled line: the keys
// "identity" (a non-empty string free of escapes, or a number) and
// "embedding" (a non-empty array of numbers), each once, and other keys
// with a plain string, a number, true, false or null. It reports false,
// leaving the rest to encoding/json, for anything else, so where it
// answers it answers as encoding/json would.
func decodeLabeledFast(b []byte, l *Labeled) bool {
	p := fastParser{b: b}
	if !p.skip('{') {
		return false
	}
	var haveID, haveEmbedding bool
	for {
		key, ok := p.str()
		if !ok || !p.skip(':') {
			return false
		}
		switch {
		case key == "identity" && !haveID:
			haveID = true
			p.space()
			if p.at('"') {
				if l.Identity, ok = p.str(); !ok || l.Identity == "" {
					return false
				}
			} else {
				start := p.i
				if !p.number() {
					return false
				}
				l.Identity = string(p.b[start:p.i])
			}
		case key == "embedding" && !haveEmbedding:
			haveEmbedding = true
			if l.Embedding, ok = floats[float64](&p, 64, l.Embedding); !ok || len(l.Embedding) == 0 {
				return false
			}
		case strings.EqualFold(key, "identity") || strings.EqualFold(key, "embedding"):
			// A repeat, or a match only in encoding/json's case-folding.
			return false
		default:
			if !p.scalar() {
				return false
			}
		}
		if end, ok := p.next(); !ok || end {
			return ok && haveID && haveEmbedding
		}
	}
}
