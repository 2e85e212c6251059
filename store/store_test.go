package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRecordsRoundTrip(t *testing.T) {
	created := time.Date(2026, 11, 22, 10, 0, 0, 123, time.UTC)
	m := CollectionMeta{ID: "c", Seq: 7, Dim: 512, Similarity: "arcface", Created: created, LastUserPK: 1 << 40}
	got, err := decodeCollection("c", encodeCollection(m))
	require.NoError(t, err)
	require.Equal(t, m, got)

	f := &Face{ID: "f", Seq: 3, ImageID: "i", ExternalImageID: "e:1", UserID: "u"}
	gf, err := decodeFace(3, encodeFace(f))
	require.NoError(t, err)
	require.Equal(t, f, gf)
	vec := []float32{0.6, -0.8, 0, float32(math.Inf(-1))}
	id, raw, err := decodeVectorRaw(3, encodeVector(nil, "f", vec))
	require.NoError(t, err)
	require.Equal(t, "f", string(id))
	require.Equal(t, vec, decodeVector(nil, raw))

	u := User{ID: "u", PK: 9, Created: created}
	gu, err := decodeUser("u", encodeUser(u))
	require.NoError(t, err)
	require.Equal(t, u, gu)

	tok := Token{ParamHash: [32]byte{1, 2}, Response: []byte(`{"a":1}`), Expires: created}
	gt, err := decodeToken(encodeToken(tok))
	require.NoError(t, err)
	require.Equal(t, tok.ParamHash, gt.ParamHash)
	require.Equal(t, tok.Response, gt.Response)
	require.True(t, tok.Expires.Equal(gt.Expires))
}

// TestBatchVectorInPlace: a batch encodes a vector record in its own
// buffer, byte for byte the record Set would copy in, in a plain batch and
// in an indexed one (whose index Finish updates).
func TestBatchVectorInPlace(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, tc := range []struct {
		name    string
		id      string
		vec     []float32
		indexed bool
	}{
		{"one value", "f", []float32{1}, false},
		{"512 values", "0f8fad5b-d9cb-469f-a165-70867728950e", make([]float32, 512), false},
		{"a long ID", string(bytes.Repeat([]byte("x"), 300)), []float32{0.6, -0.8, float32(math.Inf(1))}, false},
		{"indexed", "f", []float32{0.6, -0.8}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := vectorKey("c", 7)
			newBatch := func() *pebble.Batch { return s.db.NewBatch() }
			if tc.indexed {
				newBatch = s.db.NewIndexedBatch
			}
			in, want := &Batch{s: s, b: newBatch()}, newBatch()
			defer in.Close()
			defer want.Close()
			in.setVector(key, tc.id, tc.vec)
			require.NoError(t, in.err)
			require.NoError(t, want.Set(key, encodeVector(nil, tc.id, tc.vec), nil))
			require.Equal(t, want.Repr(), in.b.Repr())
			if tc.indexed {
				v, closer, err := in.b.Get(key)
				require.NoError(t, err)
				defer closer.Close()
				require.Equal(t, encodeVector(nil, tc.id, tc.vec), v)
			}
		})
	}
}

// TestCorruptRecords: every truncation or extension of a record is refused
// with ErrCorrupt, never a panic.
func TestCorruptRecords(t *testing.T) {
	face := encodeFace(&Face{ID: "f", Seq: 3, ImageID: "i", UserID: "u"})
	vector := encodeVector(nil, "f", []float32{1, 0})
	coll := encodeCollection(CollectionMeta{Seq: 1, Dim: 2, Similarity: "cosine"})
	user := encodeUser(User{PK: 1})
	for name, tc := range map[string]struct {
		rec    []byte
		decode func([]byte) error
	}{
		"face": {face, func(b []byte) error { _, err := decodeFace(3, b); return err }},
		"vector": {vector, func(b []byte) error {
			// Only whole float32s after the face ID decode: a length that is
			// not a multiple of 4 past it is corrupt, a multiple is another
			// vector, which the loader checks against the dimension.
			_, raw, err := decodeVectorRaw(1, b)
			if err == nil && len(raw) != 8 {
				return ErrCorrupt
			}
			return err
		}},
		"collection": {coll, func(b []byte) error { _, err := decodeCollection("c", b); return err }},
		"user":       {user, func(b []byte) error { _, err := decodeUser("u", b); return err }},
	} {
		t.Run(name, func(t *testing.T) {
			for n := 0; n < len(tc.rec); n++ {
				require.ErrorIs(t, tc.decode(tc.rec[:n]), ErrCorrupt, "truncated to %d", n)
			}
			require.ErrorIs(t, tc.decode(append(bytes.Clone(tc.rec), 0)), ErrCorrupt, "trailing byte")
			bad := bytes.Clone(tc.rec)
			bad[0] = 99
			require.ErrorIs(t, tc.decode(bad), ErrCorrupt, "unknown version")
		})
	}
}

