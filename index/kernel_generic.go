package index

import "math"

// The pure-Go kernels: the reference every other kernel set is tested
// against, and the kernels themselves where there is no assembly.

// dotGeneric is the pure-Go dot product. Four accumulators break the add
// dependency chain, which roughly triples throughput over a single one.
// The explicit float32 conversions forbid fusing x*y+s into an FMA (Go may
// fuse on arm64, ppc64 and s390x), so the result has the same bits on every
// architecture and in every kernel built on it.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		x, y := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += float32(x[0] * y[0])
		s1 += float32(x[1] * y[1])
		s2 += float32(x[2] * y[2])
		s3 += float32(x[3] * y[3])
	}
	for ; i < len(a); i++ {
		s0 += float32(a[i] * b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// rowDotsWith is kernelSet.rowDots with one dot call per row.
func rowDotsWith(dot func(a, b []float32) float32, q, rows, out []float32) {
	dim, n := len(q), len(out)
	rows = rows[:n*dim]
	for r := range out {
		out[r] = dot(q, rows[r*dim:(r+1)*dim:(r+1)*dim])
	}
}

// rowDotsQWith scores the len(out)/q rows in rows against the q queries
// packed in qs, out[q*r+j] = dot(query j, row r), with one dot call per
// pair: kernelSet.rowDots3 and rowDotsQ where no assembly does it.
func rowDotsQWith(dot func(a, b []float32) float32, q int, qs, rows, out []float32, dim int) {
	n := len(out) / q
	if n == 0 {
		return
	}
	qs, rows = qs[:q*dim], rows[:n*dim]
	for r := range n {
		row := rows[r*dim : (r+1)*dim : (r+1)*dim]
		for j := range q {
			out[q*r+j] = dot(qs[j*dim:(j+1)*dim:(j+1)*dim], row)
		}
	}
}

// rowDotsGroups is kernelSet.rowDotsQ for groups of q queries from a
// kernel that scores one group.
func rowDotsGroups(q int, kernel func(qs, rows, out []float32, dim int), qs, rows, out, tops []float32, dim int) float32 {
	n := len(out) / max(1, len(tops))
	for g := range len(tops) / q {
		o := out[g*q*n : (g+1)*q*n]
		kernel(qs[g*q*dim:(g+1)*q*dim], rows, o, dim)
		topsOf(o, tops[g*q:(g+1)*q])
	}
	return highest(tops)
}

// highest is the highest of tops, which hold no NaN; -Inf if none.
func highest(tops []float32) float32 {
	top := float32(math.Inf(-1))
	for _, t := range tops {
		top = max(top, t)
	}
	return top
}

// topsOf sets tops[j] to the highest of scores[j], scores[j+len(tops)],
// ... (NaNs aside; -Inf if none): kernelSet.rowDotsQ's maxima, for the
// kernels that do not work them out themselves.
func topsOf(scores, tops []float32) {
	q := len(tops)
	for j := range tops {
		top := float32(math.Inf(-1))
		for i := j; i < len(scores); i += q {
			if s := scores[i]; s > top {
				top = s
			}
		}
		tops[j] = top
	}
}

// sumGeneric returns the sum of x with eight accumulators.
func sumGeneric(x []float32) float32 {
	var s [8]float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		s[0] += v[0]
		s[1] += v[1]
		s[2] += v[2]
		s[3] += v[3]
		s[4] += v[4]
		s[5] += v[5]
		s[6] += v[6]
		s[7] += v[7]
	}
	for ; i < len(x); i++ {
		s[0] += x[i]
	}
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

// boundsI8Go sets out[r] to the int8 tier's bound of row r of rows (see
// int8Codes.bounds): the int32 dot product of p.q16 with the row
// (len(p.q16) values, a multiple of 32), exact, times scale[r]*p.sq, plus
// resid[r]*p.qnorm + p.slack. It returns the highest (NaNs aside). The
// conversions keep Go from fusing a multiply and an add, so that it rounds
// as the assembly does.
func boundsI8Go(p *compQuery, rows []int8, scale, resid, out []float32) (top float32) {
	stride, n := len(p.q16), len(out)
	top = float32(math.Inf(-1))
	rows, scale, resid = rows[:n*stride], scale[:n], resid[:n]
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

// boundsF16Go sets out[r] to the float16 tier's bound of row r of rows
// (see f16Codes.bounds): the dot product of p.qf with the row (half floats,
// len(p.qf) of them, a multiple of 32), accumulated in float32, plus
// (resid[r]*p.qnorm + p.slack). It returns the highest (NaNs aside).
func boundsF16Go(p *compQuery, rows []uint16, resid, out []float32) (top float32) {
	stride, n := len(p.qf), len(out)
	top = float32(math.Inf(-1))
	rows, resid = rows[:n*stride], resid[:n]
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
