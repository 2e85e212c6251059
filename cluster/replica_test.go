package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/server"
)

// testNode is one facesearch node of a test: a Replica behind the HTTP
// server, and the real Rekognition client pointed at it.
type testNode struct {
	rep    *Replica
	dir    string
	url    string
	client *rekognition.Client
}

// startReplicas starts a Replica on each of c's NATS nodes, on the test's
// own stream and connections, each served over HTTP; edit adjusts node
// i's options. They are closed at cleanup.
func startReplicas(t *testing.T, c *testCluster, edit func(i int, o *ReplicaOptions)) []*testNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	var nodes []*testNode
	logOpts := runLogOptions(t)
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.ClientURL())
	}
	for i := range c.nodes {
		nc, err := Connect(failover(urls, i), nil)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		lo := *logOpts
		o := &ReplicaOptions{Name: fmt.Sprintf("r%d", i+1), Conn: nc, Log: &lo, Logger: quiet}
		if edit != nil {
			edit(i, o)
		}
		dir := filepath.Join(t.TempDir(), "store")
		rep, err := OpenReplica(ctx, dir, o)
		require.NoError(t, err)
		t.Cleanup(func() { rep.Close() })
		srv, err := server.New(rep, &server.Options{Logger: quiet})
		require.NoError(t, err)
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		nodes = append(nodes, &testNode{rep: rep, dir: dir, url: ts.URL, client: rekognition.New(rekognition.Options{
			BaseEndpoint:     aws.String(ts.URL),
			Region:           "us-east-1",
			Credentials:      credentials.NewStaticCredentialsProvider("any", "any", ""),
			RetryMaxAttempts: 1,
		})})
	}
	return nodes
}

// runLogOptions gives the test a stream of this run's own: the shared
// cluster keeps the streams of the same test's earlier runs (go test
// -count).
func runLogOptions(t testing.TB) *LogOptions {
	o := testLogOptions(t)
	run := time.Now().UnixNano()
	o.Stream, o.Subject = fmt.Sprintf("%s_%d", o.Stream, run), fmt.Sprintf("%s_%d", o.Subject, run)
	return o
}

// noLeaks fails the test if goroutines started after it was called are
// still running once the test's cleanups have run. The embedded NATS
// servers' goroutines are left out: the cluster shared by the package's
// tests starts some at any time (for other tests' streams), which goleak
// could not tell from this test's.
func noLeaks(t *testing.T) {
	before := map[string]bool{}
	for _, g := range goroutines() {
		before[goroutineID(g)] = true
	}
	t.Cleanup(func() {
		var left []string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			left = left[:0]
			for _, g := range goroutines() {
				if !before[goroutineID(g)] && !strings.Contains(g, "nats-io/nats-server/") {
					left = append(left, g)
				}
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		require.Empty(t, left, "goroutines left running")
	})
}

// goroutines returns the stack of every goroutine but the caller's.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")[1:]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineID is the "goroutine N" of a stack.
func goroutineID(stack string) string {
	id, _, _ := strings.Cut(stack, " [")
	return id
}

// apiCode is the Rekognition error code of an SDK call's error, or "".
func apiCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// healthz returns the status of a node's GET /healthz.
func healthz(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func vecNPY(r *rand.Rand, d int) []byte {
	v := make([]float32, d)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return npy.EncodeVector(v)
}

// A write acknowledged by one node is seen by a read that starts after it
// on every other node: users created round-robin, each read at once
// through the two other nodes, searches included.
func TestReplicaReadsSeeAcknowledgedWrites(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	nodes := startReplicas(t, c, nil)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	_, err := nodes[0].client.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("c")})
	require.NoError(t, err)
	const rounds = 30
	for i := range rounds {
		w := nodes[i%3]
		user := fmt.Sprintf("u%02d", i)
		_, err := w.client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("c"), UserId: aws.String(user)})
		require.NoError(t, err, "round %d", i)
		faces, err := w.client.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("c"),
			Image: &types.Image{Bytes: vecNPY(r, 8)}})
		require.NoError(t, err, "round %d", i)
		require.Len(t, faces.FaceRecords, 1)
		faceID := faces.FaceRecords[0].Face.FaceId
		for k := 1; k < 3; k++ {
			rd := nodes[(i+k)%3]
			d, err := rd.client.DescribeCollection(ctx, &rekognition.DescribeCollectionInput{CollectionId: aws.String("c")})
			require.NoError(t, err)
			require.EqualValues(t, i+1, *d.UserCount, "round %d, node %d", i, (i+k)%3+1)
			require.EqualValues(t, i+1, *d.FaceCount, "round %d, node %d", i, (i+k)%3+1)
			s, err := rd.client.SearchFaces(ctx, &rekognition.SearchFacesInput{CollectionId: aws.String("c"), FaceId: faceID,
				FaceMatchThreshold: aws.Float32(0)})
			require.NoError(t, err, "round %d: the new face is found on node %d", i, (i+k)%3+1)
			require.Equal(t, *faceID, *s.SearchedFaceId)
		}
	}
	// Every node applied the same log to the same store.
	requireSameReplicas(t, nodes)
}

