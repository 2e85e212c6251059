package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// operation decodes a request body, calls the backend and encodes the
// answer.
type operation func(ctx context.Context, b Backend, body []byte) ([]byte, error)

// op adapts one Backend method (as a method expression) to an operation:
// the whole protocol layer of an operation is this decode -> call -> encode.
func op[I, O any](fn func(Backend, context.Context, *I) (*O, error)) operation {
	return func(ctx context.Context, b Backend, body []byte) ([]byte, error) {
		in := new(I)
		if err := decodeJSON(body, in); err != nil {
			return nil, err
		}
		out, err := fn(b, ctx, in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
}

// targetPrefix starts every X-Amz-Target of the Rekognition API.
const targetPrefix = "RekognitionService."

// operations are the 16 operations facesearch serves, by name.
var operations = map[string]operation{
	"CreateCollection":   op(Backend.CreateCollection),
	"DeleteCollection":   op(Backend.DeleteCollection),
	"DescribeCollection": op(Backend.DescribeCollection),
	"ListCollections":    op(Backend.ListCollections),
	"IndexFaces":         op(Backend.IndexFaces),
	"ListFaces":          op(Backend.ListFaces),
	"DeleteFaces":        op(Backend.DeleteFaces),
	"SearchFaces":        op(Backend.SearchFaces),
	"SearchFacesByImage": op(Backend.SearchFacesByImage),
	"CreateUser":         op(Backend.CreateUser),
	"DeleteUser":         op(Backend.DeleteUser),
	"ListUsers":          op(Backend.ListUsers),
	"AssociateFaces":     op(Backend.AssociateFaces),
	"DisassociateFaces":  op(Backend.DisassociateFaces),
	"SearchUsers":        op(Backend.SearchUsers),
	"SearchUsersByImage": op(Backend.SearchUsersByImage),
}

// lookupOperation finds the operation of an X-Amz-Target header; op is nil
// for an unknown one.
func lookupOperation(target string) (name string, o operation) {
	name, ok := strings.CutPrefix(target, targetPrefix)
	if !ok {
		return "", nil
	}
	o = operations[name]
	if o == nil {
		return "", nil
	}
	return name, o
}

// operationNames lists the operations in order, for error messages.
func operationNames() []string {
	names := make([]string, 0, len(operations))
	for n := range operations {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// decodeJSON decodes a request body into v, strictly: one JSON object, no
// unknown members, no trailing data. An empty body is an empty object, as
// Smithy's JSON protocols treat it. Errors are SerializationException with a
// message naming the member when one is to blame.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := checkMembers(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return serializationError(err, v)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{Status: http.StatusBadRequest, Code: CodeSerialization,
			Message: fmt.Sprintf("unexpected data after the JSON object at byte %d", dec.InputOffset())}
	}
	return nil
}

func serializationError(err error, v any) *apiError {
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
		b64Err    base64.CorruptInputError
		msg       string
	)
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		if n, ok := strings.CutPrefix(typeErr.Value, "number "); ok {
			msg = fmt.Sprintf("Value %s at '%s' must be %s", n, typeErr.Field, describeType(typeErr.Type))
		} else {
			msg = fmt.Sprintf("Value at '%s' must be %s, not %s", typeErr.Field, describeType(typeErr.Type), jsonKind(typeErr.Value))
		}
	case errors.As(err, &typeErr):
		msg = fmt.Sprintf("the body of a %s request must be a JSON object, not %s", requestName(v), jsonKind(typeErr.Value))
	case errors.As(err, &syntaxErr):
		msg = fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &b64Err):
		// Image.Bytes is the only blob member of any input.
		msg = fmt.Sprintf("Value at 'Image.Bytes' must be base64: %v", b64Err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "malformed JSON: the body ends in the middle of a value"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error; its text is stable.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		msg = fmt.Sprintf("unknown member %s in a %s request", name, requestName(v))
	default:
		msg = "malformed JSON: " + err.Error()
	}
	return &apiError{Status: http.StatusBadRequest, Code: CodeSerialization, Message: msg}
}

// requestName is the operation a decoded input belongs to.
func requestName(v any) string {
	return strings.TrimSuffix(reflect.TypeOf(v).Elem().Name(), "Input")
}

// describeType says in wire terms what a Go field type accepts.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Int32:
		return "an integer from -2147483648 to 2147483647"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	case reflect.Map:
		return "a map of strings"
	case reflect.Struct:
		return "a structure (JSON object)"
	}
	return t.String()
}

// jsonKind names what the client sent, from UnmarshalTypeError.Value
// ("string", "number 1.5", "object", ...).
func jsonKind(v string) string {
	switch {
	case v == "object", v == "array":
		return "an " + v
	case v == "":
		return "this value"
	}
	return "a " + v
}
