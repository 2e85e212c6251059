package index

import (
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"unsafe"
)

const (
	// shrinkMin keeps small matrices from re-allocating their keys on
	// every other delete.
	shrinkMin = 1024
	// maxAhead is how many blocks at most are faulted in ahead of the rows
	// (see Matrix.prefetch), at most 16 MiB of slack. Two or more keep
	// both the faults and the caller busy: a fresh float32 load took about
	// 0.6x the time it took with none (BenchmarkUpsertFresh).
	maxAhead = 4
	// prefaultMinFloats (1 MiB) is the least block worth a prefetch
	// goroutine: every full block of a matrix from NewMatrix (2-4 MiB) but
	// no test-sized one.
	prefaultMinFloats = 1 << 18
	// pageBytes is the stride of the writes that fault a block in: the
	// smallest page size of the platforms Go runs on.
	pageBytes = 4096
)

// Reserve allocates the blocks that n rows will fill. It never shrinks
// anything; blocks beyond the rows plus one spare go with the next Delete,
// Fill.Done or Trim. The key index is not sized here but by AddRows, from
// the keys themselves: an estimate too high would keep a map too large,
// since Go maps never shrink.
//
// Allocating a bulk load's blocks up front, rather than as rows arrive,
// also tells the garbage collector how large the heap is about to be: a
// heap grown block by block runs a collection at every doubling, each one
// marking everything else loaded so far. The blocks are not faulted
// in here but by the writes of their rows, which can run in parallel (see
// AddRows). Prefetched blocks are used first, then new ones, allocated on
// all cores, since memory the heap reuses is zeroed as it is allocated.
func (m *Matrix) Reserve(n int) {
	if m.capacity() >= n {
		return
	}
	switch {
	case len(m.blocks) == 0:
		m.addBlock(m.newBlock(min(max(firstBlockRows, ceilPow2(n)), m.blockRows)))
	case len(m.blocks[0]) < m.blockRows*m.dim:
		m.growFirst(max(2*len(m.blocks[0])/m.dim, ceilPow2(n)))
	}
	for m.capacity() < n && len(m.ahead) > 0 {
		m.addBlock(m.nextBlock())
	}
	if m.capacity() >= n {
		return
	}
	fresh := make([]block, (n-m.capacity()+m.blockRows-1)>>m.blockShift)
	workers := min(runtime.GOMAXPROCS(0), len(fresh))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(fresh); i += workers {
				fresh[i] = m.newBlock(m.blockRows)
			}
		})
	}
	wg.Wait()
	for _, b := range fresh {
		m.addBlock(b)
	}
}

// reserve makes room for row r, the next row to be added.
func (m *Matrix) reserve(r int) {
	b := r >> m.blockShift
	if len(m.blocks) == 0 { // the first block starts short, and is never prefetched
		m.addBlock(m.newBlock(min(firstBlockRows, m.blockRows)))
		return
	}
	if b == len(m.blocks) {
		m.addBlock(m.nextBlock())
		m.prefetch()
		return
	}
	if end := (r&(m.blockRows-1) + 1) * m.dim; end <= len(m.blocks[b]) {
		return
	}
	// Only the first block is ever short. Doubling bounds its copying to
	// O(rows) in total.
	m.growFirst(2 * len(m.blocks[0]) / m.dim)
}

// growFirst re-allocates the first block (the only one ever short) to hold
// rows rows, at most a full block.
func (m *Matrix) growFirst(rows int) {
	rows = min(rows, m.blockRows)
	grown := make([]float32, rows*m.dim)
	copy(grown, m.blocks[0])
	m.blocks[0] = grown
	if m.comp != nil {
		m.comp.growFirst(rows)
	}
}

// capacity is the number of rows the blocks hold.
func (m *Matrix) capacity() int {
	if len(m.blocks) == 0 {
		return 0
	}
	return (len(m.blocks)-1)*m.blockRows + len(m.blocks[len(m.blocks)-1])/m.dim
}

func ceilPow2(x int) int { return 1 << bits.Len(uint(max(x, 1)-1)) }

// block is the storage of one block's rows: the float32 values and, for a
// compressed tier, their copy.
type block struct {
	f32   []float32
	codes pages // nil for TierFloat32
}

// newBlock allocates a block of the given rows. It reads only fields of m
// that never change, so a prefetch goroutine may call it.
func (m *Matrix) newBlock(rows int) block {
	b := block{f32: make([]float32, rows*m.dim)}
	if m.comp != nil {
		b.codes = m.comp.newBlock(rows)
	}
	return b
}

func (m *Matrix) addBlock(b block) {
	m.blocks = append(m.blocks, b.f32)
	if m.comp != nil {
		m.comp.addBlock(b.codes)
	}
}

// touch writes one zero per page of b. Go hands out fresh heap memory
// untouched, so the first write to each page faults; on a VM that fault
// is also the host's, and costs many times a rewrite of touched memory.
func (b block) touch() {
	touchPages(b.f32)
	if b.codes != nil {
		b.codes.touch()
	}
}

