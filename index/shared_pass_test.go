package index

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// sharedResult is what a SearchShared call returned.
type sharedResult struct {
	hits []Hit
	err  error
}

// holdPasses holds each shared pass of m as it starts, for walks through
// the coalescer one step at a time: started receives the pass's size, and
// the pass runs once release is sent to. queued waits until n requests
// are queued; call runs SearchShared(ctx, q, 5, -1) on a goroutine of its
// own and delivers the result on the channel it returns.
func holdPasses(t *testing.T, m *Matrix, q []float32) (started chan int, release chan struct{}, queued func(n int), call func(context.Context) chan sharedResult) {
	started = make(chan int, 8)
	release = make(chan struct{})
	m.passHook = func(qs []*query) {
		started <- len(qs)
		<-release
	}
	queued = func(n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			m.shared.mu.Lock()
			defer m.shared.mu.Unlock()
			return len(m.shared.queue) == n
		}, 5*time.Second, time.Millisecond)
	}
	call = func(ctx context.Context) chan sharedResult {
		ch := make(chan sharedResult, 1)
		go func() {
			hits, err := m.SearchShared(ctx, q, 5, -1)
			ch <- sharedResult{hits, err}
		}()
		return ch
	}
	return started, release, queued, call
}

// TestSharedPassGivesWay walks passes that start with fewer queries than
// the callers around, shared or alone: each gives way once the rest have
// queued, and its leader leads one pass for all of them, with the same
// answers; a member cancelled meanwhile is not searched again; a pass
// whose company does not come runs to its end.
func TestSharedPassGivesWay(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tier := range []Tier{TierFloat32, TierInt8} {
		t.Run(tier.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(91, uint64(tier)))
			m, _ := sharedMatrix(t, rng, 32, 2000, tier)
			q := unitVec(rng, 32)
			want, err := m.Search(context.Background(), q, 5, -1)
			require.NoError(t, err)

			started, release, queued, call := holdPasses(t, m, q)
			answered := func(ch chan sharedResult) {
				t.Helper()
				r := within(t, ch)
				require.NoError(t, r.err)
				assert.Equal(t, want, r.hits)
			}

			// Pass 1: A alone, with nobody around before it; B, C and D
			// queue behind it.
			a := call(context.Background())
			require.Equal(t, 1, within(t, started))
			b := call(context.Background())
			queued(1)
			c := call(context.Background())
			queued(2)
			ctxD, cancelD := context.WithCancel(context.Background())
			d := call(ctxD)
			queued(3)
			release <- struct{}{}
			answered(a)

			// Pass 2: B with C and D, four callers around. D gives up;
			// A comes back, and pass 2 gives way: B leads pass 3 with C
			// and A, not D.
			require.Equal(t, 3, within(t, started))
			cancelD()
			rd := within(t, d)
			assert.ErrorIs(t, rd.err, context.Canceled)
			a = call(context.Background())
			queued(1)
			before := m.Stats()
			release <- struct{}{}
			require.Equal(t, 3, within(t, started))
			release <- struct{}{}
			answered(a)
			answered(b)
			answered(c)
			after := m.Stats()
			assert.Equal(t, before.Passes+1, after.Passes, "pass 2 gave way: pass 3 counts")
			assert.Equal(t, before.Shared+4, after.Shared, "D counts in pass 2, B, C and A in pass 3")

			// Pass 4: E alone, with three callers around; two come back
			// and it gives way to pass 5, E with them.
			e := call(context.Background())
			require.Equal(t, 1, within(t, started))
			b = call(context.Background())
			queued(1)
			c = call(context.Background())
			queued(2)
			release <- struct{}{}
			require.Equal(t, 3, within(t, started))
			release <- struct{}{}
			answered(e)
			answered(b)
			answered(c)

			// Pass 6: F alone, with three callers around that do not
			// come back: it runs to its end.
			passes := m.Stats().Passes
			f := call(context.Background())
			require.Equal(t, 1, within(t, started))
			release <- struct{}{}
			answered(f)
			assert.Equal(t, passes+1, m.Stats().Passes, "pass 6 was one pass")

			assertIdle(t, m)
			close(release)
			close(started)
		})
	}
}