// requireSameReplicas waits until every node has applied what any has
// (reads publish barriers, which the other nodes apply later), closes the
// nodes' replicas and compares their stores record for record.
func requireSameReplicas(t *testing.T, nodes []*testNode) {
	t.Helper()
	var last uint64
	for _, n := range nodes {
		last = max(last, n.rep.Applied())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, n := range nodes {
		require.NoError(t, n.rep.Applier().Progress().Wait(ctx, last), "node %d", i+1)
	}
	var dirs []string
	for _, n := range nodes {
		require.NoError(t, n.rep.Close())
		dirs = append(dirs, n.dir)
	}
	requireSameStore(t, dirs...)
}

// A retry with the same ClientRequestToken through another node, within
// JetStream's deduplication window and after it, returns the first
// outcome (the engine's token record, replicated by the apply); with other
// parameters it is IdempotentParameterMismatchException.
func TestReplicaTokenRetryThroughAnotherNode(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	const window = 200 * time.Millisecond
	nodes := startReplicas(t, c, func(_ int, o *ReplicaOptions) { o.Log.Duplicates = window })
	ctx := context.Background()
	_, err := nodes[0].client.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("c")})
	require.NoError(t, err)
	create := func(n *testNode, user, token string) error {
		_, err := n.client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("c"),
			UserId: aws.String(user), ClientRequestToken: aws.String(token)})
		return err
	}
	require.NoError(t, create(nodes[0], "alice", "tok-1"))
	require.NoError(t, create(nodes[1], "alice", "tok-1"), "a retry within the deduplication window")
	time.Sleep(2 * window)
	require.NoError(t, create(nodes[2], "alice", "tok-1"), "a retry after the deduplication window")
	err = create(nodes[1], "bob", "tok-1")
	var mismatch *types.IdempotentParameterMismatchException
	require.ErrorAs(t, err, &mismatch)
	// Another token is another request: alice exists.
	var conflict *types.ConflictException
	require.ErrorAs(t, create(nodes[2], "alice", "tok-2"), &conflict)
	users, err := nodes[1].client.ListUsers(ctx, &rekognition.ListUsersInput{CollectionId: aws.String("c")})
	require.NoError(t, err)
	require.Len(t, users.Users, 1)
}

// On a node that applies slowly, a linearizable read waits for the writes
// acknowledged before it, while a local read may not see them yet: the
// barrier is what the first test's reads rely on.
func TestReplicaSlowNodeReads(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	nodes := startReplicas(t, c, nil)
	slow := func(uint64) error { time.Sleep(30 * time.Millisecond); return nil }
	nodes[2].rep.applyFault.Store(&slow)
	ctx := context.Background()
	_, err := nodes[0].rep.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	stale := 0
	const rounds = 10
	for i := range rounds {
		_, err := nodes[0].rep.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: fmt.Sprintf("u%d", i)})
		require.NoError(t, err)
		local, err := nodes[2].rep.DescribeCollection(WithReadConsistency(ctx, Local), &engine.DescribeCollectionInput{CollectionId: "c"})
		if err != nil || local.UserCount < int64(i+1) {
			stale++
		}
		d, err := nodes[2].rep.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "c"})
		require.NoError(t, err)
		require.EqualValues(t, i+1, d.UserCount, "round %d: a linearizable read on the slow node", i)
	}
	require.Positive(t, stale, "local reads on the slow node never lagged: the test cannot tell a barrier from none")
}

// Under concurrent writes on every node, every linearizable read, on any
// node, sees at least the writes acknowledged before it started.
func TestReplicaConcurrentReadsSeeAcknowledgedWrites(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	nodes := startReplicas(t, c, nil)
	ctx := context.Background()
	_, err := nodes[0].rep.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	var acked atomic.Int64 // users whose CreateUser returned
	const writers, perWriter = 3, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers+3)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				_, err := nodes[(w+i)%3].rep.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
				acked.Add(1)
			}
		})
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	reads := make([]int, 3)
	for rd := range 3 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				before := acked.Load()
				d, err := nodes[rd].rep.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "c"})
				if err != nil {
					errs <- err
					return
				}
				if d.UserCount < before {
					errs <- fmt.Errorf("node %d read %d users, %d were acknowledged before the read started", rd+1, d.UserCount, before)
					return
				}
				reads[rd]++
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, writers*perWriter, acked.Load())
	for rd, n := range reads {
		require.Positive(t, n, "node %d read", rd+1)
	}
}
