package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// testCluster is a NATS JetStream cluster of embedded nodes on loopback.
type testCluster struct {
	nodes []*Node
	conns []*nats.Conn
}

// freePorts reserves n distinct loopback ports and releases them for the
// nodes to bind. Another process may take one in between; startCluster then
// fails and says so.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// newTestCluster starts n clustered nodes with their data under dir, and one
// client connection to each.
func newTestCluster(n int, dir string) (*testCluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i]))
	}
	c := &testCluster{}
	for i := range n {
		node, err := StartNode(&NodeOptions{
			Name:          fmt.Sprintf("n%d", i+1),
			ClientListen:  fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			Routes:        routes,
			ClusterName:   "facesearch-test",
			DataDir:       filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
		})
		if err != nil {
			c.shutdown()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		nc, err := Connect([]string{node.ClientURL()}, nil)
		if err != nil {
			c.shutdown()
			return nil, err
		}
		c.conns = append(c.conns, nc)
	}
	return c, nil
}

func (c *testCluster) shutdown() {
	for _, nc := range c.conns {
		nc.Close()
	}
	for _, n := range c.nodes {
		n.Shutdown()
	}
}

// startCluster starts a cluster that lives as long as the test.
func startCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	c, err := newTestCluster(n, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(c.shutdown)
	return c
}

// The tests that need a cluster but do not stop its nodes share one, each on
// its own stream.
var shared struct {
	once sync.Once
	c    *testCluster
	dir  string
	err  error
}

func sharedCluster(t testing.TB) *testCluster {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "cluster-test-")
		if shared.err == nil {
			shared.c, shared.err = newTestCluster(3, shared.dir)
		}
	})
	require.NoError(t, shared.err)
	return shared.c
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		runChildNode(spec)
	}
	if spec := os.Getenv(checkpointerEnv); spec != "" {
		runChildCheckpointer(spec)
	}
	code := m.Run()
	if shared.c != nil {
		shared.c.shutdown()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// testRuns numbers each test's run, so that go test -count=N gives every
// run its own stream in the shared cluster.
var (
	testRuns   sync.Map // testing.TB → run number
	testRunSeq atomic.Int64
)

// testLogOptions gives each test (each run of it) its own stream and
// subject; calls from one test get the same ones.
func testLogOptions(t testing.TB) *LogOptions {
	run, _ := testRuns.LoadOrStore(t, testRunSeq.Add(1))
	name := fmt.Sprintf("%s_%d", nonName.ReplaceAllString(t.Name(), "_"), run)
	return &LogOptions{Stream: "T_" + name, Subject: "t." + name}
}

// openLogs opens the test's log through each of the cluster's connections.
func openLogs(t testing.TB, c *testCluster, opts *LogOptions) []*Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs []*Log
	for _, nc := range c.conns {
		l, err := OpenLog(ctx, nc, opts)
		require.NoError(t, err)
		logs = append(logs, l)
	}
	return logs
}

// cmdN is the i-th test command of a node: an IndexFaces carrying i.
func cmdN(node string, i int) *Command {
	return &Command{
		Version: CommandVersion,
		ID:      fmt.Sprintf("%s-%d", node, i),
		Op:      OpIndexFaces,
		Node:    node,
		Time:    int64(1_700_000_000_000_000_000 + i),
		Payload: json.RawMessage(fmt.Sprintf(`{"CollectionId":"c","N":%d}`, i)),
	}
}

// recorder is an Applier that records what it applied, and fails with err
// at sequence failAt.
type recorder struct {
	mu     sync.Mutex
	seqs   []uint64
	ids    []string
	failAt uint64
	err    error
}

func (r *recorder) Apply(_ context.Context, seq uint64, cmd *Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq == r.failAt {
		return r.err
	}
	r.seqs = append(r.seqs, seq)
	r.ids = append(r.ids, cmd.ID)
	return nil
}

func (r *recorder) applied() ([]uint64, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs), slices.Clone(r.ids)
}

// follow runs l.Follow in the background until the test ends; the returned
// channel yields its result.
func follow(t testing.TB, l *Log, applied uint64, a Applier) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		err := l.Follow(ctx, applied, a)
		if !errors.Is(err, context.Canceled) {
			t.Logf("Follow from %d: %v", applied, err)
		}
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Follow did not return after its context was cancelled")
		}
	})
	return done
}

// waitApplied waits until r has applied n commands, or fails the test.
func waitApplied(t testing.TB, r *recorder, n int) ([]uint64, []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		seqs, ids := r.applied()
		if len(seqs) >= n {
			return seqs, ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied %d commands after 30s, want %d", len(seqs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publishN publishes n commands of node n1 to l.
func publishN(ctx context.Context, t testing.TB, l *Log, n int) {
	t.Helper()
	for i := range n {
		_, err := l.Publish(ctx, cmdN("n1", i))
		require.NoError(t, err)
	}
}

// failover lists urls with the i-th first: a node's client prefers its own
// server and fails over to the others.
func failover(urls []string, i int) []string {
	return append([]string{urls[i]}, slices.Delete(slices.Clone(urls), i, i+1)...)
}
