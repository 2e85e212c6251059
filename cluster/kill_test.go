package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeEnv, set to a JSON NodeOptions, makes the test binary an embedded NATS
// node instead of running tests (see TestMain), so that a test can SIGKILL it.
const nodeEnv = "FACESEARCH_CLUSTER_TEST_NODE"

// runChildNode serves as an embedded node until killed.
func runChildNode(spec string) {
	var o NodeOptions
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	n, err := StartNode(&o)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("ready", n.ClientURL())
	select {}
}

// childNode is an embedded node in a child process.
type childNode struct {
	opts NodeOptions
	cmd  *exec.Cmd
	url  string
}

// start runs the node and waits until it listens.
func (c *childNode) start(t *testing.T) {
	t.Helper()
	spec, err := json.Marshal(c.opts)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c.cmd = cmd
	t.Cleanup(func() { c.kill() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(l, "ready ")
		require.True(t, ok, "node %s: %s", c.opts.Name, l)
		c.url = url
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not start in 30s", c.opts.Name)
	}
}

// kill SIGKILLs the node, if running, and reaps it.
func (c *childNode) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	c.cmd = nil
}

// TestKillEmbeddedNodesLosesNoAcknowledgedCommand SIGKILLs the stream leader
// of an embedded 3-node cluster, restarts it, then SIGKILLs the new leader:
// every acknowledged command is applied, in one order, by every reader.
func TestKillEmbeddedNodesLosesNoAcknowledgedCommand(t *testing.T) {
	// Mostly waiting on elections: run beside the other tests.
	t.Parallel()
	if testing.Short() {
		t.Skip("runs three child processes")
	}
	ports, err := freePorts(6)
	require.NoError(t, err)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	dir := t.TempDir()
	nodes := make([]*childNode, 3)
	var urls []string
	for i := range nodes {
		nodes[i] = &childNode{opts: NodeOptions{
			Name:          fmt.Sprintf("k%d", i+1),
			ClientListen:  fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[3+i]),
			Routes:        routes,
			DataDir:       filepath.Join(dir, fmt.Sprintf("k%d", i+1)),
		}}
		nodes[i].start(t)
		urls = append(urls, nodes[i].url)
	}
	conns := make([]*nats.Conn, 3)
	for i := range conns {
		conns[i], err = Connect(failover(urls, i), nil)
		require.NoError(t, err)
		t.Cleanup(conns[i].Close)
	}
	opts := &LogOptions{PublishTimeout: 30 * time.Second}
	logs := openLogs(t, &testCluster{conns: conns}, opts)
	recs := make([]*recorder, 3)
	for i := range recs {
		recs[i] = &recorder{}
		follow(t, logs[i], 0, recs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var acked []string
	publish := func(round string, from int) {
		for j := range 3 {
			cmd := cmdN(round, j)
			ack, err := logs[from].Publish(ctx, cmd)
			require.NoError(t, err, "%s from node %d", cmd.ID, from+1)
			require.EqualValues(t, len(acked)+1, ack.Seq)
			acked = append(acked, cmd.ID)
		}
	}
	leader := func() int {
		st, err := logs[0].State(ctx)
		require.NoError(t, err)
		i := slices.IndexFunc(nodes, func(n *childNode) bool { return n.opts.Name == st.Leader })
		require.GreaterOrEqual(t, i, 0, "leader %q", st.Leader)
		return i
	}

	publish("before", 0)
	first := leader()
	nodes[first].kill()
	start := time.Now()
	publish("after-first-kill", (first+1)%3)
	t.Logf("publishes after SIGKILL of leader %s acknowledged in %s", nodes[first].opts.Name, time.Since(start).Round(time.Millisecond))

	nodes[first].start(t) // same name, ports and data: it rejoins
	publish("after-restart", first)
	second := leader()
	nodes[second].kill()
	publish("after-second-kill", (second+1)%3)

	// Every reader, those whose server was killed included (their clients
	// fail over), applies everything acknowledged.
	for i, r := range recs {
		_, ids := waitApplied(t, r, len(acked))
		assert.Equal(t, acked, ids, "node %d applies every acknowledged command in order", i+1)
	}
}
