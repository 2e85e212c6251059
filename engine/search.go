package engine

import (
	"context"
	"errors"
	"slices"

	"github.com/facesearch/facesearch/index"
)

// scan returns m's best want rows for q at or above threshold (a hair
// generously: see best), best first; the caller holds c.mu shared, for
// the whole call.
//
// Concurrent searches of one matrix share passes over it
// ([index.Matrix.SearchShared]): a search that arrives while a pass runs
// waits for it and joins the next, which scores all of them per row read.
// Holding c.mu shared while waiting is what keeps the rows still for every
// pass; the answers are exactly those of a search alone.
func (c *collection) scan(ctx context.Context, m *index.Matrix, q []float32, want int, threshold float64) ([]index.Hit, error) {
	return c.scanAs(ctx, m, q, want, threshold, nil)
}

// scanAs is scan for rows ranked by another key than their own (their own
// when key is nil): each hit's key is key(hit.Key), and the hits are the
// best want rows in the order of those keys, ties at the want-th score
// included ([index.Matrix.SearchSharedAs]).
func (c *collection) scanAs(ctx context.Context, m *index.Matrix, q []float32, want int, threshold float64, key func(uint64) uint64) ([]index.Hit, error) {
	if m == nil || m.Len() == 0 {
		return nil, nil
	}
	hits, err := m.SearchSharedAs(ctx, q, want, c.curve.cutoff(threshold), key)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, internal("search", err)
	}
	return hits, nil
}

// best merges hit lists of one key space into the best k at or above
// threshold, but skip (when hasSkip), with their exact Similarity.
func (c *collection) best(k int, threshold float64, skip uint64, hasSkip bool, lists ...[]index.Hit) []scored {
	hits := slices.Concat(lists...)
	if len(lists) > 1 {
		slices.SortFunc(hits, index.CompareHits)
	}
	out := make([]scored, 0, min(len(hits), k))
	for _, h := range hits {
		if hasSkip && h.Key == skip {
			continue
		}
		sim := c.curve.similarity(h.Score)
		// The scan's cut-off is a hair generous; this is the exact test.
		if float64(sim) < threshold || len(out) == k {
			break
		}
		out = append(out, scored{key: h.Key, similarity: sim})
	}
	return out
}

// searchUsers finds the best k users for q at or above threshold, but the
// one of primary key skip (when hasSkip): in userIdx, and in soloIdx, whose
// faces stand for their users (see soloIdx), ranked as one matrix of
// users would rank them.
func (c *collection) searchUsers(ctx context.Context, q []float32, k int, threshold float64, skip uint64, hasSkip bool) ([]scored, error) {
	want := k
	if hasSkip {
		want++
	}
	several, err := c.scan(ctx, c.userIdx, q, want, threshold)
	if err != nil {
		return nil, err
	}
	one, err := c.scanAs(ctx, c.soloIdx, q, want, threshold, c.userPKOfFace)
	if err != nil {
		return nil, err
	}
	return c.best(k, threshold, skip, hasSkip, several, one), nil
}

// userPKOfFace is the primary key of the user of the face of sequence seq,
// which has one.
func (c *collection) userPKOfFace(seq uint64) uint64 {
	return c.users[c.bySeq[seq].userID].pk
}

// searchFaces finds the best k faces for q at or above threshold, but the
// one of sequence skip (when hasSkip), in both matrices of faces.
func (c *collection) searchFaces(ctx context.Context, q []float32, k int, threshold float64, skip uint64, hasSkip bool) ([]scored, error) {
	want := k
	if hasSkip {
		want++
	}
	var lists [2][]index.Hit
	for i, m := range []*index.Matrix{c.faceIdx, c.soloIdx} {
		hits, err := c.scan(ctx, m, q, want, threshold)
		if err != nil {
			return nil, err
		}
		lists[i] = hits
	}
	return c.best(k, threshold, skip, hasSkip, lists[:]...), nil
}

type scored struct {
	key        uint64
	similarity float32
}

