package index

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
)

// counters are a matrix's search statistics, updated atomically.
type counters struct {
	searches  atomic.Uint64
	passes    atomic.Uint64
	shared    atomic.Uint64
	fallbacks atomic.Uint64
	rescored  atomic.Uint64
}

// Stats counts the searches a [Matrix] has answered.
type Stats struct {
	// Searches is the number of searches answered with a scan (calls that
	// returned before scanning, such as k <= 0, are not counted).
	Searches uint64
	// Passes is the number of passes over the rows. A search alone is one
	// pass; searches coalesced by [Matrix.SearchShared] share one, so
	// Searches/Passes is the mean batch size. A coalesced pass stopped to
	// give way to a larger one is not counted: the one that answers its
	// searches is.
	Passes uint64
	// Shared is the number of searches that shared their pass with at
	// least one other, each counted once, by the pass that answered it.
	Shared uint64
	// Fallbacks is the number of compressed-tier searches whose candidates
	// could not be proven to hold the exact answer, and which therefore
	// scanned the float32 rows as well.
	Fallbacks uint64
	// Rescored is the number of candidate rows compressed-tier searches
	// scored exactly with the float32 rows (fallback scans not included).
	Rescored uint64
}

// countPass counts a scan of qs, which returned err, in Passes unless it
// stopped because its pass gave way (a query of it cancelled with
// errGaveWay): the pass is counted when it runs again.
func (m *Matrix) countPass(qs []*query, err error) {
	if err != nil && slices.ContainsFunc(qs, func(q *query) bool {
		return errors.Is(context.Cause(q.ctx), errGaveWay)
	}) {
		return
	}
	m.stats.passes.Add(1)
}

// Stats returns the matrix's search statistics so far.
func (m *Matrix) Stats() Stats {
	return Stats{
		Searches:  m.stats.searches.Load(),
		Passes:    m.stats.passes.Load(),
		Shared:    m.stats.shared.Load(),
		Fallbacks: m.stats.fallbacks.Load(),
		Rescored:  m.stats.rescored.Load(),
	}
}
