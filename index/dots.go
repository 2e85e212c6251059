package index

import (
	"fmt"
	"slices"
)

// DotsRun is one run of rows scored against every query of
// [Matrix.DotsRuns]: the score of query q and row Lo+r, for r < N, is
// Scores[q*Stride+r].
type DotsRun struct {
	// Lo is the run's first row and N its number of rows.
	Lo, N  int
	Stride int
	Scores []float32
}

// dotsRun is the rows of a DotsRuns run: a few panels, whose scores for
// a block of eval's probes stay in L2.
const dotsRun = 8 * panelRows

// DotsRuns scores every query against every row, for callers that need
// all the scores rather than the best (an evaluation's score histograms):
// qs holds the queries, each of [Matrix.Dim] values, packed, and every
// score has [Dot]'s bits. It hands them to fn run of rows by run, query by
// query (see [DotsRun]); the runs come in row order and their slices are
// fn's only during the call. It panics if len(qs) is not a multiple of
// the dimension, as that is a programming error. It may run concurrently
// with the methods [Matrix.Search] may run with.
//
// Each panel of rows is read once for all the queries, in the batched
// pass's groups (see groupDots).
func (m *Matrix) DotsRuns(qs []float32, fn func(DotsRun)) {
	dim := m.dim
	if len(qs)%dim != 0 {
		panic(fmt.Sprintf("index: DotsRuns of %d query values at dimension %d", len(qs), dim))
	}
	nq, n := len(qs)/dim, len(m.keys)
	if nq == 0 || n == 0 {
		return
	}
	vecs := slices.Collect(slices.Chunk(qs, dim))
	g := groupsOf(nq)
	packed := make([]float32, g*groupQ*dim)
	packGroups(packed, vecs, dim)
	tops := make([]float32, g*groupQ) // the kernel's, unused here
	chains := make([]float32, g*groupChains)
	sc := make([]float32, g*groupQ*dotsRun)
	for lo := 0; lo < n; {
		// A run ends at a block's end, as its panels must lie in one.
		hi := min(lo+dotsRun, n, (lo>>m.blockShift+1)<<m.blockShift)
		groupDots(kernels.tile, packed, m.panels(lo, hi), dim, sc, dotsRun, tops, chains)
		fn(DotsRun{Lo: lo, N: hi - lo, Stride: dotsRun, Scores: sc[:nq*dotsRun]})
		lo = hi
	}
}
