package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/cluster"
)

func TestServeClusterFlagRefusals(t *testing.T) {
	routes := "nats-route://127.0.0.1:6231,nats-route://127.0.0.1:6232"
	embedded := []string{"--nats-listen", "127.0.0.1:0", "--nats-cluster-listen", "127.0.0.1:0", "--nats-routes", routes}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"external and embedded", append([]string{"--nats", "nats://127.0.0.1:4222"}, embedded...), "--nats joins an external NATS cluster"},
		{"not a NATS URL", []string{"--nats", "http://127.0.0.1:4222"}, `--nats: "http://127.0.0.1:4222" is not a NATS client URL`},
		{"NATS URL without port", []string{"--nats", "nats://127.0.0.1"}, "--nats: "},
		{"listen without cluster listen", []string{"--nats-listen", "127.0.0.1:0", "--nats-routes", routes}, "--nats-cluster-listen is missing"},
		{"listen without routes", []string{"--nats-listen", "127.0.0.1:0", "--nats-cluster-listen", "127.0.0.1:0"}, "--nats-routes is missing"},
		{"routes alone", []string{"--nats-routes", routes}, "--nats-listen is missing"},
		{"listen not host:port", []string{"--nats-listen", "4222", "--nats-cluster-listen", "127.0.0.1:0", "--nats-routes", routes}, `--nats-listen "4222" is not host:port`},
		{"cluster listen not host:port", []string{"--nats-listen", "127.0.0.1:0", "--nats-cluster-listen", "x", "--nats-routes", routes}, `--nats-cluster-listen "x" is not host:port`},
		{"route not a route URL", []string{"--nats-listen", "127.0.0.1:0", "--nats-cluster-listen", "127.0.0.1:0", "--nats-routes", "nats://127.0.0.1:6231"}, `--nats-routes: "nats://127.0.0.1:6231" is not nats-route://host:port`},
		{"bad node name", append([]string{"--node-name", "a b"}, embedded...), `--node-name "a b" must be`},
		{"bad read consistency", append([]string{"--read-consistency", "eventual"}, embedded...), `--read-consistency must be linearizable or local, not "eventual"`},
		{"node name without cluster", []string{"--node-name", "n1"}, "--node-name is for cluster mode"},
		{"read consistency without cluster", []string{"--read-consistency", "local"}, "--read-consistency is for cluster mode"},
		{"checkpoint every without cluster", []string{"--checkpoint-every", "10"}, "--checkpoint-every is for cluster mode"},
		{"checkpoint interval without cluster", []string{"--checkpoint-interval", "1s"}, "--checkpoint-interval is for cluster mode"},
		{"checkpoint interval zero", append([]string{"--checkpoint-interval", "0s"}, embedded...), "--checkpoint-interval must be positive"},
		{"checkpoint interval negative", append([]string{"--checkpoint-interval", "-1s"}, embedded...), "--checkpoint-interval must be positive"},
		{"checkpoint every negative", append([]string{"--checkpoint-every", "-1"}, embedded...), "-checkpoint-every"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr}
			code := m.Run(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, tt.args...))
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, stderr.String(), tt.wantErr)
		})
	}
}

// NATS unreachable at start is a clear failure naming the URLs.
func TestServeClusterNATSUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "nats://" + l.Addr().String()
	l.Close() // nothing listens there now
	var stderr bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr}
	code := m.Run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--nats", url})
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr.String(), "--nats: cluster: NATS unreachable at "+url)
}

