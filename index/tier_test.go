package index

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var compressedTiers = []Tier{TierInt8, TierFloat16}

// spikyVec is a unit vector with one large component: the worst case for a
// per-row int8 scale, which then leaves the other values few levels.
func spikyVec(rng *rand.Rand, dim int) []float32 {
	v := unitVec(rng, dim)
	v[rng.IntN(dim)] = 20
	n := float32(math.Sqrt(dot64(v, v)))
	for i := range v {
		v[i] /= n
	}
	return v
}

// wideVec spans magnitudes float16 cannot hold at both ends: values that
// saturate and values below its least subnormal.
func wideVec(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * math.Exp2(float64(rng.IntN(60)-40)))
	}
	return v
}

var vecKinds = []struct {
	name string
	vec  func(*rand.Rand, int) []float32
}{
	{"unit", unitVec},
	{"grid", gridVec},
	{"spiky", spikyVec},
	{"wide", wideVec},
}

// TestTierBoundsHold checks the heart of the compressed tiers: the bound
// the scan computes is never below the float32 kernel's score, for any
// data, so a row can only be left out when it cannot be in the answer.
func TestTierBoundsHold(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, tier := range compressedTiers {
		for _, kind := range vecKinds {
			for _, dim := range []int{1, 7, 32, 33, 128, 515} {
				t.Run(fmt.Sprintf("%v/%s/dim=%d", tier, kind.name, dim), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(81, uint64(dim)))
					m := newMatrix(dim, 128, 64, tier)
					fill(rng, m, model{}, 300, kind.vec)
					for _, simd := range []bool{true, false} {
						useKernels(simd, true)
						for range 5 {
							q := kind.vec(rng, dim)
							p := m.comp.prepare(q)
							out := make([]float32, m.chunkRows)
							dot := kernel(dim)
							slack := 0.0
							for lo := 0; lo < m.Len(); lo += m.chunkRows {
								hi := min(lo+m.chunkRows, m.Len())
								top := m.comp.bounds(p, lo, hi, out)
								assert.Equal(t, slices.Max(out[:hi-lo]), top, "the highest bound of rows %d-%d", lo, hi)
								for i := range hi - lo {
									s := dot(q, m.rowCopy(lo+i))
									require.GreaterOrEqual(t, out[i], s, "row %d simd=%v", lo+i, simd)
									slack = max(slack, float64(out[i]-s))
								}
							}
							if kind.name == "unit" && dim >= 32 {
								// Tight enough to be useful on embeddings.
								assert.Less(t, slack, 0.1, "largest bound - score")
							}
						}
					}
				})
			}
		}
	}
}

// TestTierSearchIsExact: a compressed search returns exactly what the
// float32 scan returns (same keys, scores, order), through mutations, for
// every tier, data kind and fan-out.
func TestTierSearchIsExact(t *testing.T) {
	t.Cleanup(func() { kernels = hostKernels })
	for _, tier := range compressedTiers {
		for _, kind := range vecKinds {
			t.Run(fmt.Sprintf("%v/%s", tier, kind.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(91, uint64(tier)))
				dim := 40
				m := newMatrix(dim, 128, 64, tier)
				// Few candidates past k: the proof must do real work, and
				// sometimes fail, on a few hundred rows.
				m.comp.slack = 2
				ref := newMatrix(dim, 128, 64, TierFloat32)
				md := model{}
				check := func() {
					for range 4 {
						rq := newRandQuery(rng, m, md, kind.vec)
						for _, workers := range []int{1, 3} {
							want, err := ref.search(context.Background(), rq.vec, rq.k, rq.minScore, workers)
							require.NoError(t, err)
							got, err := m.search(context.Background(), rq.vec, rq.k, rq.minScore, workers)
							require.NoError(t, err)
							require.Equal(t, want, got, "k=%d min=%v workers=%d", rq.k, rq.minScore, workers)
						}
					}
					checkCompressed(t, m)
				}
				for step := range 1500 {
					switch op := rng.IntN(10); {
					case op < 6 || len(md) < 10:
						key := rng.Uint64N(1 << 12)
						v := kind.vec(rng, dim)
						m.Upsert(key, v)
						ref.Upsert(key, v)
						md[key] = v
					default:
						for key := range md {
							require.True(t, m.Delete(key))
							ref.Delete(key)
							delete(md, key)
							break
						}
					}
					if step%100 == 99 {
						useKernels(step%200 == 99, true)
						check()
					}
				}
				t.Logf("%+v", m.Stats())
			})
		}
	}
}

// checkCompressed verifies the compressed copy row by row: each row's
// residual bound covers its decompressed difference.
func checkCompressed(t *testing.T, m *Matrix) {
	t.Helper()
	c := m.comp
	if c.tier() == TierInt8 {
		require.Len(t, scales(c), m.Len())
	}
	require.Len(t, c.resid, m.Len())
	decoded := make([]float64, m.dim)
	for r := range m.Len() {
		x := m.rowCopy(r)
		var d2 float64
		c.decode(r, decoded)
		for i, v := range x {
			y := decoded[i]
			d2 += (float64(v) - y) * (float64(v) - y)
		}
		require.LessOrEqual(t, math.Sqrt(d2), float64(c.resid[r]), "row %d", r)
		require.LessOrEqual(t, c.resid[r], c.maxResid)
		require.LessOrEqual(t, float32(math.Sqrt(dot64(x, x))), c.maxNorm)
	}
}

