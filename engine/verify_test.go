package engine_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/storetest"
	"github.com/facesearch/facesearch/store"
)

// healthyStore builds a small store with every kind of record: collection
// "c" (dimension 4) with seven faces, users alice (3 faces), bob (1 face)
// and carol (none, created with a ClientRequestToken), and an empty
// collection "d".
func healthyStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 4))
	createCollection(t, e, "c", engine.SimilarityCosine)
	createCollection(t, e, "d", "")
	centre := randomUnit(r, 4)
	ids := indexFaces(t, e, "c", near(r, centre, 0.9), near(r, centre, 0.9), near(r, centre, 0.9), randomUnit(r, 4),
		randomUnit(r, 4), randomUnit(r, 4), randomUnit(r, 4))
	createUser(t, e, "c", "alice", ids[:3]...)
	createUser(t, e, "c", "bob", ids[3])
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "carol", ClientRequestToken: "tok-1"})
	require.NoError(t, err)
	require.NoError(t, e.Close())
	return dir
}

// withStore opens dir's store for a corruption to be written through it.
func withStore(t *testing.T, dir string, fn func(st *store.Store)) {
	t.Helper()
	st, err := store.Open(dir, nil)
	require.NoError(t, err)
	fn(st)
	require.NoError(t, st.Close())
}

func commit(t *testing.T, b *store.Batch) {
	t.Helper()
	require.NoError(t, b.Commit(true))
}

// withPebble writes raw keys: the corruptions no store call can make.
func withPebble(t *testing.T, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	fn(db)
	require.NoError(t, db.Close())
}

func faceRecords(t *testing.T, st *store.Store, coll string) []*store.Face {
	t.Helper()
	var out []*store.Face
	for f, err := range st.Faces(coll) {
		require.NoError(t, err)
		out = append(out, f)
	}
	return out
}

func freeFace(t *testing.T, st *store.Store) *store.Face {
	t.Helper()
	for _, f := range faceRecords(t, st, "c") {
		if f.UserID == "" {
			return f
		}
	}
	t.Fatal("no free face")
	return nil
}

func faceOf(t *testing.T, st *store.Store, userID string) *store.Face {
	t.Helper()
	for _, f := range faceRecords(t, st, "c") {
		if f.UserID == userID {
			return f
		}
	}
	t.Fatalf("%s has no face", userID)
	return nil
}

func meta(t *testing.T, st *store.Store, coll string) store.CollectionMeta {
	t.Helper()
	m, ok, err := st.Collection(coll)
	require.NoError(t, err)
	require.True(t, ok)
	return m
}

func pkKey(coll string, pk uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("c/"+coll+"/k/"), pk)
}

// faceRecordKey is the key of the record of a face, under its sequence.
func faceRecordKey(coll string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("c/"+coll+"/s/"), seq)
}

const otherFaceID = "0f0f0f0f-0000-4000-8000-000000000001"

