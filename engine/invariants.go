package engine

import (
	"fmt"
	"math"

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

// Each invariant of a collection's records is one function below, called
// by the walks over them (walk.go), which Open's load and Check share: the
// load stops at the first broken one (with [stop], whose error ends the
// walk), Check collects them all (with [collect], which records the problem
// and lets the walk go on). The two differ in what they build, not in what
// they hold records to.

// report is how a walk meets a broken invariant: it returns the error that
// ends the walk, or nil to go on.
type report func(format string, args ...any) error

// stop is load's report: the problem as an error wrapping [ErrCorrupt].
func stop(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// collect is Check's report: add records the problem, and the walk goes on.
func collect(add func(format string, args ...any)) report {
	return func(format string, args ...any) error {
		add(format, args...)
		return nil
	}
}

// checkMeta: a collection's metadata names a known similarity curve and
// tier, and a dimension of 0 to maxDimension.
func checkMeta(m store.CollectionMeta, r report) error {
	if _, err := parseCurve(m.Similarity); err != nil {
		if err := r("similarity: %v", err); err != nil {
			return err
		}
	}
	if m.Dim < 0 || m.Dim > maxDimension {
		if err := r("dimension %d is outside 0-%d", m.Dim, maxDimension); err != nil {
			return err
		}
	}
	if _, err := index.ParseTier(m.Tier); err != nil {
		return r("tier: %v", err)
	}
	return nil
}

// checkFaceRecord: a face record has a face ID and a sequence other than
// 0. It returns the ID's bytes.
func checkFaceRecord(f *store.Face, r report) ([16]byte, error) {
	id, ok := faceBytes(f.ID)
	if !ok {
		if err := r("face ID %s is not a lowercase UUID", quoted(f.ID)); err != nil {
			return id, err
		}
	}
	if f.Seq == 0 {
		return id, r("face %s has sequence 0", f.ID)
	}
	return id, nil
}

// faceOfMissingUser: a face belongs to no user or to one with a record.
func faceOfMissingUser(f *store.Face, r report) error {
	return r("face %s belongs to user %q, which has no record", f.ID, f.UserID)
}

// faceRecordedTwice: a face ID has one record (records are keyed by
// sequence, so only an ID can repeat).
func faceRecordedTwice(id string, seq, other uint64, r report) error {
	return r("face %s is recorded twice, under sequences %d and %d", id, seq, other)
}

// checkUserPK: a user's primary key is neither 0 nor past the last one
// handed out.
func checkUserPK(id string, pk, last uint64, r report) error {
	switch {
	case pk == 0:
		return r("user %q has primary key 0", id)
	case pk > last:
		return r("user %q has primary key %d, past the last one handed out (%d)", id, pk, last)
	}
	return nil
}

// sharedPK: two users never share a primary key.
func sharedPK(a, b string, pk uint64, r report) error {
	return r("users %q and %q share primary key %d", a, b, pk)
}

// checkUserFaces: a user has at most maxFacesPerUser faces.
func checkUserFaces(id string, n int, r report) error {
	if !tooManyFaces(n) {
		return nil
	}
	return r("user %q has %d faces; the limit is %d", id, n, maxFacesPerUser)
}

// vectorWithoutFace: every vector belongs to a face of its sequence.
func vectorWithoutFace(seq uint64, faceID []byte, r report) error {
	return r("vector %d (of face %s) belongs to no face", seq, quoted(string(faceID)))
}

// vectorOfOtherFace: the vector under a face's sequence names that face.
func vectorOfOtherFace(id string, seq uint64, vecFaceID []byte, r report) error {
	return r("face %s has sequence %d, whose vector is face %s's", id, seq, quoted(string(vecFaceID)))
}

// checkFaceVector: a face's vector has the collection's dimension and is a
// finite unit vector.
func checkFaceVector(id string, v []float32, dim int, r report) error {
	if msg := checkUnit(v, dim); msg != "" {
		return r("face %s %s", id, msg)
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
