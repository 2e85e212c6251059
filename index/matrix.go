package index

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Hit is one search result: a row's key and its dot product with the query.
type Hit struct {
	Key   uint64
	Score float32
}

const (
	// blockFloats sizes a block at 4 MiB: large enough that the per-block
	// bookkeeping is nil, small enough that the growth slack (at most one
	// block, plus maxAhead prefetched ones) is under 1% of a 1M x 512
	// matrix.
	blockFloats  = 1 << 20
	maxBlockRows = 1 << 16
	// firstBlockRows is where the first block starts; it doubles up to a full
	// block so that a small collection does not pay 4 MiB.
	firstBlockRows = 16
	// chunkFloats is the unit a search worker claims at a time: the
	// granularity of load balancing and of noticing a cancelled context,
	// and the length of the streams a worker reads. It is a whole block:
	// at 1M x 512 on the 2-core VM (medians of per-round ratios over 30
	// interleaved rounds, twice), a search in chunks of 4 MiB took
	// 0.85-0.95x the time it took in chunks of 256 KiB, the plain read
	// 0.90-0.95x and an int8 search 0.92-0.94x, as the prefetcher ramps up
	// less often; at 100k x 128, within the last-level cache's reach, the
	// chunk size made no difference (within 3%). A worker still notices a
	// cancelled context within a block: 0.2-0.3 ms of one query's scan,
	// about 1 ms of a pass of 32 queries.
	chunkFloats = blockFloats
	// workerFloats (8 MiB) is the least work, in rows x dim, worth a
	// goroutine of its own. BenchmarkSearchWorkers: two workers beat one
	// from 8k rows at d=512 (2 x workerFloats), not below.
	workerFloats = 1 << 21
	// shrinkMin keeps small matrices from re-allocating their keys on
	// every other delete.
	shrinkMin = 1024
	// maxAhead is how many blocks at most are faulted in ahead of the rows
	// (see Matrix.prefetch), at most 16 MiB of slack. BenchmarkUpsertFresh
	// (float32) on a 2-core VM, median of 4 runs, with the depth always at
	// its maximum: 1.65 s with none, 1.2 s with one, 0.9-1.05 s with 2, 4
	// or 8, where the faults and the caller keep both cores busy.
	maxAhead = 4
	// prefaultMinFloats (1 MiB) is the least block worth a prefetch
	// goroutine: every full block of a matrix from NewMatrix (2-4 MiB) but
	// no test-sized one.
	prefaultMinFloats = 1 << 18
	// pageBytes is the stride of the writes that fault a block in: the
	// smallest page size of the platforms Go runs on.
	pageBytes = 4096
)

// Matrix is a growable set of rows of Dim float32 values, each identified by
// a caller key (a user's primary key or a face's sequence number).
//
// Upsert and Delete must not run concurrently with any other method. Search,
// SearchShared, Vector, Len, Dim, Keys, Sum and Stats may run concurrently
// with each other. The engine guards a Matrix with a sync.RWMutex.
type Matrix struct {
	dim        int
	blockRows  int  // a power of two, so a row's block is a shift away
	blockShift uint // log2(blockRows)
	chunkRows  int  // a power of two <= blockRows, so a chunk never straddles blocks

	// blocks[b] holds rows [b*blockRows, (b+1)*blockRows). Only blocks[0]
	// may be shorter than blockRows*dim, while it is still growing. At most
	// one block past the last row is kept as a spare, but for what a Reserve
	// allocated ahead, until the next Fill.Done, Trim or Delete.
	blocks [][]float32
	keys   []uint64       // keys[r] is row r's key; len(keys) is the row count
	rowOf  map[uint64]int // the inverse of keys

	// tier is what searches scan; comp holds the compressed copy of the
	// rows (same row order, same blocks) for every tier but TierFloat32.
	tier Tier
	comp *compressed

	shared   coalescer // SearchShared's batching of concurrent searches
	shareMin int       // shareMinFloats; tests lower it
	stats    counters
	passHook func(qs []*query) // tests: called as a shared pass starts

	// ahead holds the next full blocks, each allocated and faulted in by a
	// goroutine of its own (see prefetch). They are not in blocks, so
	// searches never see them.
	ahead       []*pendingBlock
	prefaultMin int // prefaultMinFloats; tests lower it
}

