package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/server"
)

// The key pair every signed test request uses.
const (
	testKeyID  = "AKIDFACESEARCHTEST"
	testSecret = "facesearch/test/secret+key"
)

var testCreds = map[string]string{testKeyID: testSecret, "AKIDOTHER": "other-secret"}

// newEngine opens an engine in a temporary directory, closed at cleanup.
func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// newServer serves a fresh engine over httptest with opts (nil: no auth).
func newServer(t testing.TB, opts *server.Options) (*engine.Engine, *httptest.Server) {
	t.Helper()
	e := newEngine(t)
	return e, serveEngine(t, e, opts)
}

func serveEngine(t testing.TB, e *engine.Engine, opts *server.Options) *httptest.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := server.New(e, opts)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close) // registered after the engine's, so it runs first
	return ts
}

// newClient is the real Rekognition client pointed at url, signing with the
// given key pair and never retrying, so each call is one request.
func newClient(url, keyID, secret string, optFns ...func(*rekognition.Options)) *rekognition.Client {
	return rekognition.New(rekognition.Options{
		BaseEndpoint:     aws.String(url),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		RetryMaxAttempts: 1,
	}, optFns...)
}

// npyRows encodes rows as a (n, d) float32 .npy array.
func npyRows(t testing.TB, rows [][]float32) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, npy.Encode(&b, rows, false))
	return b.Bytes()
}

// npyVec encodes v as a (d,) float32 .npy array.
func npyVec(v []float32) []byte { return npy.EncodeVector(v) }

// npyRaw builds a .npy file from a header dict and data, for broken ones.
func npyRaw(dict string, data []byte) []byte {
	hdr := []byte(dict)
	for (10+len(hdr)+1)%64 != 0 {
		hdr = append(hdr, ' ')
	}
	hdr = append(hdr, '\n')
	b := []byte("\x93NUMPY\x01\x00")
	b = append(b, byte(len(hdr)), byte(len(hdr)>>8))
	b = append(b, hdr...)
	return append(b, data...)
}

// f32le is the little-endian bytes of vs.
func f32le(vs []float32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		u := math.Float32bits(v)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}

// near returns n vectors within a small random distance of base, so they
// are one person's faces.
func near(rng *rand.Rand, base []float32, n int, spread float32) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		v := make([]float32, len(base))
		for j := range v {
			v[j] = base[j] + spread*float32(rng.NormFloat64())
		}
		out[i] = v
	}
	return out
}

// embeddings turns rows into the engine's Go form.
func embeddings(rows [][]float32) []engine.FaceEmbedding {
	out := make([]engine.FaceEmbedding, len(rows))
	for i, r := range rows {
		out[i] = engine.FaceEmbedding{Vector: r}
	}
	return out
}

// f64le is the little-endian float64 bytes of vs.
func f64le(vs []float32) []byte {
	b := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		u := math.Float64bits(float64(v))
		for i := range 8 {
			b = append(b, byte(u>>(8*i)))
		}
	}
	return b
}

func randVec(rng *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// rawResponse is an answer to a hand-made request.
type rawResponse struct {
	Status    int
	Header    http.Header
	Body      []byte
	Code      string // __type of an error
	Message   string
	RequestID string
}

// rawCall posts body to the API with target as the operation, unsigned.
func rawCall(t testing.TB, url, target string, body []byte) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", "RekognitionService."+target)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) rawResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b, RequestID: resp.Header.Get("x-amzn-RequestId")}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil {
			r.Code, r.Message = e.Type, e.Message
		}
	}
	return r
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
