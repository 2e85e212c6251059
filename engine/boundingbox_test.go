package engine_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

var whole = &engine.BoundingBox{Width: 1, Height: 1}

// TestBoundingBoxes: every face carries its bounding box wherever it
// appears: the box its caller gave (in Go or in the .npy header), else the
// whole image; the box survives an association (which rewrites the face's
// record), a reopen, and an export and import.
func TestBoundingBoxes(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	createCollection(t, e, "c", engine.SimilarityCosine)
	given := &engine.BoundingBox{Width: 0.25, Height: 0.5, Left: 0.125, Top: -0.0625}
	fromHeader := &engine.BoundingBox{Width: 0.5, Height: 0.5, Left: 0.5, Top: 0.25}

	goOut, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{
		{Vector: []float32{1, 0, 0}, BoundingBox: given},
		{Vector: []float32{0.9, 0.1, 0}},
	}})
	require.NoError(t, err)
	var img bytes.Buffer
	require.NoError(t, npy.EncodeBoxed(&img, [][]float32{{0.8, 0.2, 0}, {0, 0, 1}}, false, []npy.Box{
		{Width: 0.5, Height: 0.5, Left: 0.5, Top: 0.25}, {Width: 0.1, Height: 0.1},
	}))
	wireOut, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Image: &engine.Image{Bytes: img.Bytes()}, MaxFaces: ptr[int32](1)})
	require.NoError(t, err)
	require.Len(t, wireOut.UnindexedFaces, 1)
	require.Equal(t, &engine.BoundingBox{Width: 0.1, Height: 0.1}, wireOut.UnindexedFaces[0].FaceDetail.BoundingBox, "an unindexed row keeps its box")

	ids := []string{goOut.FaceRecords[0].Face.FaceId, goOut.FaceRecords[1].Face.FaceId, wireOut.FaceRecords[0].Face.FaceId}
	want := map[string]*engine.BoundingBox{ids[0]: given, ids[1]: whole, ids[2]: fromHeader}
	for _, r := range append(goOut.FaceRecords, wireOut.FaceRecords...) {
		require.Equal(t, want[r.Face.FaceId], r.Face.BoundingBox, "IndexFaces Face of %s", r.Face.FaceId)
		require.Equal(t, want[r.Face.FaceId], r.FaceDetail.BoundingBox, "IndexFaces FaceDetail of %s", r.Face.FaceId)
		require.EqualValues(t, 100, r.FaceDetail.Confidence)
	}
	createUser(t, e, "c", "u", ids[0])

	check := func(t *testing.T, e *engine.Engine) {
		t.Helper()
		all, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c"})
		require.NoError(t, err)
		require.Len(t, all.Faces, 3)
		for _, f := range all.Faces {
			require.Equal(t, want[f.FaceId], f.BoundingBox, "ListFaces %s", f.FaceId)
		}
		mine, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", UserId: "u"})
		require.NoError(t, err)
		require.Len(t, mine.Faces, 1)
		require.Equal(t, given, mine.Faces[0].BoundingBox, "ListFaces of a user")

		sf, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: ids[1], FaceMatchThreshold: ptr[float32](0)})
		require.NoError(t, err)
		require.Len(t, sf.FaceMatches, 2)
		for _, m := range sf.FaceMatches {
			require.Equal(t, want[m.Face.FaceId], m.Face.BoundingBox, "SearchFaces match %s", m.Face.FaceId)
		}
		sfi, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: []float32{1, 0, 0}, FaceMatchThreshold: ptr[float32](0)})
		require.NoError(t, err)
		require.Equal(t, whole, sfi.SearchedFaceBoundingBox)
		require.Len(t, sfi.FaceMatches, 3)
		for _, m := range sfi.FaceMatches {
			require.Equal(t, want[m.Face.FaceId], m.Face.BoundingBox, "SearchFacesByImage match %s", m.Face.FaceId)
		}
	}
	check(t, e)
	sfi, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Image: &engine.Image{Bytes: img.Bytes()}})
	require.NoError(t, err)
	require.Equal(t, fromHeader, sfi.SearchedFaceBoundingBox, "the searched row's box")
	sui, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Image: &engine.Image{Bytes: img.Bytes()}})
	require.NoError(t, err)
	require.Equal(t, fromHeader, sui.SearchedFace.FaceDetail.BoundingBox)
	require.Len(t, sui.UnsearchedFaces, 1)
	require.Equal(t, &engine.BoundingBox{Width: 0.1, Height: 0.1}, sui.UnsearchedFaces[0].FaceDetails.BoundingBox)
	sui, err = e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: []float32{1, 0, 0}})
	require.NoError(t, err)
	require.Equal(t, whole, sui.SearchedFace.FaceDetail.BoundingBox)

	// A returned box is the caller's copy.
	got, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", UserId: "u"})
	require.NoError(t, err)
	got.Faces[0].BoundingBox.Width = 99

	require.NoError(t, e.Close())
	e = openEngine(t, dir)
	check(t, e)

	// Export keeps a given box (and only a given one); import restores it.
	var recs []engine.ImportRecord
	for r, err := range e.Export(ctx, "c") {
		require.NoError(t, err)
		if r.Vector != nil {
			require.Equal(t, want[r.FaceId], cmpOr(r.BoundingBox, whole), "Export %s", r.FaceId)
			if want[r.FaceId] == whole {
				require.Nil(t, r.BoundingBox, "a whole-image face exports without a box")
			}
		}
		recs = append(recs, r)
	}
	createCollection(t, e, "c2", engine.SimilarityCosine)
	im, err := e.NewImporter(ctx, "c2", nil)
	require.NoError(t, err)
	for _, r := range recs {
		require.NoError(t, im.Add(r))
	}
	require.NoError(t, im.Close())
	imported, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c2"})
	require.NoError(t, err)
	require.Len(t, imported.Faces, 3)
	for _, f := range imported.Faces {
		require.Equal(t, want[f.FaceId], f.BoundingBox, "imported %s", f.FaceId)
	}
}

