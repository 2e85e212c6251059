package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// BenchmarkEngineApplier applies a seeded log of the eight mutations to a
// fresh store per iteration, alone and with runs of read barriers between
// them (about four per mutation, as when other nodes read), and reports
// the commands applied per second.
func BenchmarkEngineApplier(b *testing.B) {
	mutations := workload(b, 9, 300)
	for _, tc := range []struct {
		name string
		log  []*Command
	}{
		{"log=mutations", mutations},
		{"log=mutations+barriers", withBarriers(mutations, 9, 8)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				applyLog(b, b.TempDir(), nil, tc.log)
			}
			b.ReportMetric(float64(len(tc.log)*b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}

// BenchmarkCatchUp times a node that joins a log of 2,000 commands (one
// CreateUser to three barriers) on 3 embedded NATS nodes: from a fresh
// store, it follows the log until it has applied the last command.
func BenchmarkCatchUp(b *testing.B) {
	const n = 2000
	c := sharedCluster(b)
	l := openLogs(b, c, testLogOptions(b))[0]
	ctx := context.Background()
	create := mutation(b, "c0", OpCreateCollection, 0, &engine.CreateCollectionInput{CollectionId: "c"})
	_, err := l.Publish(ctx, create)
	require.NoError(b, err)
	var wg sync.WaitGroup
	for w := range 16 { // concurrent publishers share the log's fsyncs
		wg.Go(func() {
			for i := w; i < n-1; i += 16 {
				cmd := barrier(fmt.Sprint("b", i), time.Duration(i))
				if i%4 == 0 {
					cmd = mutation(b, fmt.Sprint("m", i), OpCreateUser, time.Duration(i), &engine.CreateUserInput{CollectionId: "c", UserId: fmt.Sprint("u", i)})
				}
				if _, err := l.Publish(ctx, cmd); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st, err := l.State(ctx)
	require.NoError(b, err)
	require.EqualValues(b, n, st.Last)

	for b.Loop() {
		e, err := engine.Open(filepath.Join(b.TempDir(), "store"), nil)
		require.NoError(b, err)
		a, err := NewEngineApplier(e, nil)
		require.NoError(b, err)
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Follow(fctx, 0, a) }()
		require.NoError(b, a.Progress().Wait(ctx, n))
		cancel()
		<-done
		require.NoError(b, e.Close())
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "cmds/s")
}
