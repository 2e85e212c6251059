package index

import "fmt"

// DotsRun is one run of rows scored against every query of [DotsRuns], in
// the batched kernel's layout: the queries in groups of Group, a group's
// scores of the run's rows together, row by row.
type DotsRun struct {
	// Lo is the run's first row and N its number of rows.
	Lo, N int
	// Group is the queries the kernel scores per row read:
	// Scores[Group*(N*g+r)+j] = [Dot](query Group*g+j, row Lo+r). The last
	// group is filled up with zero queries past the caller's, whose
	// scores are not the caller's to count.
	Group  int
	Scores []float32
}

// At returns where query q's score of the run's first row lies in Scores
// and the stride to its next row's.
func (d DotsRun) At(q int) (at, stride int) {
	return d.Group*d.N*(q/d.Group) + q%d.Group, d.Group
}

// DotsRuns scores every query against every row, for callers that need
// all the scores rather than the best (an evaluation's score histograms):
// qs holds the queries and rows the rows, each of dim values, packed, and
// every score has [Dot]'s bits. It hands them to fn run of rows by run, in
// the kernel's layout (see [DotsRun]), rather than reordered query by
// query: a caller that counts them touches each score once. The runs come
// in row order; their slices are fn's only during the call. It panics if
// dim < 1 or a length is not a multiple of dim, as those are programming
// errors.
//
// Rows are read in runs that stay in L1 while the queries, in groups of
// the batched kernel's (that of a pass of several queries), read them:
// each row loaded from memory serves every query.
func DotsRuns(qs, rows []float32, dim int, fn func(DotsRun)) {
	checkDots(qs, rows, dim)
	nq, n := len(qs)/dim, len(rows)/dim
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
	tops := make([]float32, len(qs)/dim) // the kernel's, unused here
	sc := make([]float32, len(tops)*run)
	for lo := 0; lo < n; lo += run {
		m := min(run, n-lo)
		kernels.rowDotsQ(qs, rows[lo*dim:(lo+m)*dim], sc[:len(tops)*m], tops, dim)
		fn(DotsRun{Lo: lo, N: m, Group: bq, Scores: sc[:len(tops)*m]})
	}
}

func checkDots(qs, rows []float32, dim int) {
	if dim < 1 || len(qs)%dim != 0 || len(rows)%dim != 0 {
		panic(fmt.Sprintf("index: DotsRuns of %d query and %d row values at dimension %d", len(qs), len(rows), dim))
	}
}
