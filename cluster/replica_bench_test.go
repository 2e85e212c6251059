package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// BenchmarkReplica measures, on 3 embedded NATS nodes and their replicas
// on loopback, a read with each consistency (the read barrier's cost is
// their difference), one at a time and 64 at once, and a write (publish,
// quorum, local apply) one at a time, each called directly on a replica.
func BenchmarkReplica(b *testing.B) {
	c := sharedCluster(b)
	ctx := context.Background()
	var reps []*Replica
	logOpts := runLogOptions(b)
	for i, nc := range c.conns {
		rep, err := OpenReplica(ctx, filepath.Join(b.TempDir(), "store"), &ReplicaOptions{
			Name: fmt.Sprintf("b%d", i+1), Conn: nc, Log: logOpts, Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(b, err)
		b.Cleanup(func() { rep.Close() })
		reps = append(reps, rep)
	}
	_, err := reps[0].CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
	require.NoError(b, err)
	in := &engine.DescribeCollectionInput{CollectionId: "c"}
	for _, tt := range []struct {
		name string
		ctx  context.Context
	}{{"read=local", WithReadConsistency(ctx, Local)}, {"read=linearizable", ctx}} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := reps[1].DescribeCollection(tt.ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// 64 readers at once share barriers: one in flight per node.
	b.Run("read=linearizable/concurrency=64", func(b *testing.B) {
		b.SetParallelism(32) // x GOMAXPROCS 2
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := reps[1].DescribeCollection(ctx, in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	users := 0 // across the sub-benchmark's runs (-count)
	b.Run("write=CreateUser", func(b *testing.B) {
		n := 0
		start := time.Now()
		for b.Loop() {
			n++
			users++
			if _, err := reps[2].CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: fmt.Sprintf("u%d", users)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "writes/s")
	})
}
