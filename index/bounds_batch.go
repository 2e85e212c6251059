package index

import "math"

// The batched int8 scan: one read of the int8 copy bounds the rows for a
// whole group of queries, tileRows rows at a time, where the single-query
// bounds kernel reads the copy once per query. Each query's candidates
// then go through the same rerank and fallback as a lone query's, so the
// answers are exactly the float32 scan's.

// tileRows is the rows the batched kernel bounds per call: one int32 lane
// of a 512-bit vector per row.
const tileRows = 16

// maxBatchI8Stride bounds the row length the batched kernel takes: the
// assembly's int32 partial sums, biased (see boundsI8BatchAsm), stay
// below 383*127*stride in magnitude, which fits int32 up to here.
const maxBatchI8Stride = 1 << 15

// i8Param is one query's part of every bound (see boundsI8BatchGo). The
// assembly reads the fields at 4-byte offsets, in this order.
type i8Param struct {
	corr  int32   // -128 times the sum of the query's int8 values
	sq    float32 // query ≈ sq * its int8 values
	qnorm float32 // ‖query‖₂, rounded up
	slack float32 // the bound's row-independent part
}

// i8Batch is a group of queries prepared for the batched bounds kernel.
// The per-query slices are padded past nq with zero queries, to whole
// groups of the assembly (n16 groups of 16 queries, then n4 of 4).
type i8Batch struct {
	stride   int
	nq       int
	n16, n4  int
	q8       []int8 // query j's int8 values at q8[j*stride:], zero-padded
	params   []i8Param
	interlvd []int8 // the same values as the assembly reads them (see pack)
}

// i8Tile is a worker's scratch for one call of the batched kernel.
type i8Tile struct {
	floor []float32 // in: query j's heap floor
	out   []float32 // out: row r's bound for query j at out[j*tileRows+r]
	// mask[j] has bit r set when row r's bound reaches floor[j]; bits of
	// rows past the tile's are unspecified.
	mask []uint16
	// The assembly's: the tile's rows transposed, and a short tile's rows
	// zero-padded to tileRows.
	trans              []byte
	pad                []int8
	padScale, padResid [tileRows]float32
}

// newI8Batch prepares qs for the batched scan of c, an int8 tier. Each
// query is quantized to int8 (qmax 127, so the sums fit int32 at every
// stride up to maxBatchI8Stride); its bound's slack is prepare's, with
// that rounding's residual.
//
// The bound of row x for query q is then, with D the exact integer dot
// product of their int8 values, scale the row's and sq the query's:
//
//	fl(fl(fl(D) * fl(scale*sq)) + fl(resid(x)*‖q‖)) + slack
//
// which is at least the float32 kernel's score of x by prepare's proof:
// x'·q' = scale*sq*D exactly; the query's rounding is in slack through
// ‖x'‖·‖q - q'‖ (Cauchy-Schwarz, however coarse the rounding); and the
// formula's six float32 roundings (D, scale*sq, the product, resid*‖q‖,
// two additions) each cost at most u of a term below 1.71‖x'‖‖q‖ +
// resid‖q‖ + slack, since ‖q'‖ <= ‖q‖ + √stride·sq/2 <= (1 +
// √stride/254)‖q‖, which is 1.71‖q‖ at maxBatchI8Stride: under 13u·xmax‖q‖
// in all, within prepare's 32u(xmax‖q‖+1), whose +1 also covers the
// underflow of scale*sq or resid*‖q‖.
func newI8Batch(c *compressed, qs []*query) *i8Batch {
	stride := paddedDim(c.dim)
	nq := len(qs)
	b := &i8Batch{stride: stride, nq: nq, n16: nq / 16, n4: (nq%16 + 3) / 4}
	pad := 16*b.n16 + 4*b.n4
	b.q8 = make([]int8, pad*stride)
	b.params = make([]i8Param, pad)
	for j, q := range qs {
		q8 := b.q8[j*stride : (j+1)*stride]
		p := c.prepareAs(q.vec, func(q []float32, p *compQuery) (qres2 float64) {
			p.sq, qres2 = quantizeSym(q, q8, 127)
			return qres2
		})
		var sum int32
		for _, v := range q8 {
			sum += int32(v)
		}
		b.params[j] = i8Param{corr: -128 * sum, sq: p.sq, qnorm: p.qnorm, slack: p.slack}
	}
	b.interlvd = b.pack()
	return b
}

// pack interleaves the queries as the assembly reads them: in groups of 16
// (then of 4) queries, for each 4 values g of a row, the group's values
// 4g..4g+3 query after query, so that one vector of a transposed tile
// meets each query's in one broadcast.
func (b *i8Batch) pack() []int8 {
	out := make([]int8, 0, len(b.q8))
	group := func(j0, size int) {
		for g := 0; g < b.stride; g += 4 {
			for j := j0; j < j0+size; j++ {
				out = append(out, b.q8[j*b.stride+g:j*b.stride+g+4]...)
			}
		}
	}
	for i := range b.n16 {
		group(16*i, 16)
	}
	for i := range b.n4 {
		group(16*b.n16+4*i, 4)
	}
	return out
}

// newTile returns a worker's scratch for b, floors at -Inf.
func (b *i8Batch) newTile() *i8Tile {
	n := len(b.params)
	t := &i8Tile{
		floor: make([]float32, n),
		out:   make([]float32, n*tileRows),
		mask:  make([]uint16, n),
		trans: make([]byte, tileRows*b.stride),
		pad:   make([]int8, tileRows*b.stride),
	}
	for j := range t.floor {
		t.floor[j] = float32(math.Inf(-1))
	}
	return t
}

// boundsI8BatchGo is the batched kernel in plain Go, the reference: for
// every query j of b and row r of the len(scale) rows, out[j*tileRows+r] =
// fl(fl(fl(D)*fl(scale[r]*sq)) + fl(resid[r]*qnorm)) + slack with D the
// int32 dot product of the row and the query (exact: |D| <=
// 127*127*stride), and mask[j] the rows whose bound reaches floor[j]. The
// conversions keep Go from fusing a multiply and an add, so that it rounds
// as the assembly does.
func boundsI8BatchGo(b *i8Batch, rows []int8, scale, resid []float32, t *i8Tile) {
	stride, n := b.stride, len(scale)
	rows, resid = rows[:n*stride], resid[:n]
	for j := range b.nq {
		q := b.q8[j*stride : (j+1)*stride : (j+1)*stride]
		p := b.params[j]
		out := t.out[j*tileRows : j*tileRows+n]
		var mask uint16
		for r := range n {
			row := rows[r*stride : (r+1)*stride : (r+1)*stride]
			var d int32
			for i, x := range row {
				d += int32(q[i]) * int32(x)
			}
			bound := float32(float32(float32(d)*float32(scale[r]*p.sq))+float32(resid[r]*p.qnorm)) + p.slack
			out[r] = bound
			if bound >= t.floor[j] {
				mask |= 1 << r
			}
		}
		t.mask[j] = mask
	}
}
