package index

import (
	"math"
	"slices"
)

// int8Codes is the int8 tier's copy: each row's values in int8 with one
// scale per row, and the query in int16, so that the scan's dot products
// are exact integer sums.
type int8Codes struct {
	codeBlocks[int8]
	// scale[r]: row r ≈ scale[r] * its int8 row.
	scale []float32
}

var _ codes = (*int8Codes)(nil)

func (c *int8Codes) tier() Tier { return TierInt8 }

// bytesRatio: a float32 value is four int8 ones.
func (c *int8Codes) bytesRatio() int { return 4 }

func (c *int8Codes) grow(n int)     { c.scale = append(slices.Grow(c.scale, n), make([]float32, n)...) }
func (c *int8Codes) truncate(n int) { c.scale = c.scale[:n] }
func (c *int8Codes) compact()       { c.scale = slices.Clone(c.scale) }

func (c *int8Codes) move(to, from int) {
	c.moveRow(to, from)
	c.scale[to] = c.scale[from]
}

// encode writes row r as maxAbs/127 times int8s and returns the squared
// norm of what that rounding left out.
func (c *int8Codes) encode(r int, vec []float32, maxAbs float64) (res2 float64) {
	row := c.row(r)
	scale := float32(maxAbs / 127)
	var inv float64
	if scale > 0 {
		inv = 1 / float64(scale)
	}
	for i, x := range vec {
		// Rounding half away from zero by truncation; any rounding would
		// do, as the residual records what it cost.
		f := float64(x) * inv
		q := max(-127, min(127, int32(f+math.Copysign(0.5, f))))
		row[i] = int8(q)
		d := float64(x) - float64(scale)*float64(q) // exact: a float32 times a small integer
		res2 += d * d
	}
	c.scale[r] = scale
	return res2
}

func (c *int8Codes) decode(r int, out []float64) {
	for i, q := range c.row(r)[:len(out)] {
		out[i] = float64(c.scale[r]) * float64(q)
	}
}

// quantize sets p.q16 and p.sq, q ≈ sq * q16, and returns the squared norm
// of what that rounding left out.
func (c *int8Codes) quantize(q []float32, p *compQuery) (qres2 float64) {
	// Every |q16| <= qmax, and |x8| <= 127, so no sum of stride products
	// (the kernel's widest) overflows int32.
	qmax := float64(min(32767, math.MaxInt32/(127*c.stride)))
	p.q16 = make([]int16, c.stride)
	p.sq, qres2 = quantizeSym(q, p.q16, qmax)
	return qres2
}

// quantizeSym sets out[i] to q[i]/sq rounded to an integer of magnitude at
// most qmax, with sq the query's largest magnitude over qmax, and returns
// sq and the squared norm of what that rounding left out, q - sq*out.
func quantizeSym[T int8 | int16](q []float32, out []T, qmax float64) (sq float32, qres2 float64) {
	var maxAbs float64
	for _, x := range q {
		maxAbs = max(maxAbs, math.Abs(float64(x)))
	}
	sq = float32(maxAbs / qmax)
	for i, x := range q {
		var v float64
		if sq > 0 {
			v = max(-qmax, min(qmax, math.Round(float64(x)/float64(sq))))
		}
		out[i] = T(v)
		d := float64(x) - float64(sq)*v
		qres2 += d * d
	}
	return sq, qres2
}

// sumError: the integer sums are exact.
func (c *int8Codes) sumError(gamma, xmax, qnorm float64) float64 { return 0 }

func (c *int8Codes) bounds(p *compQuery, lo, hi int, resid, out []float32) float32 {
	return kernels.boundsI8(p, c.run(lo, hi), c.scale[lo:hi], resid, out)
}
