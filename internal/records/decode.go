package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Decode decodes one line of JSON Lines: through decodeFast when the
// line is in the plain form export writes, else through encoding/json,
// which also words the errors.
func Decode(b []byte, j *JSON) error {
	if decodeFast(b, j) {
		return nil
	}
	*j = JSON{}
	return decodeStrict(b, j)
}

// decodeStrict decodes one JSON object strictly: unknown fields and trailing
// data are errors, so a misspelt field name does not pass silently.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Explain(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object: want one object per line")
	}
	return nil
}

// Explain rewords encoding/json's errors for a person fixing a file.
func Explain(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON at column %d: %v", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Errorf("want a JSON object, got %s", typ.Value)
		}
		return fmt.Errorf("field %q: %s is not a %s", typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON: the object is cut short")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return fmt.Errorf("%s (the fields are %s)", strings.TrimPrefix(err.Error(), "json: "), fields)
	}
	return err
}
