package index

import "math"

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
