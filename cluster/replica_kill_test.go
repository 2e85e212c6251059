package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/server"
)

// replicaEnv, set to a JSON replicaSpec, makes the test binary a whole
// facesearch node (an embedded NATS node, a Replica, its HTTP server)
// instead of running tests, so that a test can SIGKILL it.
const replicaEnv = "FACESEARCH_CLUSTER_TEST_REPLICA"

// replicaSpec is a child node's configuration.
type replicaSpec struct {
	Node NodeOptions
	Log  LogOptions
	// HTTP is the API's listen address.
	HTTP string
}

func init() {
	if spec := os.Getenv(replicaEnv); spec != "" {
		runChildReplica(spec)
	}
}

// runChildReplica serves as a facesearch node until killed. Its store is
// in the node's DataDir, beside the NATS files; GET /test/applied answers
// the last sequence it applied; POST /test/close closes its Replica, whose
// store then holds every batch it applied unsynced.
func runChildReplica(spec string) {
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var s replicaSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fail(err)
	}
	n, err := StartNode(&s.Node)
	if err != nil {
		fail(err)
	}
	nc, err := Connect([]string{n.ClientURL()}, nil)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	r, err := OpenReplica(ctx, filepath.Join(s.Node.DataDir, "store"), &ReplicaOptions{Name: s.Node.Name, Conn: nc, Log: &s.Log, Logger: quiet})
	if err != nil {
		fail(err)
	}
	srv, err := server.New(r, &server.Options{Logger: quiet})
	if err != nil {
		fail(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	mux.HandleFunc("GET /test/applied", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, r.Applied()) })
	mux.HandleFunc("POST /test/close", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Close(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	ln, err := net.Listen("tcp", s.HTTP)
	if err != nil {
		fail(err)
	}
	fmt.Println("ready", "http://"+ln.Addr().String())
	fail(http.Serve(ln, mux))
}

// childReplica is a facesearch node in a child process.
type childReplica struct {
	spec replicaSpec
	// client calls the node's API, on the same port across restarts.
	client *rekognition.Client
	cmd    *exec.Cmd
	ready  chan string // the child's first line
}

func newChildReplica(spec replicaSpec) *childReplica {
	return &childReplica{spec: spec, client: rekognition.New(rekognition.Options{
		BaseEndpoint:     aws.String(spec.url()),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("any", "any", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second},
	})}
}

func (s replicaSpec) url() string { return "http://" + s.HTTP }

// launch runs the node; wait waits until it serves. A node's OpenReplica
// waits for a quorum of NATS nodes, so a cluster's nodes are launched
// together.
func (c *childReplica) launch(t *testing.T) {
	t.Helper()
	spec, err := json.Marshal(c.spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), replicaEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c.cmd = cmd
	t.Cleanup(c.kill)
	c.ready = make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		c.ready <- strings.TrimSpace(s)
	}()
}

func (c *childReplica) wait(t *testing.T) {
	t.Helper()
	select {
	case l := <-c.ready:
		require.Equal(t, "ready "+c.spec.url(), l, "node %s", c.spec.Node.Name)
	case <-time.After(90 * time.Second):
		t.Fatalf("node %s did not start in 90s", c.spec.Node.Name)
	}
}

// kill SIGKILLs the node, if running, and reaps it.
func (c *childReplica) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	c.cmd = nil
}

// closeStore closes the node's Replica, so that its store holds all it
// applied: a SIGKILL may lose a tail of unsynced batches, which a restart
// would apply again.
func (c *childReplica) closeStore(t *testing.T) {
	t.Helper()
	resp, err := http.Post(c.spec.url()+"/test/close", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "node %s", c.spec.Node.Name)
}

// applied asks the node for the last sequence it applied.
func (c *childReplica) applied() (uint64, error) {
	resp, err := http.Get(c.spec.url() + "/test/applied")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(b), 10, 64)
}

// killLoad is the writes acknowledged under the kill test's load.
type killLoad struct {
	mu    sync.Mutex
	faces map[string]string // acknowledged face -> its acknowledged user, or ""
	users map[string]bool
	acked int
}

func (l *killLoad) record(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
	l.acked++
}

