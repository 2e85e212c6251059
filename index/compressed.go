package index

import (
	"math"
	"slices"
)

// candidateSlack is how many rows past 2k a compressed search keeps per
// worker as candidates to score exactly. The slack is what lets the proof
// of exactness hold: the rows ranked past the candidates by bound must
// fall below the k-th exact score by more than the bound's error, which at
// 1M random 512-d rows spans a few hundred ranks around the 10th. Holding
// them costs little, as the rerank stops at the first bound below the k-th
// exact score (about two dozen rows at 1M x 512; Stats.Rescored counts
// them).
const candidateSlack = 256

// u is float32's unit roundoff.
const u = 0x1p-24

// compressed is what a compressed tier adds to a matrix: its copy of the
// rows (codes), each row's residual bound, and the maxima the bound needs.
type compressed struct {
	codes
	dim   int
	slack int // candidateSlack; tests lower it to exercise the proof
	// resid[r] bounds ‖row r - its decompressed copy‖₂ from above.
	resid []float32
	// maxNorm bounds every row's norm from above, and maxResid every
	// resid; both only grow, which keeps them bounds after deletions.
	maxNorm, maxResid float32
}

// codes is one compressed tier's copy of the rows: its storage, kept in
// blocks parallel to the float32 blocks, and its half of the bound.
type codes interface {
	tier() Tier
	// bytesRatio is how many bytes of float32 rows one byte of the copy
	// stands for.
	bytesRatio() int

	// Storage, block by block, in step with the float32 blocks.
	newBlock(rows int) pages
	addBlock(b pages)
	block(b int) pages
	blockCount() int
	growFirst(rows int)
	dropBlocks(keep int)

	// Per-row values beyond the copy: grow appends n rows' worth,
	// truncate keeps n, compact re-allocates them after most rows went.
	grow(n int)
	truncate(n int)
	compact()
	// move copies row from into row to (a delete filling its hole).
	move(to, from int)
	// encode writes row r's copy of vec, whose largest magnitude is
	// maxAbs, and returns ‖vec - decoded copy‖₂². It touches only row r,
	// so rows may be encoded concurrently.
	encode(r int, vec []float32, maxAbs float64) (res2 float64)
	// decode sets out to row r's decompressed copy (len(out) values).
	decode(r int, out []float64)

	// quantize sets the tier's form of the query in p and returns
	// ‖q - that form‖₂².
	quantize(q []float32, p *compQuery) (qres2 float64)
	// sumError bounds the kernel's own rounding of x'·q', given the
	// float32 kernel's γ, a bound of every ‖x'‖ and ‖q‖.
	sumError(gamma, xmax, qnorm float64) float64
	// bounds sets out[i] to the bound of row lo+i (resid holding rows
	// [lo, hi)'s residuals) and returns the highest, NaNs aside.
	bounds(p *compQuery, lo, hi int, resid, out []float32) float32
}

// pages is a block of any tier, as allocation and prefetching see it.
type pages interface{ touch() }

func newCompressed(tier Tier, dim, blockRows int, blockShift uint) *compressed {
	c := &compressed{dim: dim, slack: candidateSlack}
	switch tier {
	case TierInt8:
		c.codes = &int8Codes{codeBlocks: newCodeBlocks[int8](dim, blockRows, blockShift)}
	case TierFloat16:
		c.codes = &f16Codes{codeBlocks: newCodeBlocks[uint16](dim, blockRows, blockShift)}
	default:
		return nil
	}
	return c
}

// addRows makes room for n new rows, set later by set or encode.
func (c *compressed) addRows(n int) {
	c.resid = append(slices.Grow(c.resid, n), make([]float32, n)...)
	c.codes.grow(n)
}

// set compresses vec into row r and folds its bounds into the maxima.
func (c *compressed) set(r int, vec []float32) {
	norm, resid := c.encode(r, vec)
	c.maxResid = max(c.maxResid, resid)
	c.maxNorm = max(c.maxNorm, norm)
}

// encode writes row r's copy and residual bound, and returns the row's
// norm and that bound (rounded up), which the caller folds into the
// maxima. It touches only row r, so rows may be encoded concurrently.
func (c *compressed) encode(r int, vec []float32) (norm, resid float32) {
	var norm2, maxAbs float64
	for _, x := range vec {
		norm2 += float64(x) * float64(x)
		maxAbs = max(maxAbs, math.Abs(float64(x)))
	}
	res2 := c.codes.encode(r, vec, maxAbs)
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
func (c *compressed) move(to, from int) {
	c.codes.move(to, from)
	c.resid[to] = c.resid[from]
}

// truncate drops the per-row values past n rows.
func (c *compressed) truncate(n int) {
	c.resid = c.resid[:n]
	c.codes.truncate(n)
}

// compact re-allocates the per-row values after most rows went.
func (c *compressed) compact() {
	c.resid = slices.Clone(c.resid)
	c.codes.compact()
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
// own float32 rounding (float16: sumError), plus a few roundings of the
// scaling.
func (c *compressed) prepare(q []float32) *compQuery {
	return c.prepareAs(q, c.codes.quantize)
}

// prepareAs is prepare with the query quantized by quantize, which sets its
// form in p and returns ‖q - that form‖₂², as codes.quantize does.
func (c *compressed) prepareAs(q []float32, quantize func(q []float32, p *compQuery) (qres2 float64)) *compQuery {
	p := &compQuery{}
	var norm2 float64
	for _, x := range q {
		norm2 += float64(x) * float64(x)
	}
	p.qnorm = roundUp(math.Sqrt(norm2))
	xmax := float64(c.maxNorm) + float64(c.maxResid) // bounds ‖x'‖ for every row
	qres2 := quantize(q, p)
	d := float64(c.dim)
	gamma := d * u / (1 - d*u)
	qn := float64(p.qnorm)
	// The float32 kernel's error, the query's rounding, the compressed
	// kernel's own, and an allowance for the float32 scaling and additions
	// that produce each bound.
	slack := gamma*float64(c.maxNorm)*qn + xmax*math.Sqrt(qres2)
	slack += c.codes.sumError(gamma, xmax, qn)
	slack += 32 * u * (xmax*qn + 1)
	p.slack = roundUp(slack)
	return p
}

// bounds sets out[i] to an upper bound of the float32 kernel's score of row
// lo+i, for the rows [lo, hi) of one chunk, and returns the highest (NaNs
// aside).
func (c *compressed) bounds(p *compQuery, lo, hi int, out []float32) float32 {
	return c.codes.bounds(p, lo, hi, c.resid[lo:hi], out[:hi-lo])
}
