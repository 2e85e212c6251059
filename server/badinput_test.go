package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// snapshot is everything a client can observe of an engine's state.
type snapshot struct {
	Collections []string
	Described   map[string][2]int64 // faces, users
	Faces       map[string][]string // "faceId user externalImageId" per collection
	Users       map[string][]string // "userId status" per collection
}

func takeSnapshot(t testing.TB, e *engine.Engine) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{Described: map[string][2]int64{}, Faces: map[string][]string{}, Users: map[string][]string{}}
	lc, err := e.ListCollections(ctx, &engine.ListCollectionsInput{})
	require.NoError(t, err)
	s.Collections = lc.CollectionIds
	for _, id := range lc.CollectionIds {
		d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: id})
		require.NoError(t, err)
		s.Described[id] = [2]int64{d.FaceCount, d.UserCount}
		lf, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: id, MaxResults: ptr[int32](4096)})
		require.NoError(t, err)
		for _, f := range lf.Faces {
			s.Faces[id] = append(s.Faces[id], f.FaceId+" "+f.UserId+" "+f.ExternalImageId)
		}
		for u, err := range e.AllUsers(ctx, id) {
			require.NoError(t, err)
			s.Users[id] = append(s.Users[id], u.UserId+" "+u.UserStatus)
		}
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// badInputFixture is a server with a small known state: collection "c"
// (dimension 8) with four faces, user "u" holding two of them, user "empty";
// collection "d" with two users.
type badInputFixture struct {
	e         *engine.Engine
	url       string
	faces     []string
	userToken string // a real ListUsers NextToken of "c"
	dToken    string // one of "d"
	faceToken string // a real ListFaces NextToken of "c"
}

func newBadInputFixture(t testing.TB) *badInputFixture {
	e, ts := newServer(t, nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(42, 42))
	f := &badInputFixture{e: e, url: ts.URL}
	_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c", Dimension: 8})
	require.NoError(t, err)
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "d"})
	require.NoError(t, err)
	ix, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: embeddings(near(rng, randVec(rng, 8), 4, 0.05))})
	require.NoError(t, err)
	for _, r := range ix.FaceRecords {
		f.faces = append(f.faces, r.Face.FaceId)
	}
	for _, u := range []struct{ coll, id, token string }{{"c", "u", "tok-u"}, {"c", "empty", ""}, {"d", "x", ""}, {"d", "y", ""}} {
		_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: u.coll, UserId: u.id, ClientRequestToken: u.token})
		require.NoError(t, err)
	}
	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: f.faces[:2]})
	require.NoError(t, err)
	lu, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	f.userToken = lu.NextToken
	lu, err = e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "d", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	f.dToken = lu.NextToken
	lf, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	f.faceToken = lf.NextToken
	require.NotEmpty(t, f.userToken)
	require.NotEmpty(t, f.dToken)
	require.NotEmpty(t, f.faceToken)
	return f
}

type badInput struct {
	name   string
	target string
	body   string
	req    func(url string) *http.Request // instead of target and body
	code   string
	status int    // 0 means 400
	inMsg  string // a part of the message, when it must name something
}

func img(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// npyHeader is a valid float32 header of the given shape, for variations.
func npyHeader(descr, fortran, shape string) string {
	return fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, fortran, shape)
}