func TestBatchAtomicAndPrefixes(t *testing.T) {
	s := openStore(t, t.TempDir())
	// "a" and "a-b" share a textual prefix; deleting "a" must not touch "a-b".
	for _, id := range []string{"a", "a-b", "b"} {
		b := s.NewBatch()
		b.PutCollection(CollectionMeta{ID: id, Seq: 1, Similarity: "cosine"})
		for pk := uint64(1); pk <= 3; pk++ {
			b.PutUser(id, User{ID: fmt.Sprint("u", pk), PK: pk})
		}
		b.PutFace(id, &Face{ID: "f1", Seq: 1, Vector: []float32{1}})
		b.PutToken(id, "CreateUser", "t", Token{Expires: time.Now().Add(time.Hour)})
		require.NoError(t, b.Commit(true))
	}
	b := s.NewBatch()
	b.DeleteCollection("a")
	require.NoError(t, b.Commit(true))

	colls, err := s.Collections()
	require.NoError(t, err)
	require.Len(t, colls, 2)
	require.Equal(t, "a-b", colls[0].ID)
	users, err := s.UserRecords("a")
	require.NoError(t, err)
	require.Empty(t, users)
	vectors := func(coll string) (n int) {
		require.NoError(t, s.ScanVectors(coll, 2, func(int, uint64, []byte, []float32) error { n++; return nil }))
		return n
	}
	require.Zero(t, vectors("a"), "the vectors go with the collection")
	require.Equal(t, 1, vectors("a-b"))
	require.Equal(t, 1, vectors("b"))
	users, err = s.UserRecords("a-b")
	require.NoError(t, err)
	require.Len(t, users, 3)
	_, ok, err := s.Token("a", "CreateUser", "t", time.Now())
	require.NoError(t, err)
	require.False(t, ok)
	_, ok, err = s.Token("a-b", "CreateUser", "t", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = s.Token("a-b", "CreateUser", "t", time.Now().Add(2*time.Hour))
	require.NoError(t, err)
	require.False(t, ok, "expired tokens are not returned")

	// An uncommitted batch leaves nothing behind.
	b = s.NewBatch()
	b.PutCollection(CollectionMeta{ID: "ghost", Seq: 9, Similarity: "cosine"})
	b.Close()
	_, ok, err = s.Collection("ghost")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestUsersInKeyOrder(t *testing.T) {
	s := openStore(t, t.TempDir())
	b := s.NewBatch()
	for pk := uint64(1); pk <= 300; pk++ {
		b.PutUser("c", User{ID: fmt.Sprintf("z%03d", 300-pk), PK: pk}) // names opposite to keys
	}
	require.NoError(t, b.Commit(true))
	for _, after := range []uint64{0, 1, 255, 256, 299, 300, ^uint64(0)} {
		var pks []uint64
		for u, err := range s.Users("c", after) {
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("z%03d", 300-u.PK), u.ID)
			pks = append(pks, u.PK)
		}
		want := 300 - int(min(after, 300))
		require.Len(t, pks, want, "after %d", after)
		for i := 1; i < len(pks); i++ {
			require.Equal(t, pks[i-1]+1, pks[i])
		}
	}
}

// TestFacesAfter: faces come in sequence order, not face ID order, from
// just after the sequence given, and each record is found by its sequence.
func TestFacesAfter(t *testing.T) {
	s := openStore(t, t.TempDir())
	b := s.NewBatch()
	// IDs that sort opposite to the sequences; a sequence of 256 and one
	// past 2^32 check that keys sort as numbers, not as varints.
	seqs := []uint64{1, 2, 3, 255, 256, 1<<32 + 1}
	for i, seq := range seqs {
		b.PutFace("c", &Face{ID: fmt.Sprintf("f%d", len(seqs)-i), Seq: seq, Vector: []float32{1, 0}})
	}
	b.PutFace("d", &Face{ID: "other", Seq: 4, Vector: []float32{1, 0}})
	require.NoError(t, b.Commit(true))
	for _, tc := range []struct {
		after uint64
		want  []string
	}{
		{0, []string{"f6", "f5", "f4", "f3", "f2", "f1"}},
		{3, []string{"f3", "f2", "f1"}},
		{4, []string{"f3", "f2", "f1"}},
		{256, []string{"f1"}},
		{1<<32 + 1, nil},
		{^uint64(0), nil},
	} {
		var ids []string
		for f, err := range s.FacesAfter("c", tc.after) {
			require.NoError(t, err)
			require.Nil(t, f.Vector, "listing reads no vectors")
			ids = append(ids, f.ID)
		}
		require.Equal(t, tc.want, ids, "after %d", tc.after)
	}
	f, ok, err := s.Face("c", 255)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, &Face{ID: "f3", Seq: 255, Vector: []float32{1, 0}}, f)
	_, ok, err = s.Face("c", 4)
	require.NoError(t, err)
	require.False(t, ok, "sequence 4 is collection d's")
}

func TestSecretPersistsAndLock(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	require.NoError(t, err)
	secret := bytes.Clone(s.Secret())
	require.Len(t, secret, 32)
	_, err = Open(dir, nil)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Close(), ErrClosed)
	s2 := openStore(t, dir)
	require.Equal(t, secret, s2.Secret(), "page tokens survive restarts")
}

func TestCheckpoint(t *testing.T) {
	s := openStore(t, t.TempDir())
	b := s.NewBatch()
	b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Similarity: "cosine"})
	require.NoError(t, b.Commit(true))
	dst := filepath.Join(t.TempDir(), "backup")
	require.NoError(t, s.Checkpoint(dst))
	b = s.NewBatch()
	b.PutCollection(CollectionMeta{ID: "later", Seq: 2, Similarity: "cosine"})
	require.NoError(t, b.Commit(true))

	c := openStore(t, dst)
	colls, err := c.Collections()
	require.NoError(t, err)
	require.Len(t, colls, 1, "the copy is the state at checkpoint time")
	require.Equal(t, s.Secret(), c.Secret())
}

func TestPrefixEnd(t *testing.T) {
	require.Equal(t, []byte("c/a0"), prefixEnd([]byte("c/a/")))
	require.Equal(t, []byte{1}, prefixEnd([]byte{0, 0xff}[:1]))
	require.Nil(t, prefixEnd([]byte{0xff, 0xff}))
	require.False(t, errors.Is(pebble.ErrNotFound, ErrCorrupt))
}