// assertIdle asserts that m's coalescer is idle: no pass running or
// named, nobody queued, no pass to join.
func assertIdle(t *testing.T, m *Matrix) {
	t.Helper()
	m.shared.mu.Lock()
	defer m.shared.mu.Unlock()
	assert.False(t, m.shared.running)
	assert.Empty(t, m.shared.queue)
	assert.Nil(t, m.shared.join)
}

// within receives from ch, failing the test if nothing comes within a
// few seconds: a hang fails at once rather than at the binary's timeout.
func within[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		require.FailNow(t, "nothing came in time")
		panic("unreachable")
	}
}

// TestSharedPassPanics: a panic in a shared pass reaches its leader's
// goroutine, its member returns ErrPassFailed rather than wait for a
// hand-off or return no hits as an answer, and the
// coalescer is left idle for the next caller.
func TestSharedPassPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(93, 94))
	m, _ := sharedMatrix(t, rng, 32, 2000, TierFloat32)
	q := unitVec(rng, 32)
	started, release, queued, call := holdPasses(t, m, q)
	hold := m.passHook
	boom := errors.New("pass panicked")
	m.passHook = func(qs []*query) {
		hold(qs)
		if len(qs) == 2 {
			panic(boom)
		}
	}

	// Pass 1: A alone; B and C queue, and B leads pass 2 with C, which
	// panics.
	a := call(context.Background())
	require.Equal(t, 1, within(t, started))
	b := make(chan any, 1)
	go func() {
		defer func() { b <- recover() }()
		_, _ = m.SearchShared(context.Background(), q, 5, -1)
	}()
	queued(1)
	c := call(context.Background())
	queued(2)
	release <- struct{}{}
	require.NoError(t, within(t, a).err)
	require.Equal(t, 2, within(t, started))
	release <- struct{}{}
	assert.Equal(t, boom, within(t, b))
	got := within(t, c)
	assert.ErrorIs(t, got.err, ErrPassFailed, "a member of a pass that failed is told so")
	assert.Nil(t, got.hits)

	assertIdle(t, m)
	close(release)
	close(started)
}

// TestSharedPassStoppedByJoiners walks a pass that gives way while its
// key func is held: in the float32 tier mid-scan, so that its partial
// heaps are dropped and B leads its queries again with D; in the int8 tier
// in rerank, once the scan has ended, so that the pass answers B and C and
// D leads the next. Every answer is a lone search's; the members the
// stopped pass answered count among the callers around, and each search
// counts once in Stats.
func TestSharedPassStoppedByJoiners(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tt := range []struct {
		tier     Tier
		answered bool // the stopped pass answered its queries
	}{
		{TierFloat32, false},
		{TierInt8, true},
	} {
		t.Run(tt.tier.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(95, uint64(tt.tier)))
			m, _ := sharedMatrix(t, rng, 32, 2000, tt.tier)
			// The first two rows of every chunk are one vector: their
			// scores tie for every query, and a tie is the one thing a
			// float32 scan asks key for while it runs, so that key can
			// hold a pass mid-scan, in every worker's first chunk.
			dup := unitVec(rng, 32)
			for r := 0; r < m.Len(); r += m.chunkRows {
				m.Upsert(m.keys[r], dup)
				m.Upsert(m.keys[r+1], dup)
			}
			rekey := func(k uint64) uint64 { return 1<<20 - k }
			var armed atomic.Bool
			blocked, resume := make(chan struct{}), make(chan struct{})
			var once sync.Once
			key := func(k uint64) uint64 {
				if armed.Load() {
					once.Do(func() {
						close(blocked)
						<-resume
					})
				}
				return rekey(k)
			}
			started, release, queued, _ := holdPasses(t, m, nil)
			// A, B, C and D search for vecs[0:4], alone first.
			vecs, wants := make([][]float32, 4), make([][]Hit, 4)
			for i := range vecs {
				vecs[i] = unitVec(rng, 32)
				var err error
				wants[i], err = m.searchAs(context.Background(), vecs[i], 5, -1, rekey, 1)
				require.NoError(t, err)
			}
			call := func(i int) chan sharedResult {
				ch := make(chan sharedResult, 1)
				go func() {
					hits, err := m.SearchSharedAs(context.Background(), vecs[i], 5, -1, key)
					ch <- sharedResult{hits, err}
				}()
				return ch
			}
			answered := func(ch chan sharedResult, i int) {
				t.Helper()
				r := within(t, ch)
				require.NoError(t, r.err)
				assert.Equal(t, wants[i], r.hits)
			}

			// Pass 1: A alone; B and C queue. Pass 2, B with C, may give
			// way to the third caller around, D, who queues while the
			// pass is held in key.
			a := call(0)
			require.Equal(t, 1, within(t, started))
			b := call(1)
			queued(1)
			c := call(2)
			queued(2)
			release <- struct{}{}
			answered(a, 0)
			require.Equal(t, 2, within(t, started))
			before := m.Stats()
			armed.Store(true)
			release <- struct{}{}
			within(t, blocked)
			d := call(3)
			queued(1)
			close(resume)

			if tt.answered {
				// D leads pass 3 alone, with B, C and itself around.
				require.Equal(t, 1, within(t, started))
				answered(b, 1)
				answered(c, 2)
				m.shared.mu.Lock()
				assert.Equal(t, 3, m.shared.around)
				m.shared.mu.Unlock()
				assert.Equal(t, before.Passes+1, m.Stats().Passes)
				assert.Equal(t, before.Shared+2, m.Stats().Shared)
				release <- struct{}{}
				answered(d, 3)
				assertIdle(t, m)
				return
			}
			// B leads pass 3 with C and D.
			require.Equal(t, 3, within(t, started))
			assert.Equal(t, before.Passes, m.Stats().Passes, "pass 2 gave way")
			assert.Equal(t, before.Shared, m.Stats().Shared, "pass 2 gave way")
			release <- struct{}{}
			answered(b, 1)
			answered(c, 2)
			answered(d, 3)
			assert.Equal(t, before.Passes+1, m.Stats().Passes)
			assert.Equal(t, before.Shared+3, m.Stats().Shared)
			assertIdle(t, m)
			close(release)
			close(started)
		})
	}
}