func cmpOr(b, def *engine.BoundingBox) *engine.BoundingBox {
	if b == nil {
		return def
	}
	return b
}

// TestBoundingBoxRejected: a box must have finite ratios and a positive
// width and height, from Go and from the .npy header.
func TestBoundingBoxRejected(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	nan := float32(math.NaN())
	for name, b := range map[string]*engine.BoundingBox{
		"zero width":      {Width: 0, Height: 1},
		"negative height": {Width: 1, Height: -0.5},
		"NaN left":        {Width: 1, Height: 1, Left: nan},
		"infinite top":    {Width: 1, Height: 1, Top: float32(math.Inf(1))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: []float32{1, 0}, BoundingBox: b}}})
			requireCode(t, err, engine.ErrInvalidParameter)
			var img bytes.Buffer
			require.NoError(t, npy.EncodeBoxed(&img, [][]float32{{1, 0}}, true, []npy.Box{{Width: float64(b.Width), Height: float64(b.Height), Left: float64(b.Left), Top: float64(b.Top)}}))
			if name == "NaN left" || name == "infinite top" {
				// Python's repr of these is a name, which no header literal
				// holds: the header itself is refused.
				_, err = e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Image: &engine.Image{Bytes: img.Bytes()}})
				requireCode(t, err, engine.ErrInvalidImageFormat)
				return
			}
			_, err = e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Image: &engine.Image{Bytes: img.Bytes()}})
			requireCode(t, err, engine.ErrInvalidParameter)
			require.ErrorContains(t, err, npy.BoxesKey+"[0]")
		})
	}
}

// TestImportedBoxSurvivesAssociation: a face imported with a box keeps it
// when AssociateFaces rewrites its record in the same process.
func TestImportedBoxSurvivesAssociation(t *testing.T) {
	e := openEngine(t, t.TempDir())
	createCollection(t, e, "c", engine.SimilarityCosine)
	box := &engine.BoundingBox{Width: 0.25, Height: 0.5, Left: 0.125, Top: 0.25}
	im, err := e.NewImporter(ctx, "c", nil)
	require.NoError(t, err)
	require.NoError(t, im.Add(engine.ImportRecord{Vector: []float32{1, 0, 0}, BoundingBox: box}))
	require.NoError(t, im.Close())
	listed, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c"})
	require.NoError(t, err)
	require.Len(t, listed.Faces, 1)
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "u"})
	require.NoError(t, err)
	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{listed.Faces[0].FaceId}})
	require.NoError(t, err)
	after, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c"})
	require.NoError(t, err)
	require.Equal(t, box, after.Faces[0].BoundingBox)
}
