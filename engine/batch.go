package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/facesearch/facesearch/index"
)

// batchGroup is how many queries of a batch search run under one hold of
// a collection's read lock: a writer waits for at most one group, and the
// searches it holds up behind it for no longer.
const batchGroup = 256

// SearchUsersBatch is [Engine.SearchUsersByImage] for many embeddings at
// once, for bulk search and evaluation: Results[i] is exactly the answer
// to Vectors[i] alone (the same users, similarities and order), but each
// pass over the collection's vectors scores dozens of queries per vector
// read ([index.Matrix.SearchBatch]), so a batch costs a fraction of as
// many single searches.
//
// Every vector is validated before any search (an invalid one fails the
// call, naming it). The batch is searched in groups of a few hundred, each
// under the collection's read lock, so a write may land between groups:
// each answer is consistent, but two may see different versions of the
// collection.
func (e *Engine) SearchUsersBatch(ctx context.Context, in *SearchUsersBatchInput) (*SearchUsersBatchOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	threshold := v.percent("UserMatchThreshold", in.UserMatchThreshold, DefaultSearchUsersThreshold)
	k := v.intRange("MaxUsers", in.MaxUsers, 1, 500, DefaultMaxUsers)
	if err := v.err(); err != nil {
		return nil, err
	}
	out := &SearchUsersBatchOutput{Results: make([]SearchUsersByImageOutput, len(in.Vectors))}
	err := e.searchBatch(ctx, in.CollectionId, in.Vectors, func(c *collection, lo int, qs [][]float32) error {
		several, err := c.scanBatch(ctx, c.userIdx, qs, k, threshold, nil)
		if err != nil {
			return err
		}
		one, err := c.scanBatch(ctx, c.soloIdx, qs, k, threshold, c.userPKOfFace)
		if err != nil {
			return err
		}
		for i := range qs {
			out.Results[lo+i] = SearchUsersByImageOutput{
				UserMatches:      c.userMatches(c.best(k, threshold, 0, false, several[i], one[i])),
				FaceModelVersion: FaceModelVersion,
				SearchedFace:     &SearchedFaceDetails{FaceDetail: faceDetail(nil)},
				UnsearchedFaces:  []UnsearchedFace{},
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SearchFacesBatch is [Engine.SearchFacesByImage] for many embeddings at
// once, as [Engine.SearchUsersBatch] is for users: Results[i] is exactly
// the answer to Vectors[i] alone.
func (e *Engine) SearchFacesBatch(ctx context.Context, in *SearchFacesBatchInput) (*SearchFacesBatchOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	threshold := v.percent("FaceMatchThreshold", in.FaceMatchThreshold, DefaultSearchFacesThreshold)
	k := v.intRange("MaxFaces", in.MaxFaces, 1, maxSearchFaces, DefaultMaxFaces)
	if err := v.err(); err != nil {
		return nil, err
	}
	out := &SearchFacesBatchOutput{Results: make([]SearchFacesByImageOutput, len(in.Vectors))}
	err := e.searchBatch(ctx, in.CollectionId, in.Vectors, func(c *collection, lo int, qs [][]float32) error {
		var lists [2][][]index.Hit
		for i, m := range []*index.Matrix{c.faceIdx, c.soloIdx} {
			hits, err := c.scanBatch(ctx, m, qs, k, threshold, nil)
			if err != nil {
				return err
			}
			lists[i] = hits
		}
		for i := range qs {
			out.Results[lo+i] = SearchFacesByImageOutput{
				SearchedFaceBoundingBox: boxOrWhole(nil),
				SearchedFaceConfidence:  100,
				FaceMatches:             c.faceMatches(c.best(k, threshold, 0, false, lists[0][i], lists[1][i])),
				FaceModelVersion:        FaceModelVersion,
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// searchBatch normalizes every vector, then calls each with the collection
// for one group of them at a time, lo being the group's first index, under
// the collection's read lock. Every vector is checked before the first
// group is searched, so a bad one fails the batch before any work.
func (e *Engine) searchBatch(ctx context.Context, id string, vectors [][]float32, each func(c *collection, lo int, qs [][]float32) error) error {
	qs := make([][]float32, len(vectors))
	for i, vec := range vectors {
		q, err := normalize(vec, batchVector(i))
		if err != nil {
			return err
		}
		qs[i] = q
	}
	c, release, err := e.acquire(id)
	if err != nil {
		return err
	}
	defer release()
	for lo := 0; lo < len(qs); {
		hi, err := c.searchGroup(ctx, id, lo, qs, each)
		if err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// batchVector names the batch's i-th vector in errors.
func batchVector(i int) string { return fmt.Sprintf("Vectors[%d]", i) }

// searchGroup searches the group of qs from lo, under c.mu held shared,
// and returns where the next group starts. The first group checks every
// vector against the collection's dimension first, under the same hold:
// a dimension once fixed never changes, so the later groups need no check.
// A collection without one yet holds no vectors, so the first group is then
// the whole batch, each answer empty, all from that one version.
func (c *collection) searchGroup(ctx context.Context, id string, lo int, qs [][]float32, each func(c *collection, lo int, qs [][]float32) error) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	hi := min(lo+batchGroup, len(qs))
	if lo == 0 {
		for i, q := range qs {
			if err := checkDim(batchVector(i), len(q), id, c.dim); err != nil {
				return 0, err
			}
		}
		if c.dim == 0 {
			hi = len(qs)
		}
	}
	return hi, each(c, lo, qs[lo:hi])
}

// scanBatch is scan for many queries: out[i] is what scan returns for
// qs[i] (nil when m has no rows).
func (c *collection) scanBatch(ctx context.Context, m *index.Matrix, qs [][]float32, want int, threshold float64, key func(uint64) uint64) ([][]index.Hit, error) {
	if m == nil || m.Len() == 0 {
		return make([][]index.Hit, len(qs)), nil
	}
	cut := c.curve.cutoff(threshold)
	batch := make([]index.Query, len(qs))
	for i, q := range qs {
		batch[i] = index.Query{Vec: q, K: want, MinScore: cut}
	}
	hits, err := m.SearchBatch(ctx, batch, key)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, internal("search", err)
	}
	return hits, nil
}