// freeAddrs reserves n loopback addresses and releases them for the test's
// servers to bind.
func freeAddrs(t *testing.T, n int) []string {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// apiCall posts body to a node's API as operation op and returns the
// status and body.
func apiCall(t *testing.T, url, op, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "RekognitionService."+op)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serveProc is a "facesearch serve" running in the test's process.
type serveProc struct {
	stderr  *lockedBuffer
	done    chan int
	cancel  context.CancelFunc
	stopped bool
	code    int
}

// launchServe starts "facesearch serve args..." and returns at once; it
// is stopped at cleanup.
func launchServe(t *testing.T, args ...string) *serveProc {
	ctx, cancel := context.WithCancel(context.Background())
	p := &serveProc{stderr: &lockedBuffer{}, done: make(chan int, 1), cancel: cancel}
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: p.stderr}
	go func() { p.done <- m.Run(ctx, append([]string{"serve"}, args...)) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// url waits until the server listens and returns its base URL.
func (p *serveProc) url(t *testing.T, timeout time.Duration) string {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if mm := listeningRE.FindStringSubmatch(p.stderr.String()); mm != nil {
			return "http://" + mm[1]
		}
		select {
		case code := <-p.done:
			p.stopped, p.code = true, code
			t.Fatalf("serve exited with %d: %s", code, p.stderr)
		default:
		}
	}
	t.Fatalf("serve did not listen within %v: %s", timeout, p.stderr)
	return ""
}

// stop cancels the server (as SIGINT would) and returns its exit code.
func (p *serveProc) stop(t *testing.T) int {
	if p.stopped {
		return p.code
	}
	p.stopped = true
	p.cancel()
	select {
	case p.code = <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("serve did not stop after its context was cancelled: %s", p.stderr)
		p.code = -1
	}
	return p.code
}

// Three `facesearch serve` nodes with embedded NATS form one engine: a
// write on one is read on the others; each stops cleanly, and a restarted
// node resumes from its store.
func TestServeClusterEmbedded(t *testing.T) {
	addrs := freeAddrs(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, "nats-route://"+addrs[3+i])
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	args := func(i int) []string {
		return []string{"--listen", "127.0.0.1:0", "--data", dirs[i], "--node-name", fmt.Sprintf("n%d", i+1),
			"--nats-listen", addrs[i], "--nats-cluster-listen", addrs[3+i], "--nats-routes", strings.Join(routes, ",")}
	}
	var procs []*serveProc
	for i := range 3 {
		procs = append(procs, launchServe(t, args(i)...))
	}
	var urls []string
	for _, p := range procs {
		urls = append(urls, p.url(t, 60*time.Second))
	}
	code, body := apiCall(t, urls[0], "CreateCollection", `{"CollectionId":"c"}`)
	require.Equal(t, http.StatusOK, code, body)
	for i := range 5 {
		code, body = apiCall(t, urls[i%3], "CreateUser", fmt.Sprintf(`{"CollectionId":"c","UserId":"u%d"}`, i))
		require.Equal(t, http.StatusOK, code, body)
		for _, u := range urls {
			code, body = apiCall(t, u, "DescribeCollection", `{"CollectionId":"c"}`)
			require.Equal(t, http.StatusOK, code, body)
			assert.Contains(t, body, fmt.Sprintf(`"UserCount":%d`, i+1))
		}
	}
	if err := exec.Command("python3", "-c", "import boto3").Run(); err == nil {
		cmd := exec.Command("python3", "testdata/boto3_cluster.py", urls[0], urls[1], urls[2])
		cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1",
			"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "ok\n", string(out))
	} else {
		t.Log("python3 with boto3 is not installed: the boto3 part is skipped")
	}
	// A running node's store is backed up through its admin socket.
	backup := filepath.Join(t.TempDir(), "copy")
	var out bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}
	require.Equal(t, exitOK, m.Run(context.Background(), []string{"backup", "--data", filepath.Join(dirs[1], "store"), "--to", backup}), "%s", &out)
	assert.Contains(t, out.String(), "by the running server")
	assert.Equal(t, exitOK, procs[2].stop(t))
	code, body = apiCall(t, urls[0], "CreateUser", `{"CollectionId":"c","UserId":"later"}`)
	require.Equal(t, http.StatusOK, code, body)
	again := launchServe(t, args(2)...)
	code, body = apiCall(t, again.url(t, 60*time.Second), "ListUsers", `{"CollectionId":"c"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"later"`, "the restarted node caught up")
	for _, p := range []*serveProc{again, procs[1], procs[0]} {
		assert.Equal(t, exitOK, p.stop(t), "%s", p.stderr)
	}
	assert.DirExists(t, filepath.Join(dirs[0], "nats"), "JetStream's files are in --data")
	assert.DirExists(t, filepath.Join(dirs[0], "store"))
}

// A node waiting for the rest of its cluster stops cleanly when told to.
func TestServeClusterStopsWhileJoining(t *testing.T) {
	addrs := freeAddrs(t, 4)
	routes := "nats-route://" + addrs[1] + ",nats-route://" + addrs[2] + ",nats-route://" + addrs[3]
	p := launchServe(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--node-name", "alone",
		"--nats-listen", addrs[0], "--nats-cluster-listen", addrs[1], "--nats-routes", routes)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.stderr.String(), "joining the cluster"); time.Sleep(20 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "serve did not start joining: %s", p.stderr)
	}
	assert.Equal(t, exitOK, p.stop(t), "%s", p.stderr)
	assert.Contains(t, p.stderr.String(), "stopped while joining the cluster")
}

