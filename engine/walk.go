package engine

import "github.com/facesearch/facesearch/store"

// The walks over a collection's face and vector records, shared by Open's
// load and Check: each holds every record to the invariants
// (invariants.go) and meets a broken one with its report, which stops the
// walk (load) or records the problem and goes on (Check). What a caller
// does with a record is its visitor's: the load builds maps and matrices,
// on all cores; Check tallies, on one.
//
// The user records and their primary-key index are walked apart (loadUsers,
// checkUsers): the load matches the two in key order beside a sorted slice,
// Check with maps, and each words the mismatches its own way.

// walkFaces reads a collection's face records on parts goroutines (see
// [store.Store.ScanFaces]), holds each to the face-record invariants, and
// hands it to visit with its ID's bytes and its user: userOf looks a user
// up by ID. A face of a missing user is reported, then visited with the
// zero U. visit keeps f and its user ID only during the call.
func walkFaces[U any](st *store.Store, coll string, parts int, userOf func(id string) (U, bool), r report,
	visit func(p int, f *store.Face, id [16]byte, u U) error) error {
	return st.ScanFaces(coll, parts, func(p int, f *store.Face) error {
		id, err := checkFaceRecord(f, r)
		if err != nil {
			return err
		}
		var u U
		if f.UserID != "" {
			var ok bool
			if u, ok = userOf(f.UserID); !ok {
				if err := faceOfMissingUser(f, r); err != nil {
					return err
				}
			}
		}
		return visit(p, f, id, u)
	})
}

// vectorOwner finds, for part p, the face of a vector's sequence: h is the
// visitor's handle on it and id its face ID; found is false when no face
// has that sequence, same false when the vector names another face.
type vectorOwner[H any] func(p int, seq uint64, faceID []byte) (h H, id string, found, same bool)

// walkVectors reads a collection's vectors on parts goroutines (see
// [store.Store.ScanVectors]), holds each to the vector invariants against
// its owner's face, and hands each vector of its own face to visit (under
// a collecting report, also one whose values were reported). vec is valid
// only during the call.
func walkVectors[H any](st *store.Store, coll string, parts, dim int, owner vectorOwner[H], r report,
	visit func(p int, h H, vec []float32) error) error {
	return st.ScanVectors(coll, parts, func(p int, seq uint64, faceID []byte, vec []float32) error {
		h, id, found, same := owner(p, seq, faceID)
		switch {
		case !found:
			return vectorWithoutFace(seq, faceID, r)
		case !same:
			return vectorOfOtherFace(id, seq, faceID, r)
		}
		if err := checkFaceVector(id, vec, dim, r); err != nil {
			return err
		}
		return visit(p, h, vec)
	})
}
