package index

import (
	"fmt"
	"iter"
	"math/bits"
	"slices"
)

const (
	// blockFloats sizes a block at 4 MiB: large enough that the per-block
	// bookkeeping is nil, small enough that the growth slack (at most one
	// block, plus maxAhead prefetched ones) is under 1% of a 1M x 512
	// matrix.
	blockFloats  = 1 << 20
	maxBlockRows = 1 << 16
	// firstBlockRows is where the first block starts, one panel; it
	// doubles up to a full block so that a small collection does not pay
	// 4 MiB.
	firstBlockRows = panelRows
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
	// The rows of a block lie in panels (see panel.go).
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
	blockRows := floorPow2(min(max(blockFloats/dim, panelRows), maxBlockRows))
	chunkRows := floorPow2(min(max(chunkFloats/dim, panelRows), blockRows))
	return newMatrix(dim, blockRows, chunkRows, tier)
}

// newMatrix lets tests use tiny blocks and chunks so that every boundary is
// crossed with few rows.
func newMatrix(dim, blockRows, chunkRows int, tier Tier) *Matrix {
	if blockRows != floorPow2(blockRows) || chunkRows != floorPow2(chunkRows) || chunkRows > blockRows || chunkRows < panelRows {
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
	if tier != TierFloat32 {
		if m.comp = newCompressed(tier, dim, m.blockRows, m.blockShift); m.comp == nil {
			panic(fmt.Sprintf("index: unknown tier %d", tier))
		}
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

// Upsert copies vec into key's row, adding a row if key is new. vec must be
// L2-normalized by the caller, so that [Matrix.Search] scores are cosines.
// It panics if len(vec) != [Matrix.Dim]: the engine validates input first.
func (m *Matrix) Upsert(key uint64, vec []float32) {
	if len(vec) != m.dim {
		panic(fmt.Sprintf("index: Upsert of key %d: vector has %d values, matrix has dimension %d", key, len(vec), m.dim))
	}
	if r, ok := m.rowOf[key]; ok {
		m.setRow(r, vec)
		if m.comp != nil {
			m.comp.set(r, vec)
		}
		return
	}
	r := len(m.keys)
	m.reserve(r)
	m.setRow(r, vec)
	m.keys = append(m.keys, key)
	m.rowOf[key] = r
	if m.comp != nil {
		m.comp.addRows(1)
		m.comp.set(r, vec)
	}
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
		m.moveRow(r, last)
		moved := m.keys[last]
		m.keys[r] = moved
		m.rowOf[moved] = r
		if m.comp != nil {
			m.comp.move(r, last)
		}
	}
	m.clearRow(last)
	m.keys = m.keys[:last]
	delete(m.rowOf, key)
	if m.comp != nil {
		m.comp.truncate(last)
	}
	m.shrink()
	return true
}

// Vector returns a copy of key's row.
func (m *Matrix) Vector(key uint64) ([]float32, bool) {
	return m.AppendVector(nil, key)
}

// AppendVector appends key's row to dst and returns the extended slice; it
// returns dst unchanged and false if key has no row.
func (m *Matrix) AppendVector(dst []float32, key uint64) ([]float32, bool) {
	r, ok := m.rowOf[key]
	if !ok {
		return dst, false
	}
	n := len(dst)
	dst = slices.Grow(dst, m.dim)[:n+m.dim]
	m.readRow(r, dst[n:])
	return dst, true
}

// Keys calls fn for every key, in no particular order. It lets the engine
// check that the index matches the store. fn must not modify m.
func (m *Matrix) Keys(fn func(key uint64)) {
	for _, key := range m.keys {
		fn(key)
	}
}

// All yields every row with its key, in row order. The row is a copy,
// overwritten by the next: a caller that keeps it copies it. The matrix
// must not change during the iteration.
func (m *Matrix) All() iter.Seq2[uint64, []float32] {
	return func(yield func(uint64, []float32) bool) {
		row := make([]float32, m.dim)
		for r, key := range m.keys {
			if !yield(key, m.readRow(r, row)) {
				return
			}
		}
	}
}
