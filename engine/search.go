package engine

import (
	"context"
	"errors"

	"github.com/facesearch/facesearch/index"
)

// searchMatrix scans m for the best k rows at or above threshold, leaving
// out the row keyed skip (when hasSkip). Scores come back with their exact
// Similarity; the caller holds c.mu shared, for the whole call.
//
// Concurrent searches of one matrix share passes over it
// ([index.Matrix.SearchShared]): a search that arrives while a pass runs
// waits for it and joins the next, which scores all of them per row read.
// Holding c.mu shared while waiting is what keeps the rows still for every
// pass; the answers are exactly those of a search alone.
func (c *collection) searchMatrix(ctx context.Context, m *index.Matrix, q []float32, k int, threshold float64, skip uint64, hasSkip bool) ([]scored, error) {
	if m == nil || m.Len() == 0 {
		return nil, nil
	}
	want := k
	if hasSkip {
		want++
	}
	hits, err := m.SearchShared(ctx, q, want, c.curve.cutoff(threshold))
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, internal("search", err)
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
	return out, nil
}

type scored struct {
	key        uint64
	similarity float32
}

// SearchUsers finds the users most similar to a face (FaceId) or to a user
// (UserId, which is left out of its own results).
func (e *Engine) SearchUsers(ctx context.Context, in *SearchUsersInput) (*SearchUsersOutput, error) {
	if in == nil {
		in = &SearchUsersInput{}
	}
	var v validator
	v.collectionID(in.CollectionId)
	v.faceID("FaceId", in.FaceId, false)
	v.userID("UserId", in.UserId, false)
	threshold := v.percent("UserMatchThreshold", in.UserMatchThreshold, DefaultSearchUsersThreshold)
	k := v.intRange("MaxUsers", in.MaxUsers, 1, 500, DefaultMaxUsers)
	if (in.FaceId == "") == (in.UserId == "") {
		v.addf("exactly one of FaceId or UserId must be given")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	c, release, err := e.acquire(in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()

	out := &SearchUsersOutput{UserMatches: []UserMatch{}, FaceModelVersion: FaceModelVersion}
	var (
		q       []float32
		skip    uint64
		hasSkip bool
	)
	if in.FaceId != "" {
		f := c.faces[in.FaceId]
		if f == nil {
			return nil, notFound("The face id: %s does not exist in collection %s", in.FaceId, in.CollectionId)
		}
		q, _ = c.faceIdx.Vector(f.seq)
		out.SearchedFace = &SearchedFace{FaceId: in.FaceId}
	} else {
		u := c.users[in.UserId]
		if u == nil {
			return nil, notFound("The user id: %s does not exist in collection %s", in.UserId, in.CollectionId)
		}
		out.SearchedUser = &SearchedUser{UserId: in.UserId}
		if len(u.faces) == 0 {
			return out, nil // a user without faces has no vector to search with
		}
		q, _ = c.userIdx.Vector(u.pk)
		skip, hasSkip = u.pk, true
	}
	matches, err := c.searchMatrix(ctx, c.userIdx, q, k, threshold, skip, hasSkip)
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
	if c.dim != 0 && len(q) != c.dim {
		return invalid("the query has %d dimensions; collection %s holds %d-dimensional embeddings", len(q), id, c.dim)
	}
	return nil
}

// SearchUsersByImage finds the users most similar to an embedding.
func (e *Engine) SearchUsersByImage(ctx context.Context, in *SearchUsersByImageInput) (*SearchUsersByImageOutput, error) {
	if in == nil {
		in = &SearchUsersByImageInput{}
	}
	var v validator
	v.collectionID(in.CollectionId)
	threshold := v.percent("UserMatchThreshold", in.UserMatchThreshold, DefaultSearchUsersThreshold)
	k := v.intRange("MaxUsers", in.MaxUsers, 1, 500, DefaultMaxUsers)
	v.qualityFilter(in.QualityFilter)
	if err := v.err(); err != nil {
		return nil, err
	}
	q, extra, err := queryVector(in.Image, in.Vector)
	if err != nil {
		return nil, err
	}
	c, release, err := e.acquire(in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := c.checkQueryDim(q, in.CollectionId); err != nil {
		return nil, err
	}
	matches, err := c.searchMatrix(ctx, c.userIdx, q, k, threshold, 0, false)
	if err != nil {
		return nil, err
	}
	out := &SearchUsersByImageOutput{
		UserMatches:      c.userMatches(matches),
		FaceModelVersion: FaceModelVersion,
		SearchedFace:     &SearchedFaceDetails{FaceDetail: &FaceDetail{Confidence: 100}},
		UnsearchedFaces:  []UnsearchedFace{},
	}
	for range extra {
		out.UnsearchedFaces = append(out.UnsearchedFaces, UnsearchedFace{FaceDetails: &FaceDetail{Confidence: 100}, Reasons: []string{ReasonFaceNotLargest}})
	}
	return out, nil
}

// SearchFaces finds the faces most similar to an indexed face, leaving the
// face itself out.
func (e *Engine) SearchFaces(ctx context.Context, in *SearchFacesInput) (*SearchFacesOutput, error) {
	if in == nil {
		in = &SearchFacesInput{}
	}
	var v validator
	v.collectionID(in.CollectionId)
	v.faceID("FaceId", in.FaceId, true)
	threshold := v.percent("FaceMatchThreshold", in.FaceMatchThreshold, DefaultSearchFacesThreshold)
	k := v.intRange("MaxFaces", in.MaxFaces, 1, 4096, DefaultMaxFaces)
	if err := v.err(); err != nil {
		return nil, err
	}
	c, release, err := e.acquire(in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	f := c.faces[in.FaceId]
	if f == nil {
		return nil, notFound("The face id: %s does not exist in collection %s", in.FaceId, in.CollectionId)
	}
	q, _ := c.faceIdx.Vector(f.seq)
	matches, err := c.searchMatrix(ctx, c.faceIdx, q, k, threshold, f.seq, true)
	if err != nil {
		return nil, err
	}
	return &SearchFacesOutput{SearchedFaceId: in.FaceId, FaceMatches: c.faceMatches(matches), FaceModelVersion: FaceModelVersion}, nil
}

// SearchFacesByImage finds the faces most similar to an embedding.
func (e *Engine) SearchFacesByImage(ctx context.Context, in *SearchFacesByImageInput) (*SearchFacesByImageOutput, error) {
	if in == nil {
		in = &SearchFacesByImageInput{}
	}
	var v validator
	v.collectionID(in.CollectionId)
	threshold := v.percent("FaceMatchThreshold", in.FaceMatchThreshold, DefaultSearchFacesThreshold)
	k := v.intRange("MaxFaces", in.MaxFaces, 1, 4096, DefaultMaxFaces)
	v.qualityFilter(in.QualityFilter)
	if err := v.err(); err != nil {
		return nil, err
	}
	q, _, err := queryVector(in.Image, in.Vector)
	if err != nil {
		return nil, err
	}
	c, release, err := e.acquire(in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := c.checkQueryDim(q, in.CollectionId); err != nil {
		return nil, err
	}
	matches, err := c.searchMatrix(ctx, c.faceIdx, q, k, threshold, 0, false)
	if err != nil {
		return nil, err
	}
	return &SearchFacesByImageOutput{SearchedFaceConfidence: 100, FaceMatches: c.faceMatches(matches), FaceModelVersion: FaceModelVersion}, nil
}
