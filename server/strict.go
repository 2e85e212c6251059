package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
)

// checkMembers enforces two rules of AWS JSON that encoding/json relaxes:
// member names match exactly (encoding/json also accepts "collectionid" for
// CollectionId), and a member appears once (encoding/json keeps the last).
// It walks body against the input type t; syntax and type errors are left
// to the decoder, whose messages say more.
func checkMembers(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return walkMembers(dec, t, "")
}

// walkMembers consumes one JSON value. t is the Go type it decodes into, or
// nil where the type does not say (map values, mismatched kinds).
func walkMembers(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return nil
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walkMembers(dec, elem, path); err != nil {
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
				return nil
			}
			key, _ := tok.(string)
			if fields == nil {
				if err := walkMembers(dec, mapElem, path); err != nil {
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
			if err := walkMembers(dec, ft, path+key+"."); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	_ = err
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
