package index

import (
	"fmt"
	"math"
	"slices"
)

// Tier is the form of the rows a search scans.
//
// Every tier keeps the float32 rows: they are what [Matrix.Vector] returns
// and what every reported score is computed from. A compressed tier adds a
// smaller copy of the rows. A search scans the copy for an upper bound of
// each row's score, keeps the rows with the highest bounds as candidates
// (more than k, see candidateSlack), and scores only those exactly. The bound
// is rigorous (quantization residual, query rounding and float32 rounding
// included), so when every row left out has a bound below the k-th exact
// score the answer is provably the float32 scan's; when that proof fails
// (rare on real embeddings) the search scans the float32 rows too
// ([Stats].Fallbacks). Either way a compressed search returns exactly what
// a [TierFloat32] search returns, and reads a quarter of the bytes when the
// proof holds.
type Tier uint8

const (
	// TierFloat32 scans the float32 rows: 4 bytes per value.
	TierFloat32 Tier = iota
	// TierInt8 scans an int8 copy with one scale per row: 1 byte per value
	// plus 8 bytes per row, on top of the float32 rows.
	TierInt8
	// TierFloat16 scans an IEEE half-precision copy: 2 bytes per value
	// plus 4 bytes per row, on top of the float32 rows.
	TierFloat16
)

var tierNames = []string{TierFloat32: "float32", TierInt8: "int8", TierFloat16: "float16"}

// String returns the tier's name: "float32", "int8" or "float16".
func (t Tier) String() string {
	if int(t) < len(tierNames) {
		return tierNames[t]
	}
	return fmt.Sprintf("Tier(%d)", uint8(t))
}

// ParseTier returns the tier named s, as [Tier.String] names it. The empty
// string is [TierFloat32].
func ParseTier(s string) (Tier, error) {
	if s == "" {
		return TierFloat32, nil
	}
	if i := slices.Index(tierNames, s); i >= 0 {
		return Tier(i), nil
	}
	return 0, fmt.Errorf("%w: %q (want float32, int8 or float16)", ErrTier, s)
}

// candidateSlack is how many rows past 2k a compressed search keeps per
// worker as candidates to score exactly. The slack is what lets the proof
// of exactness hold: the rows ranked past the candidates by bound must
// fall below the k-th exact score by more than the bound's error. At 1M
// random 512-d rows the bound's error spans a few hundred ranks around the
// 10th. Holding them costs little: the rerank scores candidates best bound
// first and stops at the first bound below the k-th exact score, about
// two dozen rows at 1M x 512 rather than every candidate of every worker
// (552 rows, 0.9 ms of a 20 ms search).
const candidateSlack = 256

// u is float32's unit roundoff.
const u = 0x1p-24

// compressed is the compressed copy of a matrix's rows: blocks parallel to
// the float32 blocks (same rows per block), each row stride values long,
// zero-padded so the kernels need no tail.
type compressed struct {
	tier   Tier
	dim    int
	stride int
	slack  int        // candidateSlack; tests lower it to exercise the proof
	i8     [][]int8   // TierInt8
	f16    [][]uint16 // TierFloat16
	// scale[r] (TierInt8): row r ≈ scale[r] * i8 row r.
	scale []float32
	// resid[r] bounds ‖row r - its decompressed copy‖₂ from above.
	resid []float32
	// maxNorm bounds every row's norm from above, and maxResid every
	// resid; both only grow, which keeps them bounds after deletions.
	maxNorm, maxResid float32
}

func newCompressed(tier Tier, dim int) *compressed {
	return &compressed{tier: tier, dim: dim, stride: (dim + 31) &^ 31, slack: candidateSlack}
}

// addBlock appends a block's copy, allocated by Matrix.newBlock.
func (c *compressed) addBlock(i8 []int8, f16 []uint16) {
	switch c.tier {
	case TierInt8:
		c.i8 = append(c.i8, i8)
	case TierFloat16:
		c.f16 = append(c.f16, f16)
	}
}

// block returns block b's copy, as addBlock took it.
func (c *compressed) block(b int) (i8 []int8, f16 []uint16) {
	switch c.tier {
	case TierInt8:
		return c.i8[b], nil
	case TierFloat16:
		return nil, c.f16[b]
	}
	return nil, nil
}

func (c *compressed) growFirst(rows int) {
	switch c.tier {
	case TierInt8:
		c.i8[0] = append(make([]int8, 0, rows*c.stride), c.i8[0]...)[:rows*c.stride]
	case TierFloat16:
		c.f16[0] = append(make([]uint16, 0, rows*c.stride), c.f16[0]...)[:rows*c.stride]
	}
}

