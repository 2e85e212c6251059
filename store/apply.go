package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Apply records are what a replicated log's applier keeps beside the data
// it applies (the sequence it applied, the outcomes of its commands), under
// a prefix of their own so that they commit in the batch of the command
// they record. The store does not read them: their keys and values are the
// applier's.
var prefixApply = []byte("a/")

func applyKey(key string) []byte {
	return append(append(make([]byte, 0, len(prefixApply)+len(key)), prefixApply...), key...)
}

// PutApplyRecord writes the apply record key = v.
func (b *Batch) PutApplyRecord(key string, v []byte) { b.set(applyKey(key), bytes.Clone(v)) }

// DeleteApplyRecord removes the apply record key.
func (b *Batch) DeleteApplyRecord(key string) { b.del(applyKey(key)) }

// ApplyRecord returns the apply record key, if there is one.
func (s *Store) ApplyRecord(key string) ([]byte, bool, error) { return s.get(applyKey(key)) }

// ApplyKV is one apply record.
type ApplyKV struct {
	Key   string
	Value []byte
}

// ApplyRecords returns, in key order, at most limit apply records whose
// keys are at least from and below to.
func (s *Store) ApplyRecords(from, to string, limit int) ([]ApplyKV, error) {
	if limit <= 0 || from >= to {
		return nil, nil
	}
	var out []ApplyKV
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: applyKey(from), UpperBound: applyKey(to)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		out = append(out, ApplyKV{Key: string(it.Key()[len(prefixApply):]), Value: bytes.Clone(it.Value())})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store: read apply records: %w", err)
	}
	return out, nil
}

// faceSeqKey is the key of a collection's last face sequence handed out
// by the engine's calls: the faces that had the highest sequences may be
// deleted, and a restarted engine must not hand their sequences out again
// where replicas that did not restart would hand out later ones.
func faceSeqKey(coll string) []byte { return collPrefix(coll, 'q') }

// PutLastFaceSeq records that the faces of coll up to sequence seq were
// handed out.
func (b *Batch) PutLastFaceSeq(coll string, seq uint64) {
	b.set(faceSeqKey(coll), binary.BigEndian.AppendUint64(nil, seq))
}

// LastFaceSeq returns the last face sequence recorded for coll (see
// [Batch.PutLastFaceSeq]), 0 if none.
func (s *Store) LastFaceSeq(coll string) (uint64, error) {
	v, ok, err := s.get(faceSeqKey(coll))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: the last face sequence of collection %s has %d bytes", ErrCorrupt, coll, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
