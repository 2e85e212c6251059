package engine

import (
	"fmt"
	"math"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/store"
)

// The collection's rules that more than one operation enforces, each in
// one place: the calls (IndexFaces, AssociateFaces, the Importer) refuse
// what would break them, and Open and Check refuse a store that does.

// userFacesQuota is the limit of faces per user for a user of have faces
// given adding more: nil within it, else ServiceQuotaExceeded.
func userFacesQuota(userID string, have, adding int) error {
	if have+adding <= maxFacesPerUser {
		return nil
	}
	return errorf(CodeServiceQuotaExceeded, "user %s has %d faces; adding %d more would pass the limit of %d faces per user", userID, have, adding, maxFacesPerUser)
}

// userFacesProblem is the same limit for a stored user of n faces: what is
// wrong, or "".
func userFacesProblem(userID string, n int) string {
	if n <= maxFacesPerUser {
		return ""
	}
	return fmt.Sprintf("user %q has %d faces; the limit is %d", userID, n, maxFacesPerUser)
}

// checkDim refuses embeddings (what: "the query", "the embedding", ...) of
// got dimensions for collection coll of dimension dim; a collection of
// dimension 0 takes any.
func checkDim(what string, got int, coll string, dim int) error {
	if dim == 0 || got == dim {
		return nil
	}
	return invalid("%s has %d dimensions; collection %s holds %d-dimensional embeddings", what, got, coll, dim)
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