func (l *killLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

const killCollection = "kill"

// TestKillReplicasUnderLoad runs three facesearch nodes (embedded NATS, a
// Replica, the HTTP API) as child processes, and SIGKILLs them one at a
// time, the stream leader's node twice, under a load of IndexFaces,
// CreateUser and AssociateFaces through every node, restarting each. Writes
// carrying a ClientRequestToken are retried through another node until
// acknowledged. Then every acknowledged write is visible through every
// node, every node answers the same lists, and the stores are identical
// record for record.
func TestKillReplicasUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs three child processes through three kills")
	}
	ports, err := freePorts(9)
	require.NoError(t, err)
	var routes, natsURLs []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
		natsURLs = append(natsURLs, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	dir := t.TempDir()
	logOpts := LogOptions{PublishTimeout: 15 * time.Second}
	nodes := make([]*childReplica, 3)
	for i := range nodes {
		nodes[i] = newChildReplica(replicaSpec{
			Node: NodeOptions{
				Name:          fmt.Sprintf("f%d", i+1),
				ClientListen:  fmt.Sprintf("127.0.0.1:%d", ports[i]),
				ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[3+i]),
				Routes:        routes,
				DataDir:       filepath.Join(dir, fmt.Sprintf("f%d", i+1)),
			},
			Log:  logOpts,
			HTTP: fmt.Sprintf("127.0.0.1:%d", ports[6+i]),
		})
		nodes[i].launch(t)
	}
	for _, n := range nodes {
		n.wait(t)
	}
	nc, err := Connect(natsURLs, nil)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	ctx := context.Background()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	l, err := OpenLog(octx, nc, &logOpts)
	cancel()
	require.NoError(t, err)
	_, err = nodes[0].client.CreateCollection(ctx, &rekognition.CreateCollectionInput{
		CollectionId: aws.String(killCollection), Tags: map[string]string{engine.TagDimension: "8"}})
	require.NoError(t, err)

	load := &killLoad{faces: map[string]string{}, users: map[string]bool{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runKillWorker(t, nodes, w, load, stop)
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	// waitAcked waits until n more writes are acknowledged.
	waitAcked := func(n int, what string) {
		t.Helper()
		want, start := load.count()+n, time.Now()
		for load.count() < want {
			require.Less(t, time.Since(start), time.Minute, "%d writes acknowledged in a minute %s", load.count()-want+n, what)
			time.Sleep(20 * time.Millisecond)
		}
	}
	leader := func() int {
		t.Helper()
		for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := l.State(sctx)
			cancel()
			if i := slices.IndexFunc(nodes, func(n *childReplica) bool { return n.spec.Node.Name == st.Leader }); err == nil && i >= 0 {
				return i
			}
			require.Less(t, time.Since(start), time.Minute, "no stream leader: %v", err)
		}
	}

	waitAcked(10, "before the kills")
	for _, victim := range []string{"leader", "follower", "leader"} {
		i := leader()
		if victim == "follower" {
			i = (i + 1) % 3
		}
		killed := time.Now()
		nodes[i].kill()
		waitAcked(5, "after a kill")
		t.Logf("SIGKILLed %s (the stream %s); writes acknowledged again after %s", nodes[i].spec.Node.Name, victim, time.Since(killed).Round(time.Millisecond))
		nodes[i].launch(t)
		nodes[i].wait(t)
		waitAcked(5, "after a restart")
	}
	close(stop)
	wg.Wait()
	require.False(t, t.Failed())

	// Every node, through linearizable reads, shows every acknowledged
	// write, and the same lists.
	var first string
	for i, n := range nodes {
		faces, users := listAll(t, n.client)
		for f, u := range load.faces {
			got, ok := faces[f]
			require.True(t, ok, "node %d lacks acknowledged face %s", i+1, f)
			require.Equal(t, u, got, "node %d, face %s's user", i+1, f)
		}
		for u := range load.users {
			require.Contains(t, users, u, "node %d lacks acknowledged user %s", i+1, u)
		}
		b, err := json.Marshal([]any{faces, users})
		require.NoError(t, err)
		if i == 0 {
			first = string(b)
		}
		require.Equal(t, first, string(b), "node %d lists other faces or users than node 1", i+1)
	}
	t.Logf("%d faces and %d users acknowledged, %d associations", len(load.faces), len(load.users), load.count()-len(load.faces)-len(load.users))

	// Once every node has applied the whole log, the stores are the same.
	st, err := l.State(ctx)
	require.NoError(t, err)
	var stores []string
	for i, n := range nodes {
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			seq, err := n.applied()
			if err == nil && seq == st.Last {
				break
			}
			require.Less(t, time.Since(start), 30*time.Second, "node %d applied %d of %d: %v", i+1, seq, st.Last, err)
		}
		n.closeStore(t)
		n.kill()
		stores = append(stores, filepath.Join(n.spec.Node.DataDir, "store"))
	}
	requireSameStore(t, stores...)
}

