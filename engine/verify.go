package engine

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/store"
)

// loadVerified is Open's load: it audits the store's key layout, loads every
// collection (load refuses records that contradict each other) and checks
// what it built. A store that fails is refused with an error wrapping
// [ErrCorrupt] and left as it was.
func (e *Engine) loadVerified(dir string) error {
	r := &CheckReport{Dir: dir}
	a, err := e.store.Audit(context.Background())
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return err
		}
		r.add("", "%v", err)
		return r.Err()
	}
	for _, p := range a.Problems {
		r.add("", "%s", p)
	}
	if !r.OK() {
		return r.Err()
	}
	if err := e.load(); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return err
		}
		r.add("", "%v", err)
		return r.Err()
	}
	metas := make([]store.CollectionMeta, 0, len(e.colls))
	for _, c := range e.colls {
		metas = append(metas, c.meta)
	}
	slices.SortFunc(metas, func(x, y store.CollectionMeta) int { return strings.Compare(x.ID, y.ID) })
	checkIncarnations(a.CollectionSeq, metas, r.add)
	for _, m := range metas {
		e.colls[m.ID].verify(func(format string, args ...any) { r.add(m.ID, format, args...) }, false)
	}
	slices.SortStableFunc(r.Problems, func(x, y Problem) int {
		return cmp.Or(strings.Compare(x.Collection, y.Collection), strings.Compare(x.Message, y.Message))
	})
	return r.Err()
}

// verify checks that a collection's in-memory state agrees with itself:
// maps, matrices and counters, and with deep, record by record, including
// that each user vector is the mean of its faces. Open runs it shallow: load
// has just built every map, matrix row and user vector from records it
// checked one by one (face IDs, sequences, dimensions, finite unit vectors,
// owners, primary keys, faces per user), so the record-by-record pass could
// only repeat that work, and at 1M faces it cost more than the load itself.
// The deep pass is for a live engine (crash and invariant tests). It takes
// the collection's locks, so it may run on a live engine.
func (c *collection) verify(add func(format string, args ...any), deep bool) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.verifySizes(add) || !deep {
		return
	}
	c.verifyFaces(add)
	c.verifyUsers(add)
}

// verifySizes checks that the maps and matrices agree in size, and reports
// whether the matrices are there to look into.
func (c *collection) verifySizes(add func(format string, args ...any)) bool {
	if c.dim != c.meta.Dim {
		add("dimension is %d in memory and %d in the metadata", c.dim, c.meta.Dim)
	}
	if c.dim == 0 && len(c.faces) > 0 {
		add("%d faces but no dimension", len(c.faces))
	}
	if (c.faceIdx == nil || c.soloIdx == nil || c.userIdx == nil) != (c.dim == 0) {
		add("dimension %d but matrices (faces, solo, users) %t %t %t", c.dim, c.faceIdx != nil, c.soloIdx != nil, c.userIdx != nil)
		return false
	}
	if faceRows := matrixLen(c.faceIdx) + matrixLen(c.soloIdx); len(c.bySeq) != len(c.faces) || faceRows != len(c.faces) {
		add("%d faces, %d by sequence, %d face vectors", len(c.faces), len(c.bySeq), faceRows)
	}
	if len(c.byPK) != len(c.users) {
		add("%d users but %d primary keys", len(c.users), len(c.byPK))
	}
	return true
}

