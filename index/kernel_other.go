//go:build !amd64 || purego

package index

// haveAsm reports whether this build has assembly kernels; this one has
// none, so every scan uses the pure-Go kernels (or vek32, which has its own
// fallbacks).
const haveAsm = false

func dotRows1(q *float32, rows *float32, dim int, n int, out *float32) {
	panic("index: no assembly kernels in this build")
}

func dotRows2(q *float32, a *float32, b *float32, dim int, n int, outA *float32, outB *float32) {
	panic("index: no assembly kernels in this build")
}

func sumFloats2(a *float32, b *float32, n int) float32 {
	panic("index: no assembly kernels in this build")
}

func dotRows3(q *float32, rows *float32, dim int, n int, out *float32) {
	panic("index: no assembly kernels in this build")
}

func dotRows3x2(q *float32, a *float32, b *float32, dim int, n int, outA *float32, outB *float32) {
	panic("index: no assembly kernels in this build")
}

func boundsRowsI8(q *int16, rows *int8, stride int, n int, scale *float32, resid *float32, sq float32, qnorm float32, slack float32, out *float32) (top float32) {
	panic("index: no assembly kernels in this build")
}

func boundsRowsF16(q *float32, rows *uint16, stride int, n int, resid *float32, qnorm float32, slack float32, out *float32) (top float32) {
	panic("index: no assembly kernels in this build")
}

const haveF16C = false

var have512 = false // a variable, as on amd64, for the tests