func (c *compressed) dropBlocks(keep int) {
	switch c.tier {
	case TierInt8:
		clear(c.i8[keep:])
		c.i8 = c.i8[:keep]
	case TierFloat16:
		clear(c.f16[keep:])
		c.f16 = c.f16[:keep]
	}
}

// rowI8 and rowF16 return row r of the copy.
func (c *compressed) rowI8(m *Matrix, r int) []int8 {
	b := c.i8[r>>m.blockShift]
	off := (r & (m.blockRows - 1)) * c.stride
	return b[off : off+c.stride : off+c.stride]
}

func (c *compressed) rowF16(m *Matrix, r int) []uint16 {
	b := c.f16[r>>m.blockShift]
	off := (r & (m.blockRows - 1)) * c.stride
	return b[off : off+c.stride : off+c.stride]
}

// add compresses vec into row r, a new row; set overwrites row r.
func (c *compressed) add(m *Matrix, r int, vec []float32) {
	c.scale = append(c.scale, 0)
	c.resid = append(c.resid, 0)
	c.set(m, r, vec)
}

func (c *compressed) set(m *Matrix, r int, vec []float32) {
	norm, resid := c.encode(m, r, vec)
	c.maxResid = max(c.maxResid, resid)
	c.maxNorm = max(c.maxNorm, norm)
}

// encode writes row r's copy, scale and residual bound, and returns the
// row's norm and that bound (rounded up), which the caller folds into the
// maxima. It touches only row r, so rows may be encoded concurrently.
func (c *compressed) encode(m *Matrix, r int, vec []float32) (norm, resid float32) {
	var norm2, res2, maxAbs float64
	for _, x := range vec {
		norm2 += float64(x) * float64(x)
		maxAbs = max(maxAbs, math.Abs(float64(x)))
	}
	switch c.tier {
	case TierInt8:
		row := c.rowI8(m, r)
		scale := float32(maxAbs / 127)
		var inv float64
		if scale > 0 {
			inv = 1 / float64(scale)
		}
		for i, x := range vec {
			// Rounding half away from zero by truncation; any rounding
			// would do, as the residual records what it cost.
			f := float64(x) * inv
			q := max(-127, min(127, int32(f+math.Copysign(0.5, f))))
			row[i] = int8(q)
			d := float64(x) - float64(scale)*float64(q) // exact: a float32 times a small integer
			res2 += d * d
		}
		c.scale[r] = scale
	case TierFloat16:
		row := c.rowF16(m, r)
		for i, x := range vec {
			h := toFloat16(x)
			row[i] = h
			d := float64(x) - float64(fromFloat16(h))
			res2 += d * d
		}
	}
	c.resid[r] = roundUp(math.Sqrt(res2))
	return roundUp(math.Sqrt(norm2)), c.resid[r]
}

