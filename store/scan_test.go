package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestEstimateFaces: the estimate Open sizes its matrices by is near the
// number of vectors on disk, and counts no other collection's.
func TestEstimateFaces(t *testing.T) {
	s := openStore(t, t.TempDir())
	assert.Zero(t, s.EstimateFaces("c", 4), "no tables yet")
	for round := range 3 {
		ingestFaces(t, s, uint64(1+round*2000), 2000)
	}
	got := s.EstimateFaces("c", 4)
	assert.InDelta(t, 6000, got, 6000*0.25, "estimate %d for 6000 faces", got)
	assert.Zero(t, s.EstimateFaces("other", 4))
}
