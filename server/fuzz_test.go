package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/facesearch/facesearch/server"
)

// fuzzMaxBody is the fuzzed server's body limit: above the deepest seeds
// (testdata/fuzz/FuzzRequest holds bodies a million levels deep), below
// the oversized ones.
const fuzzMaxBody = 2 << 20

// FuzzRequest sends random bodies to random operations. Whatever arrives,
// the server must answer with a well-formed response and never with a 500:
// bad input is the client's error, and nothing a client sends may crash it.
// The seeds include bodies nested far past MaxJSONDepth, truncated ones
// and ones over the body limit.
func FuzzRequest(f *testing.F) {
	fx := newBadInputFixture(f)
	for _, in := range badInputs(fx) {
		if in.target != "" && len(in.body) < 64<<10 {
			f.Add(in.target, []byte(in.body))
		}
	}
	for _, seed := range []struct{ target, body string }{
		{"CreateCollection", `{"CollectionId":"new","Tags":{"facesearch:dimension":"4"}}`},
		{"ListCollections", `{}`},
		{"DescribeCollection", `{"CollectionId":"c"}`},
		{"ListFaces", `{"CollectionId":"c","UserId":"u","MaxResults":2}`},
		{"ListUsers", `{"CollectionId":"c","MaxResults":1,"NextToken":"` + fx.userToken + `"}`},
		{"CreateUser", `{"CollectionId":"c","UserId":"v","ClientRequestToken":"t1"}`},
		{"AssociateFaces", `{"CollectionId":"c","UserId":"empty","FaceIds":["` + fx.faces[2] + `"]}`},
		{"DisassociateFaces", `{"CollectionId":"c","UserId":"u","FaceIds":["` + fx.faces[0] + `"]}`},
		{"SearchUsers", `{"CollectionId":"c","UserId":"u","MaxUsers":3}`},
		{"SearchFaces", `{"CollectionId":"c","FaceId":"` + fx.faces[1] + `"}`},
		{"DeleteFaces", `{"CollectionId":"c","FaceIds":["` + fx.faces[3] + `"]}`},
		{"DeleteUser", `{"CollectionId":"c","UserId":"empty"}`},
		{"DeleteCollection", `{"CollectionId":"d"}`},
	} {
		f.Add(seed.target, []byte(seed.body))
		for _, cut := range []int{1, len(seed.body) / 2, len(seed.body) - 1} {
			f.Add(seed.target, []byte(seed.body[:cut])) // truncated
		}
	}
	deep := server.MaxJSONDepth + 1
	f.Add("DeleteFaces", []byte(`{"CollectionId":"c","FaceIds":`+strings.Repeat("[", deep)+strings.Repeat("]", deep)+`}`))
	f.Add("CreateCollection", []byte(`{"CollectionId":"n","Tags":{"k":`+strings.Repeat(`{"k":`, deep)))
	f.Add("IndexFaces", []byte(`{"CollectionId":"c","Image":{"Bytes":"`+strings.Repeat("A", fuzzMaxBody)+`"}}`)) // oversized
	f.Add("ListCollections", bytes.Repeat([]byte("{"), fuzzMaxBody+1))
	// Drive the handler directly: no sockets, so each input costs little.
	s, err := server.New(fx.e, &server.Options{Logger: slog.New(slog.DiscardHandler), MaxBodyBytes: fuzzMaxBody})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "RekognitionService."+target)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", target, body, rec.Code, rec.Body)
		}
		if rec.Header().Get("X-Amzn-Requestid") == "" {
			t.Fatalf("no request ID")
		}
		if rec.Code == http.StatusOK {
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s: invalid JSON answer %q", target, rec.Body)
			}
			return
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type == "" || e.Message == "" {
			t.Fatalf("%s: malformed error %q", target, rec.Body)
		}
		if got := rec.Header().Get("X-Amzn-ErrorType"); got != e.Type {
			t.Fatalf("X-Amzn-ErrorType %q, __type %q", got, e.Type)
		}
	})
}
