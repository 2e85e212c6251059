package engine

import (
	"context"
	"iter"
)

// Export yields a collection's contents as the records that re-create it:
// first every user, in primary-key order, as a record without Vector; then
// every face in the order it was indexed, with its IDs, its stored
// (normalized) vector and its user. Importing the records in order into an
// empty collection gives the same face IDs, vector bits and associations,
// faces listed in the same order, and users in the same primary-key order.
//
// Export reads the store as it goes: on a collection that changes meanwhile,
// it may see some changes and not others (a [Engine.Backup] is a
// point-in-time copy to export from). The collection cannot be deleted, nor
// the engine closed, until the iteration ends, so the loop body must not
// try to.
func (e *Engine) Export(ctx context.Context, collectionID string) iter.Seq2[ImportRecord, error] {
	return func(yield func(ImportRecord, error) bool) {
		var v validator
		v.collectionID(collectionID)
		if err := v.err(); err != nil {
			yield(ImportRecord{}, err)
			return
		}
		c, release, err := e.acquire(collectionID)
		if err != nil {
			yield(ImportRecord{}, err)
			return
		}
		defer release()
		n := 0
		cancelled := func() bool {
			n++
			if n%1024 != 0 {
				return false
			}
			if err := ctx.Err(); err != nil {
				yield(ImportRecord{}, err)
				return true
			}
			return false
		}
		for u, err := range e.store.Users(collectionID, 0) {
			if err != nil {
				yield(ImportRecord{}, internal("Export", err))
				return
			}
			if cancelled() || !yield(ImportRecord{UserId: u.ID}, nil) {
				return
			}
		}
		// The records come from the store in sequence order; the vectors from
		// the face matrices, which hold the stored bits, so that an export
		// reads no vector from disk. A face
		// deleted since the records were read has left the matrices, and is
		// left out.
		for f, err := range e.store.FacesAfter(collectionID, 0) {
			if err != nil {
				yield(ImportRecord{}, internal("Export", err))
				return
			}
			c.mu.RLock()
			vec, _ := c.faceVector(f.Seq) // a copy
			c.mu.RUnlock()
			if vec == nil {
				continue
			}
			rec := ImportRecord{Vector: vec, FaceId: f.ID, ImageId: f.ImageID, ExternalImageId: f.ExternalImageID, UserId: f.UserID}
			if f.Box != nil {
				rec.BoundingBox = boxOrWhole(f.Box)
			}
			if cancelled() || !yield(rec, nil) {
				return
			}
		}
	}
}
