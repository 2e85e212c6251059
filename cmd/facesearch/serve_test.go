package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// lockedBuffer collects a command's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningRE = regexp.MustCompile(`msg="facesearch listening" addr=(\S+)`)

// startServe runs "facesearch serve args..." until the returned stop is
// called, and returns the base URL once it listens.
func startServe(t *testing.T, args ...string) (url string, stderr *lockedBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &lockedBuffer{}
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: stderr}
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, append([]string{"serve"}, args...)) }()
	var addr string
	require.Eventually(t, func() bool {
		select {
		case code := <-done:
			done <- code
			return true
		default:
		}
		if mm := listeningRE.FindStringSubmatch(stderr.String()); mm != nil {
			addr = mm[1]
			return true
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	require.NotEmpty(t, addr, "serve exited early: %s", stderr)
	stopped := false
	stop = func() int {
		if stopped {
			return -1
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop after its context was cancelled")
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	return "http://" + addr, stderr, stop
}

func TestServeHealthzAndShutdown(t *testing.T) {
	dir := t.TempDir()
	url, stderr, stop := startServe(t, "--listen", "127.0.0.1:0", "--data", dir)

	resp, err := http.Get(url + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", string(body))

	req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(`{"CollectionId":"kept"}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "RekognitionService.CreateCollection")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	assert.Equal(t, exitOK, stop())
	assert.Contains(t, stderr.String(), "operation=CreateCollection code=OK")
	_, err = http.Get(url + "/healthz")
	assert.Error(t, err, "no longer listening")

	// The store was closed cleanly: it opens again, with what was written.
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	defer e.Close()
	_, err = e.DescribeCollection(context.Background(), &engine.DescribeCollectionInput{CollectionId: "kept"})
	assert.NoError(t, err)
}

// TestServeFinishesInFlight: a request that is still arriving when the
// shutdown starts is served, and its write is in the store afterwards.
func TestServeFinishesInFlight(t *testing.T) {
	dir := t.TempDir()
	url, _, stop := startServe(t, "--listen", "127.0.0.1:0", "--data", dir)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	const body = `{"CollectionId":"late"}`
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"+
		"X-Amz-Target: RekognitionService.CreateCollection\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	time.Sleep(50 * time.Millisecond) // let the server start reading the request

	stopped := make(chan int, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("serve stopped with a request in flight")
	default:
	}
	io.WriteString(conn, body[5:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, exitOK, <-stopped)

	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	defer e.Close()
	_, err = e.DescribeCollection(context.Background(), &engine.DescribeCollectionInput{CollectionId: "late"})
	assert.NoError(t, err)
}

func TestServeRefusals(t *testing.T) {
	credFile := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(credFile, []byte("[a]\naws_access_key_id = K\n"), 0o600))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"all interfaces without credentials", []string{"--listen", "0.0.0.0:0"}, exitUsage, "refusing to listen on 0.0.0.0:0 without --credentials"},
		{"empty host without credentials", []string{"--listen", ":8080"}, exitUsage, "refusing to listen"},
		{"public address without credentials", []string{"--listen", "192.0.2.1:8080"}, exitUsage, "refusing to listen"},
		{"IPv6 any without credentials", []string{"--listen", "[::]:8080"}, exitUsage, "refusing to listen"},
		{"not host:port", []string{"--listen", "8080"}, exitUsage, "not host:port"},
		{"stray argument", []string{"now"}, exitUsage, "unexpected argument"},
		{"bad log format", []string{"--log-format", "xml"}, exitUsage, "--log-format"},
		{"bad account ID", []string{"--account-id", "12345"}, exitUsage, "--account-id \"12345\" is not 12 digits"},
		{"bad credentials file", []string{"--credentials", credFile}, exitFailure, "no aws_secret_access_key"},
		{"missing credentials file", []string{"--credentials", credFile + ".nope"}, exitFailure, "no such file"},
		{"region without credentials", []string{"--region", "eu-west-1"}, exitUsage, "--region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr}
			code := m.Run(context.Background(), append([]string{"serve", "--data", t.TempDir()}, tt.args...))
			assert.Equal(t, tt.wantCode, code)
			assert.Contains(t, stderr.String(), tt.wantErr)
		})
	}
}

func TestServeLockedStore(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	defer e.Close()
	var stderr bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr}
	code := m.Run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--data", dir})
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr.String(), "in use by another facesearch process")
}

func TestServeWithCredentials(t *testing.T) {
	credFile := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(credFile, []byte("[default]\naws_access_key_id = AKIDSERVE\naws_secret_access_key = s3cret\n"), 0o600))
	// Any interface is allowed once requests are authenticated.
	url, stderr, stop := startServe(t, "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--credentials", credFile, "--listen-metrics", "off")
	url = strings.Replace(url, "0.0.0.0", "127.0.0.1", 1)
	url = strings.Replace(url, "[::]", "127.0.0.1", 1)
	assert.Contains(t, stderr.String(), "sigv4=true")

	resp, err := http.Get(url + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "RekognitionService.ListCollections")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "InvalidSignatureException", resp.Header.Get("X-Amzn-ErrorType"))
	assert.Equal(t, exitOK, stop())
}

// TestServeBusyPort: a listen address in use fails the start before the
// store is touched: --data is not even created.
func TestServeBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	for _, args := range [][]string{
		{"--listen", busy.Addr().String()},
		{"--listen", "127.0.0.1:0", "--listen-metrics", busy.Addr().String()},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr}
			code := m.Run(context.Background(), append([]string{"serve", "--data", dir}, args...))
			assert.Equal(t, exitFailure, code, "%s", stderr.String())
			assert.Contains(t, stderr.String(), "address already in use")
			_, err := os.Stat(dir)
			assert.ErrorIs(t, err, os.ErrNotExist, "the store directory was created")
		})
	}
}

// TestServeKeepsRuntimeFilesOutOfTheStore: while serving, the store
// directory holds only regular files and directories (a copy of it never
// meets a socket), and a socket an older server left there is removed.
func TestServeKeepsRuntimeFilesOutOfTheStore(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, e.Close())
	stale, err := net.Listen("unix", filepath.Join(dir, "admin.sock"))
	require.NoError(t, err)
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // as if killed: the socket file stays
	_, _, stop := startServe(t, "--listen", "127.0.0.1:0", "--data", dir)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return fmt.Errorf("%s is a %v, not a file or a directory", path, d.Type())
		}
		return nil
	})
	assert.NoError(t, err)
	assert.Equal(t, exitOK, stop())
}

var metricsListeningRE = regexp.MustCompile(`msg="facesearch metrics listening" addr=(\S+)`)

// TestServeMetricsListener: with --credentials, /metrics on the API's
// listener needs a signature; --listen-metrics serves it unsigned on an
// address of its own, with /healthz and nothing of the API.
func TestServeMetricsListener(t *testing.T) {
	credFile := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(credFile, []byte("[default]\naws_access_key_id = AKIDSERVE\naws_secret_access_key = s3cret\n"), 0o600))
	url, stderr, stop := startServe(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--credentials", credFile,
		"--region", "eu-west-1", "--listen-metrics", "127.0.0.1:0")
	mm := metricsListeningRE.FindStringSubmatch(stderr.String())
	require.NotNil(t, mm, "%s", stderr)
	metricsURL := "http://" + mm[1]
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(metricsURL + "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "go_goroutines")
	code, _ = get(metricsURL + "/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get(metricsURL + "/")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = get(url + "/metrics")
	assert.Equal(t, http.StatusBadRequest, code, "unsigned /metrics on the API listener")
	assert.Equal(t, exitOK, stop())
}

// TestMetricsAddress: a server that checks signatures serves its metrics on
// loopback unless told otherwise; an unsigned one needs no second listener.
func TestMetricsAddress(t *testing.T) {
	tests := []struct {
		flag   string
		signed bool
		want   string
	}{
		{"", true, "127.0.0.1:9464"},
		{"", false, ""},
		{"off", true, ""},
		{"off", false, ""},
		{"127.0.0.1:9100", true, "127.0.0.1:9100"},
		{"127.0.0.1:9100", false, "127.0.0.1:9100"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, metricsAddress(tt.flag, tt.signed), "--listen-metrics %q, signed %v", tt.flag, tt.signed)
	}
}