// NewMatrix returns an empty matrix of dim-length rows, searched exactly
// ([TierFloat32]). It panics if dim < 1.
func NewMatrix(dim int) *Matrix {
	return NewMatrixTier(dim, TierFloat32)
}

// NewMatrixTier returns an empty matrix of dim-length rows whose searches
// scan the given tier (see [Tier]). It panics if dim < 1 or the tier is
// unknown.
func NewMatrixTier(dim int, tier Tier) *Matrix {
	if dim < 1 {
		panic(fmt.Sprintf("index: NewMatrix(%d): dimension must be at least 1", dim))
	}
	blockRows := floorPow2(min(max(blockFloats/dim, 1), maxBlockRows))
	chunkRows := floorPow2(min(max(chunkFloats/dim, 1), blockRows))
	return newMatrix(dim, blockRows, chunkRows, tier)
}

// newMatrix lets tests use tiny blocks and chunks so that every boundary is
// crossed with few rows.
func newMatrix(dim, blockRows, chunkRows int, tier Tier) *Matrix {
	if blockRows != floorPow2(blockRows) || chunkRows != floorPow2(chunkRows) || chunkRows > blockRows {
		panic(fmt.Sprintf("index: bad geometry: %d-row blocks, %d-row chunks", blockRows, chunkRows))
	}
	m := &Matrix{
		dim:        dim,
		blockRows:  blockRows,
		blockShift: uint(bits.TrailingZeros(uint(blockRows))),
		chunkRows:  chunkRows,
		rowOf:      make(map[uint64]int),
		tier:       tier,
		shareMin:   shareMinFloats,

		prefaultMin: prefaultMinFloats,
	}
	switch tier {
	case TierFloat32:
	case TierInt8, TierFloat16:
		m.comp = newCompressed(tier, dim)
	default:
		panic(fmt.Sprintf("index: unknown tier %d", tier))
	}
	return m
}

func floorPow2(x int) int { return 1 << (bits.Len(uint(x)) - 1) }

// Dim returns the length of every row.
func (m *Matrix) Dim() int { return m.dim }

// Len returns the number of rows.
func (m *Matrix) Len() int { return len(m.keys) }

// Tier returns the tier searches scan.
func (m *Matrix) Tier() Tier { return m.tier }

// row returns row r, capped so that an append by the caller cannot spill
// into the next row.
func (m *Matrix) row(r int) []float32 {
	b := m.blocks[r>>m.blockShift]
	off := (r & (m.blockRows - 1)) * m.dim
	return b[off : off+m.dim : off+m.dim]
}

// rows returns rows [lo, hi) as one slice; they must lie in one block, as
// the rows of a chunk do.
func (m *Matrix) rows(lo, hi int) []float32 {
	b := m.blocks[lo>>m.blockShift]
	off := (lo & (m.blockRows - 1)) * m.dim
	return b[off : off+(hi-lo)*m.dim : off+(hi-lo)*m.dim]
}

// Upsert copies vec into key's row, adding a row if key is new. vec must be
// L2-normalized by the caller, so that [Matrix.Search] scores are cosines.
// It panics if len(vec) != [Matrix.Dim]: the engine validates input first.
func (m *Matrix) Upsert(key uint64, vec []float32) {
	if len(vec) != m.dim {
		panic(fmt.Sprintf("index: Upsert of key %d: vector has %d values, matrix has dimension %d", key, len(vec), m.dim))
	}
	if r, ok := m.rowOf[key]; ok {
		copy(m.row(r), vec)
		if m.comp != nil {
			m.comp.set(m, r, vec)
		}
		return
	}
	r := len(m.keys)
	m.reserve(r)
	copy(m.row(r), vec)
	m.keys = append(m.keys, key)
	m.rowOf[key] = r
	if m.comp != nil {
		m.comp.add(m, r, vec)
	}
}

