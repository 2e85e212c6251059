package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAddRows: a bulk load (AddRows, then Set from several goroutines in
// any order) builds the same matrix as Upsert row by row: the same rows,
// the same compressed copy and bounds, the same search answers, and no
// blocks past one spare, whether it starts empty, after rows of its own or
// after a Reserve that overestimated.
func TestAddRows(t *testing.T) {
	cases := []struct {
		name          string
		before, added int
		reserve       int
	}{
		{"empty", 0, 1000, 0},
		{"into the short first block", 10, 5, 0},
		{"past the short first block", 10, 500, 0},
		{"nothing", 20, 0, 0},
		{"overestimated", 0, 300, 2000},
		{"underestimated", 0, 900, 100},
	}
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%v/%s", tier, tc.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(301, uint64(tc.before+tc.added)))
				bulk, ref := newMatrix(16, 128, 64, tier), newMatrix(16, 128, 64, tier)
				md := model{}
				for range tc.before {
					key, v := rng.Uint64N(1<<40), gridVec(rng, 16)
					md[key] = v
					bulk.Upsert(key, v)
					ref.Upsert(key, v)
				}
				if tc.reserve > 0 {
					bulk.Reserve(tc.reserve)
				}
				keys := make([]uint64, 0, tc.added)
				vecs := make([][]float32, 0, tc.added)
				for len(keys) < tc.added {
					key := rng.Uint64N(1 << 40)
					if _, ok := md[key]; ok {
						continue
					}
					v := gridVec(rng, 16)
					md[key] = v
					keys, vecs = append(keys, key), append(vecs, v)
					ref.Upsert(key, v)
				}

				f := bulk.AddRows(keys)
				require.Equal(t, tc.added, f.Len())
				order := rng.Perm(tc.added)
				var wg sync.WaitGroup
				for w := range 4 {
					wg.Go(func() {
						for j := w; j < len(order); j += 4 {
							f.Set(order[j], vecs[order[j]])
						}
					})
				}
				wg.Wait()
				f.Done()
				f.Done() // a second Done does nothing

				checkMatrix(t, bulk, md)
				require.Equal(t, ref.keys, bulk.keys, "rows in the order of the keys")
				if bulk.comp != nil {
					checkCompressed(t, bulk)
					assert.Equal(t, scales(ref.comp), scales(bulk.comp))
					assert.Equal(t, ref.comp.resid, bulk.comp.resid)
					assert.Equal(t, ref.comp.maxNorm, bulk.comp.maxNorm)
					assert.Equal(t, ref.comp.maxResid, bulk.comp.maxResid)
				}
				for range 5 {
					q := gridVec(rng, 16)
					want, err := ref.Search(context.Background(), q, 10, -1)
					require.NoError(t, err)
					got, err := bulk.Search(context.Background(), q, 10, -1)
					require.NoError(t, err)
					require.Equal(t, want, got)
					checkSearch(t, bulk, md, q, 10, -1)
				}
				// The matrix goes on as usual after the load.
				for key := range md {
					require.True(t, bulk.Delete(key))
					delete(md, key)
					if len(md) <= tc.added/2 {
						break
					}
				}
				fill(rng, bulk, md, len(md)+40, gridVec)
				checkMatrix(t, bulk, md)
			})
		}
	}
}

// TestAddRowsRepeatedKey: a repeated key, or one already present, is a
// caller's bug; Done says so rather than leave a matrix whose key index
// disagrees with its rows.
func TestAddRowsRepeatedKey(t *testing.T) {
	m := NewMatrix(4)
	f := m.AddRows([]uint64{1, 2, 1})
	assert.Panics(t, f.Done)

	m = NewMatrix(4)
	m.Upsert(7, []float32{1, 0, 0, 0})
	f = m.AddRows([]uint64{8, 7})
	assert.Panics(t, f.Done)
}

// TestFillSetChecks: Set refuses a vector of the wrong length and a row
// outside the fill, as Upsert refuses a wrong length.
func TestFillSetChecks(t *testing.T) {
	m := NewMatrix(4)
	f := m.AddRows([]uint64{1, 2})
	defer f.Done()
	assert.Panics(t, func() { f.Set(0, []float32{1, 0, 0}) })
	assert.Panics(t, func() { f.Set(2, []float32{1, 0, 0, 0}) })
	assert.Panics(t, func() { f.Set(-1, []float32{1, 0, 0, 0}) })
}

// TestTrim: Trim frees what a Reserve allocated beyond the rows and one
// spare block, and nothing the rows use.
func TestTrim(t *testing.T) {
	rng := rand.New(rand.NewPCG(311, 312))
	m, md := newMatrix(8, 128, 64, TierInt8), model{}
	m.Reserve(1000)
	require.GreaterOrEqual(t, m.capacity(), 1000)
	fill(rng, m, md, 300, gridVec)
	m.Trim()
	assert.Len(t, m.blocks, 4, "3 blocks of rows and one spare")
	checkMatrix(t, m, md)
	checkCompressed(t, m)
	checkSearch(t, m, md, gridVec(rng, 8), 5, -1)
}