// benchTierMatrix returns a matrix of tier with 200k rows of dim (or
// FACESEARCH_BENCH_ROWS), random unit vectors from rng.
func benchTierMatrix(b *testing.B, dim int, tier Tier, rng *rand.Rand) *Matrix {
	b.Helper()
	rows := 200_000
	if s := os.Getenv("FACESEARCH_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		rows = n
	}
	m := NewMatrixTier(dim, tier)
	for key := range rows {
		m.Upsert(uint64(key), unitVec(rng, dim))
	}
	return m
}

// BenchmarkSharedVsBatch runs c goroutines calling SearchShared in a loop
// against SearchBatch of c queries back to back, alternated round by
// round on the same matrix, and reports both rates, their ratio and the
// coalesced passes' mean size (from Stats: passes that gave way not counted).
func BenchmarkSharedVsBatch(b *testing.B) {
	const dim = 512
	for _, tier := range []Tier{TierInt8, TierFloat32} {
		m := benchTierMatrix(b, dim, tier, rand.New(rand.NewPCG(81, 82)))
		rng := rand.New(rand.NewPCG(83, 84))
		for _, c := range []int{32, 256} {
			qs := make([]Query, c)
			for i := range qs {
				qs[i] = Query{Vec: unitVec(rng, dim), K: 10, MinScore: -1}
			}
			b.Run(fmt.Sprintf("%v/callers=%d", tier, c), func(b *testing.B) {
				const rounds = 4 // each caller's searches per round
				var shared, batch time.Duration
				var passes uint64
				for b.Loop() {
					start := time.Now()
					for range rounds {
						if _, err := m.SearchBatch(context.Background(), qs, nil); err != nil {
							b.Fatal(err)
						}
					}
					batch += time.Since(start)
					before := m.Stats().Passes
					start = time.Now()
					var wg sync.WaitGroup
					for _, q := range qs {
						wg.Go(func() {
							for range rounds {
								if _, err := m.SearchShared(context.Background(), q.Vec, q.K, q.MinScore); err != nil {
									b.Error(err)
								}
							}
						})
					}
					wg.Wait()
					shared += time.Since(start)
					passes += m.Stats().Passes - before
				}
				n := float64(c * rounds * b.N)
				b.ReportMetric(n/shared.Seconds(), "shared-q/s")
				b.ReportMetric(n/batch.Seconds(), "batch-q/s")
				b.ReportMetric(batch.Seconds()/shared.Seconds(), "shared/batch")
				b.ReportMetric(n/float64(passes), "q/pass")
			})
		}
	}
}