// SearchUsers finds the users most similar to a face (FaceId) or to a user
// (UserId, which is left out of its own results).
func (e *Engine) SearchUsers(ctx context.Context, in *SearchUsersInput) (*SearchUsersOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	v.faceID("FaceId", in.FaceId, false)
	v.userID("UserId", in.UserId, false)
	threshold := v.percent("UserMatchThreshold", in.UserMatchThreshold, DefaultSearchUsersThreshold)
	k := v.intRange("MaxUsers", in.MaxUsers, 1, 500, DefaultMaxUsers)
	if (in.FaceId == "") == (in.UserId == "") {
		v.addf("exactly one of FaceId or UserId must be given")
	}
	c, done, err := e.beginSearch(&v, in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer done()

	out := &SearchUsersOutput{UserMatches: []UserMatch{}, FaceModelVersion: FaceModelVersion}
	var (
		q       []float32
		skip    uint64
		hasSkip bool
	)
	if in.FaceId != "" {
		f, err := c.faceByID(in.FaceId, in.CollectionId)
		if err != nil {
			return nil, err
		}
		q, _ = c.faceVector(f.seq)
		out.SearchedFace = &SearchedFace{FaceId: in.FaceId}
	} else {
		u, err := c.userByID(in.UserId, in.CollectionId)
		if err != nil {
			return nil, err
		}
		out.SearchedUser = &SearchedUser{UserId: in.UserId}
		if len(u.faces) == 0 {
			return out, nil // a user without faces has no vector to search with
		}
		q = c.vectorOf(u)
		skip, hasSkip = u.pk, true
	}
	matches, err := c.searchUsers(ctx, q, k, threshold, skip, hasSkip)
	if err != nil {
		return nil, err
	}
	out.UserMatches = c.userMatches(matches)
	return out, nil
}

func (c *collection) userMatches(matches []scored) []UserMatch {
	out := make([]UserMatch, len(matches))
	for i, m := range matches {
		u := c.byPK[m.key]
		out[i] = UserMatch{Similarity: m.similarity, User: &MatchedUser{UserId: u.id, UserStatus: u.status()}}
	}
	return out
}

func (c *collection) faceMatches(matches []scored) []FaceMatch {
	out := make([]FaceMatch, len(matches))
	for i, m := range matches {
		f := c.bySeq[m.key].public()
		out[i] = FaceMatch{Similarity: m.similarity, Face: &f}
	}
	return out
}

// checkQueryDim refuses a query whose length differs from the collection's.
// A collection without a dimension has no faces, so any query finds nothing.
func (c *collection) checkQueryDim(q []float32, id string) error {
	return checkDim("the query", len(q), id, c.dim)
}

// SearchUsersByImage finds the users most similar to an embedding.
func (e *Engine) SearchUsersByImage(ctx context.Context, in *SearchUsersByImageInput) (*SearchUsersByImageOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	threshold := v.percent("UserMatchThreshold", in.UserMatchThreshold, DefaultSearchUsersThreshold)
	k := v.intRange("MaxUsers", in.MaxUsers, 1, 500, DefaultMaxUsers)
	v.qualityFilter(in.QualityFilter)
	c, q, done, err := e.beginImageSearch(&v, in.CollectionId, in.Image, in.Vector)
	if err != nil {
		return nil, err
	}
	defer done()
	matches, err := c.searchUsers(ctx, q.vec, k, threshold, 0, false)
	if err != nil {
		return nil, err
	}
	out := &SearchUsersByImageOutput{
		UserMatches:      c.userMatches(matches),
		FaceModelVersion: FaceModelVersion,
		SearchedFace:     &SearchedFaceDetails{FaceDetail: faceDetail(q.box(0))},
		UnsearchedFaces:  []UnsearchedFace{},
	}
	for i := 1; i < q.rows; i++ {
		out.UnsearchedFaces = append(out.UnsearchedFaces, UnsearchedFace{FaceDetails: faceDetail(q.box(i)), Reasons: []string{ReasonFaceNotLargest}})
	}
	return out, nil
}

// SearchFaces finds the faces most similar to an indexed face, leaving the
// face itself out.
func (e *Engine) SearchFaces(ctx context.Context, in *SearchFacesInput) (*SearchFacesOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	v.faceID("FaceId", in.FaceId, true)
	threshold := v.percent("FaceMatchThreshold", in.FaceMatchThreshold, DefaultSearchFacesThreshold)
	k := v.intRange("MaxFaces", in.MaxFaces, 1, maxSearchFaces, DefaultMaxFaces)
	c, done, err := e.beginSearch(&v, in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := c.faceByID(in.FaceId, in.CollectionId)
	if err != nil {
		return nil, err
	}
	q, _ := c.faceVector(f.seq)
	matches, err := c.searchFaces(ctx, q, k, threshold, f.seq, true)
	if err != nil {
		return nil, err
	}
	return &SearchFacesOutput{SearchedFaceId: in.FaceId, FaceMatches: c.faceMatches(matches), FaceModelVersion: FaceModelVersion}, nil
}

// SearchFacesByImage finds the faces most similar to an embedding.
func (e *Engine) SearchFacesByImage(ctx context.Context, in *SearchFacesByImageInput) (*SearchFacesByImageOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	threshold := v.percent("FaceMatchThreshold", in.FaceMatchThreshold, DefaultSearchFacesThreshold)
	k := v.intRange("MaxFaces", in.MaxFaces, 1, maxSearchFaces, DefaultMaxFaces)
	v.qualityFilter(in.QualityFilter)
	c, q, done, err := e.beginImageSearch(&v, in.CollectionId, in.Image, in.Vector)
	if err != nil {
		return nil, err
	}
	defer done()
	matches, err := c.searchFaces(ctx, q.vec, k, threshold, 0, false)
	if err != nil {
		return nil, err
	}
	return &SearchFacesByImageOutput{SearchedFaceBoundingBox: boxOrWhole(q.box(0)), SearchedFaceConfidence: 100, FaceMatches: c.faceMatches(matches), FaceModelVersion: FaceModelVersion}, nil
}
