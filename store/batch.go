package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// recordSink is where a batch's records go: a [Batch]'s Pebble batch or an
// [IngestBatch]'s puts.
type recordSink interface {
	// set puts k = v; the sink may keep both slices, which every caller
	// has just built.
	set(k, v []byte)
	// setVector puts k = the vector record of faceID and vec
	// (encodeVector), encoding it where the sink keeps it: no buffer
	// between. The sink keeps nothing of vec itself, which callers reuse.
	setVector(k []byte, faceID string, vec []float32)
}

// records encodes the records that both kinds of batch take.
type records struct{ sink recordSink }

// PutCollection writes a collection's metadata.
func (r records) PutCollection(m CollectionMeta) { r.sink.set(collKey(m.ID), encodeCollection(m)) }

// PutFace writes a new face: its record and its vector, encoded; the batch
// keeps nothing of f, whose vector the caller may reuse at once.
func (r records) PutFace(coll string, f *Face) {
	r.sink.set(faceKey(coll, f.Seq), encodeFace(f))
	r.sink.setVector(vectorKey(coll, f.Seq), f.ID, f.Vector)
}

// UpdateFace rewrites an existing face's record (its owner changed); a
// face's vector never changes, so it is left as it is and f.Vector ignored.
func (r records) UpdateFace(coll string, f *Face) { r.sink.set(faceKey(coll, f.Seq), encodeFace(f)) }

// PutUser writes a user record and its primary-key index entry.
func (r records) PutUser(coll string, u User) {
	r.sink.set(userKey(coll, u.ID), encodeUser(u))
	r.sink.set(pkKey(coll, u.PK), []byte(u.ID))
}

// PutToken writes an idempotency record.
func (r records) PutToken(coll, op, token string, t Token) {
	r.sink.set(tokenKey(coll, op, token), encodeToken(t))
}

// Batch collects the writes of one engine call; nothing of it is visible
// until Commit, and then all of it is.
type Batch struct {
	records
	s   *Store
	b   *pebble.Batch
	err error
}

var _ recordSink = (*Batch)(nil)

// NewBatch starts an empty batch.
func (s *Store) NewBatch() *Batch {
	b := &Batch{s: s, b: s.db.NewBatch()}
	b.records.sink = b
	return b
}

func (b *Batch) set(k, v []byte) { b.keep(b.b.Set(k, v, nil)) }

// setVector encodes the record in the Pebble batch's own buffer, which
// Set would copy it into: a write of one face then allocates no
// vector-sized buffer (fresh memory is dear where page faults are).
func (b *Batch) setVector(k []byte, faceID string, vec []float32) {
	n := vectorRecordLen(faceID, len(vec))
	op := b.b.SetDeferred(len(k), n)
	copy(op.Key, k)
	if rec := encodeVector(op.Value[:0:n], faceID, vec); len(rec) != n {
		// Not in the room reserved: the batch would commit what the
		// room held before.
		b.keep(fmt.Errorf("store: vector record of face %q: %d bytes, %d reserved", faceID, len(rec), n))
	}
	b.keep(op.Finish())
}

func (b *Batch) del(k []byte) { b.keep(b.b.Delete(k, nil)) }

// keep keeps the batch's first error, for Commit.
func (b *Batch) keep(err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
}

// PutCollectionSeq records the last collection incarnation number handed out.
func (b *Batch) PutCollectionSeq(seq uint64) {
	b.set(keyCollSeq, binary.BigEndian.AppendUint64(nil, seq))
}

// DeleteCollection removes a collection and every record under it.
func (b *Batch) DeleteCollection(id string) {
	b.del(collKey(id))
	for _, root := range [][]byte{collRoot(id), vectorPrefix(id)} {
		b.keep(b.b.DeleteRange(root, prefixEnd(root), nil))
	}
}

// DeleteFace removes the face of sequence seq: its record and its vector.
func (b *Batch) DeleteFace(coll string, seq uint64) {
	b.del(faceKey(coll, seq))
	b.del(vectorKey(coll, seq))
}

// DeleteUser removes a user record and its primary-key index entry.
func (b *Batch) DeleteUser(coll string, u User) {
	b.del(userKey(coll, u.ID))
	b.del(pkKey(coll, u.PK))
}

// Size is the batch's encoded size in bytes.
func (b *Batch) Size() int { return b.b.Len() }

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.b.Count() == 0 }

// Commit applies the batch atomically. With sync it returns only once the
// batch is on stable storage; concurrent synced commits share fsyncs in
// Pebble's commit pipeline. The batch cannot be used afterwards.
func (b *Batch) Commit(sync bool) error {
	defer b.Close()
	if b.err != nil {
		return fmt.Errorf("store: build batch: %w", b.err)
	}
	if err := b.s.disk.allow(int64(b.Size())); err != nil {
		return err
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := b.b.Commit(opts); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// Close discards an uncommitted batch. It is safe to call twice.
func (b *Batch) Close() {
	if b.b != nil {
		b.b.Close()
		b.b = nil
	}
}
