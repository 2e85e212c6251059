package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// The hostile-input test: a table of bad requests generated across all 16
// operations, each sent over HTTP to a server with the production
// timeouts and header limit. Every one must be answered with its documented
// error (the right __type, X-Amzn-ErrorType and status, and a code the
// operation's service model lists or the protocol's own), and leave the
// store as it was: all collections, faces and users, compared through the
// API before and after each request, and `facesearch check` clean at the end.

// hostileDocumented are the errors each operation's service model lists
// (reference/rekognition-faces-users.json), less those facesearch never
// raises (AccessDenied, ProvisionedThroughputExceeded, InvalidS3Object).
var hostileDocumented = map[string][]string{
	"AssociateFaces":     {"InvalidParameterException", "InternalServerError", "ThrottlingException", "IdempotentParameterMismatchException", "ResourceNotFoundException", "ConflictException", "ServiceQuotaExceededException"},
	"CreateCollection":   {"InvalidParameterException", "InternalServerError", "ThrottlingException", "ResourceAlreadyExistsException", "ServiceQuotaExceededException"},
	"CreateUser":         {"InvalidParameterException", "ConflictException", "ResourceNotFoundException", "ServiceQuotaExceededException", "IdempotentParameterMismatchException", "InternalServerError", "ThrottlingException"},
	"DeleteCollection":   {"InvalidParameterException", "InternalServerError", "ThrottlingException", "ResourceNotFoundException"},
	"DeleteFaces":        {"InvalidParameterException", "InternalServerError", "ThrottlingException", "ResourceNotFoundException"},
	"DeleteUser":         {"InvalidParameterException", "ConflictException", "ResourceNotFoundException", "IdempotentParameterMismatchException", "InternalServerError", "ThrottlingException"},
	"DescribeCollection": {"InvalidParameterException", "InternalServerError", "ThrottlingException", "ResourceNotFoundException"},
	"DisassociateFaces":  {"InvalidParameterException", "InternalServerError", "ThrottlingException", "IdempotentParameterMismatchException", "ResourceNotFoundException", "ConflictException"},
	"IndexFaces":         {"InvalidParameterException", "ImageTooLargeException", "InternalServerError", "ThrottlingException", "ResourceNotFoundException", "InvalidImageFormatException", "ServiceQuotaExceededException"},
	"ListCollections":    {"InvalidParameterException", "InternalServerError", "ThrottlingException", "InvalidPaginationTokenException", "ResourceNotFoundException"},
	"ListFaces":          {"InvalidParameterException", "InternalServerError", "ThrottlingException", "InvalidPaginationTokenException", "ResourceNotFoundException"},
	"ListUsers":          {"InvalidParameterException", "ResourceNotFoundException", "InvalidPaginationTokenException", "InternalServerError", "ThrottlingException"},
	"SearchFaces":        {"InvalidParameterException", "InternalServerError", "ThrottlingException", "ResourceNotFoundException"},
	"SearchFacesByImage": {"InvalidParameterException", "ImageTooLargeException", "InternalServerError", "ThrottlingException", "ResourceNotFoundException", "InvalidImageFormatException"},
	"SearchUsers":        {"InvalidParameterException", "ResourceNotFoundException", "InternalServerError", "ThrottlingException"},
	"SearchUsersByImage": {"InvalidParameterException", "ResourceNotFoundException", "InvalidImageFormatException", "ImageTooLargeException", "InternalServerError", "ThrottlingException"},
}

// hostileProtocol are the codes of the protocol layer, any operation's:
// server.Options.MaxBodyBytes documents ImageTooLargeException for a body
// over the limit, whatever the operation.
var hostileProtocol = []string{server.CodeSerialization, server.CodeUnknownOperation, engine.CodeImageTooLarge}

// hostileInputs maps each operation to its input type, whose JSON members
// are the request's members.
var hostileInputs = map[string]any{
	"CreateCollection": engine.CreateCollectionInput{}, "DeleteCollection": engine.DeleteCollectionInput{},
	"DescribeCollection": engine.DescribeCollectionInput{}, "ListCollections": engine.ListCollectionsInput{},
	"IndexFaces": engine.IndexFacesInput{}, "ListFaces": engine.ListFacesInput{}, "DeleteFaces": engine.DeleteFacesInput{},
	"SearchFaces": engine.SearchFacesInput{}, "SearchFacesByImage": engine.SearchFacesByImageInput{},
	"CreateUser": engine.CreateUserInput{}, "DeleteUser": engine.DeleteUserInput{}, "ListUsers": engine.ListUsersInput{},
	"AssociateFaces": engine.AssociateFacesInput{}, "DisassociateFaces": engine.DisassociateFacesInput{},
	"SearchUsers": engine.SearchUsersInput{}, "SearchUsersByImage": engine.SearchUsersByImageInput{},
}

