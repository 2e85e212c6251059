package engine

// The collection's rules that more than one operation enforces, each in
// one place: the calls (IndexFaces, AssociateFaces, the Importer) refuse
// what would break them, and Open and Check refuse a store that does.

// userFacesQuota is the limit of faces per user for a user of have faces
// given adding more: nil within it, else ServiceQuotaExceeded.
func userFacesQuota(userID string, have, adding int) error {
	if !tooManyFaces(have + adding) {
		return nil
	}
	return errorf(CodeServiceQuotaExceeded, "user %s has %d faces; adding %d more would pass the limit of %d faces per user", userID, have, adding, maxFacesPerUser)
}

// tooManyFaces is the limit of faces per user: whether a user of n faces
// is past it.
func tooManyFaces(n int) bool { return n > maxFacesPerUser }

// checkDim refuses embeddings (what: "the query", "the embedding", ...) of
// got dimensions for collection coll of dimension dim; a collection of
// dimension 0 takes any.
func checkDim(what string, got int, coll string, dim int) error {
	if dim == 0 || got == dim {
		return nil
	}
	return invalid("%s has %d dimensions; collection %s holds %d-dimensional embeddings", what, got, coll, dim)
}
