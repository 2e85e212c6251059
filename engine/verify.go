package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/store"
)

// Verification: what Open and `facesearch check` hold a store to.
//
// Store-wide: every key fits the key layout (store.Audit): no records of a
// collection without metadata, no record kinds this release cannot read,
// decodable idempotency records, a 32-byte secret; collection incarnations
// are unique and none passes sys/collseq.
//
// Per collection: the metadata decodes, names a known similarity curve and a
// dimension of 0-4096; every face decodes, has a face ID, a unique non-zero
// sequence, the collection's dimension, finite values and unit length, and
// belongs to no user or to one that exists; every user has a record and a
// primary-key entry that agree, a primary key no greater than the last one
// handed out and no more than 100 faces. Once loaded, the in-memory maps and
// matrices agree with each other in size, and (on a live engine, see
// collection.verify) record by record, each user vector the normalized mean
// of its faces recomputed.

// maxReportedProblems bounds the problems a [CheckReport] lists; the rest
// are counted in Omitted.
const maxReportedProblems = 1000

// CheckReport is what [Check] found in a store.
type CheckReport struct {
	// Dir is the store's directory.
	Dir string
	// Collections, Faces, Users and Tokens count the records checked.
	Collections, Faces, Users, Tokens int
	// Problems are the contradictions found, store-wide ones first, then
	// by collection.
	Problems []Problem
	// Omitted counts problems found past the first 1000.
	Omitted int
}

// Problem is one contradiction in a store.
type Problem struct {
	// Collection is the collection the problem is in; empty for a problem of
	// the store as a whole.
	Collection string `json:"Collection,omitempty"`
	Message    string `json:"Message"`
}

func (p Problem) String() string {
	if p.Collection == "" {
		return p.Message
	}
	return fmt.Sprintf("collection %q: %s", p.Collection, p.Message)
}

// OK reports whether the store passed every check.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// Err is nil when the store passed every check, else an error wrapping
// [ErrCorrupt] that names the first problem and counts the others.
func (r *CheckReport) Err() error {
	if r.OK() {
		return nil
	}
	return &corruptError{dir: r.Dir, problems: r.Problems, n: len(r.Problems) + r.Omitted}
}

func (r *CheckReport) add(coll, format string, args ...any) {
	if len(r.Problems) == maxReportedProblems {
		r.Omitted++
		return
	}
	// A wrapped store error already says it is corruption.
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), ErrCorrupt.Error()+": ", "")
	r.Problems = append(r.Problems, Problem{Collection: coll, Message: msg})
}

// corruptError is how Open refuses a store: the problems found, of which
// the message names the first.
type corruptError struct {
	dir      string
	problems []Problem
	n        int // problems found, reported or not
}

func (e *corruptError) Error() string {
	more := ""
	if e.n > 1 {
		more = fmt.Sprintf(" (and %d more problems)", e.n-1)
	}
	return fmt.Sprintf("engine: the store in %s cannot be trusted: %v: %s%s; facesearch check --data %s lists every problem",
		e.dir, ErrCorrupt, e.problems[0], more, e.dir)
}

func (e *corruptError) Unwrap() error { return ErrCorrupt }

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

// checkIncarnations: each collection has its own incarnation number, none
// greater than the last one handed out (else a new collection could reuse
// one, and with it a deleted collection's page tokens).
func checkIncarnations(last uint64, metas []store.CollectionMeta, add func(coll, format string, args ...any)) {
	seen := map[uint64]string{}
	for _, m := range metas {
		switch other, dup := seen[m.Seq]; {
		case m.Seq == 0:
			add(m.ID, "incarnation number is 0")
		case dup:
			add(m.ID, "incarnation number %d is also collection %q's", m.Seq, other)
		case m.Seq > last:
			add(m.ID, "incarnation number %d is past the last one handed out (sys/collseq %d)", m.Seq, last)
		}
		seen[m.Seq] = m.ID
	}
}