// hostileFixture is a server with a known state: collection "c"
// (dimension 8) with faces f0..f3, user "u" holding f0 and f1 (associated
// with ClientRequestToken "tok-assoc", created with "tok-create"), user "v"
// with no faces, user "gone" deleted with "tok-delete", f1 then
// disassociated and associated again with "tok-disassoc"; collection "d"
// with user "x"; the next-page token of each listing.
type hostileFixture struct {
	dir, url                              string
	e                                     *engine.Engine
	faces                                 []string
	usersToken, facesToken, collsToken    string
	dUsersToken, uFacesToken, staleTokens string
}

func newHostileFixture(t *testing.T) *hostileFixture {
	t.Helper()
	ctx := context.Background()
	fx := &hostileFixture{dir: t.TempDir()}
	e, err := engine.Open(fx.dir, nil)
	require.NoError(t, err)
	fx.e = e
	s, err := server.New(e, &server.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(s)
	ts.Config = s.HTTPServer("") // production timeouts and header limit
	ts.Start()
	fx.url = ts.URL
	t.Cleanup(func() {
		ts.Close()
		e.Close()
	})

	// A collection deleted and created again: its old tokens must not work.
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c", Dimension: 8})
	require.NoError(t, err)
	for _, u := range []string{"s1", "s2"} {
		_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: u})
		require.NoError(t, err)
	}
	lu, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	fx.staleTokens = lu.NextToken
	_, err = e.DeleteCollection(ctx, &engine.DeleteCollectionInput{CollectionId: "c"})
	require.NoError(t, err)

	for _, id := range []string{"c", "d"} {
		_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: id, Dimension: 8})
		require.NoError(t, err)
	}
	rng := rand.New(rand.NewPCG(6, 6))
	base := randVec(rng, 8)
	ix, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: embeddings(near(rng, base, 4, 0.05))})
	require.NoError(t, err)
	for _, r := range ix.FaceRecords {
		fx.faces = append(fx.faces, r.Face.FaceId)
	}
	for _, u := range []struct{ coll, id, token string }{{"c", "u", "tok-create"}, {"c", "v", ""}, {"c", "gone", ""}, {"d", "x", ""}} {
		_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: u.coll, UserId: u.id, ClientRequestToken: u.token})
		require.NoError(t, err)
	}
	_, err = e.DeleteUser(ctx, &engine.DeleteUserInput{CollectionId: "c", UserId: "gone", ClientRequestToken: "tok-delete"})
	require.NoError(t, err)
	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: fx.faces[:2], ClientRequestToken: "tok-assoc"})
	require.NoError(t, err)
	_, err = e.DisassociateFaces(ctx, &engine.DisassociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: fx.faces[1:2], ClientRequestToken: "tok-disassoc"})
	require.NoError(t, err)
	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: fx.faces[1:2]})
	require.NoError(t, err)

	lu, err = e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	fx.usersToken = lu.NextToken
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "d", UserId: "y"})
	require.NoError(t, err)
	lu, err = e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "d", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	fx.dUsersToken = lu.NextToken
	lf, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	fx.facesToken = lf.NextToken
	lf, err = e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", UserId: "u", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	fx.uFacesToken = lf.NextToken
	lc, err := e.ListCollections(ctx, &engine.ListCollectionsInput{MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	fx.collsToken = lc.NextToken
	for _, tok := range []string{fx.staleTokens, fx.usersToken, fx.dUsersToken, fx.facesToken, fx.uFacesToken, fx.collsToken} {
		require.NotEmpty(t, tok)
	}
	return fx
}

// hostileSnapshot is everything a client can see, read over HTTP with
// every page followed.
func hostileSnapshot(t *testing.T, url string) map[string]any {
	t.Helper()
	call := func(op string, in map[string]any) map[string]any {
		r := rawCall(t, url, op, mustJSON(t, in))
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", op, r.Body)
		var out map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &out))
		return out
	}
	pages := func(op, member string, in map[string]any) []any {
		var all []any
		for {
			out := call(op, in)
			items, _ := out[member].([]any)
			all = append(all, items...)
			next, _ := out["NextToken"].(string)
			if next == "" {
				return all
			}
			in["NextToken"] = next
		}
	}
	snap := map[string]any{}
	colls := pages("ListCollections", "CollectionIds", map[string]any{"MaxResults": 1})
	snap["collections"] = colls
	for _, c := range colls {
		id := c.(string)
		d := call("DescribeCollection", map[string]any{"CollectionId": id})
		delete(d, "CreationTimestamp") // float rendering; the rest must not move
		snap[id+"/describe"] = d
		snap[id+"/faces"] = pages("ListFaces", "Faces", map[string]any{"CollectionId": id, "MaxResults": 2})
		snap[id+"/users"] = pages("ListUsers", "Users", map[string]any{"CollectionId": id, "MaxResults": 2})
	}
	return snap
}

