// Package arena hands out memory that is reused batch after batch, so that
// a bulk import does not make garbage of every record and vector it
// writes: gigabytes that the collector would let pile up in fresh memory
// before reclaiming any.
package arena

import "unsafe"

// chunkBytes is the size of an arena's chunks, but for larger requests.
const chunkBytes = 4 << 20

// Arena hands out slices of T from chunks that [Arena.Reset] hands out
// again. The zero value is ready to use. An Arena is not safe for
// concurrent use.
type Arena[T byte | float32] struct {
	chunks [][]T
	cur    int // chunks[cur] is being handed out, from off on
	off    int
}

// Alloc returns room for n values (capacity n), valid until the next Reset.
func (a *Arena[T]) Alloc(n int) []T {
	if n == 0 {
		return []T{}
	}
	for a.cur < len(a.chunks) {
		if c := a.chunks[a.cur]; a.off+n <= len(c) {
			b := c[a.off : a.off+n : a.off+n]
			a.off += n
			return b
		}
		a.cur, a.off = a.cur+1, 0
	}
	var zero T
	a.chunks = append(a.chunks, make([]T, max(chunkBytes/int(unsafe.Sizeof(zero)), n)))
	a.cur, a.off = len(a.chunks)-1, 0
	return a.Alloc(n)
}

// Reset makes all of the arena's memory free to hand out again: only once
// nothing it handed out is used any more.
func (a *Arena[T]) Reset() { a.cur, a.off = 0, 0 }
