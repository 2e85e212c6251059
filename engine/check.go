package engine

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

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
	byID := checkUsers(st, m, r, add)

	faceCount := map[string]int{}
	seqs := map[uint64]string{}
	seqOfID := map[string]uint64{}
	n := 0
	// The user's ID as recorded, which a face's count may keep (the face's
	// own is valid only during the visit).
	userOf := func(id string) (string, bool) {
		u, ok := byID[id]
		return u.ID, ok
	}
	err := walkFaces(st, m.ID, 1, userOf, rep, func(_ int, f *store.Face, _ [16]byte, user string) error {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r.Faces++
		if other, dup := seqOfID[f.ID]; dup {
			faceRecordedTwice(f.ID, other, f.Seq, rep)
		}
		seqs[f.Seq], seqOfID[f.ID] = f.ID, f.Seq
		if f.ExternalImageID != "" && (len(f.ExternalImageID) > maxExternalImageIDLen || !matchesID(f.ExternalImageID, true)) {
			add("face %s has ExternalImageId %s, which does not satisfy its pattern", f.ID, quoted(f.ExternalImageID))
		}
		if f.UserID != "" {
			if user == "" {
				user = strings.Clone(f.UserID)
			}
			faceCount[user]++
		}
		return nil
	})
	if cerr := ctx.Err(); err != nil && cerr != nil {
		return cerr
	}
	// Matching vectors to a partial set of faces would only report every
	// vector past the break as belonging to no face.
	if err != nil {
		add("face records: %v", err)
	} else if err := checkVectors(ctx, st, m, seqs, add); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(faceCount)) {
		checkUserFaces(id, faceCount[id], rep)
	}
	return nil
}

// checkUsers checks a collection's user records against its primary-key
// index and returns the records by user ID.
func checkUsers(st *store.Store, m store.CollectionMeta, r *CheckReport, add func(format string, args ...any)) map[string]store.User {
	rep := collect(add)
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
	return byID
}

// checkVectors checks a collection's vectors against its faces' sequences
// (seqs: sequence -> face ID): each vector belongs to the face whose
// sequence it has and is a finite unit vector, and each face has one.
func checkVectors(ctx context.Context, st *store.Store, m store.CollectionMeta, seqs map[uint64]string, add func(format string, args ...any)) error {
	rep := collect(add)
	withVector := make(map[uint64]bool, len(seqs))
	n := 0
	owner := func(_ int, seq uint64, faceID []byte) (struct{}, string, bool, bool) {
		id, ok := seqs[seq]
		if ok {
			withVector[seq] = true // even the wrong one is one
		}
		return struct{}{}, id, ok, id == string(faceID)
	}
	err := walkVectors(st, m.ID, 1, m.Dim, owner, rep, func(int, struct{}, []float32) error {
		if n++; n%4096 == 0 {
			return ctx.Err()
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