// TestVerifyRefusesCorruptStores: each contradiction makes Open refuse the
// store with ErrCorrupt without changing it, and Check reports it.
func TestVerifyRefusesCorruptStores(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		// want is a fragment of the problem Check must report.
		want string
	}{
		{"face of a missing user", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				f.UserID = "ghost"
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, `belongs to user "ghost", which has no record`},
		{"user primary key past the counter", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				b := st.NewBatch()
				b.PutUser("c", store.User{ID: "mallory", PK: 99})
				commit(t, b)
			})
		}, "past the last one handed out"},
		{"primary-key entry without a user record", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set(pkKey("c", 2), []byte("nobody"), pebble.Sync)) })
		}, `names user "nobody", which has no record`},
		{"user record without a primary-key entry", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Delete(pkKey("c", 1), pebble.Sync)) })
		}, `user "alice" has no primary-key entry`},
		{"last user record without a primary-key entry", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Delete(pkKey("c", 3), pebble.Sync)) })
		}, `user "carol" has no primary-key entry`},
		{"two users share a primary key", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				b := st.NewBatch()
				b.PutUser("c", store.User{ID: "mallory", PK: 1}) // alice's
				commit(t, b)
			})
		}, `users "alice" and "mallory" share primary key 1`},
		{"primary-key entry at key 0", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set(pkKey("c", 0), []byte("alice"), pebble.Sync)) })
		}, `primary-key entry 0 names user "alice"`},
		{"primary-key entry past the last user", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set(pkKey("c", 3000), []byte("carol"), pebble.Sync)) })
		}, `primary-key entry 3000 names user "carol"`},
		{"primary-key entry and record disagree", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set(pkKey("c", 2), []byte("alice"), pebble.Sync)) })
		}, `whose record has primary key 1`},
		{"a face recorded twice", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				f.Seq = 600
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, "is recorded twice"},
		{"a face of sequence 0", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				f.Seq = 0 // its vector stays under its sequence
				b := st.NewBatch()
				b.UpdateFace("c", f)
				commit(t, b)
			})
		}, "has sequence 0"},
		{"a face of a user recorded twice", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := faceOf(t, st, "alice")
				f.Seq = 601
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, "is recorded twice, under sequences"}, // Check's wording, not Open's
		{"a face recorded twice, for two users", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := faceOf(t, st, "bob")
				f.Seq, f.UserID = 602, "alice"
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, "is recorded twice"},
		{"face of the wrong dimension", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				f.Vector = []float32{1, 0, 0}
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, "has 3 dimensions, the collection 4"},
		{"face not of unit length", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				f.Vector = []float32{2, 0, 0, 0}
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, "has norm 2, want 1"},
		{"face with NaN", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				f.Vector = []float32{float32(math.NaN()), 1, 0, 0}
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, "non-finite value at position 0"},
		{"user with 101 faces", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				b := st.NewBatch()
				for i := range 101 {
					g := *f
					g.ID = strings.Replace(otherFaceID, "0001", string(rune('a'+i/26))+string(rune('a'+i%26))+"00", 1)
					g.Seq = uint64(1000 + i)
					g.UserID = "carol"
					b.PutFace("c", &g)
				}
				commit(t, b)
			})
		}, `user "carol" has 101 faces`},
		{"face ID not a UUID", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				f.ID, f.Seq = "not-a-uuid", 500
				b := st.NewBatch()
				b.PutFace("c", f)
				commit(t, b)
			})
		}, "is not a lowercase UUID"},
		{"face without a vector", func(t *testing.T, dir string) {
			var seq uint64
			withStore(t, dir, func(st *store.Store) { seq = freeFace(t, st).Seq })
			withPebble(t, dir, func(db *pebble.DB) {
				require.NoError(t, db.Delete(binary.BigEndian.AppendUint64([]byte("v/c/"), seq), pebble.Sync))
			})
		}, "has no vector"},
		{"vector without a face", func(t *testing.T, dir string) {
			var seq uint64
			withStore(t, dir, func(st *store.Store) { seq = freeFace(t, st).Seq })
			withPebble(t, dir, func(db *pebble.DB) {
				require.NoError(t, db.Delete(faceRecordKey("c", seq), pebble.Sync)) // its vector stays
			})
		}, "belongs to no face"},
		{"vector in a collection without faces or a dimension", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				b := st.NewBatch()
				b.PutFace("d", &store.Face{ID: otherFaceID, Seq: 77, ImageID: otherFaceID, Vector: []float32{1, 0, 0, 0}})
				commit(t, b)
			})
			withPebble(t, dir, func(db *pebble.DB) {
				require.NoError(t, db.Delete(faceRecordKey("d", 77), pebble.Sync)) // its vector stays
			})
		}, "belongs to no face"},
		{"vectors left after every face record went", func(t *testing.T, dir string) {
			var seqs []uint64
			withStore(t, dir, func(st *store.Store) {
				for _, f := range faceRecords(t, st, "c") {
					seqs = append(seqs, f.Seq)
				}
			})
			withPebble(t, dir, func(db *pebble.DB) {
				for _, seq := range seqs {
					require.NoError(t, db.Delete(faceRecordKey("c", seq), pebble.Sync)) // the vectors stay
				}
			})
		}, "belongs to no face"},
		{"vector of another face", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				b := st.NewBatch()
				// f's vector replaced by one that names otherFaceID, which
				// has no record; f's record rewritten to point at it.
				b.PutFace("c", &store.Face{ID: otherFaceID, Seq: f.Seq, ImageID: f.ImageID, Vector: f.Vector})
				b.UpdateFace("c", f)
				commit(t, b)
			})
		}, `whose vector is face "` + otherFaceID + `"'s`},
		{"vector naming its face in capitals", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				upper := strings.ToUpper(f.ID)
				b := st.NewBatch()
				// The same UUID, spelt otherwise: not the same face ID.
				b.PutFace("c", &store.Face{ID: upper, Seq: f.Seq, ImageID: f.ImageID, Vector: f.Vector})
				b.UpdateFace("c", f)
				commit(t, b)
			})
		}, `whose vector is face "`},
		{"records of a collection without metadata", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				f := freeFace(t, st)
				b := st.NewBatch()
				b.PutFace("gone", f)
				commit(t, b)
			})
		}, `belong to collection "gone", which has no metadata`},
		{"record kind unknown", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set([]byte("c/c/x/1"), []byte("?"), pebble.Sync)) })
		}, "record kind this release does not know"},
		{"key outside the layout", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set([]byte("junk"), []byte("?"), pebble.Sync)) })
		}, "outside the key layout"},
		{"idempotency record undecodable", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) {
				require.NoError(t, db.Set([]byte("c/c/t/CreateUser/tok-1"), []byte{1, 2, 3}, pebble.Sync))
			})
		}, "truncated token hash"},
		{"idempotency key malformed", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set([]byte("c/c/t/CreateUser"), []byte{1}, pebble.Sync)) })
		}, "is not t/<operation>/<token>"},
		{"collection metadata undecodable", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set([]byte("col/d"), []byte{9}, pebble.Sync)) })
		}, "unknown format version 9"},
		{"user record undecodable", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set([]byte("c/c/u/bob"), []byte{1}, pebble.Sync)) })
		}, "truncated user pk"},
		{"primary-key entry of the wrong length", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set([]byte("c/c/k/abc"), []byte("bob"), pebble.Sync)) })
		}, "user key"},
		{"incarnation past the counter", func(t *testing.T, dir string) {
			withPebble(t, dir, func(db *pebble.DB) {
				require.NoError(t, db.Set([]byte("sys/collseq"), binary.BigEndian.AppendUint64(nil, 1), pebble.Sync))
			})
		}, "past the last one handed out (sys/collseq 1)"},
		{"incarnation shared", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				m := meta(t, st, "d")
				m.Seq = meta(t, st, "c").Seq
				b := st.NewBatch()
				b.PutCollection(m)
				commit(t, b)
			})
		}, `is also collection "c"'s`},
		{"similarity unknown", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				m := meta(t, st, "d")
				m.Similarity = "bogus"
				b := st.NewBatch()
				b.PutCollection(m)
				commit(t, b)
			})
		}, "similarity"},
		{"faces without a dimension", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				m := meta(t, st, "c")
				m.Dim = 0
				b := st.NewBatch()
				b.PutCollection(m)
				commit(t, b)
			})
		}, "has 4 dimensions, the collection 0"},
		{"dimension out of range", func(t *testing.T, dir string) {
			withStore(t, dir, func(st *store.Store) {
				m := meta(t, st, "d")
				m.Dim = 5000
				b := st.NewBatch()
				b.PutCollection(m)
				commit(t, b)
			})
		}, "dimension 5000 is outside 0-4096"},
	}
	// Open's error, whose wording can differ from Check's, for the cases
	// its own checks find.
	openWant := map[string]string{
		"primary-key entry without a user record":      `primary-key entry 2 names user "nobody", whose record disagrees`,
		"user record without a primary-key entry":      `user "alice" has no primary-key entry (its key is 1)`,
		"last user record without a primary-key entry": `user "carol" has no primary-key entry (its key is 3)`,
		"two users share a primary key":                `users "alice" and "mallory" share primary key 1`,
		"primary-key entry at key 0":                   `primary-key entry 0 names user "alice", whose record disagrees`,
		"primary-key entry past the last user":         `primary-key entry 3000 names user "carol", whose record disagrees`,
		"primary-key entry and record disagree":        `primary-key entry 2 names user "alice", whose record disagrees`,
		"a face recorded twice":                        "is recorded twice, under sequences",
		"a face of a user recorded twice":              `is recorded twice, both of user "alice"`,
		"a face recorded twice, for two users":         "is recorded twice, under sequences",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := healthyStore(t)
			tc.corrupt(t, dir)
			before := storetest.Dump(t, dir)

			e, err := engine.Open(dir, nil)
			if err == nil {
				e.Close()
			}
			require.ErrorIs(t, err, engine.ErrCorrupt)
			t.Logf("Open: %v", err)
			if want, ok := openWant[tc.name]; ok {
				require.ErrorContains(t, err, want)
			}
			require.Contains(t, err.Error(), dir, "the error names the store")
			require.Equal(t, before, storetest.Dump(t, dir), "a refused store is left as it was")

			rep, err := engine.Check(ctx, dir)
			require.NoError(t, err)
			require.False(t, rep.OK())
			require.ErrorIs(t, rep.Err(), engine.ErrCorrupt)
			var all []string
			for _, p := range rep.Problems {
				all = append(all, p.String())
			}
			require.Contains(t, strings.Join(all, "\n"), tc.want)
			require.Equal(t, before, storetest.Dump(t, dir), "check changes nothing")
		})
	}
}

