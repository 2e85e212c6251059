package cluster

import (
	"sync"
	"time"
)

// Clock gives the times a node stamps on the commands it issues: the wall
// clock, but always later than every time it gave or observed before. A
// node's commands thus carry strictly increasing times even when its wall
// clock steps back, and, fed the times of the commands it applies, later
// times than any command it has seen from another node.
type Clock struct {
	mu   sync.Mutex
	now  func() time.Time
	last int64
}

// NewClock returns a Clock reading now; nil reads time.Now.
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now}
}

// Now returns the time for a new command, in Unix nanoseconds.
func (c *Clock) Now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.now().UnixNano(), c.last+1)
	return c.last
}

// Observe tells the clock about a time seen elsewhere (an applied command's,
// or the last one recorded before a restart); later calls to Now return
// later times.
func (c *Clock) Observe(t int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last, t)
}
