package index

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gridVec returns a vector of multiples of 1/16 in [-2/16, 2/16]. Every dot
// product of such vectors (up to 4096 values) is exact in float32 whatever
// the summation order, so Search can be compared with the oracle exactly,
// and scores collide often, which exercises the tie order.
func gridVec(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.IntN(5)-2) / 16
	}
	return v
}

// unitVec returns a random L2-normalized vector, as the engine stores them.
func unitVec(rng *rand.Rand, dim int) []float32 {
	v := randVec(rng, dim)
	n := float32(math.Sqrt(dot64(v, v)))
	for i := range v {
		v[i] /= n
	}
	return v
}

// model is what a Matrix should hold.
type model map[uint64][]float32

// ranked scores every row in float64 and sorts them all: the brute force
// that Search must agree with.
func (md model) ranked(q []float32) []Hit {
	all := make([]Hit, 0, len(md))
	for key, v := range md {
		all = append(all, Hit{Key: key, Score: float32(dot64(q, v))})
	}
	slices.SortFunc(all, func(a, b Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return all
}

// cut is what Search should return given every row ranked.
func cut(ranked []Hit, k int, minScore float32) []Hit {
	var want []Hit
	if k <= 0 {
		return nil
	}
	for _, h := range ranked {
		if len(want) == k || h.Score < minScore {
			break
		}
		want = append(want, h)
	}
	return want
}

// oracle is the brute-force answer to one search.
func (md model) oracle(q []float32, k int, minScore float32) []Hit {
	return cut(md.ranked(q), k, minScore)
}

// fill adds n rows with distinct random keys to m and md.
func fill(rng *rand.Rand, m *Matrix, md model, n int, vec func(*rand.Rand, int) []float32) {
	for len(md) < n {
		key := rng.Uint64N(1 << 40)
		if _, ok := md[key]; ok {
			continue
		}
		v := vec(rng, m.Dim())
		m.Upsert(key, v)
		md[key] = v
	}
}

// checkMatrix verifies m holds exactly md and that its internal structure
// is consistent.
func checkMatrix(t *testing.T, m *Matrix, md model) {
	t.Helper()
	require.Equal(t, len(md), m.Len())
	require.Len(t, m.rowOf, len(m.keys))
	for r, key := range m.keys {
		require.Equal(t, r, m.rowOf[key], "row of key %d", key)
	}
	for key, want := range md {
		got, ok := m.Vector(key)
		require.True(t, ok, "key %d missing", key)
		require.Equal(t, want, got, "vector of key %d", key)
	}
	seen := make(map[uint64]bool)
	m.Keys(func(key uint64) { seen[key] = true })
	require.Len(t, seen, len(md))
	used := (m.Len() + m.blockRows - 1) / m.blockRows
	require.LessOrEqual(t, len(m.blocks), used+1, "more than one spare block")
}

// checkSearch compares Search, at several fan-outs and with and without
// SIMD, with the oracle.
func checkSearch(t *testing.T, m *Matrix, md model, q []float32, k int, minScore float32) {
	t.Helper()
	checkSearchRanked(t, m, md.ranked(q), q, k, minScore)
}

func checkSearchRanked(t *testing.T, m *Matrix, ranked []Hit, q []float32, k int, minScore float32) {
	t.Helper()
	want := cut(ranked, k, minScore)
	for _, simd := range []bool{true, false} {
		useKernels(simd, true)
		got, err := m.Search(context.Background(), q, k, minScore)
		require.NoError(t, err)
		require.Equal(t, want, got, "Search(k=%d, min=%v) simd=%v", k, minScore, simd)
		for _, workers := range []int{2, 3, 8} {
			got, err := m.search(context.Background(), q, k, minScore, workers)
			require.NoError(t, err)
			require.Equal(t, want, got, "search(k=%d, min=%v) simd=%v workers=%d", k, minScore, simd, workers)
		}
	}
}

func TestSearch(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	tests := []struct {
		name      string
		dim, rows int
		blockRows int // 0: NewMatrix's geometry
		chunkRows int
	}{
		{name: "empty", dim: 8, rows: 0},
		{name: "one row", dim: 8, rows: 1},
		{name: "seven rows", dim: 3, rows: 7},
		{name: "100 rows", dim: 67, rows: 100},
		{name: "tiny blocks", dim: 5, rows: 300, blockRows: 128, chunkRows: 64},
		{name: "20k rows", dim: 256, rows: 20_000}, // more than one worker by default
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.rows), uint64(tt.dim)))
			m := NewMatrix(tt.dim)
			if tt.blockRows > 0 {
				m = newMatrix(tt.dim, tt.blockRows, tt.chunkRows, TierFloat32)
			}
			md := model{}
			fill(rng, m, md, tt.rows, gridVec)
			checkMatrix(t, m, md)
			if tt.rows*tt.dim >= 2*workerFloats && runtime.GOMAXPROCS(0) > 1 {
				require.Greater(t, m.workers(), 1, "Search should fan out")
			}

			queries := [][]float32{gridVec(rng, tt.dim)}
			for key := range md { // a stored row: it must find itself
				queries = append(queries, md[key])
				break
			}
			for qi, q := range queries {
				all := md.ranked(q)
				cutoffs := []float32{float32(math.Inf(-1)), 0}
				if len(all) > 0 {
					// A score that several rows share: rows equal to the
					// cut-off are in.
					cutoffs = append(cutoffs, all[min(len(all)-1, 5)].Score)
				}
				for _, k := range []int{-1, 0, 1, 10, len(md) + 5} {
					for _, minScore := range cutoffs {
						t.Run(fmt.Sprintf("q%d/k=%d/min=%v", qi, k, minScore), func(t *testing.T) {
							checkSearchRanked(t, m, all, q, k, minScore)
						})
					}
				}
			}
		})
	}
}

