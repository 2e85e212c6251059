package store

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
)

// encodeFaceV1 is the face record of layout 1, vector inline.
func encodeFaceV1(f *Face) []byte {
	b := []byte{formatV1}
	b = binary.AppendUvarint(b, f.Seq)
	b = appendStr(b, f.ImageID)
	b = appendStr(b, f.ExternalImageID)
	b = appendStr(b, f.UserID)
	b = binary.AppendUvarint(b, uint64(len(f.Vector)))
	for _, x := range f.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// TestUpgradeLayout1: a store of layout 1 (vectors inside face records, no
// sys/format) opens with write access as this layout, every face whole; a
// read-only open refuses it with ErrCorrupt and says how to upgrade.
func TestUpgradeLayout1(t *testing.T) {
	dir := t.TempDir()
	faces := []*Face{
		{ID: "aaaaaaaa-0000-4000-8000-000000000001", Seq: 1, ImageID: "i1", UserID: "u", Vector: []float32{0.6, 0.8}},
		{ID: "bbbbbbbb-0000-4000-8000-000000000002", Seq: 7, ImageID: "i2", ExternalImageID: "e", Vector: []float32{1, 0}},
	}
	s, err := Open(dir, nil)
	require.NoError(t, err)
	b := s.NewBatch()
	b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Dim: 2, Similarity: "cosine", LastUserPK: 1})
	b.PutUser("c", User{ID: "u", PK: 1})
	require.NoError(t, b.Commit(true))
	for _, f := range faces {
		require.NoError(t, s.db.Set(faceKey("c", f.ID), encodeFaceV1(f), pebble.Sync))
	}
	require.NoError(t, s.db.Delete(keyFormat, pebble.Sync))
	require.NoError(t, s.Close())

	ro, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	for _, err := range ro.Faces("c") {
		require.ErrorIs(t, err, ErrCorrupt)
		require.ErrorContains(t, err, "open the store once with write access")
		break
	}
	require.NoError(t, ro.Close())

	s = openStore(t, dir)
	got := readFaces(t, s)
	require.Len(t, got, len(faces))
	for _, f := range faces {
		require.Equal(t, f, got[f.ID])
		v, ok, err := s.get(faceKey("c", f.ID))
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, byte(formatV2), v[0])
	}
	a, err := s.Audit(t.Context())
	require.NoError(t, err)
	require.Empty(t, a.Problems)
}
