package index

import "sync/atomic"

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
	// Searches/Passes is the mean batch size.
	Passes uint64
	// Shared is the number of searches that shared their pass with at
	// least one other.
	Shared uint64
	// Fallbacks is the number of compressed-tier searches whose candidates
	// could not be proven to hold the exact answer, and which therefore
	// scanned the float32 rows as well.
	Fallbacks uint64
	// Rescored is the number of candidate rows compressed-tier searches
	// scored exactly with the float32 rows (fallback scans not included).
	Rescored uint64
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
