package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
)

// ScanFaces reads every face record of a collection (without vectors, see
// ScanVectors), splitting the sequences into parts contiguous ranges read
// by as many goroutines (at most 16), as ScanVectors does.
//
// fn gets each record in f, which it may keep only during the call, as
// also f.UserID (copy it to keep it; the other strings it may keep); calls
// for one part come from one goroutine, in sequence order, and calls for
// different parts run concurrently. The first error (from fn or the store)
// stops every part and is returned.
func (s *Store) ScanFaces(coll string, parts int, fn func(part int, f *Face) error) error {
	prefix := collPrefix(coll, 's')
	bounds, err := s.seqParts(prefix, parts, func(seq uint64) []byte { return faceKey(coll, seq) })
	if err == nil {
		err = s.scanParts(bounds, func(p int, it *pebble.Iterator, halted func(n int) bool) error {
			var f Face
			n := 0
			for valid := it.First(); valid; valid = it.Next() {
				if n++; halted(n) {
					return errStopped
				}
				seq, err := seqOf(it.Key(), prefix, "face record")
				if err != nil {
					return err
				}
				if err := decodeFaceInto(&f, seq, it.Value(), true); err != nil {
					return err
				}
				if err := fn(p, &f); err != nil {
					return err
				}
			}
			return it.Error()
		})
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("store: scan faces of %s: %w", coll, err)
	}
	return err
}

// ScanVectors reads every face vector of a collection, splitting the
// sequence numbers into parts contiguous ranges read by as many goroutines
// (at most 16). Vectors are keyed by sequence, so each range is a run of
// records written together: reads are sequential, and the ranges hold
// about even shares unless deletions thinned some out.
//
// fn gets each vector's sequence, its face's ID and the values decoded into
// vec; both faceID and vec are buffers it may keep only during the call (a
// string per vector would be a million allocations in a large Open). Calls
// for one part come from one goroutine, in sequence order, and calls for
// different parts run concurrently. The first error (from fn or the store)
// stops every part and is returned.
func (s *Store) ScanVectors(coll string, parts int, fn func(part int, seq uint64, faceID []byte, vec []float32) error) error {
	prefix := vectorPrefix(coll)
	bounds, err := s.seqParts(prefix, parts, func(seq uint64) []byte { return vectorKey(coll, seq) })
	if err == nil {
		err = s.scanParts(bounds, func(p int, it *pebble.Iterator, halted func(n int) bool) error {
			var vec []float32
			n := 0
			for valid := it.First(); valid; valid = it.Next() {
				if n++; halted(n) {
					return errStopped
				}
				seq, err := seqOf(it.Key(), prefix, "vector")
				if err != nil {
					return err
				}
				id, raw, err := decodeVectorRaw(seq, it.Value())
				if err != nil {
					return err
				}
				vec = decodeVector(vec, raw)
				if err := fn(p, seq, id, vec); err != nil {
					return err
				}
			}
			return it.Error()
		})
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("store: scan vectors of %s: %w", coll, err)
	}
	return err
}

// seqParts cuts the keys under prefix, which end in a sequence (key makes
// the key of one), into parts (1 to 16) ranges of even shares of the
// sequences up to the last one stored.
func (s *Store) seqParts(prefix []byte, parts int, key func(seq uint64) []byte) ([][]byte, error) {
	parts = max(1, min(parts, 16))
	end := prefixEnd(prefix)
	last, err := s.lastSeq(prefix, end)
	if err != nil {
		return nil, err
	}
	bounds := make([][]byte, parts+1)
	bounds[0], bounds[parts] = prefix, end
	for i := 1; i < parts; i++ {
		bounds[i] = key(1 + last/uint64(parts)*uint64(i))
	}
	return bounds, nil
}

// errStopped ends a part of scanParts because another part failed.
var errStopped = errors.New("store: scan stopped")

// scanParts runs read for each range [bounds[p], bounds[p+1]) on a
// goroutine of its own, each with its iterator. The first error stops
// every part and is returned: read calls halted with the count of keys
// it has read, and returns errStopped when it says so (it checks every
// 1024 keys).
func (s *Store) scanParts(bounds [][]byte, read func(p int, it *pebble.Iterator, halted func(n int) bool) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		stopped  atomic.Bool
	)
	var wg sync.WaitGroup
	for p := range len(bounds) - 1 {
		wg.Go(func() {
			it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: bounds[p], UpperBound: bounds[p+1]})
			if err == nil {
				err = read(p, it, func(n int) bool { return n%1024 == 0 && stopped.Load() })
				err = errors.Join(err, it.Close())
			}
			if err != nil && !errors.Is(err, errStopped) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				stopped.Store(true)
			}
		})
	}
	wg.Wait()
	return firstErr
}

// lastSeq is the highest sequence among the keys in [prefix, end), 0 when
// there are none or the last key is malformed (the scan reports it).
func (s *Store) lastSeq(prefix, end []byte) (uint64, error) {
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
	if nativeLittleEndian {
		// The bytes are already float32s in memory order: one memmove, a
		// fifth of the loop's time over a million 512-d vectors.
		copy(floatBytes(buf), raw)
		return buf
	}
	for i := range buf {
		buf[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return buf
}

var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// floatBytes is the memory of v, in the machine's byte order.
func floatBytes(v []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

// EstimateFaces guesses how many faces of dim values a collection holds,
// from the disk space of its vectors (what is still only in the write-ahead
// log is not counted). Open uses it to allocate the matrices up front.
func (s *Store) EstimateFaces(coll string, dim int) int {
	prefix := vectorPrefix(coll)
	// Not DB.EstimateDiskUsage: in this Pebble release it reads the
	// version's cached annotations without the lock that compactions take
	// to update them (a data race the race detector reports).
	levels, err := s.db.SSTables(pebble.WithKeyRangeFilter(prefix, prefixEnd(prefix)), pebble.WithApproximateSpanBytes())
	if err != nil {
		return 0
	}
	var n uint64
	for _, tables := range levels {
		for _, t := range tables {
			n += t.ApproximateSpanBytes
		}
	}
	// A vector record is its values plus about 60 bytes of face ID and key.
	return int(n / uint64(4*dim+60))
}
