package index

import "math"

// The float32 rows lie in panels: panelRows rows side by side, value k of
// each of a panel's rows in one line of panelRows floats, one line per k.
// A kernel then holds one row's score in each lane of a register, reading
// a line and one query value per multiply-add: every score is one FMA
// chain over k in order (see fma32), whichever kernel computes it, and a
// batch scores without folding lanes together (see groupDots), which keeps
// the FMA pipes busy with the products alone. A single query reads each
// panel as one stream, as it would rows one after another.
const panelRows = 64

// panelShift is log2(panelRows).
const panelShift = 6

// at returns the block holding row r and where its first value lies in it;
// value k lies panelRows*k further on.
func (m *Matrix) at(r int) ([]float32, int) {
	i := r & (m.blockRows - 1)
	return m.blocks[r>>m.blockShift], i>>panelShift*panelRows*m.dim + i&(panelRows-1)
}

// setRow copies vec into row r.
func (m *Matrix) setRow(r int, vec []float32) {
	b, off := m.at(r)
	b = b[off : off+(m.dim-1)*panelRows+1]
	for k, x := range vec {
		b[k*panelRows] = x
	}
}

// readRow copies row r into dst, which has room for it, and returns it.
func (m *Matrix) readRow(r int, dst []float32) []float32 {
	b, off := m.at(r)
	b = b[off : off+(m.dim-1)*panelRows+1]
	dst = dst[:m.dim]
	for k := range dst {
		dst[k] = b[k*panelRows]
	}
	return dst
}

// moveRow copies row from into row to.
func (m *Matrix) moveRow(to, from int) {
	bt, ot := m.at(to)
	bf, of := m.at(from)
	bt, bf = bt[ot:ot+(m.dim-1)*panelRows+1], bf[of:of+(m.dim-1)*panelRows+1]
	for k := 0; k < len(bf); k += panelRows {
		bt[k] = bf[k]
	}
}

// clearRow zeroes row r, a slot past the rows once a delete moved its row:
// a lane past the rows then scores 0 rather than a deleted row's score.
func (m *Matrix) clearRow(r int) {
	b, off := m.at(r)
	b = b[off : off+(m.dim-1)*panelRows+1]
	for k := 0; k < len(b); k += panelRows {
		b[k] = 0
	}
}

// panels returns the panels that hold rows [lo, hi), lo a multiple of
// panelRows and both in one block, as chunks are: whole panels, so the
// lanes past hi in the last are the kernels' too (scores nobody reads).
func (m *Matrix) panels(lo, hi int) []float32 {
	b := m.blocks[lo>>m.blockShift]
	i := lo & (m.blockRows - 1)
	off, end := i*m.dim, (i+padRows(hi-lo))*m.dim
	return b[off:end:end]
}

// padRows is n rows rounded up to whole panels.
func padRows(n int) int { return (n + panelRows - 1) &^ (panelRows - 1) }

// groupQ is the queries a call of the batched kernel (kernelSet.tile)
// scores at once, and groupK the values of k at most: 24 chains in
// registers, and a panel's groupK lines (32 KiB) stay in L1 while every
// group of the pass reads them.
const (
	groupQ = 6
	groupK = 128
	// groupChains is the floats of one group's chains between calls.
	groupChains = groupQ * panelRows
)

// maxAheadLines is the most cache lines one tile call brings in ahead.
const maxAheadLines = 128

// The modes of a tile call: its chains start from c's rather than zero
// (tileLoad), and end as scores (tileFinal) rather than in c.
const (
	tileLoad  = 1
	tileFinal = 2
)

// tileKernel scores a panel's rows against groupQ queries over kc values
// of k: q[groupQ*k+j] is query j's value k and p[panelRows*k+l] row l's.
// Each chain starts from c[panelRows*j+l] (mode&tileLoad) or zero; without
// tileFinal it ends in c, with it it is query j's score of row l, set at
// out[j*stride+l], and tops[j] is raised to the highest of them (NaNs
// aside). The assembly kernels keep c in their own order: only the same
// kernel reads what it left there.
//
// ahead and lines are a hint: the lines cache lines from p+ahead on are
// read soon, so that the next block of k, which a pass's first group
// would otherwise wait for, is in cache by then. They may lie past the
// rows.
type tileKernel func(q, p []float32, kc int, c []float32, mode int, out []float32, stride int, tops []float32, ahead, lines int)

// packGroups lays queries out as the batched kernel reads them: in groups
// of groupQ, each group's values k side by side (dst[g*groupQ*dim +
// k*groupQ + j] is query groupQ*g+j's value k), the last group filled up
// with zero queries. dst has room for every group.
func packGroups(dst []float32, qs [][]float32, dim int) {
	clear(dst)
	for i, q := range qs {
		g := dst[i/groupQ*groupQ*dim:]
		for k, x := range q[:dim] {
			g[k*groupQ+i%groupQ] = x
		}
	}
}

// groupsOf is how many groups n queries take.
func groupsOf(n int) int { return (n + groupQ - 1) / groupQ }

// groupDots scores the panels of panels (of dim values a row) against
// every group of qs, packed by packGroups: query i's score of row r of the
// run at out[i*stride+r], and tops[i] the highest of them (NaNs aside;
// -Inf if none). It returns the highest of tops. c holds groupChains floats
// per group. Each panel is read a block of groupK values of k at a time,
// which stays in L1 while every group reads it.
func groupDots(tile tileKernel, qs, panels []float32, dim int, out []float32, stride int, tops, c []float32) float32 {
	for i := range tops {
		tops[i] = float32(math.Inf(-1))
	}
	ng := len(tops) / groupQ
	size := panelRows * dim
	lines := min(maxAheadLines, (groupK*panelRows*4/64+ng-1)/ng)
	for p := 0; p+size <= len(panels); p += size {
		pan := panels[p : p+size]
		row := p / dim
		for kb := 0; kb < dim; kb += groupK {
			kc := min(groupK, dim-kb)
			mode := 0
			if kb > 0 {
				mode |= tileLoad
			}
			if kb+kc == dim {
				mode |= tileFinal
			}
			// Each group's call brings in its share of the next block of
			// k (of this panel or, past its last, the next panel's).
			ahead := kc * panelRows * 4
			for g := range ng {
				tile(qs[g*groupQ*dim+kb*groupQ:], pan[kb*panelRows:], kc, c[g*groupChains:], mode,
					out[g*groupQ*stride+row:], stride, tops[g*groupQ:], ahead+g*lines*64, lines)
			}
		}
	}
	return highest(tops)
}
