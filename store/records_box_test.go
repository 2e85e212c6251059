package store

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFaceBoxCompat: the bounding box is an optional trailing field. A face
// of the whole image encodes exactly as before the field existed, so old
// records decode unchanged (Box nil); a box round-trips through the record,
// a store scan and an update, and a cut or extended box is corrupt.
func TestFaceBoxCompat(t *testing.T) {
	base := Face{ID: "f", Seq: 3, ImageID: "i", ExternalImageID: "e", UserID: "u"}
	old := []byte{formatV3, 1, 'f', 1, 'i', 1, 'e', 1, 'u'}
	require.Equal(t, old, encodeFace(&base), "a whole-image face encodes as the format did before boxes")
	got, err := decodeFace(3, old)
	require.NoError(t, err)
	require.Nil(t, got.Box)

	boxed := base
	boxed.Box = &Box{Width: 0.5, Height: 0.25, Left: -0.125, Top: 1}
	enc := encodeFace(&boxed)
	require.True(t, bytes.HasPrefix(enc, old))
	got, err = decodeFace(3, enc)
	require.NoError(t, err)
	require.Equal(t, &boxed, got)
	for n := len(old) + 1; n < len(enc); n++ {
		_, err := decodeFace(3, enc[:n])
		require.ErrorIs(t, err, ErrCorrupt, "box cut to %d bytes", n-len(old))
	}
	_, err = decodeFace(3, append(bytes.Clone(enc), 0))
	require.ErrorIs(t, err, ErrCorrupt, "a byte past the box")

	s := openStore(t, t.TempDir())
	b := s.NewBatch()
	b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Dim: 2, Similarity: "cosine"})
	whole := Face{ID: "g", Seq: 1, ImageID: "i", Vector: []float32{1, 0}}
	withBox := Face{ID: "h", Seq: 2, ImageID: "i", Box: &Box{Width: 0.5, Height: 0.5, Left: 0.25, Top: 0.25}, Vector: []float32{0, 1}}
	b.PutFace("c", &whole)
	b.PutFace("c", &withBox)
	require.NoError(t, b.Commit(true))
	upd := withBox
	upd.UserID, upd.Vector = "u", nil
	b = s.NewBatch()
	b.UpdateFace("c", &upd)
	require.NoError(t, b.Commit(true))

	boxes := map[string]*Box{}
	require.NoError(t, s.ScanFaces("c", 1, func(_ int, f *Face) error {
		boxes[f.ID] = f.Box
		return nil
	}))
	require.Equal(t, map[string]*Box{"g": nil, "h": withBox.Box}, boxes)
	f, ok, err := s.Face("c", 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, withBox.Box, f.Box)
	require.Equal(t, "u", f.UserID)
}
