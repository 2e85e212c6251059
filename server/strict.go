package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
)

// MaxJSONDepth is how deeply a request body's arrays and objects may nest;
// the top-level object is depth 1. The deepest Rekognition input facesearch
// serves nests 3 deep (IndexFaces' Image.S3Object), so 32 leaves room for
// any later input and still refuses a body that would make a decoder recurse
// without bound. A deeper body is a SerializationException.
const MaxJSONDepth = 32

// checkMembers enforces three rules of AWS JSON that encoding/json relaxes:
// the body nests at most [MaxJSONDepth] deep, member names match exactly
// (encoding/json also accepts "collectionid" for CollectionId), and a member
// appears once (encoding/json keeps the last). It walks body against the
// input type t; syntax and type errors are left to the decoder, whose
// messages say more.
func checkMembers(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := walkMembers(dec, t, "", 1); err != nil && !errors.Is(err, errMalformed) {
		return err
	}
	return nil
}

// errMalformed ends a walk at the first syntax error. The walk must stop
// there: a decoder that failed on a token fails on it again without
// consuming input while More still reports values ahead.
var errMalformed = errors.New("malformed JSON")

// walkMembers consumes one JSON value at nesting depth depth. t is the Go
// type it decodes into, or nil where the type does not say (map values,
// mismatched kinds). Its recursion ends at MaxJSONDepth.
func walkMembers(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return errMalformed
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth > MaxJSONDepth {
		return memberError("the body nests arrays and objects more than %d deep (at byte %d)", MaxJSONDepth, dec.InputOffset())
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walkMembers(dec, elem, path, depth+1); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var mapElem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		case t != nil && t.Kind() == reflect.Map:
			mapElem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return errMalformed
			}
			key, _ := tok.(string)
			if fields == nil {
				if err := walkMembers(dec, mapElem, path, depth+1); err != nil {
					return err
				}
				continue
			}
			if seen[key] {
				return memberError("member %s%s appears more than once", path, key)
			}
			seen[key] = true
			ft, known := fields[key]
			if !known {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return memberError("unknown member %s%s: member names are case-sensitive; did you mean %s%s?", path, key, path, name)
					}
				}
			}
			if err := walkMembers(dec, ft, path+key+".", depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return errMalformed
	}
	return nil
}

// jsonFields maps a struct's wire member names to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func memberError(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeSerialization, Message: fmt.Sprintf(format, args...)}
}
