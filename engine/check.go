package engine

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/facesearch/facesearch/store"
)

// Check verifies the invariants of the store in dir, offline and without
// changing it, and reports every contradiction it finds; it is what
// `facesearch check` runs. The error is for a check that could not run (no
// store in dir, the store in use by another process, a read failing);
// contradictions go in the report. A store whose report is OK is one [Open]
// accepts.
func Check(ctx context.Context, dir string) (*CheckReport, error) {
	st, err := store.Open(dir, &store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	r := &CheckReport{Dir: dir}
	err = checkStore(ctx, st, r)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if !r.OK() {
		return r, nil
	}
	// The records check out one by one; what Open builds from them must too.
	e, err := Open(dir, &Options{ReadOnly: true})
	var ce *corruptError
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.problems {
			r.add(p.Collection, "%s", p.Message)
		}
	case err != nil:
		return nil, err
	default:
		e.Close()
	}
	return r, nil
}

// checkStore runs every record check over st, gathering all problems.
func checkStore(ctx context.Context, st *store.Store, r *CheckReport) error {
	a, err := st.Audit(ctx)
	if errors.Is(err, ErrCorrupt) {
		r.add("", "%v", err)
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range a.Problems {
		r.add("", "%s", p)
	}
	r.Collections = len(a.Collections)
	for _, n := range a.Tokens {
		r.Tokens += n
	}
	var metas []store.CollectionMeta
	for _, id := range a.Collections {
		m, _, err := st.Collection(id)
		if err != nil {
			r.add(id, "metadata: %v", err)
			continue
		}
		metas = append(metas, m)
	}
	checkIncarnations(a.CollectionSeq, metas, r.add)
	for _, m := range metas {
		if err := checkCollection(ctx, st, m, r); err != nil {
			return err
		}
	}
	return nil
}

// checkCollection checks one collection's records against each other.
func checkCollection(ctx context.Context, st *store.Store, m store.CollectionMeta, r *CheckReport) error {
	add := func(format string, args ...any) { r.add(m.ID, format, args...) }
	rep := collect(add)
	checkMeta(m, rep)

	users, err := st.UserRecords(m.ID)
	usersComplete := err == nil
	if err != nil {
		add("user records: %v", err)
		users = users[:max(0, len(users)-1)] // the last one is the one that failed
	}
	r.Users += len(users)
	byID := make(map[string]store.User, len(users))
	byPK := make(map[uint64]string, len(users))
	for _, u := range users {
		byID[u.ID] = u
		if len(u.ID) > maxUserIDLen || !matchesID(u.ID, true) {
			add("user ID %s does not satisfy the UserId pattern", quoted(u.ID))
		}
		if other, dup := byPK[u.PK]; dup && u.PK != 0 {
			sharedPK(other, u.ID, u.PK, rep)
		} else {
			checkUserPK(u.ID, u.PK, m.LastUserPK, rep)
		}
		byPK[u.PK] = u.ID
	}
	indexed := map[string]uint64{}
	for u, err := range st.Users(m.ID, 0) {
		if err != nil {
			add("primary-key index: %v", err)
			usersComplete = false
			break
		}
		if pk, dup := indexed[u.ID]; dup {
			add("user %q has two primary-key entries, %d and %d", u.ID, pk, u.PK)
		}
		indexed[u.ID] = u.PK
		switch rec, ok := byID[u.ID]; {
		case !ok && usersComplete:
			add("primary-key entry %d names user %q, which has no record", u.PK, u.ID)
		case ok && rec.PK != u.PK:
			add("primary-key entry %d names user %q, whose record has primary key %d", u.PK, u.ID, rec.PK)
		}
	}
	if usersComplete {
		for _, u := range users {
			if _, ok := indexed[u.ID]; !ok {
				add("user %q has no primary-key entry", u.ID)
			}
		}
	}

	faceCount := map[string]int{}
	seqs := map[uint64]string{}
	seqOfID := map[string]uint64{}
	facesComplete := true
	n := 0
	for f, err := range st.FacesAfter(m.ID, 0) {
		if err != nil {
			add("face records: %v", err)
			usersComplete = false // the counts below would be short
			facesComplete = false
			break
		}
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r.Faces++
		checkFaceRecord(f, rep)
		if other, dup := seqOfID[f.ID]; dup {
			faceRecordedTwice(f.ID, other, f.Seq, rep)
		}
		seqs[f.Seq], seqOfID[f.ID] = f.ID, f.Seq
		if f.ExternalImageID != "" && (len(f.ExternalImageID) > maxExternalImageIDLen || !matchesID(f.ExternalImageID, true)) {
			add("face %s has ExternalImageId %s, which does not satisfy its pattern", f.ID, quoted(f.ExternalImageID))
		}
		if f.UserID != "" {
			if _, ok := byID[f.UserID]; !ok {
				faceOfMissingUser(f, rep)
			}
			faceCount[f.UserID]++
		}
	}
	// Matching vectors to a partial set of faces would only report every
	// vector past the break as belonging to no face.
	if facesComplete {
		if err := checkVectors(ctx, st, m, seqs, add); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(faceCount)) {
		checkUserFaces(id, faceCount[id], rep)
	}
	return nil
}

// checkVectors checks a collection's vectors against its faces' sequences
// (seqs: sequence -> face ID): each vector belongs to the face whose
// sequence it has and is a finite unit vector, and each face has one.
func checkVectors(ctx context.Context, st *store.Store, m store.CollectionMeta, seqs map[uint64]string, add func(format string, args ...any)) error {
	rep := collect(add)
	withVector := make(map[uint64]bool, len(seqs))
	n := 0
	err := st.ScanVectors(m.ID, 1, func(_ int, seq uint64, rawID []byte, vec []float32) error {
		faceID := string(rawID)
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		switch id, ok := seqs[seq]; {
		case !ok:
			vectorWithoutFace(seq, rawID, rep)
		case id != faceID:
			withVector[seq] = true // it has one, only the wrong one
			vectorOfOtherFace(id, seq, rawID, rep)
		default:
			withVector[seq] = true
			checkFaceVector(id, vec, m.Dim, rep)
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrCorrupt):
		add("vectors: %v", err)
	case err != nil:
		return err
	default:
		var missing []string
		for seq, id := range seqs {
			if !withVector[seq] {
				missing = append(missing, id)
			}
		}
		slices.Sort(missing)
		for _, id := range missing {
			add("face %s has no vector", id)
		}
	}
	return nil
}