func touchPages[T float32 | int8 | uint16](s []T) {
	step := pageBytes / int(unsafe.Sizeof(s[0])) // s[0] is not evaluated
	for i := 0; i < len(s); i += step {
		s[i] = 0
	}
}

// pendingBlock is a full block being allocated and faulted in by a
// goroutine of its own.
type pendingBlock struct {
	done chan struct{} // closed once b is set and touched
	b    block
}

// nextBlock returns a full block for the next rows: the oldest prefetched
// one, once its goroutine is done with it, or a new one.
func (m *Matrix) nextBlock() block {
	if len(m.ahead) == 0 {
		return m.newBlock(m.blockRows)
	}
	p := m.ahead[0]
	n := copy(m.ahead, m.ahead[1:])
	m.ahead[n] = nil
	m.ahead = m.ahead[:n]
	<-p.done // the goroutine's writes happen before the caller's
	return p.b
}

// prefetch keeps up to aheadWanted full blocks being allocated and faulted
// in ahead of the rows, each by a short-lived goroutine, so that the page
// faults of a bulk load run in parallel with each other and with the
// caller, and Upsert's copies land on touched pages; faulting from several
// threads at once is itself faster than from one (BenchmarkUpsertFresh). A
// dropped matrix leaves nothing running for long: each goroutine ends once
// its block is touched.
func (m *Matrix) prefetch() {
	if m.blockRows*m.dim < m.prefaultMin {
		return // small blocks fault in fast enough as the rows are copied
	}
	for len(m.ahead) < m.aheadWanted() {
		p := &pendingBlock{done: make(chan struct{})}
		go func() {
			defer close(p.done)
			p.b = m.newBlock(m.blockRows)
			p.b.touch()
		}()
		m.ahead = append(m.ahead, p)
	}
}

// aheadWanted is how many blocks to prefetch: one per 16 blocks held, up
// to maxAhead, which keeps the slack of a matrix grown row by row within
// 1/16 of its size and spares small matrices the goroutines. (A load that
// knows its size calls Reserve instead.)
func (m *Matrix) aheadWanted() int {
	return min(len(m.blocks)/16, maxAhead)
}

// Trim frees the blocks past the rows but one: those of a Reserve that
// overestimated, when no Fill.Done or Delete follows it.
func (m *Matrix) Trim() { m.dropSpareBlocks() }

// GiveRoom moves to dst the whole blocks of m's room past its first keep
// rows (and past its rows), so that a bulk load can [Matrix.Reserve] one
// pool for two matrices before it knows how the rows divide between them.
// dst must be empty, without blocks, and of m's dimension and tier, and
// m's blocks must all be full; otherwise GiveRoom does nothing (the room
// is then allocated as usual).
func (m *Matrix) GiveRoom(dst *Matrix, keep int) {
	full := len(m.blocks) > 0 && len(m.blocks[0]) == m.blockRows*m.dim
	if !full || dst == m || len(dst.blocks) > 0 || len(dst.keys) > 0 ||
		dst.dim != m.dim || dst.tier != m.tier || dst.blockRows != m.blockRows {
		return
	}
	used := (max(keep, len(m.keys)) + m.blockRows - 1) >> m.blockShift
	if used >= len(m.blocks) {
		return
	}
	for b := used; b < len(m.blocks); b++ {
		moved := block{f32: m.blocks[b]}
		if m.comp != nil {
			moved.codes = m.comp.block(b)
		}
		dst.addBlock(moved)
	}
	clear(m.blocks[used:])
	m.blocks = m.blocks[:used]
	if m.comp != nil {
		m.comp.dropBlocks(used)
	}
}

// dropSpareBlocks frees the blocks past the rows but one.
func (m *Matrix) dropSpareBlocks() {
	used := (len(m.keys) + m.blockRows - 1) >> m.blockShift
	// One spare block stays, so that a matrix hovering at a block boundary
	// does not allocate and free a block on every other call.
	if keep := used + 1; len(m.blocks) > keep {
		clear(m.blocks[keep:])
		m.blocks = m.blocks[:keep]
		if m.comp != nil {
			m.comp.dropBlocks(keep)
		}
		// The prefetched blocks go too, their goroutines ending on their
		// own: a shrinking matrix should not hold memory for growth.
		clear(m.ahead)
		m.ahead = m.ahead[:0]
	}
}

// shrink returns memory after deletions.
func (m *Matrix) shrink() {
	n := len(m.keys)
	m.dropSpareBlocks()
	// Go maps never shrink, so the map is rebuilt along with the keys. Both
	// happen only after 3/4 of the rows went, so the cost is amortized O(1).
	if cap(m.keys) >= shrinkMin && n < cap(m.keys)/4 {
		m.keys = slices.Clone(m.keys)
		m.rowOf = make(map[uint64]int, n)
		for r, key := range m.keys {
			m.rowOf[key] = r
		}
		if m.comp != nil {
			m.comp.compact()
		}
	}
}