func TestSearchUnitVectors(t *testing.T) {
	// Real embeddings: scores are not exact, so the kernel's own float32
	// result must equal what Search reports and agree with float64 closely.
	rng := rand.New(rand.NewPCG(3, 4))
	m := NewMatrix(512)
	md := model{}
	fill(rng, m, md, 5000, unitVec)
	q := unitVec(rng, 512)
	for _, workers := range []int{1, 4} {
		got, err := m.search(context.Background(), q, 20, 0, workers)
		require.NoError(t, err)
		require.Len(t, got, 20)
		want := md.oracle(q, 20, 0)
		for i, h := range got {
			v, _ := m.Vector(h.Key)
			assert.Equal(t, Dot(q, v), h.Score, "hit %d", i)
			assert.InDelta(t, want[i].Score, h.Score, 1e-6, "hit %d", i)
			if i > 0 {
				assert.Negative(t, CompareHits(got[i-1], h), "order at %d", i)
			}
		}
	}
}

func TestSearchTies(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	rng := rand.New(rand.NewPCG(5, 6))
	const dim = 16
	m := newMatrix(dim, 128, 64, TierFloat32) // ties spread across blocks and workers
	md := model{}
	dup := gridVec(rng, dim)
	keys := rng.Perm(60)
	for _, k := range keys { // inserted in random key order, among other rows
		v := slices.Clone(dup)
		m.Upsert(uint64(100+k), v)
		md[uint64(100+k)] = v
		fill(rng, m, md, len(md)+4, gridVec)
	}
	for _, k := range []int{1, 7, 10, 59, 60, 61, 300} {
		checkSearch(t, m, md, dup, k, float32(math.Inf(-1)))
	}
	got, err := m.Search(context.Background(), dup, 10, 0)
	require.NoError(t, err)
	for i, h := range got {
		assert.Equal(t, uint64(100+i), h.Key, "the smallest tied keys win, ascending")
	}
}

