package engine

import "github.com/facesearch/facesearch/store"

// admit checks rec against the collection, the dry run's state and the
// current batch, and adds it to the batch.
func (im *Importer) admit(rec ImportRecord, idx int) error {
	if err := checkRecordFields(rec); err != nil {
		return err
	}
	norm, err := im.checkVector(rec)
	if err != nil {
		return err
	}
	st, err := im.collectionState(rec)
	if err != nil {
		return err
	}
	if err := im.batchState(rec, &st); err != nil {
		return err
	}
	im.addRecord(rec, idx, norm, st)
	return nil
}

// recordUser is what admit finds of a record's user: whether it exists
// (in the collection, a batch under way or the dry run's state), its faces
// there, and its index in the current batch's users (-1 if none yet).
type recordUser struct {
	exists  bool
	faces   int
	inBatch int32
}

// checkRecordFields checks a record's fields on their own.
func checkRecordFields(rec ImportRecord) error {
	var v validator
	v.faceID("FaceId", rec.FaceId, false)
	v.faceID("ImageId", rec.ImageId, false)
	v.externalImageID(rec.ExternalImageId)
	v.userID("UserId", rec.UserId, false)
	v.boundingBox("BoundingBox", rec.BoundingBox)
	if rec.Vector == nil {
		switch {
		case rec.UserId == "":
			v.addf("a record needs an embedding, a UserId, or both")
		case rec.FaceId != "" || rec.ImageId != "" || rec.ExternalImageId != "" || rec.BoundingBox != nil:
			v.addf("a record without an embedding is a user alone: it cannot have FaceId, ImageId, ExternalImageId or BoundingBox")
		}
	}
	return v.err()
}

// checkVector checks a record's embedding, if it has one, against the
// import's dimension, and returns its norm.
func (im *Importer) checkVector(rec ImportRecord) (float64, error) {
	if rec.Vector == nil {
		return 0, nil
	}
	norm, err := checkEmbedding(rec.Vector, "the embedding")
	if err != nil {
		return 0, err
	}
	dim := im.dim
	if dim == 0 {
		dim = im.batch.dim
	}
	if dim == 0 && !im.opts.DryRun {
		im.c.mu.RLock()
		dim = im.c.dim // another writer may have fixed it since
		im.c.mu.RUnlock()
	}
	return norm, checkDim("the embedding", len(rec.Vector), im.coll, dim)
}

// collectionState refuses a record whose FaceId the collection or the
// batch being committed holds, and finds its user there.
func (im *Importer) collectionState(rec ImportRecord) (recordUser, error) {
	st := recordUser{inBatch: -1}
	if rec.FaceId == "" && rec.UserId == "" {
		return st, nil
	}
	im.c.mu.RLock()
	defer im.c.mu.RUnlock()
	// The batch being committed, until it is published, holds faces
	// and users that the collection does not yet.
	var committing *importBatch
	if f := im.flight; f != nil && !f.published {
		committing = f.b
	}
	if rec.FaceId != "" {
		exists := im.c.faces[rec.FaceId] != nil
		if committing != nil {
			_, in := committing.faceIDs[rec.FaceId]
			exists = exists || in
		}
		if exists {
			return st, errorf(CodeResourceAlreadyExists, "the face id: %s already exists in collection %s", rec.FaceId, im.coll)
		}
	}
	if u := im.c.users[rec.UserId]; u != nil {
		st.exists, st.faces = true, len(u.faces)
	}
	if committing != nil {
		if i, ok := committing.userIdx[rec.UserId]; ok {
			st.exists = true
			st.faces += committing.users[i].faces
		}
	}
	return st, nil
}

// batchState refuses a record whose FaceId the import already has, or
// whose face would take its user past the limit, counting the dry run's
// state and the current batch into st.
func (im *Importer) batchState(rec ImportRecord, st *recordUser) error {
	b := im.batch
	if rec.FaceId != "" {
		if _, dup := b.faceIDs[rec.FaceId]; dup || im.dry != nil && im.dry.faceIDs[rec.FaceId] {
			return errorf(CodeResourceAlreadyExists, "the face id: %s appears twice in the import", rec.FaceId)
		}
	}
	if rec.UserId == "" {
		return nil
	}
	if im.dry != nil {
		st.exists = st.exists || im.dry.users[rec.UserId]
		st.faces += im.dry.userFaces[rec.UserId]
	}
	if i, ok := b.userIdx[rec.UserId]; ok {
		st.inBatch = i
		st.exists = st.exists || b.users[i].isNew
		st.faces += b.users[i].faces
	}
	if rec.Vector != nil {
		return userFacesQuota(rec.UserId, st.faces, 1)
	}
	return nil
}

// addRecord adds a record that passed its checks to the current batch.
func (im *Importer) addRecord(rec ImportRecord, idx int, norm float64, st recordUser) {
	b := im.batch
	ent := importEntry{idx: idx, userID: rec.UserId}
	bu := st.inBatch
	if rec.UserId != "" && bu < 0 {
		bu = int32(len(b.users))
		b.userIdx[rec.UserId] = bu
		b.users = append(b.users, batchUser{})
	}
	if rec.UserId != "" && !st.exists {
		b.newUsers = append(b.newUsers, rec.UserId)
		b.users[bu].isNew = true
	}
	if rec.Vector != nil {
		// In the batch's own memory: reused once it is done.
		vec := b.vectors.Alloc(len(rec.Vector))
		normalizeInto(vec, rec.Vector, norm)
		if b.dim == 0 && im.dim == 0 {
			b.dim = len(vec)
		}
		f := &store.Face{ID: rec.FaceId, ImageID: rec.ImageId, ExternalImageID: rec.ExternalImageId, UserID: rec.UserId, Box: storeBox(rec.BoundingBox), Vector: vec}
		if f.ID == "" {
			f.ID = im.newID()
		} else {
			ent.preserved = true
			b.faceIDs[f.ID] = idx
		}
		if f.ImageID == "" {
			f.ImageID = im.newID()
		}
		if rec.UserId != "" {
			b.users[bu].faces++
		}
		if !im.opts.DryRun {
			f.Seq = im.c.faceSeq.Add(1)
			b.sb.PutFace(im.coll, f)
		}
		ent.face = f
	}
	b.entries = append(b.entries, ent)
}