// Reserve allocates the blocks that n rows will fill. It never shrinks
// anything; blocks beyond the rows plus one spare go with the next Delete,
// Fill.Done or Trim. The key index is not sized here but by AddRows, from
// the keys themselves: an estimate too high would keep a map too large,
// since Go maps never shrink.
//
// Allocating a bulk load's blocks up front, rather than as rows arrive,
// also tells the garbage collector how large the heap is about to be: a
// heap grown block by block runs a collection at every doubling, each one
// marking everything else loaded so far (on a 2-core VM, three such
// collections took 0.9 s of a 1M x 512 Open). The blocks are not faulted
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

// Fill is a bulk load in progress: rows added by [Matrix.AddRows], each to
// be set once. Set may run on any number of goroutines at once, for
// distinct rows; nothing else may use the matrix until Done returns.
type Fill struct {
	m     *Matrix
	first int
	n     int
	// index is closed once the key map holds the new rows; it is built
	// while the rows are set, on a goroutine of its own.
	index chan struct{}
	done  bool
	// maxNorm and maxResid are float32 bits: the compressed tier's bounds
	// over the rows set, kept with atomic maxima since Set runs
	// concurrently (non-negative float32s order as their bits do).
	maxNorm, maxResid atomic.Uint32
}

// ReserveKeys sizes the key index of a matrix that has no rows for n keys,
// for a bulk load that knows its size: a key map grown key by key hashes
// its keys again at each growth. Unlike [Matrix.Reserve]'s estimates, n is
// the caller's word, and a count too high keeps a map too large. It does
// nothing to a matrix with rows or with room for n keys already.
func (m *Matrix) ReserveKeys(n int) {
	if len(m.keys) > 0 || cap(m.keys) >= n {
		return
	}
	m.keys = make([]uint64, 0, n)
	m.rowOf = make(map[uint64]int, n)
}

// AddRows appends one row per key, unset (holding whatever its block
// held), and returns the Fill through which the caller sets every one of
// them. It is the bulk load: unlike a row-by-row [Matrix.Upsert], the rows
// can be filled from many goroutines, and the key map is built while they
// are. The keys must be new and distinct; Done panics otherwise.
func (m *Matrix) AddRows(keys []uint64) *Fill {
	f := &Fill{m: m, first: len(m.keys), n: len(keys), index: make(chan struct{})}
	m.Reserve(f.first + f.n)
	reserved := cap(m.keys) >= f.first+f.n // by ReserveKeys, map and all
	m.keys = append(slices.Grow(m.keys, f.n), keys...)
	if m.comp != nil {
		m.comp.scale = append(slices.Grow(m.comp.scale, f.n), make([]float32, f.n)...)
		m.comp.resid = append(slices.Grow(m.comp.resid, f.n), make([]float32, f.n)...)
	}
	if len(m.rowOf) == 0 && !reserved {
		m.rowOf = make(map[uint64]int, f.n) // sized once, not rehashed on the way
	}
	added := m.keys[f.first:]
	go func() {
		defer close(f.index)
		for i, key := range added {
			m.rowOf[key] = f.first + i
		}
	}()
	return f
}

func ceilPow2(x int) int { return 1 << bits.Len(uint(max(x, 1)-1)) }

// Len is the number of rows being filled.
func (f *Fill) Len() int { return f.n }

// Set copies vec into the i-th row added (of the key keys[i] given to
// AddRows). vec must be L2-normalized, as for Upsert. It panics if
// len(vec) is not the matrix's dimension.
func (f *Fill) Set(i int, vec []float32) {
	m := f.m
	if len(vec) != m.dim || i < 0 || i >= f.n {
		panic(fmt.Sprintf("index: Fill.Set of row %d of %d: vector has %d values, matrix has dimension %d", i, f.n, len(vec), m.dim))
	}
	r := f.first + i
	copy(m.row(r), vec)
	if m.comp != nil {
		norm, resid := m.comp.encode(m, r, vec)
		atomicMax(&f.maxNorm, norm)
		atomicMax(&f.maxResid, resid)
	}
}

func atomicMax(a *atomic.Uint32, x float32) {
	bits := math.Float32bits(x)
	for {
		old := a.Load()
		if old >= bits || a.CompareAndSwap(old, bits) {
			return
		}
	}
}

