package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/server"
)

// TestMemberNamesAreExact: AWS JSON member names are case-sensitive and
// appear once; anything else is a SerializationException that changes
// nothing.
func TestMemberNamesAreExact(t *testing.T) {
	_, ts := newServer(t, nil)
	require.Equal(t, http.StatusOK, rawCall(t, ts.URL, "CreateCollection", []byte(`{"CollectionId":"c","Tags":{"anyCase":"x","facesearch:dimension":"2"}}`)).Status,
		"map keys (Tags) are data, not members")
	tests := []struct {
		name, target, body, want string
	}{
		{"lower-case member", "CreateUser", `{"CollectionId":"c","userId":"u"}`, "did you mean UserId"},
		{"all lower-case", "CreateCollection", `{"collectionid":"d"}`, "case-sensitive"},
		{"nested member", "IndexFaces", `{"CollectionId":"c","Image":{"bytes":"AAAA"}}`, "Image.bytes"},
		{"duplicate member", "CreateUser", `{"CollectionId":"c","UserId":"u","UserId":"v"}`, "more than once"},
		{"duplicate in nested", "SearchUsersByImage", `{"CollectionId":"c","Image":{"Bytes":"AAAA","Bytes":"AAAA"}}`, "Image.Bytes appears more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawCall(t, ts.URL, tt.target, []byte(tt.body))
			require.Equal(t, http.StatusBadRequest, r.Status)
			require.Equal(t, server.CodeSerialization, r.Code)
			require.Contains(t, r.Message, tt.want)
		})
	}
	r := rawCall(t, ts.URL, "ListUsers", []byte(`{"CollectionId":"c"}`))
	require.Equal(t, http.StatusOK, r.Status)
	require.JSONEq(t, `{"Users":[]}`, string(r.Body), "no user was created")
	r = rawCall(t, ts.URL, "DescribeCollection", []byte(`{"CollectionId":"d"}`))
	require.Equal(t, "ResourceNotFoundException", r.Code)
}

// TestNestingDepth: a body nested deeper than MaxJSONDepth, in any member,
// is a SerializationException, however deep it goes; the server stays up
// and changes nothing.
func TestNestingDepth(t *testing.T) {
	_, ts := newServer(t, nil)
	require.Equal(t, http.StatusOK, rawCall(t, ts.URL, "CreateCollection", []byte(`{"CollectionId":"c"}`)).Status)
	const million = 1 << 20
	over := server.MaxJSONDepth + 1
	tests := []struct {
		name, target, body string
	}{
		{"a million [ as the body", "ListCollections", strings.Repeat("[", million)},
		{"a million [ closed", "ListCollections", strings.Repeat("[", million) + strings.Repeat("]", million)},
		{"objects in an unknown member", "CreateCollection", strings.Repeat(`{"x":`, million/5)},
		{"in Tags", "CreateCollection", `{"CollectionId":"d","Tags":{"k":` + strings.Repeat("[", million) + `}}`},
		{"in Image", "IndexFaces", `{"CollectionId":"c","Image":{"Bytes":` + strings.Repeat("[", million)},
		{"in FaceIds, one past the limit", "DeleteFaces", `{"CollectionId":"c","FaceIds":` + strings.Repeat("[", over-1) + strings.Repeat("]", over-1) + `}`},
		{"in S3Object, one past the limit", "SearchUsersByImage", `{"CollectionId":"c","Image":{"S3Object":{"Bucket":` + strings.Repeat(`{"a":`, over-3) + `1` + strings.Repeat("}", over-3) + `}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawCall(t, ts.URL, tt.target, []byte(tt.body))
			require.Equal(t, http.StatusBadRequest, r.Status, "%.300s", r.Body)
			require.Equal(t, server.CodeSerialization, r.Code, "%s", r.Message)
		})
	}
	r := rawCall(t, ts.URL, "ListCollections", []byte(`{}`))
	require.Equal(t, http.StatusOK, r.Status)
	require.JSONEq(t, `{"CollectionIds":["c"],"FaceModelVersions":["1.0"]}`, string(r.Body))
}