// checkCollection checks one collection's records against each other.
func checkCollection(ctx context.Context, st *store.Store, m store.CollectionMeta, r *CheckReport) error {
	add := func(format string, args ...any) { r.add(m.ID, format, args...) }
	if _, err := parseCurve(m.Similarity); err != nil {
		add("similarity: %v", err)
	}
	if m.Dim < 0 || m.Dim > maxDimension {
		add("dimension %d is outside 0-%d", m.Dim, maxDimension)
	}

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
		switch other, dup := byPK[u.PK]; {
		case u.PK == 0:
			add("user %q has primary key 0", u.ID)
		case dup:
			add("users %q and %q share primary key %d", other, u.ID, u.PK)
		case u.PK > m.LastUserPK:
			add("user %q has primary key %d, past the last one handed out (%d)", u.ID, u.PK, m.LastUserPK)
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
		if !isFaceID(f.ID) {
			add("face ID %s is not a lowercase UUID", quoted(f.ID))
		}
		// Records are keyed by sequence, so only an ID can repeat.
		if f.Seq == 0 {
			add("face %s has sequence 0", f.ID)
		}
		if other, dup := seqOfID[f.ID]; dup {
			add("face %s is recorded twice, under sequences %d and %d", f.ID, other, f.Seq)
		}
		seqs[f.Seq], seqOfID[f.ID] = f.ID, f.Seq
		if f.ExternalImageID != "" && (len(f.ExternalImageID) > maxExternalImageIDLen || !matchesID(f.ExternalImageID, true)) {
			add("face %s has ExternalImageId %s, which does not satisfy its pattern", f.ID, quoted(f.ExternalImageID))
		}
		if f.UserID != "" {
			if _, ok := byID[f.UserID]; !ok {
				add("face %s belongs to user %q, which has no record", f.ID, f.UserID)
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
		if msg := userFacesProblem(id, faceCount[id]); msg != "" {
			add("%s", msg)
		}
	}
	return nil
}

// checkVectors checks a collection's vectors against its faces' sequences
// (seqs: sequence -> face ID): each vector belongs to the face whose
// sequence it has and is a finite unit vector, and each face has one.
func checkVectors(ctx context.Context, st *store.Store, m store.CollectionMeta, seqs map[uint64]string, add func(format string, args ...any)) error {
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
			add("vector %d (of face %s) belongs to no face", seq, quoted(faceID))
		case id != faceID:
			withVector[seq] = true // it has one, only the wrong one
			add("face %s has sequence %d, whose vector is face %s's", id, seq, quoted(faceID))
		default:
			withVector[seq] = true
			if msg := checkUnit(vec, m.Dim); msg != "" {
				add("face %s %s", id, msg)
			}
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

// unitTol is how far from 1 a stored vector's norm may be: load's tolerance.
const unitTol = 1e-3

// checkUnit describes what is wrong with a stored vector, or returns "".
func checkUnit(v []float32, dim int) string {
	if len(v) != dim {
		return fmt.Sprintf("has %d dimensions, the collection %d", len(v), dim)
	}
	// In float32 (SIMD, a quarter of a float64 loop's time at Open): the
	// sum's relative error is at most about dim x 2^-24, far inside unitTol.
	s := float64(index.Dot(v, v))
	// A NaN or an infinity makes the sum NaN or +Inf, so only a bad vector
	// pays for the search (a huge finite value overflows its square to +Inf
	// and is reported by its norm).
	if math.IsNaN(s) || math.IsInf(s, 0) {
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Sprintf("has a non-finite value at position %d", i)
			}
		}
	}
	if n := math.Sqrt(s); math.Abs(n-1) > unitTol {
		return fmt.Sprintf("has norm %g, want 1", n)
	}
	return ""
}

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
	if c.dim != c.meta.Dim {
		add("dimension is %d in memory and %d in the metadata", c.dim, c.meta.Dim)
	}
	if c.dim == 0 && len(c.faces) > 0 {
		add("%d faces but no dimension", len(c.faces))
	}
	if (c.faceIdx == nil || c.soloIdx == nil || c.userIdx == nil) != (c.dim == 0) {
		add("dimension %d but matrices (faces, solo, users) %t %t %t", c.dim, c.faceIdx != nil, c.soloIdx != nil, c.userIdx != nil)
		return
	}
	if faceRows := matrixLen(c.faceIdx) + matrixLen(c.soloIdx); len(c.bySeq) != len(c.faces) || faceRows != len(c.faces) {
		add("%d faces, %d by sequence, %d face vectors", len(c.faces), len(c.bySeq), faceRows)
	}
	if len(c.byPK) != len(c.users) {
		add("%d users but %d primary keys", len(c.users), len(c.byPK))
	}
	if !deep {
		return
	}
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
			if msg := checkUnit(v, c.dim); msg != "" {
				add("face %s %s", id, msg)
			}
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

	averaged := 0
	for id, u := range c.users {
		if u.id != id || c.byPK[u.pk] != u || u.pk == 0 || u.pk > c.meta.LastUserPK {
			add("user %q is filed inconsistently (primary key %d, last handed out %d)", id, u.pk, c.meta.LastUserPK)
		}
		if msg := userFacesProblem(id, len(u.faces)); msg != "" {
			add("%s", msg)
		}
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