// Done ends the fill: once it returns, the matrix may be used as usual.
// Calls after the first do nothing.
func (f *Fill) Done() {
	if f.done {
		return
	}
	f.done = true
	<-f.index
	m := f.m
	if len(m.rowOf) != len(m.keys) {
		panic(fmt.Sprintf("index: AddRows: %d rows but %d distinct keys: a key was repeated or already present", len(m.keys), len(m.rowOf)))
	}
	if c := m.comp; c != nil {
		c.maxNorm = max(c.maxNorm, math.Float32frombits(f.maxNorm.Load()))
		c.maxResid = max(c.maxResid, math.Float32frombits(f.maxResid.Load()))
	}
	m.dropSpareBlocks() // a Reserve that overestimated
}

// block is the storage of one block's rows: the float32 values and, for a
// compressed tier, their copy.
type block struct {
	f32 []float32
	i8  []int8
	f16 []uint16
}

// newBlock allocates a block of the given rows. It reads only fields of m
// that never change, so a prefetch goroutine may call it.
func (m *Matrix) newBlock(rows int) block {
	b := block{f32: make([]float32, rows*m.dim)}
	if c := m.comp; c != nil {
		switch c.tier {
		case TierInt8:
			b.i8 = make([]int8, rows*c.stride)
		case TierFloat16:
			b.f16 = make([]uint16, rows*c.stride)
		}
	}
	return b
}

func (m *Matrix) addBlock(b block) {
	m.blocks = append(m.blocks, b.f32)
	if m.comp != nil {
		m.comp.addBlock(b.i8, b.f16)
	}
}