// TestVerifyRefusesBadSecret: a page-token key of the wrong length is
// refused, not replaced (that would void every token handed out).
func TestVerifyRefusesBadSecret(t *testing.T) {
	dir := healthyStore(t)
	withPebble(t, dir, func(db *pebble.DB) { require.NoError(t, db.Set([]byte("sys/secret"), []byte("short"), pebble.Sync)) })
	before := storetest.Dump(t, dir)
	_, err := engine.Open(dir, nil)
	require.ErrorIs(t, err, engine.ErrCorrupt)
	_, err = engine.Check(ctx, dir)
	require.ErrorIs(t, err, engine.ErrCorrupt)
	require.Equal(t, before, storetest.Dump(t, dir))
}

// TestCheckHealthyStore: a store built through the API passes, with its
// records counted.
func TestCheckHealthyStore(t *testing.T) {
	dir := healthyStore(t)
	rep, err := engine.Check(ctx, dir)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.NoError(t, rep.Err())
	require.Equal(t, engine.CheckReport{Dir: dir, Collections: 2, Faces: 7, Users: 3, Tokens: 1}, *rep)

	// And it still opens afterwards, and again after a collection is deleted.
	e := openEngine(t, dir)
	_, err = e.DeleteCollection(ctx, &engine.DeleteCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	require.NoError(t, e.Close())
	rep, err = engine.Check(ctx, dir)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	require.Equal(t, 1, rep.Collections)
}

// TestCheckNoStore: nothing to check is an error, not an empty report, and
// nothing is created.
func TestCheckNoStore(t *testing.T) {
	dir := t.TempDir() + "/missing"
	_, err := engine.Check(ctx, dir)
	require.Error(t, err)
	require.NoDirExists(t, dir)
}

// TestCheckLocked: a store in use by another engine is not checked behind
// its back.
func TestCheckLocked(t *testing.T) {
	dir := healthyStore(t)
	openEngine(t, dir)
	_, err := engine.Check(ctx, dir)
	require.ErrorIs(t, err, engine.ErrLocked)
}
