package index

import "math"

// The compressed tiers' kernels. Their scores only choose candidates and
// prove them complete (see [Tier]), so unlike the float32 kernels they need
// not agree bit for bit across implementations: any order of summation is
// within the error bound compressed.prepare allows.

// boundsI8 sets out[r] to the int8 tier's bound of row r of rows (see
// compressed.bounds): the int32 dot product of p.q16 with the row
// (len(p.q16) values, a multiple of 32), exact, times scale[r]*p.sq, plus
// resid[r]*p.qnorm + p.slack. It returns the highest (NaNs aside). The
// assembly works each bound out as its row's dot product ends, rather than
// in a second loop over the run (with that loop, int8 searches at 1M x 512
// took 1.04x as long, median of ten runs). The conversions keep Go from
// fusing a multiply and an add, so that the two round alike.
func boundsI8(p *compQuery, rows []int8, scale, resid, out []float32) (top float32) {
	stride, n := len(p.q16), len(out)
	top = float32(math.Inf(-1))
	if n == 0 {
		return top
	}
	rows, scale, resid = rows[:n*stride], scale[:n], resid[:n]
	if useSIMD && haveAsm {
		return boundsRowsI8(&p.q16[0], &rows[0], stride, n, &scale[0], &resid[0], p.sq, p.qnorm, p.slack, &out[0])
	}
	q := p.q16
	for r := range out {
		row := rows[r*stride : (r+1)*stride : (r+1)*stride]
		var s0, s1 int32
		for i := 0; i < len(row); i += 2 {
			s0 += int32(q[i]) * int32(row[i])
			s1 += int32(q[i+1]) * int32(row[i+1])
		}
		b := float32(float32(float32(s0+s1)*float32(scale[r]*p.sq))+float32(resid[r]*p.qnorm)) + p.slack
		out[r] = b
		if b > top {
			top = b
		}
	}
	return top
}

// boundsF16 sets out[r] to the float16 tier's bound of row r of rows (see
// compressed.bounds): the dot product of p.qf with the row (half floats,
// len(p.qf) of them, a multiple of 32), accumulated in float32, plus
// (resid[r]*p.qnorm + p.slack). It returns the highest (NaNs aside). As
// boundsI8, the assembly works each bound out as its row's dot product
// ends.
func boundsF16(p *compQuery, rows []uint16, resid, out []float32) (top float32) {
	stride, n := len(p.qf), len(out)
	top = float32(math.Inf(-1))
	if n == 0 {
		return top
	}
	rows, resid = rows[:n*stride], resid[:n]
	if useSIMD && haveAsm && haveF16C {
		return boundsRowsF16(&p.qf[0], &rows[0], stride, n, &resid[0], p.qnorm, p.slack, &out[0])
	}
	q := p.qf
	for r := range out {
		row := rows[r*stride : (r+1)*stride : (r+1)*stride]
		var s0, s1, s2, s3 float32
		for i := 0; i < len(row); i += 4 {
			s0 += q[i] * fromFloat16(row[i])
			s1 += q[i+1] * fromFloat16(row[i+1])
			s2 += q[i+2] * fromFloat16(row[i+2])
			s3 += q[i+3] * fromFloat16(row[i+3])
		}
		b := float32((s0+s1)+(s2+s3)) + (float32(resid[r]*p.qnorm) + p.slack)
		out[r] = b
		if b > top {
			top = b
		}
	}
	return top
}

// toFloat16 rounds f to the nearest IEEE 754 half float, ties to even.
// Magnitudes past the largest half (65504) saturate to it rather than
// becoming infinite: the residual the tier records then covers the
// difference, and the bound stays finite. NaN stays NaN.
func toFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7bff
	}
	e := exp - 127 + 15 // the half's biased exponent
	if e >= 0x1f {
		return sign | 0x7bff
	}
	var shift uint32 // bits of the float32 significand dropped
	if e <= 0 {
		// A half subnormal: the significand, implicit bit included,
		// shifted right past the exponent's floor.
		if exp == 0 {
			return sign // float32 subnormals are far below half's least subnormal
		}
		mant |= 0x800000
		shift = uint32(14 - e)
		if shift > 24 {
			return sign
		}
		e = 0
	} else {
		shift = 13
	}
	h := mant >> shift
	round := uint32(1) << (shift - 1)
	if mant&round != 0 && (mant&(round-1) != 0 || h&1 != 0) {
		h++ // may carry into the exponent, which is what rounding up means
	}
	v := uint16(e)<<10 + uint16(h)
	if v >= 0x7c00 {
		v = 0x7bff
	}
	return sign | v
}

// fromFloat16 returns the half float h as a float32 (exactly).
func fromFloat16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		v := float32(mant) * 0x1p-24
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
