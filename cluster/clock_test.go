package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClockIsStrictlyIncreasing(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	// The wall clock stands still, steps back, then jumps ahead.
	walls := []time.Time{base, base, base.Add(-time.Hour), base.Add(time.Second)}
	i := 0
	c := NewClock(func() time.Time { w := walls[i]; i++; return w })
	want := []int64{base.UnixNano(), base.UnixNano() + 1, base.UnixNano() + 2, base.Add(time.Second).UnixNano()}
	for _, w := range want {
		assert.Equal(t, w, c.Now())
	}
}

func TestClockObserve(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	c := NewClock(func() time.Time { return base })
	seen := base.Add(time.Minute).UnixNano() // another node's clock runs ahead
	c.Observe(seen)
	assert.Equal(t, seen+1, c.Now(), "a command issued after one seen carries a later time")
	c.Observe(base.UnixNano()) // an older time changes nothing
	assert.Equal(t, seen+2, c.Now())
}