func TestSearchAfterMutations(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, geo := range []struct{ dim, blockRows, chunkRows int }{
		{dim: 6, blockRows: 64, chunkRows: 64},
		{dim: 6, blockRows: 256, chunkRows: 64},
		{dim: 33},
	} {
		t.Run(fmt.Sprintf("d=%d/block=%d", geo.dim, geo.blockRows), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(geo.dim+geo.blockRows)))
			m := NewMatrix(geo.dim)
			if geo.blockRows > 0 {
				m = newMatrix(geo.dim, geo.blockRows, geo.chunkRows, TierFloat32)
			}
			md := model{}
			var deleted []uint64
			anyKey := func() uint64 {
				for key := range md {
					return key
				}
				return 0
			}
			for step := range 3000 {
				switch op := rng.IntN(10); {
				case op < 4 || len(md) == 0: // a new key
					key := rng.Uint64N(1 << 20)
					v := gridVec(rng, geo.dim)
					m.Upsert(key, v)
					md[key] = v
				case op < 5: // overwrite an existing key
					key := anyKey()
					v := gridVec(rng, geo.dim)
					m.Upsert(key, v)
					md[key] = v
				case op < 6: // delete the last row: no swap
					key := m.keys[len(m.keys)-1]
					require.True(t, m.Delete(key))
					delete(md, key)
					deleted = append(deleted, key)
				case op < 8: // delete any row
					key := anyKey()
					require.True(t, m.Delete(key))
					delete(md, key)
					deleted = append(deleted, key)
				case op < 9: // delete an absent key
					key := uint64(1<<21) + rng.Uint64N(1000)
					require.False(t, m.Delete(key))
				default: // bring a deleted key back
					if len(deleted) > 0 {
						key := deleted[rng.IntN(len(deleted))]
						v := gridVec(rng, geo.dim)
						m.Upsert(key, v)
						md[key] = v
					}
				}
				if step%100 == 99 {
					checkMatrix(t, m, md)
					q := gridVec(rng, geo.dim)
					checkSearch(t, m, md, q, 5, float32(math.Inf(-1)))
					checkSearch(t, m, md, q, len(md)+1, 0)
				}
			}
		})
	}
}

func TestGrowAndDrain(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	m := newMatrix(4, 128, 64, TierFloat32)
	md := model{}
	fill(rng, m, md, 3000, gridVec)
	checkMatrix(t, m, md)
	for key := range md {
		if len(md) == 100 {
			break
		}
		require.True(t, m.Delete(key))
		delete(md, key)
	}
	checkMatrix(t, m, md)
	assert.Less(t, cap(m.keys), 1000, "keys shrink after most rows go")
	checkSearch(t, m, md, gridVec(rng, 4), 10, 0)
	for key := range md {
		m.Delete(key)
	}
	delete(md, 0)
	clear(md)
	checkMatrix(t, m, md)
	hits, err := m.Search(context.Background(), gridVec(rng, 4), 10, -1)
	require.NoError(t, err)
	assert.Nil(t, hits)
	fill(rng, m, md, 500, gridVec)
	checkMatrix(t, m, md)
	checkSearch(t, m, md, gridVec(rng, 4), 10, 0)
	kernels = hostKernels
}

func TestReserveKeys(t *testing.T) {
	tests := []struct {
		name     string
		rows     int // before ReserveKeys
		n        int
		wantRoom bool // ReserveKeys gives the keys room for n
	}{
		{"empty", 0, 500, true},
		{"empty, hint too low", 0, 100, true},
		{"has rows", 10, 500, false},
		{"zero", 0, 0, false},
		{"negative", 0, -5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 22))
			m := newMatrix(4, 128, 64, TierFloat32)
			md := model{}
			fill(rng, m, md, tt.rows, gridVec)
			before, index := cap(m.keys), reflect.ValueOf(m.rowOf).UnsafePointer()
			m.ReserveKeys(tt.n)
			assert.Equal(t, tt.wantRoom, reflect.ValueOf(m.rowOf).UnsafePointer() != index, "key map made anew")
			if tt.wantRoom {
				require.GreaterOrEqual(t, cap(m.keys), tt.n)
				room := cap(m.keys)
				fill(rng, m, md, min(tt.n, 300), gridVec)
				assert.Equal(t, room, cap(m.keys), "rows within the room do not move the keys")
			} else {
				require.Equal(t, before, cap(m.keys))
			}
			fill(rng, m, md, 600, gridVec) // past any room
			checkMatrix(t, m, md)
			checkSearch(t, m, md, gridVec(rng, 4), 10, 0)
			m.ReserveKeys(10_000)
			require.Less(t, cap(m.keys), 10_000, "a matrix with rows keeps its key index")
			checkMatrix(t, m, md)
		})
	}
	kernels = hostKernels
}

