package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Batch collects the writes of one engine call; nothing of it is visible
// until Commit, and then all of it is.
type Batch struct {
	s   *Store
	b   *pebble.Batch // nil for an ingest batch
	in  *ingestBuf    // non-nil for an ingest batch (see [Store.NewIngestBatch])
	err error
}

// NewBatch starts an empty batch.
func (s *Store) NewBatch() *Batch { return &Batch{s: s, b: s.db.NewBatch()} }

// set puts k = v. An ingest batch keeps both slices: every caller passes
// ones it has just built.
func (b *Batch) set(k, v []byte) {
	if b.in != nil {
		b.in.kvs = append(b.in.kvs, kv{k, v, len(b.in.kvs)})
		b.in.size += len(k) + len(v)
		return
	}
	if err := b.b.Set(k, v, nil); err != nil && b.err == nil {
		b.err = err
	}
}

func (b *Batch) del(k []byte) {
	if b.in != nil {
		b.fail(errIngestDelete)
		return
	}
	if err := b.b.Delete(k, nil); err != nil && b.err == nil {
		b.err = err
	}
}

func (b *Batch) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// PutCollection writes a collection's metadata.
func (b *Batch) PutCollection(m CollectionMeta) { b.set(collKey(m.ID), encodeCollection(m)) }

// PutCollectionSeq records the last collection incarnation number handed out.
func (b *Batch) PutCollectionSeq(seq uint64) {
	b.set(keyCollSeq, binary.BigEndian.AppendUint64(nil, seq))
}

// DeleteCollection removes a collection and every record under it.
func (b *Batch) DeleteCollection(id string) {
	b.del(collKey(id))
	if b.in != nil {
		return
	}
	for _, root := range [][]byte{collRoot(id), vectorPrefix(id)} {
		if err := b.b.DeleteRange(root, prefixEnd(root), nil); err != nil && b.err == nil {
			b.err = err
		}
	}
}

// PutFace writes a new face: its record and its vector.
func (b *Batch) PutFace(coll string, f *Face) {
	b.set(faceKey(coll, f.Seq), encodeFace(f))
	var dst []byte
	if b.in != nil {
		dst = b.in.arena.alloc(vectorRecordLen(f.ID, len(f.Vector)))
	}
	b.set(vectorKey(coll, f.Seq), encodeVector(dst, f.ID, f.Vector))
}

// UpdateFace rewrites an existing face's record (its owner changed); a
// face's vector never changes, so it is left as it is and f.Vector ignored.
func (b *Batch) UpdateFace(coll string, f *Face) { b.set(faceKey(coll, f.Seq), encodeFace(f)) }

// DeleteFace removes the face of sequence seq: its record and its vector.
func (b *Batch) DeleteFace(coll string, seq uint64) {
	b.del(faceKey(coll, seq))
	b.del(vectorKey(coll, seq))
}

// PutUser writes a user record and its primary-key index entry.
func (b *Batch) PutUser(coll string, u User) {
	b.set(userKey(coll, u.ID), encodeUser(u))
	b.set(pkKey(coll, u.PK), []byte(u.ID))
}

// DeleteUser removes a user record and its primary-key index entry.
func (b *Batch) DeleteUser(coll string, u User) {
	b.del(userKey(coll, u.ID))
	b.del(pkKey(coll, u.PK))
}

// PutToken writes an idempotency record.
func (b *Batch) PutToken(coll, op, token string, t Token) {
	b.set(tokenKey(coll, op, token), encodeToken(t))
}

// Size is the batch's encoded size in bytes, for callers that flush large
// imports in pieces.
func (b *Batch) Size() int {
	if b.in != nil {
		return b.in.size
	}
	return b.b.Len()
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool {
	if b.in != nil {
		return len(b.in.kvs) == 0
	}
	return b.b.Count() == 0
}

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
	if b.in != nil {
		return b.commitIngest()
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
	if b.in != nil {
		b.in.arena.kvs = b.in.kvs // the puts' slice as grown, for the arena's next batch
	}
	b.in = nil
	if b.b != nil {
		b.b.Close()
		b.b = nil
	}
}
