package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// Serving nodes with Checkpoints.Rebootstrap as their hook and a
// Checkpointer over a Replica: a node stopped while the log is trimmed
// past it by two checkpoints rejoins through the newest, a new node joins
// the same way, and every store ends identical.
func TestReplicasRejoinThroughCheckpoints(t *testing.T) {
	c := sharedCluster(t)
	var cps *Checkpoints
	hook := func(ctx context.Context, dir string, gap *GapError) error { return cps.Rebootstrap(ctx, dir, gap) }
	nodes := startReplicas(t, c, func(_ int, o *ReplicaOptions) { o.Rebootstrap = hook })
	cps = openCheckpoints(t, []*Log{nodes[0].rep.Log()}, nil)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	users := 0
	write := func(n int) {
		for range n {
			_, err := nodes[0].rep.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: fmt.Sprintf("u%d", users)})
			require.NoError(t, err)
			users++
		}
	}
	_, err := nodes[0].rep.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	write(3)
	require.NoError(t, nodes[2].rep.Applier().Progress().Wait(ctx, nodes[0].rep.Applied()))
	stoppedAt := nodes[2].rep.Applied()
	require.NoError(t, nodes[2].rep.Close())

	k, err := cps.NewCheckpointer(nodes[0].rep, &CheckpointerOptions{Node: "r1", Scratch: t.TempDir(), Every: 1})
	require.NoError(t, err)
	for range 2 {
		write(3)
		took, err := k.Once(ctx)
		require.NoError(t, err)
		require.True(t, took)
	}
	st, err := nodes[0].rep.Log().State(ctx)
	require.NoError(t, err)
	require.Greater(t, st.First, stoppedAt+1, "the log is trimmed past the stopped node")
	write(2)

	rejoin := func(name, dir string) *Replica {
		o := nodes[2].rep.opts
		o.Name = name
		rep, err := OpenReplica(ctx, dir, &o)
		require.NoError(t, err)
		t.Cleanup(func() { rep.Close() })
		eventually(t, 30*time.Second, name+" bootstraps and catches up", func() bool {
			return rep.Health() == nil && rep.Applied() >= nodes[0].rep.Applied()
		})
		return rep
	}
	nodes[2].rep = rejoin("r3", nodes[2].dir)
	joined := &testNode{dir: filepath.Join(t.TempDir(), "store")}
	joined.rep = rejoin("r4", joined.dir)
	list, err := joined.rep.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c"})
	require.NoError(t, err)
	require.Len(t, list.Users, users)
	requireSameReplicas(t, append(nodes, joined))
}
