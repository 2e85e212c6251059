package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
	}
}

// A NextToken one node issued continues the listing on another: the
// nodes share the page-token secret through NATS.
func TestReplicaPageTokensWorkAcrossNodes(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	nodes := startReplicas(t, c, nil)
	ctx := context.Background()
	coll := aws.String("c")
	_, err := nodes[0].client.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: coll})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 4))
	var want []string
	for i := range 5 {
		id := fmt.Sprintf("u%d", i)
		want = append(want, id)
		_, err := nodes[i%3].client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: coll, UserId: aws.String(id)})
		require.NoError(t, err)
		_, err = nodes[i%3].client.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: coll, Image: &types.Image{Bytes: vecNPY(r, 4)}})
		require.NoError(t, err)
	}
	var users []string
	var token *string
	for page := 0; ; page++ {
		out, err := nodes[page%3].client.ListUsers(ctx, &rekognition.ListUsersInput{CollectionId: coll, MaxResults: aws.Int32(2), NextToken: token})
		require.NoError(t, err, "page %d on node %d", page, page%3+1)
		for _, u := range out.Users {
			users = append(users, *u.UserId)
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	require.Equal(t, want, users)
	var faces int
	token = nil
	for page := 0; ; page++ {
		out, err := nodes[2-page%3].client.ListFaces(ctx, &rekognition.ListFacesInput{CollectionId: coll, MaxResults: aws.Int32(2), NextToken: token})
		require.NoError(t, err, "page %d", page)
		faces += len(out.Faces)
		if token = out.NextToken; token == nil {
			break
		}
	}
	require.Equal(t, 5, faces)
}

// Without a quorum of the log, a write fails within its bounded time with
// the retryable ThrottlingException, a linearizable read fails likewise,
// and a local read still serves.
func TestReplicaQuorumLoss(t *testing.T) {
	noLeaks(t)
	c := startCluster(t, 3)
	const writeTimeout, readTimeout = 3 * time.Second, 2 * time.Second
	nodes := startReplicas(t, c, func(_ int, o *ReplicaOptions) {
		o.Log.PublishTimeout, o.Log.RequestTimeout = 2*time.Second, 500*time.Millisecond
		o.WriteTimeout, o.ReadTimeout = writeTimeout, readTimeout
	})
	ctx := context.Background()
	coll := aws.String("c")
	_, err := nodes[0].client.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: coll})
	require.NoError(t, err)
	_, err = nodes[1].client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: coll, UserId: aws.String("before")})
	require.NoError(t, err)
	require.NoError(t, nodes[0].rep.state.Load().applier.Progress().Wait(ctx, nodes[1].rep.Applied()))
	c.nodes[1].Shutdown()
	c.nodes[2].Shutdown()

	start := time.Now()
	_, err = nodes[0].client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: coll, UserId: aws.String("after"),
		ClientRequestToken: aws.String("t1")})
	took := time.Since(start)
	var throttled *types.ThrottlingException
	require.ErrorAs(t, err, &throttled, "a write without quorum")
	require.Less(t, took, writeTimeout+2*time.Second, "the write failed in bounded time")

	_, err = nodes[0].rep.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "after2"})
	require.ErrorIs(t, err, ErrUnconfirmed)
	require.ErrorIs(t, err, &engine.Error{Code: engine.CodeThrottling})

	start = time.Now()
	_, err = nodes[0].client.DescribeCollection(ctx, &rekognition.DescribeCollectionInput{CollectionId: coll})
	require.ErrorAs(t, err, &throttled, "a linearizable read without quorum")
	require.Less(t, time.Since(start), readTimeout+2*time.Second)

	d, err := nodes[0].rep.DescribeCollection(WithReadConsistency(ctx, Local), &engine.DescribeCollectionInput{CollectionId: "c"})
	require.NoError(t, err, "a local read without quorum")
	require.GreaterOrEqual(t, d.UserCount, int64(1))
}

