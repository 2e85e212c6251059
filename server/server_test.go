package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/server"
)

func TestOptionsValidate(t *testing.T) {
	err := (&server.Options{
		Credentials:           map[string]string{"": "x", "AKID": ""},
		MaxBodyBytes:          -1,
		MaxConcurrentRequests: -1,
		RequestTimeout:        -time.Second,
		MaxClockSkew:          -time.Second,
		BodyTimeout:           -time.Second,
		MinBodyRate:           -1,
		MaxBufferedBodyBytes:  -1,
	}).Validate()
	require.Error(t, err)
	for _, want := range []string{"empty access key ID", `"AKID"`, "MaxBodyBytes", "MaxConcurrentRequests", "RequestTimeout", "MaxClockSkew",
		"BodyTimeout", "MinBodyRate", "MaxBufferedBodyBytes"} {
		assert.Contains(t, err.Error(), want, "Validate reports every problem at once")
	}
	assert.NoError(t, (&server.Options{}).Validate())

	_, err = server.New(newEngine(t), &server.Options{MaxBodyBytes: -1})
	assert.ErrorContains(t, err, "MaxBodyBytes")
	_, err = server.New(nil, nil)
	assert.Error(t, err)
	s, err := server.New(newEngine(t), nil)
	require.NoError(t, err)
	hs := s.HTTPServer("127.0.0.1:0")
	assert.Positive(t, hs.ReadHeaderTimeout)
	assert.Positive(t, hs.ReadTimeout)
	assert.Greater(t, hs.WriteTimeout, 30*time.Second, "longer than the default request timeout")
	assert.Positive(t, hs.IdleTimeout)
	assert.Positive(t, hs.MaxHeaderBytes)
}

func TestHealthz(t *testing.T) {
	_, ts := newServer(t, nil)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, ts.URL+"/healthz", nil)
		r := do(t, req)
		assert.Equal(t, http.StatusOK, r.Status)
		assert.NotEmpty(t, r.RequestID)
		if method == http.MethodGet {
			assert.Equal(t, "ok\n", string(r.Body))
		}
	}
}

func TestContentTypeParameters(t *testing.T) {
	_, ts := newServer(t, nil)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1; charset=utf-8")
	req.Header.Set("X-Amz-Target", "RekognitionService.ListCollections")
	r := do(t, req)
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.JSONEq(t, `{"CollectionIds":[],"FaceModelVersions":[]}`, string(r.Body))
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRequestLog(t *testing.T) {
	var logs syncBuffer
	_, ts := newServer(t, &server.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ok := rawCall(t, ts.URL, "CreateCollection", []byte(`{"CollectionId":"c"}`))
	bad := rawCall(t, ts.URL, "CreateCollection", []byte(`{"CollectionId":"c"}`))
	require.Equal(t, http.StatusOK, ok.Status)

	var records []map[string]any
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		records = append(records, rec)
	}
	require.Len(t, records, 2)
	for i, want := range []struct{ id, code string }{{ok.RequestID, "OK"}, {bad.RequestID, "ResourceAlreadyExistsException"}} {
		assert.Equal(t, "request", records[i]["msg"])
		assert.Equal(t, "CreateCollection", records[i]["operation"])
		assert.Equal(t, want.code, records[i]["code"])
		assert.Equal(t, want.id, records[i]["request_id"], "the log line matches the response's x-amzn-RequestId")
		assert.Contains(t, records[i], "duration")
	}
}

func TestMetrics(t *testing.T) {
	_, ts := newServer(t, nil)
	c := newClient(ts.URL, testKeyID, testSecret)
	ctx := context.Background()
	_, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("m")})
	require.NoError(t, err)
	_, err = c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("m")})
	require.Error(t, err)
	_, err = c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("m"), Image: &types.Image{Bytes: npyRows(t, [][]float32{{1, 0}, {0, 1}, {1, 1}})}})
	require.NoError(t, err)
	_, err = c.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("m"), UserId: aws.String("u")})
	require.NoError(t, err)
	rawCall(t, ts.URL, "NoSuchThing", []byte(`{}`))

	resp, err := http.Get(ts.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`facesearch_requests_total{code="OK",operation="CreateCollection"} 1`,
		`facesearch_requests_total{code="ResourceAlreadyExistsException",operation="CreateCollection"} 1`,
		`facesearch_requests_total{code="UnknownOperationException",operation="unknown"} 1`,
		`facesearch_request_duration_seconds_count{operation="CreateCollection"} 2`,
		`facesearch_collection_faces{collection="m"} 3`,
		`facesearch_collection_users{collection="m"} 1`,
		`go_goroutines`,
	} {
		assert.Contains(t, string(body), want)
	}
}

// TestHTTPServerLimits: the http.Server that HTTPServer configures refuses
// oversize headers before the handler runs.
func TestHTTPServerLimits(t *testing.T) {
	s, err := server.New(newEngine(t), &server.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	hs := s.HTTPServer("127.0.0.1:0")
	ln, err := net.Listen("tcp", hs.Addr)
	require.NoError(t, err)
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String()

	req, _ := http.NewRequest(http.MethodGet, url+"/healthz", nil)
	assert.Equal(t, http.StatusOK, do(t, req).Status)
	req, _ = http.NewRequest(http.MethodGet, url+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 128<<10))
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, do(t, req).Status)
}