// scales is the int8 tier's per-row scales (nil for other tiers).
func scales(c *compressed) []float32 {
	if i8, ok := c.codes.(*int8Codes); ok {
		return i8.scale
	}
	return nil
}

// TestTierTies: rows with the same vector tie exactly in both scores and
// bounds; the answer keeps the smallest keys, as the float32 scan does.
func TestTierTies(t *testing.T) {
	for _, tier := range compressedTiers {
		rng := rand.New(rand.NewPCG(95, 96))
		m := newMatrix(64, 128, 64, tier)
		m.comp.slack = 1
		dup := unitVec(rng, 64)
		for _, k := range rng.Perm(80) {
			m.Upsert(uint64(1000+k), dup)
		}
		fill(rng, m, model{}, 400, unitVec)
		got, err := m.Search(context.Background(), dup, 10, 0)
		require.NoError(t, err)
		want, err := m.searchExact(context.Background(), dup, 10, 0, 1)
		require.NoError(t, err)
		assert.Equal(t, want, got, "%v", tier)
		for i, h := range got {
			assert.Equal(t, uint64(1000+i), h.Key, "%v", tier)
		}
		// Rows tied at the k-th score leave the heap's floor at the bar:
		// the proof cannot exclude them, so the float32 scan answered.
		assert.Positive(t, m.Stats().Fallbacks, "%v", tier)
	}
}

// TestTierScansCompressed: on embedding-like data the proof holds for
// (nearly) every query, so searches really read the small copy; this is
// the rate the bench reports at scale.
func TestTierScansCompressed(t *testing.T) {
	rng := rand.New(rand.NewPCG(97, 98))
	const dim, rows, queries = 128, 20_000, 50
	ms := map[Tier]*Matrix{}
	for _, tier := range append([]Tier{TierFloat32}, compressedTiers...) {
		ms[tier] = NewMatrixTier(dim, tier)
	}
	for key := range uint64(rows) {
		v := unitVec(rng, dim)
		for _, m := range ms {
			m.Upsert(key, v)
		}
	}
	for range queries {
		q := unitVec(rng, dim)
		want, err := ms[TierFloat32].Search(context.Background(), q, 10, -1)
		require.NoError(t, err)
		for _, tier := range compressedTiers {
			got, err := ms[tier].Search(context.Background(), q, 10, -1)
			require.NoError(t, err)
			require.Equal(t, want, got, "%v", tier)
		}
	}
	for _, tier := range compressedTiers {
		st := ms[tier].Stats()
		t.Logf("%v: %d of %d searches fell back to float32; %.1f rows rescored a search", tier, st.Fallbacks, st.Searches, float64(st.Rescored)/float64(st.Searches))
		assert.LessOrEqual(t, st.Fallbacks, uint64(queries/10), "%v: the proof should rarely fail", tier)
		// The rerank stops at the first bound below the 10th exact score:
		// a few rows past the answer, not the 2k+slack each worker holds.
		assert.Less(t, float64(st.Rescored)/float64(st.Searches), 30.0, "%v: rows rescored a search", tier)
	}
}

func TestParseTier(t *testing.T) {
	for _, tier := range []Tier{TierFloat32, TierInt8, TierFloat16} {
		got, err := ParseTier(tier.String())
		require.NoError(t, err)
		assert.Equal(t, tier, got)
	}
	got, err := ParseTier("")
	require.NoError(t, err)
	assert.Equal(t, TierFloat32, got)
	_, err = ParseTier("int4")
	assert.ErrorIs(t, err, ErrTier)
	assert.Equal(t, "Tier(9)", Tier(9).String())
	assert.Panics(t, func() { NewMatrixTier(4, Tier(9)) })
}

// BenchmarkSearchTier compares the tiers' single-query latency on a matrix
// past the caches.
func BenchmarkSearchTier(b *testing.B) {
	const rows, dim = 1 << 17, 512
	rng := rand.New(rand.NewPCG(99, 100))
	for _, tier := range append([]Tier{TierFloat32}, compressedTiers...) {
		m := NewMatrixTier(dim, tier)
		for key := range uint64(rows) {
			m.Upsert(key, unitVec(rng, dim))
		}
		q := unitVec(rng, dim)
		b.Run(tier.String(), func(b *testing.B) {
			b.SetBytes(int64(rows * dim * 4)) // the float32 bytes: GB/s is "as if scanned"
			for b.Loop() {
				if _, err := m.Search(context.Background(), q, 10, -1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(m.Stats().Fallbacks), "fallbacks")
		})
	}
}

func TestReserve(t *testing.T) {
	for _, tier := range []Tier{TierFloat32, TierInt8} {
		rng := rand.New(rand.NewPCG(101, 102))
		m := newMatrix(8, 128, 64, tier)
		md := model{}
		fill(rng, m, md, 10, gridVec)
		m.Reserve(500)
		assert.GreaterOrEqual(t, m.capacity(), 500)
		m.Reserve(5) // never shrinks
		assert.GreaterOrEqual(t, m.capacity(), 500)
		fill(rng, m, md, 520, gridVec)
		checkMatrix(t, m, md)
		if m.comp != nil {
			checkCompressed(t, m)
		}
		checkSearch(t, m, md, gridVec(rng, 8), 5, -1)
	}
}