// TestReserveKeysThenAddRows: a bulk fill keeps the key map ReserveKeys
// made for it, and one beyond the room makes its own.
func TestReserveKeysThenAddRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, rows := range []int{100, 1000} {
		m := newMatrix(4, 128, 64, TierFloat32)
		m.ReserveKeys(500)
		index := reflect.ValueOf(m.rowOf).UnsafePointer()
		md := model{}
		keys := make([]uint64, rows)
		for i := range keys {
			keys[i] = uint64(i)*7 + 3
			md[keys[i]] = gridVec(rng, 4)
		}
		f := m.AddRows(keys)
		for i, key := range keys {
			f.Set(i, md[key])
		}
		f.Done()
		assert.Equal(t, rows <= 500, reflect.ValueOf(m.rowOf).UnsafePointer() == index, "%d rows: the reserved key map kept", rows)
		checkMatrix(t, m, md)
	}
}

func TestFirstBlockGrowth(t *testing.T) {
	m := NewMatrix(512)
	m.Upsert(1, make([]float32, 512))
	assert.Equal(t, firstBlockRows*512, len(m.blocks[0]), "a small matrix does not pay for a full block")
	for key := range uint64(3000) {
		m.Upsert(key, make([]float32, 512))
	}
	assert.Len(t, m.blocks, 2)
	assert.Equal(t, m.blockRows*512, len(m.blocks[0]))
	assert.Equal(t, m.blockRows*512, len(m.blocks[1]))
}

func TestVectorIsCapped(t *testing.T) {
	m := NewMatrix(2)
	m.Upsert(1, []float32{1, 2})
	m.Upsert(2, []float32{3, 4})
	v, ok := m.Vector(1)
	require.True(t, ok)
	_ = append(v, 99) // must not overwrite row 2
	v2, _ := m.Vector(2)
	assert.Equal(t, []float32{3, 4}, v2)
	_, ok = m.Vector(3)
	assert.False(t, ok)
}

func TestMisuse(t *testing.T) {
	assert.Panics(t, func() { NewMatrix(0) })
	m := NewMatrix(3)
	assert.Panics(t, func() { m.Upsert(1, []float32{1, 2}) })
	_, err := m.Search(context.Background(), []float32{1, 2}, 1, 0)
	assert.ErrorIs(t, err, ErrDimension)
}

func TestSearchCancel(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	m := newMatrix(8, 128, 64, TierFloat32)
	fill(rng, m, model{}, 1000, gridVec)
	q := gridVec(rng, 8)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline", expired, context.DeadlineExceeded},
	} {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, workers), func(t *testing.T) {
				hits, err := m.search(tt.ctx, q, 10, 0, workers)
				assert.ErrorIs(t, err, tt.want)
				assert.Nil(t, hits)
			})
		}
	}

	t.Run("mid-scan", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		visited := 0
		err := m.scan(1, m.chunkRows, ctxStop(ctx), func(int, int, int) {
			visited++
			cancel()
		}, nil)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, visited, "the scan stops at the next chunk")
	})
}

func TestConcurrentSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	m := NewMatrix(64)
	md := model{}
	fill(rng, m, md, 20_000, gridVec)
	queries := make([][]float32, 8)
	wants := make([][]Hit, len(queries))
	for i := range queries {
		queries[i] = gridVec(rng, 64)
		wants[i] = md.oracle(queries[i], 10, 0)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				qi := (g + i) % len(queries)
				got, err := m.search(context.Background(), queries[qi], 10, 0, 1+i%4)
				if assert.NoError(t, err) {
					assert.Equal(t, wants[qi], got)
				}
				if v, ok := m.Vector(got[0].Key); assert.True(t, ok) {
					assert.Equal(t, got[0].Score, Dot(queries[qi], v))
				}
				assert.Equal(t, 20_000, m.Len())
			}
		})
	}
	wg.Wait()
}