// roundUp returns a float32 at least x, allowing for the rounding of the
// float64 arithmetic that produced x (relative error far below 2^-40).
func roundUp(x float64) float32 {
	f := float32(x * (1 + 0x1p-40))
	if float64(f) < x {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

// move copies row from into row to (a delete filling its hole).
func (c *compressed) move(m *Matrix, to, from int) {
	switch c.tier {
	case TierInt8:
		copy(c.rowI8(m, to), c.rowI8(m, from))
	case TierFloat16:
		copy(c.rowF16(m, to), c.rowF16(m, from))
	}
	c.scale[to], c.resid[to] = c.scale[from], c.resid[from]
}

// truncate drops the per-row values past n rows.
func (c *compressed) truncate(n int) {
	c.scale, c.resid = c.scale[:n], c.resid[:n]
}

// compact re-allocates the per-row values after most rows went.
func (c *compressed) compact() {
	c.scale, c.resid = slices.Clone(c.scale), slices.Clone(c.resid)
}

// candidates is how many rows per worker a search for k rows keeps.
func (c *compressed) candidates(k int) int { return 2*k + c.slack }

// compQuery is a query prepared for the compressed scan.
type compQuery struct {
	q16   []int16   // TierInt8: the query in int16, stride long
	sq    float32   // TierInt8: query ≈ sq * q16
	qf    []float32 // TierFloat16: the query zero-padded to stride
	qnorm float32   // ‖query‖₂, rounded up
	// slack is the part of the bound that is the same for every row.
	slack float32
}

// prepare readies q for the compressed scan and works out the bound's
// row-independent terms. With x a row, x' its decompressed copy, q' the
// query as the kernel sees it and s(x) the float32 kernel's score:
//
//	s(x) <= x·q + γ_d·‖x‖‖q‖                      (float32 rounding, γ_d = d·u/(1-d·u))
//	x·q  = x'·q' + (x-x')·q + x'·(q-q')
//	|(x-x')·q| <= resid(x)·‖q‖                     (Cauchy-Schwarz)
//	|x'·(q-q')| <= ‖x'‖·‖q-q'‖                      (int8 query rounding, 0 for float16)
//
// and the kernel computes x'·q' exactly (int8: integer sums) or with its
// own float32 rounding (float16), plus a few roundings of the scaling.
func (c *compressed) prepare(q []float32) *compQuery {
	p := &compQuery{}
	var norm2, qres2 float64
	for _, x := range q {
		norm2 += float64(x) * float64(x)
	}
	p.qnorm = roundUp(math.Sqrt(norm2))
	xmax := float64(c.maxNorm) + float64(c.maxResid) // bounds ‖x'‖ for every row
	switch c.tier {
	case TierInt8:
		var maxAbs float64
		for _, x := range q {
			maxAbs = max(maxAbs, math.Abs(float64(x)))
		}
		// Every |q16| <= qmax, and |x8| <= 127, so no sum of stride
		// products (the kernel's widest) overflows int32.
		qmax := float64(min(32767, math.MaxInt32/(127*c.stride)))
		p.sq = float32(maxAbs / qmax)
		p.q16 = make([]int16, c.stride)
		for i, x := range q {
			var v float64
			if p.sq > 0 {
				v = max(-qmax, min(qmax, math.Round(float64(x)/float64(p.sq))))
			}
			p.q16[i] = int16(v)
			d := float64(x) - float64(p.sq)*v
			qres2 += d * d
		}
	case TierFloat16:
		p.qf = make([]float32, c.stride)
		copy(p.qf, q)
	}
	d := float64(c.dim)
	gamma := d * u / (1 - d*u)
	qn := float64(p.qnorm)
	// The float32 kernel's error, the query's rounding, the float16
	// kernel's own accumulation (same γ), and an allowance for the float32
	// scaling and additions that produce each bound.
	slack := gamma*float64(c.maxNorm)*qn + xmax*math.Sqrt(qres2)
	if c.tier == TierFloat16 {
		slack += gamma * xmax * qn
	}
	slack += 32 * u * (xmax*qn + 1)
	p.slack = roundUp(slack)
	return p
}

// bounds sets out[i] to an upper bound of the float32 kernel's score of row
// lo+i, for the rows [lo, hi) of one chunk, and returns the highest (NaNs
// aside).
func (c *compressed) bounds(m *Matrix, p *compQuery, lo, hi int, out []float32) float32 {
	n := hi - lo
	off := (lo & (m.blockRows - 1)) * c.stride
	scale, resid := c.scale[lo:hi], c.resid[lo:hi]
	if c.tier == TierInt8 {
		return boundsI8(p, c.i8[lo>>m.blockShift][off:off+n*c.stride], scale, resid, out[:n])
	}
	return boundsF16(p, c.f16[lo>>m.blockShift][off:off+n*c.stride], resid, out[:n])
}

// rerank scores q's candidates exactly and sets q.hits. It reports whether
// the answer is proven equal to the float32 scan's.
//
// The candidates are taken best bound first (merged from the workers'
// heaps, which the pass sorts). A bound is at least its row's exact score,
// so once a bound falls below the k-th exact score found so far (or below
// minScore) neither its row nor any row after it can be in the answer, and
// scoring stops: on embedding-like data after a few dozen rows of the
// 2k+slack a worker holds.
func (c *compressed) rerank(m *Matrix, q *query) bool {
	dot := kernel(m.dim)
	best := topK{items: make([]Hit, 0, q.k), floor: q.minScore}
	scored := 0
	for _, cand := range merge(q.heaps, math.MaxInt) {
		if !(cand.Score >= best.floor) {
			break
		}
		scored++
		if s := dot(q.vec, m.row(m.rowOf[cand.Key])); s >= best.floor {
			best.offer(Hit{Key: cand.Key, Score: s})
		}
	}
	m.stats.rescored.Add(uint64(scored))
	slices.SortFunc(best.items, CompareHits)
	q.hits = nilIfEmpty(best.items)
	// A row left out of a full heap has a bound at most the heap's floor:
	// if every such floor is below the k-th exact score (or below
	// minScore when fewer than k rows reach it), no row left out can be in
	// the answer. best.floor is that bar.
	for _, h := range q.heaps {
		if len(h.items) == cap(h.items) && cap(h.items) < len(m.keys) && !(h.floor < best.floor) {
			return false
		}
	}
	return true
}
