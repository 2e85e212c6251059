package index

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"
)

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
		m.comp.addRows(f.n)
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
	m.setRow(r, vec)
	if m.comp != nil {
		norm, resid := m.comp.encode(r, vec)
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