func TestMemoryPerRow(t *testing.T) {
	// The contract is <= 1.15 x the raw vectors at 1M x 512, slack and the
	// key map included. 64k rows keeps the test light while still spanning
	// many blocks; the map and block slack are relatively larger here than
	// at 1M rows, so passing here is the stricter check.
	if testing.Short() {
		t.Skip("allocates 128 MiB")
	}
	const rows, dim = 64 << 10, 512
	vec := make([]float32, dim)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := NewMatrix(dim)
	for key := range uint64(rows) {
		m.Upsert(key*7919, vec) // spread keys like real primary keys would not; it does not matter to the map
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perRow := float64(after.HeapAlloc-before.HeapAlloc) / rows
	t.Logf("%.1f bytes per row, raw %d (%.3fx)", perRow, 4*dim, perRow/(4*dim))
	assert.LessOrEqual(t, perRow, 1.15*4*dim)
	runtime.KeepAlive(m)
}

func benchMatrix(b *testing.B, rows, dim int) (*Matrix, []float32) {
	b.Helper()
	rng := rand.New(rand.NewPCG(uint64(rows), uint64(dim)))
	m := NewMatrix(dim)
	for key := range uint64(rows) {
		m.Upsert(key, unitVec(rng, dim))
	}
	return m, unitVec(rng, dim)
}

func BenchmarkSearch(b *testing.B) {
	const rows, dim = 100_000, 512
	m, q := benchMatrix(b, rows, dim)
	for _, k := range []int{10, 1000} {
		b.Run(fmt.Sprintf("rows=%d/dim=%d/k=%d", rows, dim, k), func(b *testing.B) {
			b.SetBytes(int64(rows * dim * 4))
			for b.Loop() {
				if _, err := m.Search(context.Background(), q, k, -1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSearchWorkers is how workerFloats was chosen: on cache-resident
// matrices the fan-out's overhead outweighs a second worker.
func BenchmarkSearchWorkers(b *testing.B) {
	const dim = 512
	fanouts := []int{1, 2, 4, runtime.GOMAXPROCS(0)}
	slices.Sort(fanouts)
	fanouts = slices.Compact(fanouts)
	for _, rows := range []int{1024, 4096, 8192, 16384, 65536} {
		m, q := benchMatrix(b, rows, dim)
		for _, workers := range fanouts {
			b.Run(fmt.Sprintf("rows=%d/workers=%d", rows, workers), func(b *testing.B) {
				b.SetBytes(int64(rows * dim * 4))
				for b.Loop() {
					if _, err := m.search(context.Background(), q, 10, -1, workers); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestAppendVector: a row comes back whole after dst's values, as a copy
// (writing to it changes no search), and a missing key leaves dst as it
// was.
func TestAppendVector(t *testing.T) {
	m := NewMatrix(3)
	m.Upsert(7, []float32{0.6, 0.8, 0})
	m.Upsert(8, []float32{0, 0, 1})
	got, ok := m.AppendVector([]float32{9}, 8)
	require.True(t, ok)
	require.Equal(t, []float32{9, 0, 0, 1}, got)
	got[1] = 5
	v, ok := m.Vector(8)
	require.True(t, ok)
	require.Equal(t, []float32{0, 0, 1}, v)
	got, ok = m.AppendVector([]float32{9}, 99)
	require.False(t, ok)
	require.Equal(t, []float32{9}, got)
}

// TestDeleteClearsSlot: the slot a delete leaves past the rows holds zeros,
// not the row that moved out of it (nor the deleted one), so the lanes
// past the rows of a panel score 0.
func TestDeleteClearsSlot(t *testing.T) {
	m := NewMatrix(4)
	m.Upsert(1, []float32{1, 0, 0, 0})
	m.Upsert(2, []float32{0, 1, 0, 0})
	m.Upsert(3, []float32{0, 0, 1, 0})
	require.True(t, m.Delete(1)) // row 2 (key 3) moves into row 0
	require.Equal(t, []float32{0, 0, 0, 0}, m.rowCopy(2))
	require.True(t, m.Delete(2)) // the last row itself
	require.Equal(t, []float32{0, 0, 0, 0}, m.rowCopy(1))
	v, _ := m.Vector(3)
	require.Equal(t, []float32{0, 0, 1, 0}, v)
}
