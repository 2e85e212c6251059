package server

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestCheckMembersDepth: MaxJSONDepth levels pass the member check (the
// decoder judges them), one more is refused, in a typed member and in a
// map value alike; a syntax error ends the walk.
func TestCheckMembersDepth(t *testing.T) {
	nest := func(prefix string, depth int, suffix string) []byte {
		return []byte(prefix + strings.Repeat("[", depth) + strings.Repeat("]", depth) + suffix)
	}
	tests := []struct {
		name    string
		body    []byte
		input   any
		refused bool
	}{
		{"top-level arrays at the limit", nest("", MaxJSONDepth, ""), &engine.ListCollectionsInput{}, false},
		{"top-level arrays past the limit", nest("", MaxJSONDepth+1, ""), &engine.ListCollectionsInput{}, true},
		// The object is depth 1, so its members' arrays may nest one less.
		{"FaceIds at the limit", nest(`{"FaceIds":`, MaxJSONDepth-1, `}`), &engine.DeleteFacesInput{}, false},
		{"FaceIds past the limit", nest(`{"FaceIds":`, MaxJSONDepth, `}`), &engine.DeleteFacesInput{}, true},
		{"Tags value at the limit", nest(`{"Tags":{"k":`, MaxJSONDepth-2, `}}`), &engine.CreateCollectionInput{}, false},
		{"Tags value past the limit", nest(`{"Tags":{"k":`, MaxJSONDepth-1, `}}`), &engine.CreateCollectionInput{}, true},
		// Syntax errors are the decoder's to report; the walk must end.
		{"missing colon in a list", []byte(`{"FaceIds":[{"a" 1}]}`), &engine.DeleteFacesInput{}, false},
		{"missing colon in a map", []byte(`{"Tags":{"k" "v"}}`), &engine.CreateCollectionInput{}, false},
		{"missing comma", []byte(`{"FaceIds":["a" "b"]}`), &engine.DeleteFacesInput{}, false},
		{"truncated", []byte(`{"FaceIds":["a",`), &engine.DeleteFacesInput{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMembersBounded(t, tt.body, tt.input)
			if !tt.refused {
				require.NoError(t, err)
				return
			}
			var ae *apiError
			require.True(t, errors.As(err, &ae), "got %v", err)
			require.Equal(t, CodeSerialization, ae.Code)
		})
	}
}

// checkMembersBounded runs checkMembers, failing the test if it does not
// return within a few seconds.
func checkMembersBounded(t *testing.T, body []byte, input any) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- checkMembers(body, reflect.TypeOf(input)) }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("checkMembers(%q) did not return", body)
		return nil
	}
}
