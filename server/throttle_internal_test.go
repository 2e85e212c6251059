package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestThrottling: past MaxConcurrentRequests a request is refused at once
// with the SDK's ThrottlingException, and served again when a slot frees.
// The test holds the slots itself, as operations in flight would.
func TestThrottling(t *testing.T) {
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	s, err := New(e, &Options{MaxConcurrentRequests: 2, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	c := rekognition.New(rekognition.Options{
		BaseEndpoint:     aws.String(ts.URL),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		RetryMaxAttempts: 1,
	})
	ctx := context.Background()

	s.slots <- struct{}{}
	s.slots <- struct{}{}
	_, err = c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
	var te *types.ThrottlingException
	require.ErrorAs(t, err, &te)

	<-s.slots
	_, err = c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
	require.NoError(t, err)
	<-s.slots
}

// TestBodyBudget: bodies being read count against MaxBufferedBodyBytes; a
// body that would go over it gets ThrottlingException, and the budget comes
// back when the bodies holding it are gone. The test waits for the first
// body to be charged before it sends the second, so the order is certain.
func TestBodyBudget(t *testing.T) {
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	s, err := New(e, &Options{MaxBufferedBodyBytes: 300 << 10, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)

	hold, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer hold.Close()
	_, err = fmt.Fprintf(hold, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nX-Amz-Target: %sListCollections\r\nContent-Length: %d\r\n\r\n{}%s",
		contentType, targetPrefix, 400<<10, strings.Repeat(" ", 220<<10))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.buffered.Load() >= 220<<10 }, 10*time.Second, 5*time.Millisecond, "the held body is charged")

	call := func() (status int, code string) {
		req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader("{}"+strings.Repeat(" ", 100<<10)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Amz-Target", targetPrefix+"ListCollections")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype")
	}
	_, code := call()
	require.Equal(t, engine.CodeThrottling, code, "a body over the budget is throttled")

	hold.Close()
	require.Eventually(t, func() bool { return s.buffered.Load() == 0 }, 10*time.Second, 5*time.Millisecond, "the budget comes back")
	status, _ := call()
	require.Equal(t, http.StatusOK, status, "a body within the budget is read")
}