// runKillWorker writes until stop: a face, a user, the face associated
// with the user, through node w and, after a failure, the next node. The
// face is not retried (IndexFaces takes no token); the user and the
// association are, with their tokens, until acknowledged.
func runKillWorker(t *testing.T, nodes []*childReplica, w int, load *killLoad, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(11, uint64(w)))
	node := w
	ctx := context.Background()
	// try runs call through the current node and the next ones until it
	// succeeds, giving up (and failing the test) after a minute; once
	// reports whether to retry at all.
	try := func(once bool, call func(c *rekognition.Client) error) bool {
		for start := time.Now(); ; {
			err := call(nodes[node].client)
			if err == nil {
				return true
			}
			node = (node + 1) % len(nodes)
			if once {
				return false
			}
			if time.Since(start) > time.Minute {
				t.Errorf("worker %d: no node acknowledged a retried write in a minute: %v", w, err)
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		v := make([]float32, 8)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		var face string
		if !try(true, func(c *rekognition.Client) error {
			out, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String(killCollection),
				Image: &types.Image{Bytes: npy.EncodeVector(v)}, ExternalImageId: aws.String(fmt.Sprintf("w%d-%d", w, i))})
			if err == nil {
				face = aws.ToString(out.FaceRecords[0].Face.FaceId)
			}
			return err
		}) {
			continue
		}
		load.record(func() { load.faces[face] = "" })
		user := fmt.Sprintf("u%d-%d", w, i)
		if !try(false, func(c *rekognition.Client) error {
			_, err := c.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String(killCollection),
				UserId: aws.String(user), ClientRequestToken: aws.String("cu-" + user)})
			return err
		}) {
			return
		}
		load.record(func() { load.users[user] = true })
		if !try(false, func(c *rekognition.Client) error {
			out, err := c.AssociateFaces(ctx, &rekognition.AssociateFacesInput{CollectionId: aws.String(killCollection),
				UserId: aws.String(user), FaceIds: []string{face}, ClientRequestToken: aws.String("af-" + user)})
			if err == nil && (len(out.AssociatedFaces) != 1 || aws.ToString(out.AssociatedFaces[0].FaceId) != face) {
				t.Errorf("worker %d: associating face %s with %s answered %+v", w, face, user, out)
			}
			return err
		}) {
			return
		}
		load.record(func() { load.faces[face] = user })
	}
}

// listAll lists, with linearizable reads, the kill test's collection:
// each face with its user, and each user with its status. Unlike the
// writers' calls, these reads retry as the SDK does by default: a reset
// read asynchronously by the transport surfaces as "use of closed network
// connection" even on a 200, which the SDK retries.
func listAll(t *testing.T, c *rekognition.Client) (faces, users map[string]string) {
	t.Helper()
	ctx := context.Background()
	c = rekognition.New(c.Options(), func(o *rekognition.Options) {
		o.Retryer, o.RetryMaxAttempts = awsretry.NewStandard(), 0
	})
	faces, users = map[string]string{}, map[string]string{}
	fp := rekognition.NewListFacesPaginator(c, &rekognition.ListFacesInput{CollectionId: aws.String(killCollection)})
	for fp.HasMorePages() {
		page, err := fp.NextPage(ctx)
		require.NoError(t, err)
		for _, f := range page.Faces {
			faces[aws.ToString(f.FaceId)] = aws.ToString(f.UserId)
		}
	}
	up := rekognition.NewListUsersPaginator(c, &rekognition.ListUsersInput{CollectionId: aws.String(killCollection)})
	for up.HasMorePages() {
		page, err := up.NextPage(ctx)
		require.NoError(t, err)
		for _, u := range page.Users {
			users[aws.ToString(u.UserId)] = string(u.UserStatus)
		}
	}
	return faces, users
}