// A node whose apply fails reports 503 on /healthz and refuses writes
// with a retryable error, retries, and once the failure clears applies
// the log again to a store identical to the others'.
func TestReplicaApplyFailureRecovers(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	nodes := startReplicas(t, c, func(_ int, o *ReplicaOptions) { o.RetryBackoff = 200 * time.Millisecond })
	ctx := context.Background()
	coll := aws.String("c")
	_, err := nodes[0].client.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: coll})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, healthz(t, nodes[2].url))

	fault := func(uint64) error { return fmt.Errorf("injected: %w", engine.ErrDiskFull) }
	nodes[2].rep.applyFault.Store(&fault)
	// A write taken by the failing node is committed, but that node cannot
	// apply it: it says so at once rather than at the write's deadline.
	start := time.Now()
	_, err = nodes[2].rep.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "taken-by-3"})
	require.ErrorIs(t, err, ErrUnhealthy)
	require.ErrorIs(t, err, &engine.Error{Code: engine.CodeThrottling})
	require.Less(t, time.Since(start), nodes[2].rep.opts.WriteTimeout/2)
	for i := range 10 {
		_, err := nodes[i%2].client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: coll, UserId: aws.String(fmt.Sprintf("u%d", i))})
		require.NoError(t, err, "the other nodes take writes")
	}
	eventually(t, 10*time.Second, "node 3 reports unhealthy", func() bool { return healthz(t, nodes[2].url) == http.StatusServiceUnavailable })
	require.ErrorIs(t, nodes[2].rep.Health(), ErrUnhealthy)
	require.ErrorIs(t, nodes[2].rep.Health(), engine.ErrDiskFull)
	_, err = nodes[2].client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: coll, UserId: aws.String("refused")})
	var throttled *types.ThrottlingException
	require.ErrorAs(t, err, &throttled, "an unhealthy node refuses writes")
	_, err = nodes[2].client.ListUsers(ctx, &rekognition.ListUsersInput{CollectionId: coll})
	require.ErrorAs(t, err, &throttled, "and linearizable reads")

	nodes[2].rep.applyFault.Store(nil)
	eventually(t, 10*time.Second, "node 3 recovers", func() bool { return healthz(t, nodes[2].url) == http.StatusOK })
	d, err := nodes[2].client.DescribeCollection(ctx, &rekognition.DescribeCollectionInput{CollectionId: coll})
	require.NoError(t, err)
	require.EqualValues(t, 11, *d.UserCount, "the ten writes and the one node 3 took")
	requireSameReplicas(t, nodes)
}

// A node whose log was trimmed past its store never skips a command: with
// no re-bootstrap hook it stays unhealthy and says why; with one, the hook
// replaces its store (here by a copy of another node's) and the node
// follows the log from there to the same store as the others.
func TestReplicaGapRebootstraps(t *testing.T) {
	c := sharedCluster(t)
	noLeaks(t)
	nodes := startReplicas(t, c, nil)
	ctx := context.Background()
	coll := aws.String("c")
	_, err := nodes[0].client.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: coll})
	require.NoError(t, err)
	require.NoError(t, nodes[2].rep.state.Load().applier.Progress().Wait(ctx, nodes[0].rep.Applied()))
	require.NoError(t, nodes[2].rep.Close())
	for i := range 5 {
		_, err := nodes[0].client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: coll, UserId: aws.String(fmt.Sprintf("u%d", i))})
		require.NoError(t, err)
	}
	// The log keeps only its last command.
	require.NoError(t, nodes[0].rep.log.Trim(ctx, nodes[0].rep.Applied()))

	reopen := func(hook func(context.Context, string, *GapError) error) *Replica {
		o := nodes[2].rep.opts
		o.Rebootstrap = hook
		rep, err := OpenReplica(ctx, nodes[2].dir, &o)
		require.NoError(t, err)
		t.Cleanup(func() { rep.Close() })
		return rep
	}
	stuck := reopen(nil)
	eventually(t, 10*time.Second, "a gap without a hook leaves the node unhealthy", func() bool { return stuck.Health() != nil })
	require.ErrorIs(t, stuck.Health(), ErrGap)
	require.NoError(t, stuck.Close())

	var calls atomic.Int32
	nodes[2].rep = reopen(func(_ context.Context, dir string, gap *GapError) error {
		calls.Add(1)
		tmp := dir + ".new"
		if err := nodes[0].rep.LocalEngine().Backup(tmp); err != nil {
			return err
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		return os.Rename(tmp, dir)
	})
	eventually(t, 10*time.Second, "the node re-bootstraps and catches up", func() bool {
		return nodes[2].rep.Health() == nil && nodes[2].rep.Applied() >= nodes[0].rep.Applied()
	})
	require.EqualValues(t, 1, calls.Load())
	// Its HTTP server still serves the replica closed above: ask the new one.
	users, err := nodes[2].rep.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c"})
	require.NoError(t, err)
	require.Len(t, users.Users, 5)
	requireSameReplicas(t, nodes)
}
