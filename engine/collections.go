package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"slices"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/store"
)

// Reserved tag keys: collection settings that SDKs can only send as tags.
const (
	TagPrefix     = "facesearch:"
	TagDimension  = TagPrefix + "dimension"
	TagSimilarity = TagPrefix + "similarity"
	// TagTier chooses the collection's search tier: "float32" (the
	// default), "int8" or "float16". See [CreateCollectionInput].Tier.
	TagTier = TagPrefix + "tier"
	maxTags = 200
)

// CreateCollection creates an empty collection.
func (e *Engine) CreateCollection(ctx context.Context, in *CreateCollectionInput) (*CreateCollectionOutput, error) {
	in = orEmpty(in)
	dim, cv, tier, err := in.settings()
	if err != nil {
		return nil, err
	}
	if err := e.writable(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if e.colls[in.CollectionId] != nil {
		return nil, errorf(CodeResourceAlreadyExists, "The collection id: %s already exists", in.CollectionId)
	}
	m := store.CollectionMeta{ID: in.CollectionId, Seq: e.collSeq + 1, Dim: dim, Similarity: cv.name, Created: e.clock(ctx).UTC()}
	if tier != index.TierFloat32 {
		m.Tier = tier.String() // float32 stays unwritten: the record format before tiers
	}
	out := &CreateCollectionOutput{CollectionArn: e.collectionARN(ctx, m.ID), FaceModelVersion: FaceModelVersion, StatusCode: statusCodeOK}
	b := e.store.NewBatch()
	defer b.Close()
	b.PutCollection(m)
	b.PutCollectionSeq(m.Seq)
	if err := e.commit(ctx, b, "CreateCollection", out); err != nil {
		return nil, err
	}
	e.collSeq = m.Seq
	e.colls[m.ID] = newCollection(m, cv, tier)
	return out, nil
}

// settings checks CreateCollection's input and returns the collection's
// settings.
func (in *CreateCollectionInput) settings() (dim int, cv *curve, tier index.Tier, err error) {
	var v validator
	v.collectionID(in.CollectionId)
	dim, cv, tier = v.collectionSettings(in)
	return dim, cv, tier, v.err()
}

// validate checks DeleteCollection's input.
func (in *DeleteCollectionInput) validate(v *validator) { v.collectionID(in.CollectionId) }

// DeleteCollection deletes a collection with all its faces and users. It
// waits for calls in flight on the collection.
func (e *Engine) DeleteCollection(ctx context.Context, in *DeleteCollectionInput) (*DeleteCollectionOutput, error) {
	in = orEmpty(in)
	if err := checked(in.validate); err != nil {
		return nil, err
	}
	if err := e.writable(); err != nil {
		return nil, err
	}
	e.mu.RLock()
	c, closed := e.colls[in.CollectionId], e.closed
	e.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if c == nil {
		return nil, notFound("The collection id: %s does not exist", in.CollectionId)
	}
	c.life.Lock()
	if c.deleted {
		c.life.Unlock()
		return nil, notFound("The collection id: %s does not exist", in.CollectionId)
	}
	out := &DeleteCollectionOutput{StatusCode: statusCodeOK}
	b := e.store.NewBatch()
	defer b.Close()
	b.DeleteCollection(in.CollectionId)
	if err := e.commit(ctx, b, "DeleteCollection", out); err != nil {
		c.life.Unlock()
		return nil, err
	}
	c.deleted = true
	// Released before taking e.mu: acquire holds e.mu while it waits for
	// c.life, so holding both here in the other order would deadlock.
	c.life.Unlock()
	e.mu.Lock()
	if e.colls[in.CollectionId] == c {
		delete(e.colls, in.CollectionId)
	}
	e.mu.Unlock()
	return out, nil
}

// DescribeCollection reports a collection's counts and settings.
func (e *Engine) DescribeCollection(ctx context.Context, in *DescribeCollectionInput) (*DescribeCollectionOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	c, done, err := e.beginSearch(&v, in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer done()
	return &DescribeCollectionOutput{
		CollectionARN:     e.collectionARN(ctx, in.CollectionId),
		CreationTimestamp: Timestamp{c.created},
		FaceCount:         int64(len(c.faces)),
		UserCount:         int64(len(c.users)),
		FaceModelVersion:  FaceModelVersion,
		Dimension:         c.dim,
		Similarity:        c.curve.name,
		Tier:              c.tier.String(),
	}, nil
}

// ListCollections lists collections in creation order.
func (e *Engine) ListCollections(ctx context.Context, in *ListCollectionsInput) (*ListCollectionsOutput, error) {
	in = orEmpty(in)
	var v validator
	limit := v.intRange("MaxResults", in.MaxResults, 0, maxListPage, DefaultListCollectionsPageSize)
	if limit == 0 {
		limit = DefaultListCollectionsPageSize
	}
	v.pageToken(in.NextToken)
	if err := v.err(); err != nil {
		return nil, err
	}
	after, err := e.openPosition(in.NextToken, tokenListCollections, 0, 0)
	if err != nil {
		return nil, err
	}
	type entry struct {
		id  string
		seq uint64
	}
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, ErrClosed
	}
	var all []entry
	for id, c := range e.colls {
		if c.seq > after {
			all = append(all, entry{id, c.seq})
		}
	}
	e.mu.RUnlock()
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	out := &ListCollectionsOutput{CollectionIds: []string{}, FaceModelVersions: []string{}}
	for i, c := range all {
		if i == limit {
			out.NextToken = e.signToken(pageToken{kind: tokenListCollections, position: binary.BigEndian.AppendUint64(nil, all[i-1].seq)})
			break
		}
		out.CollectionIds = append(out.CollectionIds, c.id)
		out.FaceModelVersions = append(out.FaceModelVersions, FaceModelVersion)
	}
	return out, nil
}