// touch writes one zero per page of b. Go hands out fresh heap memory
// untouched, so the first write to each page faults; on a VM that fault
// is also the host's (1.4-5 s per 2 GB on a 2-core VM, against 0.15 s to
// rewrite memory already touched).
func (b block) touch() {
	touchPages(b.f32)
	touchPages(b.i8)
	touchPages(b.f16)
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
// caller, and Upsert's copies land on touched pages. Faulting from several
// threads at once is itself ~2x faster than from one on a 2-core VM. A
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

// Delete removes key's row and reports whether it was present. The last row
// moves into the hole, so rows stay dense and deleting costs O(dim).
func (m *Matrix) Delete(key uint64) bool {
	r, ok := m.rowOf[key]
	if !ok {
		return false
	}
	last := len(m.keys) - 1
	if r != last {
		copy(m.row(r), m.row(last))
		moved := m.keys[last]
		m.keys[r] = moved
		m.rowOf[moved] = r
		if m.comp != nil {
			m.comp.move(m, r, last)
		}
	}
	m.keys = m.keys[:last]
	delete(m.rowOf, key)
	if m.comp != nil {
		m.comp.truncate(last)
	}
	m.shrink()
	return true
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
			moved.i8, moved.f16 = m.comp.block(b)
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

// Vector returns key's row. The slice aliases the matrix: callers must not
// modify it, and it is valid only until the next [Matrix.Upsert] or
// [Matrix.Delete].
func (m *Matrix) Vector(key uint64) ([]float32, bool) {
	r, ok := m.rowOf[key]
	if !ok {
		return nil, false
	}
	return m.row(r), true
}

// Keys calls fn for every key, in no particular order. It lets the engine
// check that the index matches the store. fn must not modify m.
func (m *Matrix) Keys(fn func(key uint64)) {
	for _, key := range m.keys {
		fn(key)
	}
}

// All yields every row with its key, in row order. The slices alias the
// matrix, as [Matrix.Vector]'s do. The matrix must not change during the
// iteration.
func (m *Matrix) All() iter.Seq2[uint64, []float32] {
	return func(yield func(uint64, []float32) bool) {
		for r, key := range m.keys {
			if !yield(key, m.row(r)) {
				return
			}
		}
	}
}

// Search returns up to k rows whose score (dot product with q) is at least
// minScore, ordered by score descending, then key ascending. k <= 0 returns
// nil. If ctx is done before the scan completes, Search returns ctx.Err().
// A q of the wrong length returns an error wrapping [ErrDimension].
//
// Every score is exactly [Dot](q, row), whatever the tier: a compressed tier
// only chooses which rows to score exactly (see [Tier]).
//
// Large matrices are split across up to runtime.GOMAXPROCS(0) goroutines.
func (m *Matrix) Search(ctx context.Context, q []float32, k int, minScore float32) ([]Hit, error) {
	return m.search(ctx, q, k, minScore, m.workers())
}

// workers picks the fan-out: one goroutine per workerFloats of data, at most
// GOMAXPROCS.
func (m *Matrix) workers() int {
	return max(1, min(runtime.GOMAXPROCS(0), len(m.keys)*m.dim/workerFloats))
}

// check validates a query; ok is false when the answer is nil without a
// scan.
func (m *Matrix) check(q []float32, k int) (ok bool, err error) {
	if k <= 0 {
		return false, nil
	}
	if len(q) != m.dim {
		return false, fmt.Errorf("%w: query has %d values, matrix has dimension %d", ErrDimension, len(q), m.dim)
	}
	return len(m.keys) > 0, nil
}

func (m *Matrix) search(ctx context.Context, q []float32, k int, minScore float32, workers int) ([]Hit, error) {
	if ok, err := m.check(q, k); !ok {
		return nil, err
	}
	m.stats.searches.Add(1)
	qs := []*query{{vec: q, k: k, minScore: minScore, ctx: ctx}}
	m.pass(qs, workers)
	return qs[0].hits, qs[0].err
}

// searchExact is the float32 scan whatever the tier: what a compressed
// search falls back to, and the reference tests compare it with.
func (m *Matrix) searchExact(ctx context.Context, q []float32, k int, minScore float32, workers int) ([]Hit, error) {
	if ok, err := m.check(q, k); !ok {
		return nil, err
	}
	qs := []*query{{vec: q, k: k, minScore: minScore, ctx: ctx}}
	m.passTier(qs, workers, TierFloat32)
	return qs[0].hits, qs[0].err
}

func (m *Matrix) chunks() int { return (len(m.keys) + m.chunkRows - 1) / m.chunkRows }

// tierChunk is the rows per chunk a scan of tier claims: up to the same
// bytes per chunk whatever the tier, and at most a block, so that a
// compressed scan's workers also stream runs long enough for the hardware
// prefetcher (with a quarter of the bytes per row, 256 KiB float32 chunks
// halved an int8 scan's speed). Where chunks are whole blocks, as from
// NewMatrix, every tier claims whole blocks.
func (m *Matrix) tierChunk(tier Tier) int {
	switch tier {
	case TierInt8:
		return min(m.blockRows, 4*m.chunkRows)
	case TierFloat16:
		return min(m.blockRows, 2*m.chunkRows)
	}
	return m.chunkRows
}

// scan runs workers goroutines (the caller's is one of them) that claim
// chunks of chunkRows contiguous rows (a power of two, at most blockRows,
// so no chunk straddles blocks) in turn and pass each, as the row range
// [lo, hi), to visit; a worker calls finish once it runs out of chunks.
// Worker w's calls are sequential, so visit may keep per-worker state
// without locks. Claiming chunks one at a time, rather than splitting rows
// up front, keeps all workers busy to the end when some are descheduled.
// Before each chunk a worker calls stop (when not nil) and gives up with
// its error.
//
// The visitor is the seam for the kernels (one query or several per pass,
// float32 or compressed rows): the driver only knows row ranges.
func (m *Matrix) scan(workers, chunkRows int, stop func() error, visit func(w, lo, hi int), finish func(w int)) error {
	n := len(m.keys)
	chunks := (n + chunkRows - 1) / chunkRows
	var next atomic.Int64
	run := func(w int) error {
		for {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				break
			}
			if stop != nil {
				if err := stop(); err != nil {
					return err
				}
			}
			lo := c * chunkRows
			visit(w, lo, min(lo+chunkRows, n))
		}
		if finish != nil {
			finish(w)
		}
		return nil
	}
	workers = max(1, min(workers, chunks))
	if workers <= 1 {
		return run(0)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { errs[w] = run(w) })
	}
	errs[0] = run(0)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ctxStop is a scan's stop function for one context: a non-blocking
// receive, cheap enough per chunk.
func ctxStop(ctx context.Context) func() error {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	return func() error {
		select {
		case <-done:
			return ctx.Err()
		default:
			return nil
		}
	}
}

// Sum returns the sum of every value of every row, read with the same
// workers and chunks as [Matrix.Search] and the least work per value. It
// measures the memory-bandwidth floor: no exact scan of the matrix can take
// less time than reading it once.
//
// Each chunk is read as the single-query scan reads it, its two halves
// side by side (sumChunk): on the 2-core Zen 4 VM this was measured on,
// that read 2-6% faster than one stream a core, and four streams no
// faster than two, so the floor is the faster read.
func (m *Matrix) Sum(ctx context.Context) (float64, error) {
	workers := max(1, min(m.workers(), m.chunks()))
	sums := make([]float64, workers*8) // 64 bytes apart: no false sharing
	err := m.scan(workers, m.chunkRows, ctxStop(ctx), func(w, lo, hi int) {
		sums[w*8] += float64(sumChunk(m.rows(lo, hi)))
	}, nil)
	if err != nil {
		return 0, err
	}
	var total float64
	for w := range workers {
		total += sums[w*8]
	}
	return total, nil
}

// topK keeps the best cap(items) hits seen so far.
type topK struct {
	// items is a heap whose root is the worst kept hit, so a better
	// candidate replaces it in O(log k).
	items []Hit
	// floor is the least score that can still enter: minScore until the
	// heap is full, then the root's score. Most rows fail this one compare.
	floor float32
	_     [64]byte // workers' heaps sit side by side; keep them off each other's cache lines
}

// take offers the rows keys[i], whose scores are scores[i*stride]. Most
// rows fail the one compare with the floor.
func (h *topK) take(scores []float32, stride int, keys []uint64) {
	floor := h.floor
	for i, key := range keys {
		s := scores[i*stride]
		if !(s >= floor) { // also drops NaN
			continue
		}
		h.offer(Hit{Key: key, Score: s})
		floor = h.floor
	}
}

// offer adds x if it beats the worst kept hit, or if there is still room.
func (h *topK) offer(x Hit) {
	if len(h.items) < cap(h.items) {
		h.items = append(h.items, x)
		h.up(len(h.items) - 1)
		if len(h.items) == cap(h.items) {
			h.floor = h.items[0].Score
		}
		return
	}
	if !worse(h.items[0], x) {
		return // an equal score with a larger key, or below the root
	}
	h.items[0] = x
	h.down(0)
	h.floor = h.items[0].Score
}

func (h *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(h.items[i], h.items[p]) {
			return
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *topK) down(i int) {
	n := len(h.items)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && worse(h.items[r], h.items[c]) {
			c = r
		}
		if !worse(h.items[c], h.items[i]) {
			return
		}
		h.items[i], h.items[c] = h.items[c], h.items[i]
		i = c
	}
}

// worse reports whether a ranks below b. The order is total (score, then
// key descending), so which of two tied rows makes the cut never depends on
// scan order or worker count.
func worse(a, b Hit) bool {
	return a.Score < b.Score || (a.Score == b.Score && a.Key > b.Key)
}

// CompareHits is the order of every search's results, best first: score
// descending, then key ascending.
func CompareHits(a, b Hit) int {
	if a.Score != b.Score {
		if a.Score > b.Score {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.Key, b.Key)
}

// merge takes the best k hits from the workers' sorted heaps.
func merge(heaps []topK, k int) []Hit {
	if len(heaps) == 1 {
		return nilIfEmpty(heaps[0].items)
	}
	total := 0
	for _, h := range heaps {
		total += len(h.items)
	}
	out := make([]Hit, 0, min(k, total))
	head := make([]int, len(heaps))
	for len(out) < cap(out) {
		best := -1
		for w, h := range heaps {
			if head[w] < len(h.items) && (best < 0 || worse(heaps[best].items[head[best]], h.items[head[w]])) {
				best = w
			}
		}
		out = append(out, heaps[best].items[head[best]])
		head[best]++
	}
	return nilIfEmpty(out)
}

func nilIfEmpty(h []Hit) []Hit {
	if len(h) == 0 {
		return nil
	}
	return h
}
