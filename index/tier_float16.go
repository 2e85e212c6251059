package index

// f16Codes is the float16 tier's copy: each row's values as IEEE half
// floats, the query kept in float32.
type f16Codes struct {
	codeBlocks[uint16]
}

var _ codes = (*f16Codes)(nil)

func (c *f16Codes) tier() Tier { return TierFloat16 }

// bytesRatio: a float32 value is two half floats.
func (c *f16Codes) bytesRatio() int { return 2 }

// The float16 copy has no per-row values of its own.
func (c *f16Codes) grow(int)     {}
func (c *f16Codes) truncate(int) {}
func (c *f16Codes) compact()     {}

func (c *f16Codes) move(to, from int) { c.moveRow(to, from) }

// encode writes row r in half floats and returns the squared norm of what
// that rounding left out.
func (c *f16Codes) encode(r int, vec []float32, _ float64) (res2 float64) {
	row := c.row(r)
	for i, x := range vec {
		h := toFloat16(x)
		row[i] = h
		d := float64(x) - float64(fromFloat16(h))
		res2 += d * d
	}
	return res2
}

func (c *f16Codes) decode(r int, out []float64) {
	for i, h := range c.row(r)[:len(out)] {
		out[i] = float64(fromFloat16(h))
	}
}

// quantize sets p.qf, the query zero-padded to the stride: the query is
// not rounded.
func (c *f16Codes) quantize(q []float32, p *compQuery) (qres2 float64) {
	p.qf = make([]float32, c.stride)
	copy(p.qf, q)
	return 0
}

// sumError is the kernel's own float32 accumulation, with the float32
// kernel's γ.
func (c *f16Codes) sumError(gamma, xmax, qnorm float64) float64 { return gamma * xmax * qnorm }

func (c *f16Codes) bounds(p *compQuery, lo, hi int, resid, out []float32) float32 {
	return kernels.boundsF16(p, c.run(lo, hi), resid, out)
}