// Nodes on an external NATS cluster (--nats) are one engine as well.
func TestServeClusterExternalNATS(t *testing.T) {
	addrs := freeAddrs(t, 6)
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, "nats-route://"+addrs[3+i])
	}
	for i := range 3 {
		n, err := cluster.StartNode(&cluster.NodeOptions{Name: fmt.Sprintf("nats%d", i+1), ClientListen: addrs[i],
			ClusterListen: addrs[3+i], Routes: routes, DataDir: t.TempDir()})
		require.NoError(t, err)
		t.Cleanup(n.Shutdown) // after the facesearch nodes, registered later
		urls = append(urls, n.ClientURL())
	}
	var api []string
	for i := range 2 {
		p := launchServe(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--nats", strings.Join(urls, ","),
			"--node-name", fmt.Sprintf("fs%d", i+1), "--read-consistency", "linearizable")
		api = append(api, p.url(t, 60*time.Second))
	}
	code, body := apiCall(t, api[0], "CreateCollection", `{"CollectionId":"c"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = apiCall(t, api[1], "CreateUser", `{"CollectionId":"c","UserId":"alice"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = apiCall(t, api[0], "ListUsers", `{"CollectionId":"c"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"alice"`)
}

// Nodes take checkpoints and trim the log after them; a fourth node with
// an empty --data then joins from the newest checkpoint (the log no longer
// holds the first commands) and serves the same users as the others.
func TestServeClusterJoinFromCheckpoint(t *testing.T) {
	addrs := freeAddrs(t, 6)
	var routes, clients []string
	for i := range 3 {
		routes = append(routes, "nats-route://"+addrs[3+i])
		clients = append(clients, "nats://"+addrs[i])
	}
	var procs []*serveProc
	for i := range 3 {
		procs = append(procs, launchServe(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--node-name", fmt.Sprintf("n%d", i+1),
			"--nats-listen", addrs[i], "--nats-cluster-listen", addrs[3+i], "--nats-routes", strings.Join(routes, ","),
			"--checkpoint-every", "2", "--checkpoint-interval", "50ms"))
	}
	var urls []string
	for _, p := range procs {
		urls = append(urls, p.url(t, 60*time.Second))
	}
	code, body := apiCall(t, urls[0], "CreateCollection", `{"CollectionId":"c"}`)
	require.Equal(t, http.StatusOK, code, body)

	nc, err := cluster.Connect(clients, nil)
	require.NoError(t, err)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := cluster.OpenLog(ctx, nc, nil)
	require.NoError(t, err)
	users := 0
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body = apiCall(t, urls[users%3], "CreateUser", fmt.Sprintf(`{"CollectionId":"c","UserId":"u%d"}`, users))
		require.Equal(t, http.StatusOK, code, body)
		users++
		st, err := l.State(ctx)
		require.NoError(t, err)
		if st.First > 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the log was not trimmed after %d writes", users)
	}

	joined := launchServe(t, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--node-name", "n4",
		"--nats", strings.Join(clients, ","), "--checkpoint-every", "0")
	urls = append(urls, joined.url(t, 60*time.Second))
	assert.Contains(t, joined.stderr.String(), "bootstrapped from a checkpoint")
	code, want := apiCall(t, urls[0], "ListUsers", `{"CollectionId":"c","MaxResults":500}`)
	require.Equal(t, http.StatusOK, code, want)
	for i := range users {
		assert.Contains(t, want, fmt.Sprintf(`"u%d"`, i))
	}
	for _, u := range urls[1:] {
		code, body = apiCall(t, u, "ListUsers", `{"CollectionId":"c","MaxResults":500}`)
		require.Equal(t, http.StatusOK, code, body)
		assert.Equal(t, want, body)
	}
	for _, p := range []*serveProc{joined, procs[2], procs[1], procs[0]} {
		assert.Equal(t, exitOK, p.stop(t), "%s", p.stderr)
	}
	assert.Contains(t, procs[0].stderr.String(), "checkpointer running")
	assert.Contains(t, joined.stderr.String(), "takes no checkpoints")
}
