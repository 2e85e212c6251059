package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// externalServer is the nats-server binary the external-cluster test runs:
// $FACESEARCH_NATS_SERVER, else nats-server on PATH (Debian's package puts
// it there). Without one the test is skipped.
func externalServer(t *testing.T) string {
	bin := os.Getenv("FACESEARCH_NATS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("nats-server"); err != nil {
			t.Skip("no nats-server binary (install Debian's nats-server or set FACESEARCH_NATS_SERVER)")
		}
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s --version: %s", bin, out)
	t.Logf("external cluster: %s", bytes.TrimSpace(out))
	return bin
}

// startExternalCluster runs n nats-server processes of bin as one JetStream
// cluster on loopback, configured as docs/cluster.md asks of an external
// cluster, and returns their client URLs and processes.
func startExternalCluster(t *testing.T, bin string, n int) ([]string, []*exec.Cmd) {
	ports, err := freePorts(2 * n)
	require.NoError(t, err)
	var routes, urls []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	dir := t.TempDir()
	var procs []*exec.Cmd
	for i := range n {
		name := fmt.Sprintf("e%d", i+1)
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
max_payload: %d
jetstream { store_dir: %q }
cluster { name: facesearch-ext, listen: 127.0.0.1:%d, routes: [%s] }
`, name, ports[i], MaxCommandSize, filepath.Join(dir, name), ports[n+i], strings.Join(routes, ", "))
		confPath := filepath.Join(dir, name+".conf")
		require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		require.NoError(t, err)
		cmd := exec.Command(bin, "-c", confPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		require.NoError(t, cmd.Start())
		procs = append(procs, cmd)
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("%s log:\n%s", name, b)
			}
		})
	}
	return urls, procs
}

// connectRetry connects once the processes listen.
func connectRetry(t *testing.T, urls []string) *nats.Conn {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, err := Connect(urls, nil)
		if err == nil {
			t.Cleanup(nc.Close)
			return nc
		}
		if time.Now().After(deadline) {
			require.NoError(t, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestExternalCluster runs the log against a cluster of real nats-server
// processes (Debian's 2.9.10 is the oldest supported), and SIGKILLs the
// stream leader.
func TestExternalCluster(t *testing.T) {
	// Mostly waiting on elections: run beside the other tests.
	t.Parallel()
	if testing.Short() {
		t.Skip("starts three nats-server processes")
	}
	bin := externalServer(t)
	urls, procs := startExternalCluster(t, bin, 3)
	conns := make([]*nats.Conn, len(urls))
	for i := range urls {
		conns[i] = connectRetry(t, failover(urls, i))
	}
	opts := &LogOptions{PublishTimeout: 20 * time.Second}
	logs := openLogs(t, &testCluster{conns: conns}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	first, err := logs[0].Publish(ctx, cmdN("e1", 0))
	require.NoError(t, err)
	dup, err := logs[1].Publish(ctx, cmdN("e1", 0))
	require.NoError(t, err)
	assert.True(t, dup.Duplicate)
	assert.Equal(t, first.Seq, dup.Seq)
	for i := 1; i < 3; i++ {
		_, err := logs[i].Publish(ctx, cmdN("e1", i))
		require.NoError(t, err)
	}

	st, err := logs[0].State(ctx)
	require.NoError(t, err)
	leader := -1
	for i := range procs {
		if st.Leader == fmt.Sprintf("e%d", i+1) {
			leader = i
		}
	}
	require.GreaterOrEqual(t, leader, 0, "leader %q is one of the processes", st.Leader)
	recs := map[int]*recorder{}
	for i := range logs {
		if i != leader {
			recs[i] = &recorder{}
			follow(t, logs[i], 0, recs[i])
		}
	}

	require.NoError(t, procs[leader].Process.Signal(syscall.SIGKILL))
	_ = procs[leader].Wait()
	start := time.Now()
	// Through the killed leader's own client too: it fails over.
	ack, err := logs[leader].Publish(ctx, cmdN("after", 0))
	require.NoError(t, err, "a publish succeeds once a new leader is elected")
	t.Logf("first publish after SIGKILL of the stream leader acknowledged in %s", time.Since(start).Round(time.Millisecond))
	assert.EqualValues(t, 4, ack.Seq)

	want := []string{"e1-0", "e1-1", "e1-2", "after-0"}
	for i, r := range recs {
		_, ids := waitApplied(t, r, len(want))
		assert.Equal(t, want, ids, "node %d applies every acknowledged command in order", i+1)
	}

	require.NoError(t, logs[0].Trim(ctx, 3))
	err = logs[0].Follow(ctx, 1, &recorder{})
	require.ErrorIs(t, err, ErrGap)
}
