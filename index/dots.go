package index

import "fmt"

// Dots scores every query against every row, for callers that need all
// the scores rather than the best (an evaluation's score histograms):
// qs holds nq queries and rows n rows, each of dim values, packed, and
// out[i*n+r] becomes [Dot](query i, row r), with Dot's bits. It panics if
// dim < 1, a length is not a multiple of dim, or out is shorter than
// nq*n, as those are programming errors.
//
// Rows are read in runs that stay in L1 while the queries, in groups of
// the batched kernel's (that of a pass of several queries), read them:
// each row loaded from memory serves every query.
func Dots(qs, rows []float32, dim int, out []float32) {
	if dim < 1 || len(qs)%dim != 0 || len(rows)%dim != 0 {
		panic(fmt.Sprintf("index: Dots of %d query and %d row values at dimension %d", len(qs), len(rows), dim))
	}
	nq, n := len(qs)/dim, len(rows)/dim
	if len(out) < nq*n {
		panic(fmt.Sprintf("index: Dots of %d queries and %d rows into %d scores", nq, n, len(out)))
	}
	if nq == 0 || n == 0 {
		return
	}
	bq := kernels.batchQ
	if nq%bq != 0 {
		// The last group, padded with zeros: the kernel takes whole groups.
		padded := make([]float32, (nq+bq-1)/bq*bq*dim)
		copy(padded, qs)
		qs = padded
	}
	run := min(n, batchRun(dim))
	tops := make([]float32, len(qs)/dim)
	sc := make([]float32, len(tops)*run)
	for lo := 0; lo < n; lo += run {
		m := min(run, n-lo)
		kernels.rowDotsQ(qs, rows[lo*dim:(lo+m)*dim], sc[:len(tops)*m], tops, dim)
		for i := range nq {
			g, t := i/bq, i%bq
			o := out[i*n+lo : i*n+lo+m]
			for r := range o {
				o[r] = sc[bq*(m*g+r)+t]
			}
		}
	}
}
