// Package index holds the in-memory vectors of one collection's users or
// faces and answers exact top-k searches over them.
//
// A [Matrix] stores each row's float32 vector in fixed-size blocks rather than
// one growing slice, so that adding rows never doubles the allocation of a
// multi-gigabyte matrix: growth slack stays below one block. Rows are kept
// dense (deleting swaps the last row into the hole), so a search is a straight
// pass over contiguous memory.
//
// [Matrix.Search] scores every row with [Dot] (vek32 SIMD when the CPU has
// it, a pure-Go loop otherwise), keeps a bounded top-k heap per worker, and
// merges the workers' heaps at the end; it never sorts all scores. Results
// are ordered by score descending, then key ascending, so equal scores come
// back in a stable, documented order.
//
// A Matrix does no locking of its own: the engine guards each one with a
// sync.RWMutex, searching under the read lock and mutating under the write
// lock.
package index
