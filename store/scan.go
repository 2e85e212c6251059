package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// ScanFaces reads every face of a collection, vectors included, splitting
// the face IDs into parts contiguous ranges read by as many goroutines (at
// most 16). Engine-made face IDs are random UUIDs, so ranges of their first
// hex digit hold even shares; other IDs still land in exactly one range.
//
// fn gets each face with its vector decoded into vec, a buffer it may keep
// only during the call; calls for one part come from one goroutine, in ID
// order, and calls for different parts run concurrently. The first error
// (from fn or the store) stops every part and is returned.
func (s *Store) ScanFaces(coll string, parts int, fn func(part int, f *Face, vec []float32) error) error {
	parts = max(1, min(parts, 16))
	prefix := collPrefix(coll, 'f')
	bounds := make([][]byte, parts+1)
	bounds[0], bounds[parts] = prefix, prefixEnd(prefix)
	for i := 1; i < parts; i++ {
		bounds[i] = append(bytes.Clone(prefix), "0123456789abcdef"[i*16/parts])
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
				f, raw, err := decodeFaceRaw(string(it.Key()[len(prefix):]), it.Value())
				if err != nil {
					fail(err)
					return
				}
				vec = decodeVector(vec, raw)
				if err := fn(p, f, vec); err != nil {
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
		return fmt.Errorf("store: scan faces of %s: %w", coll, firstErr)
	}
	return firstErr
}

// decodeFaceRaw decodes a face record, returning its vector's bytes (4 per
// value, little-endian) rather than decoding them.
func decodeFaceRaw(id string, v []byte) (*Face, []byte, error) {
	d := decoder{b: v}
	d.version("face " + id)
	f := &Face{ID: id}
	f.Seq = d.uvarint("face seq")
	f.ImageID = d.str("face image id")
	f.ExternalImageID = d.str("face external image id")
	f.UserID = d.str("face user id")
	n := d.uvarint("face dim")
	if d.err == nil && n*4 != uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: face %s says %d dims but holds %d bytes", ErrCorrupt, id, n, len(d.b))
	}
	return f, d.b, d.err
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
	prefix := collPrefix(coll, 'f')
	n, err := s.db.EstimateDiskUsage(prefix, prefixEnd(prefix))
	if err != nil {
		return 0
	}
	// A face record is its vector plus about 100 bytes of IDs and key.
	return int(n / uint64(4*dim+100))
}