// verifyFaces checks every face against its user and its row, and every
// face row against its face.
func (c *collection) verifyFaces(add func(format string, args ...any)) {
	var maxSeq uint64
	// Map order: sorting a million IDs would cost Open more than the
	// checks; the caller sorts what it reports.
	for id, f := range c.faces {
		maxSeq = max(maxSeq, f.seq)
		if !isFaceID(id) {
			add("face ID %s is not a lowercase UUID", quoted(id))
		}
		if f.id != id || f.seq == 0 || c.bySeq[f.seq] != f {
			add("face %s is filed inconsistently (sequence %d)", quoted(id), f.seq)
		}
		solo := false // the face is its user's only one (see soloIdx)
		if f.userID != "" {
			if u := c.users[f.userID]; u == nil {
				add("face %s belongs to user %q, which does not exist", id, f.userID)
			} else if _, ok := slices.BinarySearch(u.faces, id); !ok {
				add("face %s belongs to user %q, whose face list leaves it out", id, f.userID)
			} else {
				solo = len(u.faces) == 1
			}
		}
		v, inFaces := rowOf(c.faceIdx, f.seq)
		sv, inSolo := rowOf(c.soloIdx, f.seq)
		switch {
		case inFaces && inSolo:
			add("face %s has two vectors", id)
		case !inFaces && !inSolo:
			add("face %s has no vector", id)
		case inSolo != solo:
			add("face %s, its user's only face: %t, has its vector in the other matrix", id, solo)
		}
		if inSolo {
			v = sv
		}
		if v != nil {
			checkFaceVector(id, v, c.dim, collect(add))
		}
	}
	for _, m := range []*index.Matrix{c.faceIdx, c.soloIdx} {
		if m == nil {
			continue
		}
		m.Keys(func(seq uint64) {
			if c.bySeq[seq] == nil {
				add("face vector %d belongs to no face", seq)
			}
		})
	}
	if last := c.faceSeq.Load(); last < maxSeq {
		add("face sequence counter %d is below sequence %d in use", last, maxSeq)
	}
}

// verifyUsers checks every user against its faces and its row (the mean
// of its faces, recomputed), and every user row against its user.
func (c *collection) verifyUsers(add func(format string, args ...any)) {
	averaged := 0
	for id, u := range c.users {
		if u.id != id || c.byPK[u.pk] != u || u.pk == 0 || u.pk > c.meta.LastUserPK {
			add("user %q is filed inconsistently (primary key %d, last handed out %d)", id, u.pk, c.meta.LastUserPK)
		}
		checkUserFaces(id, len(u.faces), collect(add))
		if !slices.IsSorted(u.faces) || len(slices.Compact(slices.Clone(u.faces))) != len(u.faces) {
			add("user %q's face list is not sorted and unique", id)
		}
		owned := true
		for _, fid := range u.faces {
			if f := c.faces[fid]; f == nil || f.userID != id {
				add("user %q lists face %s, which is not its face", id, fid)
				owned = false
			}
		}
		// A user of one face has its face's row (checked with the faces),
		// and no row of its own.
		v, ok := rowOf(c.userIdx, u.pk)
		switch {
		case !owned: // the mean below would read a missing face
		case len(u.faces) <= 1 && ok:
			add("user %q has %d faces but a user vector", id, len(u.faces))
		case len(u.faces) <= 1:
		case !ok:
			add("user %q has %d faces but no user vector", id, len(u.faces))
		case !slices.Equal(v, c.userVector(u.faces)):
			add("user %q's vector is not the normalized mean of its %d faces", id, len(u.faces))
		default:
			if msg := checkUnit(v, c.dim); msg != "" {
				add("user %q's vector %s", id, msg)
			}
		}
		if len(u.faces) > 1 {
			averaged++
		}
	}
	if matrixLen(c.userIdx) != averaged {
		add("%d user vectors for %d users of several faces", matrixLen(c.userIdx), averaged)
	}
	if c.userIdx != nil {
		c.userIdx.Keys(func(pk uint64) {
			if c.byPK[pk] == nil {
				add("user vector %d belongs to no user", pk)
			}
		})
	}
}

// rowOf is m's row of key; a collection without a dimension has no
// matrices.
func rowOf(m *index.Matrix, key uint64) ([]float32, bool) {
	if m == nil {
		return nil, false
	}
	return m.Vector(key)
}

// matrixLen is m's row count; a collection without a dimension has no
// matrices.
func matrixLen(m *index.Matrix) int {
	if m == nil {
		return 0
	}
	return m.Len()
}
