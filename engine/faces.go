package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/store"
)

// maxImageBytes is Rekognition's ImageBlob limit.
const maxImageBytes = 5 << 20

const acceptedImage = "Image.Bytes must be a NumPy .npy array of little-endian float32 or float64 in C order, shape (d,) for one face or (n, d) for n faces"

// decodeImage turns a wire image into embeddings and their bounding boxes
// (nil when the image gave none), refusing what the contract does not
// accept with the error a Rekognition client expects.
func decodeImage(img *Image) ([][]float32, []*store.Box, error) {
	switch {
	case img.S3Object != nil:
		return nil, nil, invalid("S3 is not available on-prem; send Image.Bytes")
	case len(img.Bytes) == 0:
		return nil, nil, invalid("1 validation error detected: Value null at 'Image.Bytes' failed to satisfy constraint: Member must not be null")
	case len(img.Bytes) > maxImageBytes:
		return nil, nil, errorf(CodeImageTooLarge, "Image.Bytes has %d bytes; the limit is %d", len(img.Bytes), maxImageBytes)
	}
	rows, boxes, err := npy.DecodeBoxed(img.Bytes)
	if err != nil {
		if hint := doubleEncodedHint(img.Bytes); hint != "" {
			return nil, nil, &Error{Code: CodeInvalidImageFormat, Message: hint, Err: err}
		}
		return nil, nil, &Error{Code: CodeInvalidImageFormat, Message: fmt.Sprintf("%v. %s", err, acceptedImage), Err: err}
	}
	sb, err := imageBoxes(boxes)
	return rows, sb, err
}

// query is the embedding a search-by-image call searches with, and the
// bounding boxes of the image's rows (nil when it gave none): the first
// is the searched face's, the others the unsearched faces'.
type query struct {
	vec   []float32
	rows  int
	boxes []*store.Box
}

// box is the bounding box of row i of the query's image.
func (q *query) box(i int) *store.Box {
	if q.boxes == nil {
		return nil
	}
	return q.boxes[i]
}

func queryVector(img *Image, vec []float32) (*query, error) {
	switch {
	case img != nil && vec != nil:
		return nil, invalid("give either Image or Vector, not both")
	case img != nil:
		rows, boxes, err := decodeImage(img)
		if err != nil {
			return nil, err
		}
		q, err := normalize(rows[0], "Image row 0")
		return &query{vec: q, rows: len(rows), boxes: boxes}, err
	case vec != nil:
		q, err := normalize(vec, "Vector")
		return &query{vec: q, rows: 1}, err
	}
	return nil, invalid("1 validation error detected: Value null at 'Image' failed to satisfy constraint: Member must not be null")
}

func newUUID() string { return uuid.Must(uuid.NewRandom()).String() }

// indexPlan is what IndexFaces makes of its input before it reads the
// engine: the faces it indexes (at most MaxFaces), their boxes (nil for the
// whole image) and normalized vectors, and the output it fills, which
// already lists the faces past MaxFaces.
type indexPlan struct {
	faces []FaceEmbedding
	boxes []*store.Box
	vecs  [][]float32 // from vecPool: read nowhere after putBack
	out   *IndexFacesOutput

	pooled []*[]float32 // vecs' slices, to put back
}

// putBack puts the plan's vectors back in their pool.
func (p *indexPlan) putBack() {
	for _, v := range p.pooled {
		vecPool.Put(v)
	}
	p.vecs, p.pooled = nil, nil
}