// hostileCase is one bad request and the error it must get.
type hostileCase struct {
	name string
	op   string // the operation; the X-Amz-Target unless req is set
	body string
	// req builds the request instead, for header and transport cases.
	req  func(url string) *http.Request
	code string
	// status is the HTTP status; 0 means 400.
	status int
}

// memberKind is the wire type of an input member: string, integer, float,
// list, map or structure.
func memberKind(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int32:
		return "integer"
	case reflect.Float32:
		return "float"
	case reflect.Slice:
		return "list"
	case reflect.Map:
		return "map"
	}
	return "structure"
}

// hostileBody re-encodes base with member set to the raw JSON value (or
// removed, for ""). Keys keep a fixed order so bodies are reproducible.
func hostileBody(base map[string]any, member, raw string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(base)) {
		if k == member {
			continue
		}
		v, _ := json.Marshal(base[k])
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	if raw != "" {
		parts = append(parts, fmt.Sprintf("%q:%s", member, raw))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// hostileCases generates the table.
func hostileCases(t *testing.T, fx *hostileFixture) []hostileCase {
	t.Helper()
	const (
		ser  = server.CodeSerialization
		inv  = engine.CodeInvalidParameter
		imgf = engine.CodeInvalidImageFormat
		big  = engine.CodeImageTooLarge
		page = engine.CodeInvalidPaginationToken
		idem = engine.CodeIdempotentParameterMismatch
	)
	v8 := randVec(rand.New(rand.NewPCG(8, 8)), 8)
	image := map[string]any{"Bytes": b64(npyVec(v8))}
	f := fx.faces
	// One valid request per operation, with every member the operation
	// has: sent as it is, each would succeed and most would change the store.
	bases := map[string]map[string]any{
		"CreateCollection":   {"CollectionId": "new", "Tags": map[string]any{"team": "a"}},
		"DeleteCollection":   {"CollectionId": "d"},
		"DescribeCollection": {"CollectionId": "c"},
		"ListCollections":    {"MaxResults": 1, "NextToken": fx.collsToken},
		"IndexFaces": {"CollectionId": "c", "Image": image, "ExternalImageId": "img", "MaxFaces": 1,
			"QualityFilter": "NONE", "DetectionAttributes": []any{"DEFAULT"}},
		"ListFaces":          {"CollectionId": "c", "UserId": "u", "FaceIds": []any{f[0]}, "MaxResults": 1, "NextToken": ""},
		"DeleteFaces":        {"CollectionId": "c", "FaceIds": []any{f[3]}},
		"SearchFaces":        {"CollectionId": "c", "FaceId": f[0], "MaxFaces": 3, "FaceMatchThreshold": 50},
		"SearchFacesByImage": {"CollectionId": "c", "Image": image, "MaxFaces": 3, "FaceMatchThreshold": 50, "QualityFilter": "NONE"},
		"CreateUser":         {"CollectionId": "c", "UserId": "w", "ClientRequestToken": "tok-new-1"},
		"DeleteUser":         {"CollectionId": "c", "UserId": "v", "ClientRequestToken": "tok-new-2"},
		"ListUsers":          {"CollectionId": "c", "MaxResults": 1, "NextToken": fx.usersToken},
		"AssociateFaces":     {"CollectionId": "c", "UserId": "v", "FaceIds": []any{f[2]}, "UserMatchThreshold": 0, "ClientRequestToken": "tok-new-3"},
		"DisassociateFaces":  {"CollectionId": "c", "UserId": "u", "FaceIds": []any{f[0]}, "ClientRequestToken": "tok-new-4"},
		"SearchUsers":        {"CollectionId": "c", "UserId": "u", "FaceId": "", "MaxUsers": 3, "UserMatchThreshold": 50},
		"SearchUsersByImage": {"CollectionId": "c", "Image": image, "MaxUsers": 3, "UserMatchThreshold": 50, "QualityFilter": "NONE"},
	}
	// Members whose absence the operation refuses.
	required := map[string][]string{
		"CreateCollection": {"CollectionId"}, "DeleteCollection": {"CollectionId"}, "DescribeCollection": {"CollectionId"},
		"IndexFaces": {"CollectionId", "Image"}, "ListFaces": {"CollectionId"}, "DeleteFaces": {"CollectionId", "FaceIds"},
		"SearchFaces": {"CollectionId", "FaceId"}, "SearchFacesByImage": {"CollectionId", "Image"},
		"CreateUser": {"CollectionId", "UserId"}, "DeleteUser": {"CollectionId", "UserId"}, "ListUsers": {"CollectionId"},
		"AssociateFaces": {"CollectionId", "UserId", "FaceIds"}, "DisassociateFaces": {"CollectionId", "UserId", "FaceIds"},
		"SearchUsers": {"CollectionId", "UserId"}, "SearchUsersByImage": {"CollectionId", "Image"},
	}
	// What invalid UTF-8 in a string member is refused as.
	badString := map[string]string{"NextToken": page}

	var cases []hostileCase
	add := func(c hostileCase) { cases = append(cases, c) }
	for _, op := range slices.Sorted(maps.Keys(bases)) {
		base := bases[op]
		// The table covers every member of the operation.
		kinds := map[string]string{}
		rt := reflect.TypeOf(hostileInputs[op])
		for i := range rt.NumField() {
			if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); name != "-" && name != "" {
				kinds[name] = memberKind(rt.Field(i).Type)
			}
		}
		require.ElementsMatch(t, slices.Collect(maps.Keys(kinds)), slices.Collect(maps.Keys(base)), "%s: the base request has every member", op)

		for _, m := range required[op] {
			add(hostileCase{name: op + " without " + m, op: op, body: hostileBody(base, m, ""), code: inv})
			add(hostileCase{name: op + " with null " + m, op: op, body: hostileBody(base, m, "null"), code: inv})
		}
		add(hostileCase{name: op + " with an extra member", op: op, body: hostileBody(base, "Extra", `"x"`), code: ser})
		for _, m := range slices.Sorted(maps.Keys(base)) {
			for _, wrong := range map[string][]string{
				"string": {`12345`, `true`}, "integer": {`"12"`, `[1]`}, "float": {`"50"`, `{}`},
				"list": {`{"a":1}`, `"x"`}, "map": {`["x"]`, `7`}, "structure": {`"x"`, `[]`},
			}[kinds[m]] {
				add(hostileCase{name: fmt.Sprintf("%s %s %s", op, m, wrong), op: op, body: hostileBody(base, m, wrong), code: ser})
			}
			switch kinds[m] {
			case "integer":
				add(hostileCase{name: fmt.Sprintf("%s %s -1", op, m), op: op, body: hostileBody(base, m, "-1"), code: inv})
				add(hostileCase{name: fmt.Sprintf("%s %s past int32", op, m), op: op, body: hostileBody(base, m, "2147483648"), code: ser})
				add(hostileCase{name: fmt.Sprintf("%s %s 1e400", op, m), op: op, body: hostileBody(base, m, "1e400"), code: ser})
				add(hostileCase{name: fmt.Sprintf("%s %s 1.5", op, m), op: op, body: hostileBody(base, m, "1.5"), code: ser})
			case "float":
				add(hostileCase{name: fmt.Sprintf("%s %s -0.5", op, m), op: op, body: hostileBody(base, m, "-0.5"), code: inv})
				add(hostileCase{name: fmt.Sprintf("%s %s 1e39", op, m), op: op, body: hostileBody(base, m, "1e39"), code: ser})
				add(hostileCase{name: fmt.Sprintf("%s %s 100.5", op, m), op: op, body: hostileBody(base, m, "100.5"), code: inv})
			case "string":
				code := inv
				if c, ok := badString[m]; ok {
					code = c
				}
				add(hostileCase{name: fmt.Sprintf("%s %s invalid UTF-8", op, m), op: op, body: hostileBody(base, m, "\"c\xff\xfe\""), code: code})
				add(hostileCase{name: fmt.Sprintf("%s %s 100 KB", op, m), op: op, body: hostileBody(base, m, `"`+strings.Repeat("a", 100<<10)+`"`), code: inv})
			}
		}
		add(hostileCase{name: op + " nested 100000 deep", op: op, body: hostileBody(base, "CollectionId", strings.Repeat("[", 100000)+strings.Repeat("]", 100000)), code: ser})
		add(hostileCase{name: op + " invalid UTF-8 outside strings", op: op, body: "{\xff}", code: ser})
		add(hostileCase{name: op + " with a byte-order mark", op: op, body: "\xef\xbb\xbf" + hostileBody(base, "", ""), code: ser})
		add(hostileCase{name: op + " truncated", op: op, body: hostileBody(base, "", "")[:10], code: ser})
		add(hostileCase{name: op + " a JSON array", op: op, body: "[" + hostileBody(base, "", "") + "]", code: ser})
		add(hostileCase{name: op + " 10 MB body", op: op, body: hostileBody(base, "Extra", `"`+strings.Repeat("a", 10<<20)+`"`), code: big})
		add(hostileCase{name: op + " 10 MB chunked body", op: op, code: big, req: func(url string) *http.Request {
			body := io.MultiReader(strings.NewReader(`{"Extra":"`), io.LimitReader(repeatReader('a'), 10<<20), strings.NewReader(`"}`))
			r, _ := http.NewRequest(http.MethodPost, url+"/", body) // no length: chunked
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			r.Header.Set("X-Amz-Target", "RekognitionService."+op)
			return r
		}})
	}

	// .npy images: headers, shapes and values, for each image operation.
	npyBad := []struct {
		name string
		b    []byte
		code string
	}{
		{"empty header dict", npyRaw("{}", f32le(v8)), imgf},
		{"not a dict", npyRaw("'<f4'", f32le(v8)), imgf},
		{"version 9", append([]byte("\x93NUMPY\x09\x00"), npyVec(v8)[8:]...), imgf},
		{"header length 0", []byte("\x93NUMPY\x01\x00\x00\x00"), imgf},
		{"magic only", []byte("\x93NUMPY"), imgf},
		{"negative shape", npyRaw(npyHeader("<f4", "False", "(-1, 8)"), f32le(v8)), imgf},
		{"zero rows", npyRaw(npyHeader("<f4", "False", "(0, 8)"), nil), imgf},
		{"zero dimensions", npyRaw(npyHeader("<f4", "False", "(1, 0)"), nil), imgf},
		{"shape not a tuple", npyRaw(npyHeader("<f4", "False", "8"), f32le(v8)), imgf},
		{"shape of strings", npyRaw(npyHeader("<f4", "False", "('8',)"), f32le(v8)), imgf},
		{"shape larger than the data", npyRaw(npyHeader("<f4", "False", "(9,)"), f32le(v8)), imgf},
		{"shape overflowing int64", npyRaw(npyHeader("<f4", "False", "(99999999999999999999, 8)"), f32le(v8)), imgf},
		{"shape whose product overflows", npyRaw(npyHeader("<f4", "False", "(4611686018427387904, 4)"), f32le(v8)), imgf},
		{"descr object", npyRaw(npyHeader("|O", "False", "(8,)"), f32le(v8)), imgf},
		{"descr complex", npyRaw(npyHeader("<c8", "False", "(4,)"), f32le(v8)), imgf},
		{"fortran_order not a bool", npyRaw(npyHeader("<f4", "'no'", "(8,)"), f32le(v8)), imgf},
		{"header of 64 KiB", npyRaw(npyHeader("<f4", "False", "(8,)")+strings.Repeat(" ", 64<<10), f32le(v8)), imgf},
		{"header with a NUL", npyRaw("{'descr': '<f4\x00', 'fortran_order': False, 'shape': (8,), }", f32le(v8)), imgf},
		{"101 rows", npyRows(t, slices.Repeat([][]float32{v8}, 101)), ""}, // IndexFaces keeps 100: not an error
		{"7 dimensions", npyVec(v8[:7]), inv},
	}
	for _, op := range []string{"IndexFaces", "SearchFacesByImage", "SearchUsersByImage"} {
		for _, nb := range npyBad {
			if nb.code == "" {
				continue
			}
			add(hostileCase{name: op + " .npy " + nb.name, op: op, code: nb.code,
				body: hostileBody(bases[op], "Image", fmt.Sprintf(`{"Bytes":%q}`, b64(nb.b)))})
		}
		add(hostileCase{name: op + " image of 6 MB", op: op, code: big,
			body: hostileBody(bases[op], "Image", fmt.Sprintf(`{"Bytes":%q}`, b64(make([]byte, 6<<20))))})
		add(hostileCase{name: op + " Bytes and S3Object", op: op, code: inv,
			body: hostileBody(bases[op], "Image", fmt.Sprintf(`{"Bytes":%q,"S3Object":{"Bucket":"b","Name":"n"}}`, b64(npyVec(v8))))})
	}

	// Page tokens: tampered, truncated, extended, of another listing or
	// collection, of a deleted collection.
	tamper := func(tok string, i int) string {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		require.NoError(t, err)
		b[(i+len(b))%len(b)] ^= 0x20
		return base64.RawURLEncoding.EncodeToString(b)
	}
	listings := []struct {
		op    string
		base  map[string]any
		token string
		other []string // tokens of other listings
	}{
		{"ListUsers", bases["ListUsers"], fx.usersToken, []string{fx.dUsersToken, fx.facesToken, fx.collsToken, fx.staleTokens}},
		{"ListFaces", map[string]any{"CollectionId": "c"}, fx.facesToken, []string{fx.uFacesToken, fx.usersToken, fx.collsToken}},
		{"ListCollections", map[string]any{}, fx.collsToken, []string{fx.usersToken, fx.facesToken}},
	}
	for _, l := range listings {
		for _, i := range []int{0, 1, 2, 9, 17, 18, -16, -1} {
			add(hostileCase{name: fmt.Sprintf("%s token with byte %d flipped", l.op, i), op: l.op, code: page,
				body: hostileBody(l.base, "NextToken", fmt.Sprintf("%q", tamper(l.token, i)))})
		}
		for j, o := range l.other {
			add(hostileCase{name: fmt.Sprintf("%s with another listing's token %d", l.op, j), op: l.op, code: page,
				body: hostileBody(l.base, "NextToken", fmt.Sprintf("%q", o))})
		}
		for name, tok := range map[string]string{
			"truncated": l.token[:len(l.token)-3], "extended": l.token + "AAAA", "padded": l.token + "==",
			"standard base64": strings.NewReplacer("-", "+", "_", "/").Replace(l.token) + "+/",
			"empty base64":    "====", "whitespace": " " + l.token, "JSON": `{"pk":1}`,
		} {
			add(hostileCase{name: fmt.Sprintf("%s token %s", l.op, name), op: l.op, code: page,
				body: hostileBody(l.base, "NextToken", fmt.Sprintf("%q", tok))})
		}
		add(hostileCase{name: l.op + " token of 256 bytes", op: l.op, code: inv,
			body: hostileBody(l.base, "NextToken", fmt.Sprintf("%q", strings.Repeat("A", 256)))})
	}
	add(hostileCase{name: "ListFaces token with another UserId filter", op: "ListFaces", code: page,
		body: hostileBody(map[string]any{"CollectionId": "c", "UserId": "v"}, "NextToken", fmt.Sprintf("%q", fx.uFacesToken))})

	// Idempotency tokens replayed with other parameters.
	for _, r := range []struct{ name, op, body string }{
		{"CreateUser, other user", "CreateUser", `{"CollectionId":"c","UserId":"w","ClientRequestToken":"tok-create"}`},
		{"DeleteUser, other user", "DeleteUser", `{"CollectionId":"c","UserId":"v","ClientRequestToken":"tok-delete"}`},
		{"AssociateFaces, other faces", "AssociateFaces", fmt.Sprintf(`{"CollectionId":"c","UserId":"u","FaceIds":[%q],"ClientRequestToken":"tok-assoc"}`, f[2])},
		{"AssociateFaces, other threshold", "AssociateFaces", fmt.Sprintf(`{"CollectionId":"c","UserId":"u","FaceIds":[%q,%q],"UserMatchThreshold":1,"ClientRequestToken":"tok-assoc"}`, f[0], f[1])},
		{"AssociateFaces, faces reordered", "AssociateFaces", fmt.Sprintf(`{"CollectionId":"c","UserId":"u","FaceIds":[%q,%q],"ClientRequestToken":"tok-assoc"}`, f[1], f[0])},
		{"DisassociateFaces, other user", "DisassociateFaces", fmt.Sprintf(`{"CollectionId":"c","UserId":"v","FaceIds":[%q],"ClientRequestToken":"tok-disassoc"}`, f[1])},
		{"DisassociateFaces, other faces", "DisassociateFaces", fmt.Sprintf(`{"CollectionId":"c","UserId":"u","FaceIds":[%q],"ClientRequestToken":"tok-disassoc"}`, f[0])},
	} {
		add(hostileCase{name: "replayed token: " + r.name, op: r.op, body: r.body, code: idem})
	}

	// Headers and transport.
	post := func(target string, mutate func(*http.Request)) func(string) *http.Request {
		return func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(`{"CollectionId":"c"}`))
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			r.Header.Set("X-Amz-Target", target)
			mutate(r)
			return r
		}
	}
	add(hostileCase{name: "header of 100 KB", op: "DescribeCollection", status: http.StatusRequestHeaderFieldsTooLarge,
		req: post("RekognitionService.DeleteCollection", func(r *http.Request) { r.Header.Set("X-Junk", strings.Repeat("j", 100<<10)) })})
	add(hostileCase{name: "target of other case", op: "DeleteCollection", code: server.CodeUnknownOperation,
		req: post("rekognitionservice.deletecollection", func(*http.Request) {})})
	add(hostileCase{name: "content type JSON 1.0", op: "DeleteCollection", code: ser,
		req: post("RekognitionService.DeleteCollection", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.0") })})
	add(hostileCase{name: "PUT", op: "DeleteCollection", code: server.CodeUnknownOperation, status: http.StatusMethodNotAllowed,
		req: post("RekognitionService.DeleteCollection", func(r *http.Request) { r.Method = http.MethodPut })})
	return cases
}

// repeatReader reads b forever.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestHostileInput(t *testing.T) {
	fx := newHostileFixture(t)
	cases := hostileCases(t, fx)
	ops := map[string]int{}
	before := hostileSnapshot(t, fx.url)
	for _, tc := range cases {
		ops[tc.op]++
		t.Run(tc.name, func(t *testing.T) {
			var r rawResponse
			if tc.req != nil {
				r = hostileDo(t, tc.req(fx.url))
			} else {
				r = rawCall(t, fx.url, tc.op, []byte(tc.body))
			}
			want := tc.status
			if want == 0 {
				want = http.StatusBadRequest
			}
			if !assert.Equal(t, want, r.Status, "body: %.300s", r.Body) || want == http.StatusRequestHeaderFieldsTooLarge {
				return // net/http's own answer: no JSON
			}
			assert.Equal(t, tc.code, r.Code, "message: %s", r.Message)
			assert.Equal(t, r.Code, r.Header.Get("X-Amzn-ErrorType"))
			assert.NotEmpty(t, r.Message)
			assert.NotEmpty(t, r.RequestID)
			assert.Contains(t, append(slices.Clone(hostileDocumented[tc.op]), hostileProtocol...), r.Code,
				"%s is not an error %s documents", r.Code, tc.op)
			assert.LessOrEqual(t, len(r.Body), 4<<10, "an error echoes at most a little of the request")
			require.Equal(t, before, hostileSnapshot(t, fx.url), "the store changed")
		})
	}
	require.Len(t, ops, 16, "every operation is attacked")
	t.Logf("hostile input: %d bad requests across %d operations, each refused with its documented error; store unchanged", len(cases), len(ops))

	// Whatever reached the store is still sound.
	require.NoError(t, fx.e.Close())
	rep, err := engine.Check(context.Background(), fx.dir)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
}

// hostileDo sends a hand-made request, tolerating a server that closes
// the connection after answering.
func hostileDo(t *testing.T, req *http.Request) rawResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b, RequestID: resp.Header.Get("x-amzn-RequestId")}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) == nil {
		r.Code, r.Message = e.Type, e.Message
	}
	return r
}