func badInputs(f *badInputFixture) []badInput {
	rng := rand.New(rand.NewPCG(9, 9))
	v8 := randVec(rng, 8)
	nan := append([]float32(nil), v8...)
	nan[3] = float32(math.NaN())
	inf := append([]float32(nil), v8...)
	inf[0] = float32(math.Inf(1))
	twoRowsOneNaN := append(append([]float32(nil), v8...), nan...)
	f64 := func(vs []float32) []byte { return f64le(vs) }
	negInf64 := f64(v8)
	copy(negInf64[8*5:], f64([]float32{float32(math.Inf(-1))}))
	ids := func(n int) string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%q", uuid.NewString())
		}
		return "[" + strings.Join(out, ",") + "]"
	}
	indexBody := func(b []byte) string { return fmt.Sprintf(`{"CollectionId":"c","Image":{"Bytes":%q}}`, img(b)) }
	const (
		ser  = server.CodeSerialization
		inv  = engine.CodeInvalidParameter
		imgf = engine.CodeInvalidImageFormat
	)
	tamper := func(tok string) string {
		b := []byte(tok)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	post := func(contentType, target, body string) func(string) *http.Request {
		return func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
			if target != "" {
				r.Header.Set("X-Amz-Target", target)
			}
			return r
		}
	}
	return []badInput{
		// Malformed JSON, wrong member types, unknown members.
		{name: "truncated JSON", target: "ListCollections", body: `{"MaxResults":`, code: ser},
		{name: "syntax error", target: "ListCollections", body: `{"MaxResults" 1}`, code: ser, inMsg: "byte"},
		{name: "number for string", target: "CreateCollection", body: `{"CollectionId": 5}`, code: ser, inMsg: "'CollectionId'"},
		{name: "bool for string", target: "CreateUser", body: `{"CollectionId":"c","UserId":true}`, code: ser, inMsg: "'UserId'"},
		{name: "string for integer", target: "ListUsers", body: `{"CollectionId":"c","MaxResults":"10"}`, code: ser, inMsg: "'MaxResults'"},
		{name: "string for list", target: "DeleteFaces", body: `{"CollectionId":"c","FaceIds":"abc"}`, code: ser, inMsg: "'FaceIds'"},
		{name: "number in list", target: "DeleteFaces", body: `{"CollectionId":"c","FaceIds":[1]}`, code: ser, inMsg: "'FaceIds'"},
		{name: "number for blob", target: "IndexFaces", body: `{"CollectionId":"c","Image":{"Bytes":5}}`, code: ser, inMsg: "'Image.Bytes'"},
		{name: "blob not base64", target: "IndexFaces", body: `{"CollectionId":"c","Image":{"Bytes":"***"}}`, code: ser, inMsg: "'Image.Bytes'"},
		{name: "list for map", target: "CreateCollection", body: `{"CollectionId":"x","Tags":["a"]}`, code: ser, inMsg: "'Tags'"},
		{name: "string for structure", target: "IndexFaces", body: `{"CollectionId":"c","Image":"abc"}`, code: ser, inMsg: "'Image'"},
		{name: "unknown member", target: "CreateCollection", body: `{"CollectionId":"x","Bogus":1}`, code: ser, inMsg: `"Bogus"`},
		{name: "unknown nested member", target: "IndexFaces", body: `{"CollectionId":"c","Image":{"Bytes":"","Extra":1}}`, code: ser, inMsg: `"Extra"`},
		{name: "Go-only member", target: "CreateCollection", body: `{"CollectionId":"x","Dimension":8}`, code: ser, inMsg: `"Dimension"`},
		{name: "two objects", target: "CreateCollection", body: `{"CollectionId":"x"}{"CollectionId":"y"}`, code: ser},
		{name: "trailing garbage", target: "CreateCollection", body: `{"CollectionId":"x"} x`, code: ser},
		{name: "array body", target: "CreateCollection", body: `["x"]`, code: ser},
		{name: "string body", target: "CreateCollection", body: `"x"`, code: ser},
		{name: "int32 overflow", target: "ListUsers", body: `{"CollectionId":"c","MaxResults":10000000000}`, code: ser, inMsg: "'MaxResults'"},
		{name: "fraction for integer", target: "ListUsers", body: `{"CollectionId":"c","MaxResults":1.5}`, code: ser, inMsg: "'MaxResults'"},
		{name: "float32 overflow", target: "SearchUsers", body: `{"CollectionId":"c","UserId":"u","UserMatchThreshold":1e300}`, code: ser, inMsg: "'UserMatchThreshold'"},
		{name: "deeply nested", target: "CreateCollection", body: `{"Tags":` + strings.Repeat("[", 100000), code: ser},
		{name: "null body", target: "CreateCollection", body: `null`, code: inv},
		{name: "empty body", target: "CreateCollection", body: ``, code: inv},

		// Out-of-range numbers.
		{name: "ListUsers MaxResults 0", target: "ListUsers", body: `{"CollectionId":"c","MaxResults":0}`, code: inv, inMsg: "MaxResults"},
		{name: "ListUsers MaxResults 501", target: "ListUsers", body: `{"CollectionId":"c","MaxResults":501}`, code: inv, inMsg: "MaxResults"},
		{name: "ListFaces MaxResults 4097", target: "ListFaces", body: `{"CollectionId":"c","MaxResults":4097}`, code: inv},
		{name: "ListCollections MaxResults -1", target: "ListCollections", body: `{"MaxResults":-1}`, code: inv},
		{name: "UserMatchThreshold 101", target: "SearchUsers", body: `{"CollectionId":"c","UserId":"u","UserMatchThreshold":101}`, code: inv},
		{name: "FaceMatchThreshold -1", target: "SearchFaces", body: fmt.Sprintf(`{"CollectionId":"c","FaceId":%q,"FaceMatchThreshold":-1}`, f.faces[0]), code: inv},
		{name: "SearchFacesByImage MaxFaces 0", target: "SearchFacesByImage", body: fmt.Sprintf(`{"CollectionId":"c","MaxFaces":0,"Image":{"Bytes":%q}}`, img(npyVec(v8))), code: inv},
		{name: "SearchUsersByImage MaxUsers 501", target: "SearchUsersByImage", body: fmt.Sprintf(`{"CollectionId":"c","MaxUsers":501,"Image":{"Bytes":%q}}`, img(npyVec(v8))), code: inv},
		{name: "IndexFaces MaxFaces 0", target: "IndexFaces", body: fmt.Sprintf(`{"CollectionId":"c","MaxFaces":0,"Image":{"Bytes":%q}}`, img(npyVec(v8))), code: inv},
		{name: "AssociateFaces 101 FaceIds", target: "AssociateFaces", body: `{"CollectionId":"c","UserId":"empty","FaceIds":` + ids(101) + `}`, code: inv},
		{name: "AssociateFaces no FaceIds", target: "AssociateFaces", body: `{"CollectionId":"c","UserId":"empty","FaceIds":[]}`, code: inv},
		{name: "DeleteFaces 4097 FaceIds", target: "DeleteFaces", body: `{"CollectionId":"c","FaceIds":` + ids(4097) + `}`, code: inv},

		// Patterns and lengths.
		{name: "CollectionId with a space", target: "CreateCollection", body: `{"CollectionId":"has space"}`, code: inv, inMsg: "CollectionId"},
		{name: "CollectionId 256 long", target: "CreateCollection", body: fmt.Sprintf(`{"CollectionId":%q}`, strings.Repeat("a", 256)), code: inv},
		{name: "CollectionId empty", target: "DescribeCollection", body: `{"CollectionId":""}`, code: inv},
		{name: "CollectionId invalid UTF-8", target: "DescribeCollection", body: "{\"CollectionId\":\"c\xff\"}", code: inv},
		{name: "UserId with a space", target: "CreateUser", body: `{"CollectionId":"c","UserId":"a b"}`, code: inv, inMsg: "UserId"},
		{name: "UserId 129 long", target: "CreateUser", body: fmt.Sprintf(`{"CollectionId":"c","UserId":%q}`, strings.Repeat("u", 129)), code: inv},
		{name: "ExternalImageId with a slash", target: "IndexFaces", body: fmt.Sprintf(`{"CollectionId":"c","ExternalImageId":"a/b","Image":{"Bytes":%q}}`, img(npyVec(v8))), code: inv},
		{name: "ClientRequestToken with !", target: "CreateUser", body: `{"CollectionId":"c","UserId":"new","ClientRequestToken":"bad token!"}`, code: inv},
		{name: "FaceId not a UUID", target: "SearchFaces", body: `{"CollectionId":"c","FaceId":"not-a-uuid"}`, code: inv},
		{name: "SearchUsers with FaceId and UserId", target: "SearchUsers", body: fmt.Sprintf(`{"CollectionId":"c","UserId":"u","FaceId":%q}`, f.faces[0]), code: inv},
		{name: "SearchUsers with neither", target: "SearchUsers", body: `{"CollectionId":"c"}`, code: inv},
		{name: "reserved tag not a number", target: "CreateCollection", body: `{"CollectionId":"x","Tags":{"facesearch:dimension":"abc"}}`, code: inv},
		{name: "unknown reserved tag", target: "CreateCollection", body: `{"CollectionId":"x","Tags":{"facesearch:bogus":"1"}}`, code: inv},
		{name: "QualityFilter not in enum", target: "IndexFaces", body: fmt.Sprintf(`{"CollectionId":"c","QualityFilter":"BEST","Image":{"Bytes":%q}}`, img(npyVec(v8))), code: inv},

		// Images that are not an accepted .npy array.
		{name: "not npy", target: "IndexFaces", body: indexBody([]byte("hello, world")), code: imgf, inMsg: ".npy"},
		{name: "wrong magic", target: "IndexFaces", body: indexBody(append([]byte("\x93NUMPX"), npyVec(v8)[6:]...)), code: imgf},
		{name: "truncated header", target: "IndexFaces", body: indexBody(npyVec(v8)[:20]), code: imgf},
		{name: "header length past the end", target: "IndexFaces", body: indexBody([]byte("\x93NUMPY\x01\x00\xff\xff{'descr'")), code: imgf},
		{name: "unterminated header dict", target: "SearchUsersByImage", body: indexBody(npyRaw("{'descr': '<f4', 'shape': (8,", f32le(v8))), code: imgf},
		{name: "shape says more rows than data", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f4", "False", "(3, 8)"), f32le(append(v8, v8...)))), code: imgf},
		{name: "huge shape", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f4", "False", "(9223372036854775807, 8)"), f32le(v8))), code: imgf},
		{name: "trailing bytes", target: "IndexFaces", body: indexBody(append(npyVec(v8), 0, 0, 0, 0)), code: imgf},
		{name: "int32 dtype", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<i4", "False", "(8,)"), f32le(v8))), code: imgf},
		{name: "big-endian", target: "SearchFacesByImage", body: indexBody(npyRaw(npyHeader(">f4", "False", "(8,)"), f32le(v8))), code: imgf},
		{name: "float16", target: "SearchUsersByImage", body: indexBody(npyRaw(npyHeader("<f2", "False", "(8,)"), f32le(v8)[:16])), code: imgf},
		{name: "Fortran order", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f4", "True", "(1, 8)"), f32le(v8))), code: imgf},
		{name: "3-D shape", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f4", "False", "(1, 1, 8)"), f32le(v8))), code: imgf},
		{name: "scalar shape", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f4", "False", "()"), f32le(v8[:1]))), code: imgf},
		{name: "dimension 4097", target: "IndexFaces", body: indexBody(npyVec(make([]float32, 4097))), code: imgf},
		{name: "no Image", target: "IndexFaces", body: `{"CollectionId":"c"}`, code: inv},
		{name: "empty Image.Bytes", target: "IndexFaces", body: `{"CollectionId":"c","Image":{"Bytes":""}}`, code: inv},
		{name: "S3Object", target: "IndexFaces", body: `{"CollectionId":"c","Image":{"S3Object":{"Bucket":"b","Name":"n"}}}`, code: inv, inMsg: "S3"},
		{name: "S3Object search", target: "SearchUsersByImage", body: `{"CollectionId":"c","Image":{"S3Object":{"Bucket":"b","Name":"n"}}}`, code: inv, inMsg: "S3"},

		// Vectors the engine refuses.
		{name: "NaN", target: "IndexFaces", body: indexBody(npyVec(nan)), code: inv, inMsg: "non-finite"},
		{name: "+Inf", target: "IndexFaces", body: indexBody(npyVec(inf)), code: inv, inMsg: "non-finite"},
		{name: "-Inf float64", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f8", "False", "(8,)"), negInf64)), code: inv, inMsg: "non-finite"},
		{name: "float64 overflowing float32", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f8", "False", "(1,)"), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f - 1})), code: inv},
		{name: "zero vector", target: "IndexFaces", body: indexBody(npyVec(make([]float32, 8))), code: inv, inMsg: "zero"},
		{name: "one NaN row refuses the whole call", target: "IndexFaces", body: indexBody(npyRaw(npyHeader("<f4", "False", "(2, 8)"), f32le(twoRowsOneNaN))), code: inv},
		{name: "NaN search", target: "SearchFacesByImage", body: indexBody(npyVec(nan)), code: inv},
		{name: "zero search", target: "SearchUsersByImage", body: indexBody(npyVec(make([]float32, 8))), code: inv},
		{name: "wrong dimension", target: "IndexFaces", body: indexBody(npyVec(randVec(rng, 7))), code: inv, inMsg: "dimensions"},
		{name: "wrong dimension search", target: "SearchUsersByImage", body: indexBody(npyVec(randVec(rng, 9))), code: inv},

		// Things that are not there.
		{name: "missing collection", target: "IndexFaces", body: fmt.Sprintf(`{"CollectionId":"nope","Image":{"Bytes":%q}}`, img(npyVec(v8))), code: engine.CodeResourceNotFound},
		{name: "missing user", target: "AssociateFaces", body: fmt.Sprintf(`{"CollectionId":"c","UserId":"ghost","FaceIds":[%q]}`, f.faces[2]), code: engine.CodeResourceNotFound},
		{name: "missing face", target: "SearchUsers", body: fmt.Sprintf(`{"CollectionId":"c","FaceId":%q}`, uuid.NewString()), code: engine.CodeResourceNotFound},

		// Page tokens.
		{name: "tampered token", target: "ListUsers", body: fmt.Sprintf(`{"CollectionId":"c","NextToken":%q}`, tamper(f.userToken)), code: engine.CodeInvalidPaginationToken},
		{name: "other collection's token", target: "ListUsers", body: fmt.Sprintf(`{"CollectionId":"c","NextToken":%q}`, f.dToken), code: engine.CodeInvalidPaginationToken},
		{name: "ListFaces token for ListUsers", target: "ListUsers", body: fmt.Sprintf(`{"CollectionId":"c","NextToken":%q}`, f.faceToken), code: engine.CodeInvalidPaginationToken},
		{name: "garbage token", target: "ListFaces", body: `{"CollectionId":"c","NextToken":"AAAA"}`, code: engine.CodeInvalidPaginationToken},

		// Replays and duplicates.
		{name: "token replayed with other parameters", target: "CreateUser", body: `{"CollectionId":"c","UserId":"other","ClientRequestToken":"tok-u"}`, code: engine.CodeIdempotentParameterMismatch},
		{name: "existing user", target: "CreateUser", body: `{"CollectionId":"c","UserId":"empty"}`, code: engine.CodeConflict},
		{name: "existing collection", target: "CreateCollection", body: `{"CollectionId":"d"}`, code: engine.CodeResourceAlreadyExists},

		// Protocol.
		{name: "unknown operation", target: "DetectFaces", body: `{}`, code: server.CodeUnknownOperation},
		{name: "other service's target", req: post("application/x-amz-json-1.1", "DynamoDB_20120810.ListTables", `{}`), code: server.CodeUnknownOperation},
		{name: "no target", req: post("application/x-amz-json-1.1", "", `{}`), code: server.CodeUnknownOperation},
		{name: "form content type", req: post("application/x-www-form-urlencoded", "RekognitionService.ListCollections", `{}`), code: ser},
		{name: "no content type", req: post("", "RekognitionService.ListCollections", `{}`), code: ser},
		{name: "body over 8 MiB", req: post("application/x-amz-json-1.1", "RekognitionService.IndexFaces", `{"CollectionId":"c","Image":{"Bytes":"`+strings.Repeat("A", 9<<20)+`"}}`), code: engine.CodeImageTooLarge},
		{name: "GET /", req: func(url string) *http.Request { r, _ := http.NewRequest(http.MethodGet, url+"/", nil); return r }, code: server.CodeUnknownOperation, status: http.StatusMethodNotAllowed},
		{name: "POST /healthz", req: func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url+"/healthz", nil)
			return r
		}, code: server.CodeUnknownOperation, status: http.StatusMethodNotAllowed},
		{name: "other path", req: func(url string) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url+"/v1/collections", nil)
			return r
		}, code: server.CodeUnknownOperation, status: http.StatusNotFound},
	}
}

// TestBadInput sends each bad request over raw HTTP and checks its
// documented error, that the message names what is wrong where it must, and
// that the store did not change.
func TestBadInput(t *testing.T) {
	f := newBadInputFixture(t)
	before := takeSnapshot(t, f.e)
	for _, tt := range badInputs(f) {
		t.Run(tt.name, func(t *testing.T) {
			var r rawResponse
			if tt.req != nil {
				r = do(t, tt.req(f.url))
			} else {
				r = rawCall(t, f.url, tt.target, []byte(tt.body))
			}
			wantStatus := tt.status
			if wantStatus == 0 {
				wantStatus = http.StatusBadRequest
			}
			assert.Equal(t, wantStatus, r.Status, "%s", r.Body)
			assert.Equal(t, tt.code, r.Code, "message: %s", r.Message)
			assert.Equal(t, tt.code, r.Header.Get("X-Amzn-ErrorType"))
			assert.Equal(t, "application/x-amz-json-1.1", r.Header.Get("Content-Type"))
			assert.NotEmpty(t, r.RequestID)
			assert.NotEmpty(t, r.Message)
			if tt.inMsg != "" {
				assert.Contains(t, r.Message, tt.inMsg)
			}
			assert.Equal(t, before, takeSnapshot(t, f.e), "the store changed")
		})
	}
	// The fixture's own calls still work afterwards.
	r := rawCall(t, f.url, "ListUsers", []byte(`{"CollectionId":"c"}`))
	assert.Equal(t, http.StatusOK, r.Status)
	assert.True(t, bytes.Contains(r.Body, []byte(`"UserId":"u"`)))
}
