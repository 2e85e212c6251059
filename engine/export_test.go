package engine

import "time"

// SetClock replaces the engine's clock, for idempotency-expiry tests.
func SetClock(e *Engine, now func() time.Time) { e.now = now }

// BatchGroup is how many queries of a batch search one group holds.
const BatchGroup = batchGroup
