package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// rawConn opens a connection to ts and sends the head of a request to the
// API: the request line, its headers (Host and Content-Type added) and a
// blank line. The connection is closed at cleanup.
func rawConn(t *testing.T, ts *httptest.Server, headers ...string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	head := "POST / HTTP/1.1\r\nHost: " + ts.Listener.Addr().String() + "\r\nContent-Type: application/x-amz-json-1.1\r\n"
	for _, h := range headers {
		head += h + "\r\n"
	}
	_, err = io.WriteString(conn, head+"\r\n")
	require.NoError(t, err)
	return conn
}

// readAnswer reads the response on conn, waiting at most a few seconds.
func readAnswer(t *testing.T, conn net.Conn) rawResponse {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b, Code: resp.Header.Get("X-Amzn-Errortype")}
}

// TestSlowBodiesHoldNoSlot: 300 connections that send their headers and
// one byte of a body, more than there are slots, do not keep anyone else
// out: ordinary calls are still answered, not throttled, unsigned and
// under SigV4 (where the slow requests carry a known key and a forged
// signature).
func TestSlowBodiesHoldNoSlot(t *testing.T) {
	const slow = 300
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("sigv4=%v", signed), func(t *testing.T) {
			opts := &server.Options{}
			if signed {
				opts.Credentials = testCreds
			}
			opts.Logger = slog.New(slog.DiscardHandler)
			s, err := server.New(newEngine(t), opts)
			require.NoError(t, err)
			ts := httptest.NewUnstartedServer(s)
			var active atomic.Int64
			ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateActive {
					active.Add(1)
				}
			}
			ts.Start()
			t.Cleanup(ts.Close) // after the connections' cleanups, which run first

			headers := []string{"X-Amz-Target: RekognitionService.ListCollections", "Content-Length: 100"}
			if signed {
				date := time.Now().UTC()
				headers = append(headers, "X-Amz-Date: "+date.Format("20060102T150405Z"),
					"Authorization: AWS4-HMAC-SHA256 Credential="+testKeyID+"/"+date.Format("20060102")+"/us-east-1/rekognition/aws4_request, "+
						"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+strings.Repeat("0", 64))
			}
			for range slow {
				conn := rawConn(t, ts, headers...)
				_, err := io.WriteString(conn, "{")
				require.NoError(t, err)
			}
			require.Eventually(t, func() bool { return active.Load() >= slow }, 30*time.Second, 10*time.Millisecond,
				"the server reads every slow request")

			c := newClient(ts.URL, testKeyID, testSecret)
			for i := range 20 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
				cancel()
				require.NoError(t, err, "call %d with %d slow bodies arriving", i, slow)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestBodyTimeout: a body that stops arriving gets RequestTimeoutException
// once BodyTimeout has passed, and its connection is closed.
func TestBodyTimeout(t *testing.T) {
	_, ts := newServer(t, &server.Options{BodyTimeout: 200 * time.Millisecond, MinBodyRate: 1 << 10})
	conn := rawConn(t, ts, "X-Amz-Target: RekognitionService.ListCollections", "Content-Length: 100")
	_, err := io.WriteString(conn, "{")
	require.NoError(t, err)
	r := readAnswer(t, conn)
	assert.Equal(t, http.StatusRequestTimeout, r.Status, "%s", r.Body)
	assert.Equal(t, server.CodeRequestTimeout, r.Code)
	_, err = conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection is closed")
}

// TestOversizedBodyIsAnswered: a client that sends a whole 10 MB body,
// over the 8 MiB limit, writes it all and reads ImageTooLargeException,
// rather than a connection reset, whether the body has a length or is
// chunked.
func TestOversizedBodyIsAnswered(t *testing.T) {
	_, ts := newServer(t, nil)
	const size = 10 << 20
	chunk := strings.Repeat("A", 64<<10)
	tests := []struct {
		name    string
		headers []string
		write   func(io.Writer) error
	}{
		{"Content-Length", []string{fmt.Sprintf("Content-Length: %d", size)}, func(w io.Writer) error {
			for range size / len(chunk) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return err
				}
			}
			return nil
		}},
		{"chunked", []string{"Transfer-Encoding: chunked"}, func(w io.Writer) error {
			for range size / len(chunk) {
				if _, err := fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return err
				}
			}
			_, err := io.WriteString(w, "0\r\n\r\n")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := rawConn(t, ts, append(tt.headers, "X-Amz-Target: RekognitionService.IndexFaces")...)
			require.NoError(t, conn.SetWriteDeadline(time.Now().Add(30*time.Second)))
			wrote := make(chan error, 1)
			go func() { wrote <- tt.write(conn) }()
			r := readAnswer(t, conn)
			require.NoError(t, <-wrote, "the client sends its whole body")
			assert.Equal(t, http.StatusBadRequest, r.Status)
			assert.Equal(t, engine.CodeImageTooLarge, r.Code, "%s", r.Body)
		})
	}
}
