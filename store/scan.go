package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// ScanVectors reads every face vector of a collection, splitting the
// sequence numbers into parts contiguous ranges read by as many goroutines
// (at most 16). Vectors are keyed by sequence, so each range is a run of
// records written together: reads are sequential, and the ranges hold
// about even shares unless deletions thinned some out.
//
// fn gets each vector's sequence, its face's ID and the values decoded into
// vec, a buffer it may keep only during the call; calls for one part come
// from one goroutine, in sequence order, and calls for different parts run
// concurrently. The first error (from fn or the store) stops every part and
// is returned.
func (s *Store) ScanVectors(coll string, parts int, fn func(part int, seq uint64, faceID string, vec []float32) error) error {
	parts = max(1, min(parts, 16))
	prefix := collPrefix(coll, 'v')
	end := prefixEnd(prefix)
	last, err := s.lastVectorSeq(prefix, end)
	if err != nil {
		return fmt.Errorf("store: scan vectors of %s: %w", coll, err)
	}
	bounds := make([][]byte, parts+1)
	bounds[0], bounds[parts] = prefix, end
	for i := 1; i < parts; i++ {
		bounds[i] = vectorKey(coll, 1+last/uint64(parts)*uint64(i))
	}
	var (
		mu       sync.Mutex
		firstErr error
		stopped  bool
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		stopped = true
		mu.Unlock()
	}
	halted := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return stopped
	}
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: bounds[p], UpperBound: bounds[p+1]})
			if err != nil {
				fail(err)
				return
			}
			defer it.Close()
			var vec []float32
			n := 0
			for it.First(); it.Valid(); it.Next() {
				if n++; n%1024 == 0 && halted() {
					return
				}
				k := it.Key()[len(prefix):]
				if len(k) != 8 {
					fail(fmt.Errorf("%w: vector key %q", ErrCorrupt, it.Key()))
					return
				}
				seq := binary.BigEndian.Uint64(k)
				id, raw, err := decodeVectorRaw(seq, it.Value())
				if err != nil {
					fail(err)
					return
				}
				vec = decodeVector(vec, raw)
				if err := fn(p, seq, id, vec); err != nil {
					fail(err)
					return
				}
			}
			if err := it.Error(); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, ErrCorrupt) {
		return fmt.Errorf("store: scan vectors of %s: %w", coll, firstErr)
	}
	return firstErr
}

// lastVectorSeq is the highest sequence among the vectors in [prefix, end),
// 0 when there are none or the last key is malformed (the scan reports it).
func (s *Store) lastVectorSeq(prefix, end []byte) (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: end})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	if k := it.Key()[len(prefix):]; len(k) == 8 {
		return binary.BigEndian.Uint64(k), nil
	}
	return 0, nil
}

// decodeVector decodes little-endian float32s into buf, grown as needed.
func decodeVector(buf []float32, raw []byte) []float32 {
	n := len(raw) / 4
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	buf = buf[:n]
	for i := range buf {
		buf[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return buf
}

// EstimateFaces guesses how many faces of dim values a collection holds,
// from the disk space of its face records (what is still only in the
// write-ahead log is not counted). Open uses it to size maps up front.
func (s *Store) EstimateFaces(coll string, dim int) int {
	prefix := collPrefix(coll, 'v')
	n, err := s.db.EstimateDiskUsage(prefix, prefixEnd(prefix))
	if err != nil {
		return 0
	}
	// A vector record is its values plus about 60 bytes of face ID and key.
	return int(n / uint64(4*dim+60))
}