// TestGiveRoom: the room GiveRoom moves is the receiver's to fill, block
// for block, and what stays is the giver's: both then fill and search as
// matrices of their own. Where it cannot move whole blocks into an empty
// matrix of the same shape, it moves nothing.
func TestGiveRoom(t *testing.T) {
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		t.Run(tier.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(313, uint64(tier)))
			pool, dst := newMatrix(8, 128, 64, tier), newMatrix(8, 128, 64, tier)
			pool.Reserve(1000)
			pool.GiveRoom(dst, 300)
			assert.Equal(t, 384, pool.capacity(), "the blocks for 300 rows stay")
			assert.Equal(t, 1024-384, dst.capacity(), "the rest moves")
			if pool.comp != nil {
				assert.Equal(t, len(pool.blocks), pool.comp.blockCount(), "the giver's copies go with its blocks")
				assert.Equal(t, len(dst.blocks), dst.comp.blockCount(), "the receiver's copies come with its blocks")
			}
			mp, md := model{}, model{}
			keys := make([]uint64, 300)
			for i := range keys {
				keys[i] = uint64(i + 1)
			}
			f := pool.AddRows(keys)
			for i, k := range keys {
				v := gridVec(rng, 8)
				mp[k] = v
				f.Set(i, v)
			}
			f.Done()
			fill(rng, dst, md, 600, gridVec)
			assert.Equal(t, 1024-384, dst.capacity(), "600 rows fit in the room given")
			checkMatrix(t, pool, mp)
			checkMatrix(t, dst, md)
			if tier != TierFloat32 {
				checkCompressed(t, pool)
				checkCompressed(t, dst)
			}
			q := gridVec(rng, 8)
			checkSearch(t, pool, mp, q, 5, -1)
			checkSearch(t, dst, md, q, 5, -1)
		})
	}

	noop := []struct {
		name string
		make func() (pool, dst *Matrix)
		keep int
	}{
		{"keep covers the room", func() (*Matrix, *Matrix) {
			return newMatrix(8, 128, 64, TierFloat32), newMatrix(8, 128, 64, TierFloat32)
		}, 2000},
		{"receiver has blocks", func() (*Matrix, *Matrix) {
			dst := newMatrix(8, 128, 64, TierFloat32)
			dst.Reserve(1)
			return newMatrix(8, 128, 64, TierFloat32), dst
		}, 0},
		{"other tier", func() (*Matrix, *Matrix) { return newMatrix(8, 128, 64, TierFloat32), newMatrix(8, 128, 64, TierInt8) }, 0},
		{"other dimension", func() (*Matrix, *Matrix) {
			return newMatrix(8, 128, 64, TierFloat32), newMatrix(4, 128, 64, TierFloat32)
		}, 0},
		{"other blocks", func() (*Matrix, *Matrix) {
			return newMatrix(8, 128, 64, TierFloat32), newMatrix(8, 256, 64, TierFloat32)
		}, 0},
		{"itself", func() (*Matrix, *Matrix) { m := newMatrix(8, 128, 64, TierFloat32); return m, m }, 0},
	}
	for _, tc := range noop {
		t.Run(tc.name, func(t *testing.T) {
			pool, dst := tc.make()
			pool.Reserve(1000)
			before, dstBefore := pool.capacity(), dst.capacity()
			pool.GiveRoom(dst, tc.keep)
			assert.Equal(t, before, pool.capacity())
			assert.Equal(t, dstBefore, dst.capacity())
		})
	}
	t.Run("rows past keep stay", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(314, 315))
		pool, dst, md := newMatrix(8, 128, 64, TierInt8), newMatrix(8, 128, 64, TierInt8), model{}
		pool.Reserve(1000)
		fill(rng, pool, md, 100, gridVec)
		pool.GiveRoom(dst, 10)
		assert.Equal(t, 128, pool.capacity(), "the blocks of its 100 rows stay")
		assert.Equal(t, 1024-128, dst.capacity())
		fill(rng, dst, model{}, 500, gridVec)
		checkMatrix(t, pool, md)
		checkCompressed(t, pool)
	})
	t.Run("short first block", func(t *testing.T) {
		pool, dst := newMatrix(8, 128, 64, TierFloat32), newMatrix(8, 128, 64, TierFloat32)
		pool.Reserve(20) // one block of a panel's 64 rows, short of 128
		pool.GiveRoom(dst, 0)
		assert.Equal(t, 64, pool.capacity())
		assert.Zero(t, dst.capacity())
	})
}