// prepare checks IndexFaces' input, all of it that needs no engine state,
// and returns its plan, whose vectors the caller puts back (putBack) once
// it has written and indexed them.
func (in *IndexFacesInput) prepare() (*indexPlan, error) {
	var v validator
	v.collectionID(in.CollectionId)
	v.externalImageID(in.ExternalImageId)
	maxFaces := v.intRange("MaxFaces", in.MaxFaces, 1, 1<<31-1, maxFacesPerIndexCall)
	v.qualityFilter(in.QualityFilter)
	v.detectionAttributes(in.DetectionAttributes)
	for i, f := range in.Faces {
		var fv validator
		fv.externalImageID(f.ExternalImageId)
		fv.boundingBox("BoundingBox", f.BoundingBox)
		if fv.err() != nil {
			v.addf("Faces[%d]: %s", i, strings.Join(fv.problems, "; "))
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var faces []FaceEmbedding
	var boxes []*store.Box // one per face, nil entries for the whole image
	switch {
	case in.Image != nil && in.Faces != nil:
		return nil, invalid("give either Image or Faces, not both")
	case in.Image != nil:
		rows, imgBoxes, err := decodeImage(in.Image)
		if err != nil {
			return nil, err
		}
		faces = make([]FaceEmbedding, len(rows))
		for i, r := range rows {
			faces[i] = FaceEmbedding{Vector: r}
		}
		boxes = imgBoxes
		if boxes == nil {
			boxes = make([]*store.Box, len(rows))
		}
	case len(in.Faces) > 0:
		faces = in.Faces
		boxes = make([]*store.Box, len(faces))
		for i, f := range faces {
			boxes[i] = storeBox(f.BoundingBox)
		}
	default:
		return nil, invalid("1 validation error detected: Value null at 'Image' failed to satisfy constraint: Member must not be null")
	}
	maxFaces = min(maxFaces, maxFacesPerIndexCall)
	out := &IndexFacesOutput{FaceModelVersion: FaceModelVersion, FaceRecords: []FaceRecord{}, UnindexedFaces: []UnindexedFace{}}
	if len(faces) > maxFaces {
		for _, b := range boxes[maxFaces:] {
			out.UnindexedFaces = append(out.UnindexedFaces, UnindexedFace{FaceDetail: faceDetail(b), Reasons: []string{ReasonExceedsMaxFaces}})
		}
		faces = faces[:maxFaces]
	}
	p := &indexPlan{faces: faces, boxes: boxes, vecs: make([][]float32, len(faces)), out: out,
		pooled: make([]*[]float32, 0, len(faces))}
	for i, f := range faces {
		what := fmt.Sprintf("face %d", i)
		if in.Image != nil {
			what = fmt.Sprintf("Image row %d", i)
		}
		nv, err := normalizePooled(f.Vector, what)
		if err != nil {
			p.putBack()
			return nil, err
		}
		p.vecs[i], p.pooled = *nv, append(p.pooled, nv)
		if i > 0 && len(*nv) != len(p.vecs[0]) {
			err := invalid("%s has %d dimensions but face 0 has %d", what, len(*nv), len(p.vecs[0]))
			p.putBack()
			return nil, err
		}
	}
	return p, nil
}

// IndexFaces adds faces to a collection. Faces past MaxFaces (at most 100 per
// call) come back in UnindexedFaces. The first face of a collection created
// without a dimension fixes it.
func (e *Engine) IndexFaces(ctx context.Context, in *IndexFacesInput) (*IndexFacesOutput, error) {
	in = orEmpty(in)
	p, err := in.prepare()
	if err != nil {
		return nil, err
	}
	// The vectors are copied into the batch and the matrix below, and read
	// nowhere after.
	defer p.putBack()
	faces, boxes, vecs, out := p.faces, p.boxes, p.vecs, p.out
	if err := e.writable(); err != nil {
		return nil, err
	}
	c, release, err := e.acquire(in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer release()

	dim := len(vecs[0])
	c.mu.RLock()
	cdim := c.dim
	c.mu.RUnlock()
	if cdim == 0 {
		// The first face fixes the dimension: serialize with other writers
		// so two first calls cannot fix two dimensions.
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		cdim = c.meta.Dim
	}
	if err := checkDim("each embedding", dim, in.CollectionId, cdim); err != nil {
		return nil, err
	}

	imageID, faceIDs, err := e.newImageIDs(ctx, c, len(vecs))
	if err != nil {
		return nil, err
	}
	recs := make([]*store.Face, len(vecs))
	b := e.store.NewBatch()
	defer b.Close()
	if cdim == 0 {
		m := c.meta
		m.Dim = dim
		b.PutCollection(m)
	}
	first := c.faceSeq.Add(uint64(len(vecs))) - uint64(len(vecs)) + 1
	for i, vec := range vecs {
		ext := faces[i].ExternalImageId
		if ext == "" {
			ext = in.ExternalImageId
		}
		recs[i] = &store.Face{ID: faceIDs[i], Seq: first + uint64(i), ImageID: imageID, ExternalImageID: ext, Box: boxes[i], Vector: vec}
		b.PutFace(in.CollectionId, recs[i])
		out.FaceRecords = append(out.FaceRecords, FaceRecord{
			Face:       &Face{FaceId: recs[i].ID, ImageId: imageID, ExternalImageId: ext, Confidence: 100, BoundingBox: boxOrWhole(recs[i].Box)},
			FaceDetail: faceDetail(recs[i].Box),
		})
	}
	b.PutLastFaceSeq(in.CollectionId, first+uint64(len(vecs))-1)
	if err := e.commit(ctx, b, "IndexFaces", out); err != nil {
		// Hand the sequences back unless another call took later ones, so
		// that a retried apply numbers its faces as the other nodes did.
		c.faceSeq.CompareAndSwap(first+uint64(len(vecs))-1, first-1)
		return nil, err
	}

	c.mu.Lock()
	if cdim == 0 {
		c.meta.Dim = dim
		c.dim = dim
		c.newIndexes(dim)
	}
	for _, r := range recs {
		f := &face{id: r.ID, imageID: r.ImageID, externalImageID: r.ExternalImageID, seq: r.Seq, box: r.Box}
		c.faces[r.ID], c.bySeq[r.Seq] = f, f
		c.faceIdx.Upsert(r.Seq, r.Vector)
	}
	c.mu.Unlock()
	return out, nil
}

func (f *face) public() Face {
	return Face{FaceId: f.id, ImageId: f.imageID, ExternalImageId: f.externalImageID, UserId: f.userID, Confidence: 100, IndexFacesModelVersion: FaceModelVersion, BoundingBox: boxOrWhole(f.box)}
}

// ListFaces lists a collection's faces in the order they were indexed,
// optionally only those of UserId and/or those among FaceIds.
func (e *Engine) ListFaces(ctx context.Context, in *ListFacesInput) (*ListFacesOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	v.userID("UserId", in.UserId, false)
	v.faceIDList("FaceIds", in.FaceIds, false, maxListFaceIDs)
	limit := v.intRange("MaxResults", in.MaxResults, 0, maxListPage, DefaultListFacesPageSize)
	if limit == 0 {
		limit = DefaultListFacesPageSize
	}
	v.pageToken(in.NextToken)
	c, release, err := e.beginRead(&v, in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer release()
	var filterIDs []string
	if in.FaceIds != nil {
		filterIDs = sortedUnique(in.FaceIds)
	}
	fh := filterHash(in.UserId, strings.Join(filterIDs, ","))
	after, err := e.openPosition(in.NextToken, tokenListFaces, c.seq, fh) // the sequence of the last face listed
	if err != nil {
		return nil, err
	}
	out := &ListFacesOutput{Faces: []Face{}, FaceModelVersion: FaceModelVersion}
	next := func(seq uint64) string {
		return e.signToken(pageToken{kind: tokenListFaces, scope: c.seq, filter: fh, position: binary.BigEndian.AppendUint64(nil, seq)})
	}
	if in.UserId == "" && filterIDs == nil {
		var last uint64
		for f, err := range e.store.FacesAfter(in.CollectionId, after) {
			if err != nil {
				return nil, internal("ListFaces", err)
			}
			if len(out.Faces) == limit {
				out.NextToken = next(last)
				break
			}
			last = f.Seq
			out.Faces = append(out.Faces, Face{FaceId: f.ID, ImageId: f.ImageID, ExternalImageId: f.ExternalImageID, UserId: f.UserID, Confidence: 100, IndexFacesModelVersion: FaceModelVersion, BoundingBox: boxOrWhole(f.Box)})
		}
		return out, nil
	}

	c.mu.RLock()
	defer c.mu.RUnlock()
	candidates := filterIDs
	if in.UserId != "" {
		u, err := c.userByID(in.UserId, in.CollectionId)
		if err != nil {
			return nil, err
		}
		candidates = u.faces
		if filterIDs != nil {
			candidates = slices.DeleteFunc(slices.Clone(u.faces), func(id string) bool {
				_, found := slices.BinarySearch(filterIDs, id)
				return !found
			})
		}
	}
	// At most a user's faces or maxListFaceIDs: sorted here, into the
	// order of the unfiltered listing.
	var found []*face
	for _, id := range candidates {
		if f := c.faces[id]; f != nil && f.seq > after {
			found = append(found, f)
		}
	}
	slices.SortFunc(found, func(a, b *face) int { return cmp.Compare(a.seq, b.seq) })
	for i, f := range found {
		if i == limit {
			out.NextToken = next(found[i-1].seq)
			break
		}
		out.Faces = append(out.Faces, f.public())
	}
	return out, nil
}

// validate checks DeleteFaces' input.
func (in *DeleteFacesInput) validate(v *validator) {
	v.collectionID(in.CollectionId)
	v.faceIDList("FaceIds", in.FaceIds, true, maxDeleteFaceIDs)
}

// DeleteFaces deletes faces that belong to no user. Faces of a user and
// unknown faces come back in UnsuccessfulFaceDeletions.
func (e *Engine) DeleteFaces(ctx context.Context, in *DeleteFacesInput) (*DeleteFacesOutput, error) {
	in = orEmpty(in)
	var v validator
	in.validate(&v)
	c, done, err := e.beginWrite(&v, in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer done()

	out := &DeleteFacesOutput{DeletedFaces: []string{}, UnsuccessfulFaceDeletions: []UnsuccessfulFaceDeletion{}}
	var doomed []*face
	c.mu.RLock()
	for _, id := range distinct(in.FaceIds) {
		f := c.faces[id]
		switch {
		case f == nil:
			out.UnsuccessfulFaceDeletions = append(out.UnsuccessfulFaceDeletions, UnsuccessfulFaceDeletion{FaceId: id, Reasons: []string{ReasonFaceNotFound}})
		case f.userID != "":
			out.UnsuccessfulFaceDeletions = append(out.UnsuccessfulFaceDeletions, UnsuccessfulFaceDeletion{FaceId: id, UserId: f.userID, Reasons: []string{ReasonAssociatedToAnExistingUser}})
		default:
			doomed = append(doomed, f)
			out.DeletedFaces = append(out.DeletedFaces, id)
		}
	}
	c.mu.RUnlock()
	if len(doomed) == 0 {
		return out, nil
	}
	b := e.store.NewBatch()
	defer b.Close()
	for _, f := range doomed {
		b.DeleteFace(in.CollectionId, f.seq)
	}
	if err := e.commit(ctx, b, "DeleteFaces", out); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for _, f := range doomed {
		delete(c.faces, f.id)
		delete(c.bySeq, f.seq)
		c.faceIdx.Delete(f.seq)
	}
	c.mu.Unlock()
	return out, nil
}
