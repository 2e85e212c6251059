package store

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/internal/storetest"
)

// encodeFaceV1 is the face record of layout 1, vector inline.
func encodeFaceV1(f *Face) []byte {
	b := encodeFaceV2(f)
	b[0] = formatV1
	b = binary.AppendUvarint(b, uint64(len(f.Vector)))
	for _, x := range f.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// encodeFaceV2 is the face record of layout 2, keyed by face ID.
func encodeFaceV2(f *Face) []byte {
	b := []byte{formatV2}
	b = binary.AppendUvarint(b, f.Seq)
	b = appendStr(b, f.ImageID)
	b = appendStr(b, f.ExternalImageID)
	return appendStr(b, f.UserID)
}

// TestUpgrade: a store of layout 1 (face records under their IDs, vectors
// inline, no sys/format) or 2 (vectors apart) opens with write access as
// layout 3, every face whole, under its sequence, and no record left under
// a face ID; so does one whose upgrade a crash interrupted, some faces
// moved and some not. A read-only open refuses an old layout with
// ErrOldLayout and says how to upgrade.
func TestUpgrade(t *testing.T) {
	faces := []*Face{
		{ID: "bbbbbbbb-0000-4000-8000-000000000002", Seq: 1, ImageID: "i1", UserID: "u", Vector: []float32{0.6, 0.8}},
		{ID: "aaaaaaaa-0000-4000-8000-000000000001", Seq: 7, ImageID: "i2", ExternalImageID: "e", Vector: []float32{1, 0}},
		{ID: "cccccccc-0000-4000-8000-000000000003", Seq: 300, ImageID: "i3", Vector: []float32{0, 1}},
	}
	for _, tc := range []struct {
		name   string
		layout uint64 // 1: no sys/format
		moved  int    // faces already under their sequence
	}{
		{"layout 1", 1, 0},
		{"layout 2", 2, 0},
		{"layout 2, interrupted", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, nil)
			require.NoError(t, err)
			b := s.NewBatch()
			b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Dim: 2, Similarity: "cosine", LastUserPK: 1})
			b.PutUser("c", User{ID: "u", PK: 1})
			for i, f := range faces {
				switch {
				case i < tc.moved:
					b.PutFace("c", f)
				case tc.layout == 1:
					b.set(legacyFaceKey("c", f.ID), encodeFaceV1(f))
				default:
					b.set(legacyFaceKey("c", f.ID), encodeFaceV2(f))
					b.set(vectorKey("c", f.Seq), encodeVector(nil, f.ID, f.Vector))
				}
			}
			require.NoError(t, b.Commit(true))
			if tc.layout == 1 {
				require.NoError(t, s.db.Delete(keyFormat, pebble.Sync))
			} else {
				require.NoError(t, s.db.Set(keyFormat, binary.BigEndian.AppendUint64(nil, tc.layout), pebble.Sync))
			}
			require.NoError(t, s.Close())

			_, err = Open(dir, &Options{ReadOnly: true})
			require.ErrorIs(t, err, ErrOldLayout)
			require.ErrorContains(t, err, "open it once with write access")

			s = openStore(t, dir)
			var got []*Face
			for f, err := range s.Faces("c") {
				require.NoError(t, err)
				got = append(got, f)
			}
			require.Equal(t, faces, got, "every face, in sequence order")
			l, err := s.layout()
			require.NoError(t, err)
			require.Equal(t, uint64(storeFormat), l)
			n := 0
			require.NoError(t, s.scan(collPrefix("c", 'f'), func(_, _ []byte) error { n++; return nil }))
			require.Zero(t, n, "records left under face IDs")
			a, err := s.Audit(t.Context())
			require.NoError(t, err)
			require.Empty(t, a.Problems)
			require.NoError(t, s.Close())

			ro, err := Open(dir, &Options{ReadOnly: true})
			require.NoError(t, err)
			require.NoError(t, ro.Close())
		})
	}
}

// TestUpgradeRefusesCorruptRecords: a record under a face ID that does not
// decode, or that would take another face's key, stops the upgrade, naming
// the face, and the store is not marked upgraded.
func TestUpgradeRefusesCorruptRecords(t *testing.T) {
	for name, tc := range map[string]struct {
		rec   []byte
		moved *Face // a face already under its sequence
		want  string
	}{
		"truncated":  {rec: []byte{formatV2, 7}, want: "face f"},
		"sequence 0": {rec: encodeFaceV2(&Face{ID: "f", ImageID: "i"}), want: "face f"},
		"unknown":    {rec: []byte{9, 1, 0, 0, 0}, want: "face f"},
		// Faces that share a sequence would share a key: one would be lost.
		"sequence of another": {rec: encodeFaceV2(&Face{ID: "f", Seq: 5}), want: "faces e and f share sequence 5"},
		"sequence of a moved face": {
			rec: encodeFaceV2(&Face{ID: "f", Seq: 9}), moved: &Face{ID: "g", Seq: 9, Vector: []float32{1, 0}},
			want: "faces g and f share sequence 9",
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, nil)
			require.NoError(t, err)
			b := s.NewBatch()
			b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Dim: 2, Similarity: "cosine"})
			b.set(legacyFaceKey("c", "e"), encodeFaceV2(&Face{ID: "e", Seq: 5}))
			b.set(legacyFaceKey("c", "f"), tc.rec)
			if tc.moved != nil {
				b.PutFace("c", tc.moved)
			}
			b.set(keyFormat, binary.BigEndian.AppendUint64(nil, 2))
			require.NoError(t, b.Commit(true))
			require.NoError(t, s.Close())
			before := storetest.Dump(t, dir)
			_, err = Open(dir, nil)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, before, storetest.Dump(t, dir), "nothing moved")
		})
	}
}
