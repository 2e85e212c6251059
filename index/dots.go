package index

import "fmt"

// Dots scores every query against every row, for callers that need all
// the scores rather than the best (an evaluation's score histograms):
// qs holds nq queries and rows n rows, each of dim values, packed, and
// out[i*n+r] becomes [Dot](query i, row r), with Dot's bits. It panics if
// dim < 1, a length is not a multiple of dim, or out is shorter than
// nq*n, as those are programming errors.
//
// Rows are read in runs that stay in L1 while the queries, three at a
// time (the kernel of a coalesced pass), read them: each row loaded from
// memory serves every query.
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
	run := min(n, max(1, subFloats/dim))
	sc := make([]float32, 3*run)
	for lo := 0; lo < n; lo += run {
		m := min(run, n-lo)
		part := rows[lo*dim : (lo+m)*dim]
		j := 0
		for ; j+3 <= nq; j += 3 {
			q3 := qs[j*dim : (j+3)*dim]
			if h := m / 2; dim >= kernels.pairsMin && h > 0 {
				// Both halves at once: each query is loaded once for two rows.
				kernels.rowDots3x2(q3, part[:h*dim], part[h*dim:2*h*dim], sc[:3*h], sc[3*h:6*h], dim)
				kernels.rowDots3(q3, part[2*h*dim:], sc[6*h:3*m], dim)
			} else {
				kernels.rowDots3(q3, part, sc[:3*m], dim)
			}
			o0, o1, o2 := out[j*n+lo:j*n+lo+m], out[(j+1)*n+lo:(j+1)*n+lo+m], out[(j+2)*n+lo:(j+2)*n+lo+m]
			for r := range m {
				o0[r], o1[r], o2[r] = sc[3*r], sc[3*r+1], sc[3*r+2]
			}
		}
		for ; j < nq; j++ {
			kernels.rowDots(qs[j*dim:(j+1)*dim], part, out[j*n+lo:j*n+lo+m])
		}
	}
}
