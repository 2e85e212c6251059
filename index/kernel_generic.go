package index

import "math"

// The pure-Go kernels: the reference every other kernel set is tested
// against, and the kernels themselves where there is no assembly.

// fma32 returns a*b + c rounded once to float32, as a hardware FMA does.
// The product is exact in float64, so only the sum rounds there, and
// rounding that sum to float32 can differ from rounding p + z once only
// where it lies exactly halfway between two float32s (its low 29 bits
// 1<<28) or below float32's normal range (but for zero, which is exact).
// There the sum is rounded to odd instead (its last bit set where it was
// inexact): a float64 rounded to odd has enough bits past float32's for
// one rounding to be the correct one. The explicit conversions keep Go
// from fusing.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b))
	z := float64(c)
	s := p + z
	bits := math.Float64bits(s)
	if bits&(1<<29-1) != 1<<28 && bits&(0x7ff<<52) >= (1023-126)<<52 || s == 0 {
		return float32(s) // a zero sum is exact
	}
	if math.IsInf(s, 0) || s != s {
		return float32(s)
	}
	// TwoSum: s + e is p + z exactly.
	bz := s - p
	e := (p - (s - bz)) + (z - bz)
	if e != 0 && bits&1 == 0 {
		// s is even and inexact: its odd neighbour toward p + z.
		if (e > 0) == (s > 0) {
			bits++
		} else {
			bits--
		}
		s = math.Float64frombits(bits)
	}
	return float32(s)
}

// dotGeneric is the pure-Go dot product: one chain of fma32 over the
// values in order, the reference every kernel gives bit for bit.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, x := range a {
		s = fma32(x, b[i], s)
	}
	return s
}

// panelDotsGo is kernelSet.panelDots in pure Go.
func panelDotsGo(q, panels, out []float32) {
	dim := len(q)
	for p := 0; p+panelRows <= len(out); p += panelRows {
		pan := panels[p*dim : (p+panelRows)*dim]
		for l := range panelRows {
			var s float32
			for k, x := range q {
				s = fma32(x, pan[k*panelRows+l], s)
			}
			out[p+l] = s
		}
	}
}

// tileGo is the tileKernel in pure Go; it keeps c as c[panelRows*j+l].
func tileGo(q, p []float32, kc int, c []float32, mode int, out []float32, stride int, tops []float32, _, _ int) {
	for j := range groupQ {
		for l := range panelRows {
			var s float32
			if mode&tileLoad != 0 {
				s = c[j*panelRows+l]
			}
			for k := range kc {
				s = fma32(q[k*groupQ+j], p[k*panelRows+l], s)
			}
			if mode&tileFinal == 0 {
				c[j*panelRows+l] = s
				continue
			}
			out[j*stride+l] = s
			if s > tops[j] {
				tops[j] = s
			}
		}
	}
}

// highest is the highest of tops, which hold no NaN; -Inf if none.
func highest(tops []float32) float32 {
	top := float32(math.Inf(-1))
	for _, t := range tops {
		top = max(top, t)
	}
	return top
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
