package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCollectionTierCompat: the tier is an optional trailing field. A
// float32 collection encodes exactly as before the field existed, so old
// records decode unchanged (as float32) and old code reads new float32
// records; a compressed tier round-trips.
func TestCollectionTierCompat(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	base := CollectionMeta{ID: "c", Seq: 3, Dim: 128, Similarity: "cosine", Created: created, LastUserPK: 42}

	// The record as the first format wrote it, byte for byte.
	old := []byte{formatV1, 3, 128, 1, 6, 'c', 'o', 's', 'i', 'n', 'e'}
	old = append(old, encodeVarint(created.UnixNano())...)
	old = append(old, 42)
	require.Equal(t, old, encodeCollection(base), "float32 encodes as the first format did")
	got, err := decodeCollection("c", old)
	require.NoError(t, err)
	require.Equal(t, base, got)
	require.Empty(t, got.Tier)

	for _, tier := range []string{"int8", "float16"} {
		m := base
		m.Tier = tier
		enc := encodeCollection(m)
		require.True(t, bytes.HasPrefix(enc, old))
		got, err := decodeCollection("c", enc)
		require.NoError(t, err)
		require.Equal(t, m, got)
		for n := len(old) + 1; n < len(enc); n++ {
			_, err := decodeCollection("c", enc[:n])
			require.ErrorIs(t, err, ErrCorrupt, "truncated tier at %d", n)
		}
		_, err = decodeCollection("c", append(bytes.Clone(enc), 0))
		require.ErrorIs(t, err, ErrCorrupt, "a byte past the tier")
	}
}

func encodeVarint(x int64) []byte {
	var b []byte
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	for ux >= 0x80 {
		b = append(b, byte(ux)|0x80)
		ux >>= 7
	}
	return append(b, byte(ux))
}
