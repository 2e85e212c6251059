// Package index holds the in-memory vectors of one collection's users or
// faces and answers exact top-k searches over them.
//
// A [Matrix] stores each row's float32 vector in fixed-size blocks rather than
// one growing slice, so that adding rows never doubles the allocation of a
// multi-gigabyte matrix: growth slack stays below one block. Within a block
// the rows lie in panels of 64, value k of each of a panel's rows side by
// side, so that a kernel holds one row's score in each lane of a register.
// Rows are kept dense (deleting moves the last row into the hole), so a
// search is a straight pass over contiguous memory.
//
// An exact scan must read every row, so one search can never take less time
// than reading the matrix once ([Matrix.Sum] measures that floor). A single
// [Matrix.Search] runs at the floor (with AVX-512; AVX2's 16 registers hold
// the chains of one stream of panels, not four, about 1.2x): workers claim
// chunks of rows and score each run of rows with one kernel call, keeping a bounded top-k heap per
// worker and merging the heaps at the end; it never sorts all scores.
// Results are ordered by score descending, then key ascending, so equal
// scores come back in a stable, documented order; [Matrix.SearchSharedAs]
// ranks rows under keys the caller maps them to, ties at the k-th score
// included, in the same single pass.
//
// Two ways past the floor:
//
//   - [Matrix.SearchShared] coalesces concurrent searches: those that arrive
//     while a pass runs share the next one (a group commit), and a
//     register-blocked kernel scores several queries per panel loaded (six
//     queries by a panel's 64 rows at a time, near the FMA peak), so a pass
//     for hundreds of queries costs one read of the matrix plus their
//     arithmetic.
//     [Matrix.SearchBatch] runs the same passes for many queries given at
//     once, and [Matrix.DotsRuns] scores every query against every row with
//     the same kernels, for callers that need all the scores.
//   - A compressed [Tier] (int8 or float16) scans a smaller copy of the rows
//     for rigorous upper bounds of the scores, re-scores the best candidates
//     with the float32 rows, and proves the answer complete, falling back to
//     a float32 scan when it cannot. The float16 bounds take one query per
//     row read, so a pass of more than a few queries scans the float32
//     rows; the int8 tier, where the CPU has AVX-512 VNNI, bounds a whole
//     pass's queries per row read, 16 rows at a time, with integer dot
//     products four times as dense as float32 ones.
//
// Either way the answer is exactly that of a lone float32 scan: the same
// keys, the same order, and scores with the same bits, because every
// float32 kernel (one query or several, assembly or pure Go) works each dot
// product out as [Dot] does: one fused multiply-add per value, in order.
// The kernels are chosen once, at init, for the CPU; the pure-Go ones are
// the reference the assembly is tested against, and the build needs no
// assembly (tag purego, or any architecture but amd64).
//
// A Matrix does no locking of its own: the engine guards each one with a
// sync.RWMutex, searching under the read lock and mutating under the write
// lock. The exception is a bulk load, which knows its keys before its
// vectors: [Matrix.Reserve] allocates the blocks up front, [Matrix.AddRows]
// gives every key its row, and the returned [Fill] takes the vectors from
// any number of goroutines at once while the key index is built beside
// them. Open loads a collection this way, the goroutines that read the
// vectors from the store writing them straight into their rows.
package index
