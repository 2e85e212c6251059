package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/vector"
)

// These tests are internal: they compare the in-memory index with the store
// and with a rebuild, which the public API cannot see.

func impOpen(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := Open(dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

func impCreate(t testing.TB, e *Engine, id string, dim int) {
	t.Helper()
	_, err := e.CreateCollection(context.Background(), &CreateCollectionInput{CollectionId: id, Dimension: dim, Similarity: SimilarityCosine})
	require.NoError(t, err)
}

func impVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// impState is a collection's state with sequence numbers and primary keys
// left out, so two collections built differently can be compared.
type impState struct {
	Dim     int
	Faces   map[string]impFace
	Users   []string            // in primary-key order
	Members map[string][]string // user -> sorted face IDs
	UserVec map[string][]float32
}

type impFace struct {
	ImageID, ExternalImageID, UserID string
	Vector                           []float32
}

func impSnapshot(t testing.TB, e *Engine, coll string) impState {
	t.Helper()
	c, release, err := e.acquire(coll)
	require.NoError(t, err)
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := impState{Dim: c.dim, Faces: map[string]impFace{}, Members: map[string][]string{}, UserVec: map[string][]float32{}}
	for id, f := range c.faces {
		v, ok := c.faceVector(f.seq)
		require.True(t, ok, "face %s has no row", id)
		s.Faces[id] = impFace{f.imageID, f.externalImageID, f.userID, slices.Clone(v)}
	}
	require.Equal(t, len(c.faces), len(c.bySeq))
	require.Len(t, c.byPK, len(c.users))
	pks := make([]uint64, 0, len(c.byPK))
	for pk := range c.byPK {
		pks = append(pks, pk)
	}
	slices.Sort(pks)
	for _, pk := range pks {
		u := c.byPK[pk]
		require.LessOrEqual(t, pk, c.meta.LastUserPK)
		s.Users = append(s.Users, u.id)
		require.True(t, slices.IsSorted(u.faces))
		require.LessOrEqual(t, len(u.faces), maxFacesPerUser)
		for _, id := range u.faces {
			require.Equal(t, u.id, c.faces[id].userID, "face %s of user %s", id, u.id)
		}
		s.Members[u.id] = slices.Clone(u.faces)
		if v := c.vectorOf(u); v != nil {
			require.NotEmpty(t, u.faces, "user %s without faces has a vector", u.id)
			s.UserVec[u.id] = slices.Clone(v)
		} else {
			require.Empty(t, u.faces, "user %s with faces has no vector", u.id)
		}
	}
	return s
}

// impCheckRebuild reopens the store and requires the rebuilt collection to
// equal the one in memory: what was published is exactly what was stored.
func impCheckRebuild(t *testing.T, dir string, e *Engine, colls ...string) {
	t.Helper()
	before := map[string]impState{}
	for _, c := range colls {
		before[c] = impSnapshot(t, e, c)
	}
	require.NoError(t, e.Close())
	e2, err := Open(dir, nil)
	require.NoError(t, err)
	defer e2.Close()
	for _, c := range colls {
		require.Equal(t, before[c], impSnapshot(t, e2, c), "collection %s after reopening", c)
	}
}

func impExport(t testing.TB, e *Engine, coll string) []ImportRecord {
	t.Helper()
	var out []ImportRecord
	for rec, err := range e.Export(context.Background(), coll) {
		require.NoError(t, err)
		out = append(out, rec)
	}
	return out
}

func impAll(t testing.TB, e *Engine, coll string, opts *ImportOptions, recs []ImportRecord) ImportStats {
	t.Helper()
	im, err := e.NewImporter(context.Background(), coll, opts)
	require.NoError(t, err)
	for i, r := range recs {
		require.NoError(t, im.Add(r), "record %d", i)
	}
	require.NoError(t, im.Close())
	return im.Stats()
}

// impDataset makes faces of nUsers users (some users get none) and
// user-less faces, some with an external image ID.
func impDataset(r *rand.Rand, n, nUsers, dim int) []ImportRecord {
	recs := make([]ImportRecord, n)
	for i := range recs {
		recs[i].Vector = impVec(r, dim)
		if i%3 != 0 {
			recs[i].UserId = fmt.Sprintf("user-%03d", r.IntN(nUsers))
		}
		if i%2 == 0 {
			recs[i].ExternalImageId = fmt.Sprintf("img-%d.jpg", i)
		}
	}
	return recs
}

func TestImportExportRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name         string
		dim, n       int
		batchRecords int
	}{
		{"one batch", 16, 50, 0},
		{"many batches", 8, 300, 7},
		{"tiny dimension", 2, 120, 13}, // where renormalizing would move bits
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := impOpen(t, dir)
			impCreate(t, e, "a", 0)
			r := rand.New(rand.NewPCG(1, uint64(tc.n)))
			recs := impDataset(r, tc.n, 20, tc.dim)
			// A user with no faces must survive the round trip too.
			recs = append([]ImportRecord{{UserId: "lonely"}}, recs...)
			opts := &ImportOptions{BatchRecords: tc.batchRecords}
			st := impAll(t, e, "a", opts, recs)
			assert.Equal(t, tc.n, st.Faces)
			assert.Equal(t, tc.n+1, st.Records)

			first := impExport(t, e, "a")
			exts := func(rs []ImportRecord) (out []string) {
				for _, r := range rs {
					if r.ExternalImageId != "" {
						out = append(out, r.ExternalImageId)
					}
				}
				return out
			}
			require.Equal(t, exts(recs), exts(first), "faces come out in the order they were imported")
			impCreate(t, e, "b", 0)
			impAll(t, e, "b", opts, first)
			second := impExport(t, e, "b")
			require.Equal(t, len(first), len(second))
			for i := range first {
				require.Equal(t, first[i].FaceId, second[i].FaceId, "record %d", i)
				require.Equal(t, first[i], second[i], "record %d", i)
				for k := range first[i].Vector {
					require.Equal(t, math.Float32bits(first[i].Vector[k]), math.Float32bits(second[i].Vector[k]))
				}
			}
			sa, sb := impSnapshot(t, e, "a"), impSnapshot(t, e, "b")
			require.Equal(t, sa, sb, "the re-imported collection equals the original")
			require.Equal(t, "lonely", sa.Users[0])
			impCheckRebuild(t, dir, e, "a", "b")
		})
	}
}

// TestImportExpectedSizes: the size hints change how the collection's maps
// are made, never what the import builds, whether they are exact, too high
// or too low, and whether the dimension is fixed before the import, by its
// first batch, or by a later one (after batches of users only). A
// collection that has faces and users already keeps its maps.
func TestImportExpectedSizes(t *testing.T) {
	const dim, nFaces = 8, 300
	for _, tc := range []struct {
		name   string
		dim    int  // the hinted collection's: 0 leaves it to the first face
		seeded bool // half the records are imported first, without hints
		opts   ImportOptions
	}{
		{"exact", dim, false, ImportOptions{ExpectedFaces: nFaces, ExpectedUsers: 40}},
		{"too high", dim, false, ImportOptions{ExpectedFaces: 100_000, ExpectedUsers: 100_000}},
		{"too low", dim, false, ImportOptions{ExpectedFaces: 3, ExpectedUsers: 1, BatchRecords: 32}},
		{"faces only", 0, false, ImportOptions{ExpectedFaces: nFaces}},
		{"users only", dim, false, ImportOptions{ExpectedUsers: 40}},
		{"dimension fixed by a later batch", 0, false, ImportOptions{ExpectedFaces: 10_000, ExpectedUsers: 5_000, BatchRecords: 16}},
		{"collection not empty", dim, true, ImportOptions{ExpectedFaces: nFaces, ExpectedUsers: 40, BatchRecords: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := impOpen(t, dir)
			impCreate(t, e, "plain", 0)
			r := rand.New(rand.NewPCG(31, 32))
			impAll(t, e, "plain", nil, impDataset(r, nFaces, 40, dim))
			// The export's users come first, then its faces with their IDs,
			// so the two collections can be compared face by face.
			recs := impExport(t, e, "plain")
			impCreate(t, e, "hinted", tc.dim)
			if tc.seeded {
				impAll(t, e, "hinted", &ImportOptions{BatchRecords: 16}, recs[:len(recs)/2])
				recs = recs[len(recs)/2:]
			}
			c, release, err := e.acquire("hinted")
			require.NoError(t, err)
			release() // c stays valid: nothing deletes the collection
			c.mu.RLock()
			faces, users := reflect.ValueOf(c.faces).UnsafePointer(), reflect.ValueOf(c.users).UnsafePointer()
			c.mu.RUnlock()

			opts := tc.opts
			impAll(t, e, "hinted", &opts, recs)
			require.Equal(t, impSnapshot(t, e, "plain"), impSnapshot(t, e, "hinted"))
			c.mu.RLock()
			assert.Equal(t, tc.opts.ExpectedFaces > 0 && !tc.seeded, reflect.ValueOf(c.faces).UnsafePointer() != faces, "face map made anew")
			assert.Equal(t, tc.opts.ExpectedUsers > 0 && !tc.seeded, reflect.ValueOf(c.users).UnsafePointer() != users, "user map made anew")
			if !tc.seeded {
				// The matrices' key indexes have the room asked for.
				keyRoom := func(m *index.Matrix) int { return reflect.ValueOf(m).Elem().FieldByName("keys").Cap() }
				solo, other, several := hintedRows(tc.opts.ExpectedFaces, tc.opts.ExpectedUsers)
				assert.GreaterOrEqual(t, keyRoom(c.soloIdx), solo, "solo matrix keys")
				assert.GreaterOrEqual(t, keyRoom(c.faceIdx), other, "face matrix keys")
				assert.GreaterOrEqual(t, keyRoom(c.userIdx), several, "user matrix keys")
			}
			c.mu.RUnlock()
			impCheckRebuild(t, dir, e, "plain", "hinted")
		})
	}
}

// TestHintedRows: the hints' rows divide among the matrices as the import
// would place them, exactly when users have one or two faces each.
func TestHintedRows(t *testing.T) {
	for _, tc := range []struct {
		faces, users, solo, other, several int
	}{
		{1000, 1000, 1000, 0, 0},     // one face each
		{1000, 2000, 1000, 0, 0},     // more users than faces: those with one
		{3000, 1000, 0, 3000, 1000},  // three faces each
		{1500, 1000, 500, 1000, 500}, // half with one face, half with two
		{1000, 0, 0, 1000, 0},        // faces of no user
		{0, 1000, 0, 0, 0},           // users alone
		{0, 0, 0, 0, 0},
	} {
		solo, other, several := hintedRows(tc.faces, tc.users)
		assert.Equal(t, [3]int{tc.solo, tc.other, tc.several}, [3]int{solo, other, several}, "%d faces, %d users", tc.faces, tc.users)
	}
}

// TestImportReusesBatchMemory: batch after batch reuse the memory of the
// ones before (their vectors and records), across the arena's chunks and
// after a failed batch, and every face keeps its own vector: in memory, in
// the store, and in its user's vector, whether the user has that face
// alone or faces from several batches (averaged).
func TestImportReusesBatchMemory(t *testing.T) {
	dir := t.TempDir()
	e := impOpen(t, dir)
	impCreate(t, e, "c", 0)
	r := rand.New(rand.NewPCG(8, 9))
	const dim, n, bad = 512, 3200, 2000
	// 1,500 faces of 512 dimensions fill more than one 4 MiB chunk.
	im, err := e.NewImporter(context.Background(), "c", &ImportOptions{BatchRecords: 1500})
	require.NoError(t, err)
	want := map[string][]float32{}
	for i := range n {
		// Users of one face, and users of faces 2,000 records apart: in two
		// batches, or one face in the batch that fails.
		rec := ImportRecord{Vector: impVec(r, dim), ExternalImageId: fmt.Sprint("img-", i), UserId: fmt.Sprint("u", i%2000)}
		if i == bad {
			rec.Vector = rec.Vector[:dim-1] // fails, and its batch with it
		}
		err := im.Add(rec)
		if i == bad {
			var ie *ImportError
			require.ErrorAs(t, err, &ie)
			continue
		}
		require.NoError(t, err)
		if i < 1500 || i > bad { // what the failed batch discarded is not kept
			want[rec.ExternalImageId], err = normalize(rec.Vector, "v")
			require.NoError(t, err)
		}
		for k := range rec.Vector {
			rec.Vector[k] = -1 // the caller may reuse its buffer at once
		}
	}
	require.NoError(t, im.Close())

	got := impSnapshot(t, e, "c")
	require.Len(t, got.Faces, len(want))
	averaged := 0
	for u, ids := range got.Members {
		if len(ids) == 0 {
			continue
		}
		sum := make([]float64, dim)
		for _, id := range ids {
			f := got.Faces[id]
			require.Equal(t, want[f.ExternalImageID], f.Vector, "face of %s", f.ExternalImageID)
			for k, x := range f.Vector {
				sum[k] += float64(x)
			}
		}
		if len(ids) == 1 {
			require.Equal(t, got.Faces[ids[0]].Vector, got.UserVec[u], "user %s has its one face's vector", u)
			continue
		}
		averaged++
		var n float64
		for _, x := range sum {
			n += x * x
		}
		for k := range sum {
			require.InDelta(t, sum[k]/math.Sqrt(n), got.UserVec[u][k], 1e-6, "user %s", u)
		}
	}
	require.Equal(t, 1200-1, averaged, "users 1 to 1199 have a face in the first batch and one in the last")
	impCheckRebuild(t, dir, e, "c")
}

func TestImportInvariants(t *testing.T) {
	dir := t.TempDir()
	e := impOpen(t, dir)
	impCreate(t, e, "c", 0)
	r := rand.New(rand.NewPCG(2, 2))
	recs := impDataset(r, 400, 10, 32)
	impAll(t, e, "c", &ImportOptions{BatchRecords: 33}, recs)
	s := impSnapshot(t, e, "c")
	require.Equal(t, 32, s.Dim, "the first face fixes the dimension")
	require.Len(t, s.Faces, 400)
	for u, ids := range s.Members {
		if len(ids) == 0 {
			continue
		}
		// The user vector is the normalized mean of the normalized faces.
		want := make([]float64, s.Dim)
		for _, id := range ids {
			for k, x := range s.Faces[id].Vector {
				want[k] += float64(x)
			}
		}
		var n float64
		for _, x := range want {
			n += x * x
		}
		for k := range want {
			require.InDelta(t, want[k]/math.Sqrt(n), s.UserVec[u][k], 1e-6, "user %s", u)
		}
	}
	for id, f := range s.Faces {
		require.InDelta(t, 1, math.Sqrt(vector.SumSquares(f.Vector)), 1e-6, "face %s is stored normalized", id)
	}
	// Vectors were normalized as IndexFaces would.
	nv, err := normalize(recs[0].Vector, "x")
	require.NoError(t, err)
	exp := impExport(t, e, "c")
	found := false
	for _, rec := range exp {
		if rec.ExternalImageId == recs[0].ExternalImageId {
			require.Equal(t, nv, rec.Vector)
			found = true
		}
	}
	require.True(t, found)
	impCheckRebuild(t, dir, e, "c")
}

func TestImportPublishesEachCommittedBatch(t *testing.T) {
	e := impOpen(t, t.TempDir())
	impCreate(t, e, "p", 0)
	ctx := context.Background()
	im, err := e.NewImporter(ctx, "p", &ImportOptions{BatchRecords: 10})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 3))
	vecs := make([][]float32, 25)
	for i := range vecs {
		vecs[i] = impVec(r, 8)
		require.NoError(t, im.Add(ImportRecord{Vector: vecs[i], UserId: "u"}))
	}
	// Two batches committed, the second perhaps still being written; once
	// it is, searches see 20 faces, five records pending.
	require.Eventually(t, func() bool { return im.Stats().Committing == 0 }, time.Minute, time.Millisecond)
	st := im.Stats()
	assert.Equal(t, ImportStats{Records: 20, Faces: 20, UsersCreated: 1, Batches: 2, Pending: 5}, st)
	d, err := e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: "p"})
	require.NoError(t, err)
	assert.EqualValues(t, 20, d.FaceCount)
	out, err := e.SearchUsersByImage(ctx, &SearchUsersByImageInput{CollectionId: "p", Vector: vecs[0], UserMatchThreshold: ptrTo[float32](0)})
	require.NoError(t, err)
	require.Len(t, out.UserMatches, 1)
	assert.Equal(t, UserStatusActive, out.UserMatches[0].User.UserStatus)
	require.NoError(t, im.Close())
	d, err = e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: "p"})
	require.NoError(t, err)
	assert.EqualValues(t, 25, d.FaceCount)
	assert.ErrorIs(t, im.Close(), ErrImporterClosed)
	assert.ErrorIs(t, im.Add(ImportRecord{Vector: vecs[0]}), ErrImporterClosed)
}

// TestImportUserCreatedMeanwhile: a user the batch would create, created
// by another caller before the commit, gets the batch's faces and is not
// counted as the import's, and one the batch gives several faces, with
// faces of its own already, averages them all.
func TestImportUserCreatedMeanwhile(t *testing.T) {
	dir := t.TempDir()
	e := impOpen(t, dir)
	impCreate(t, e, "m", 8)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 5))
	old, err := e.IndexFaces(ctx, &IndexFacesInput{CollectionId: "m", Faces: []FaceEmbedding{{Vector: impVec(r, 8)}}})
	require.NoError(t, err)
	_, err = e.CreateUser(ctx, &CreateUserInput{CollectionId: "m", UserId: "kept"})
	require.NoError(t, err)
	_, err = e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: "m", UserId: "kept", FaceIds: []string{old.FaceRecords[0].Face.FaceId}})
	require.NoError(t, err)

	im, err := e.NewImporter(ctx, "m", nil)
	require.NoError(t, err)
	for _, u := range []string{"late", "kept", "new", "kept", "late"} {
		require.NoError(t, im.Add(ImportRecord{Vector: impVec(r, 8), UserId: u}))
	}
	_, err = e.CreateUser(ctx, &CreateUserInput{CollectionId: "m", UserId: "late"})
	require.NoError(t, err)
	require.NoError(t, im.Close())
	st := im.Stats()
	assert.Equal(t, 1, st.UsersCreated, "only new is the import's")
	assert.Equal(t, 5, st.Faces)

	for u, n := range map[string]int{"late": 2, "kept": 3, "new": 1} {
		faces, err := e.ListFaces(ctx, &ListFacesInput{CollectionId: "m", UserId: u})
		require.NoError(t, err)
		assert.Len(t, faces.Faces, n, u)
	}
	impCheckRebuild(t, dir, e, "m")
}

func ptrTo[T any](v T) *T { return &v }

func TestImportBadRecord(t *testing.T) {
	const dim, batch, bad, total = 4, 10, 23, 35
	existing := "00000000-0000-4000-8000-000000000001"
	tests := []struct {
		name  string
		rec   ImportRecord
		code  error
		setup func(t *testing.T, e *Engine) // before the import
	}{
		{name: "NaN", rec: ImportRecord{Vector: []float32{1, float32(math.NaN()), 0, 0}}, code: ErrInvalidParameter},
		{name: "infinity", rec: ImportRecord{Vector: []float32{1, float32(math.Inf(1)), 0, 0}}, code: ErrInvalidParameter},
		{name: "zero vector", rec: ImportRecord{Vector: make([]float32, dim)}, code: ErrInvalidParameter},
		{name: "wrong dimension", rec: ImportRecord{Vector: []float32{1, 2, 3}}, code: ErrInvalidParameter},
		{name: "empty vector", rec: ImportRecord{Vector: []float32{}}, code: ErrInvalidParameter},
		{name: "uppercase face id", rec: ImportRecord{Vector: []float32{1, 0, 0, 0}, FaceId: "0000000A-0000-4000-8000-000000000001"}, code: ErrInvalidParameter},
		{name: "bad image id", rec: ImportRecord{Vector: []float32{1, 0, 0, 0}, ImageId: "image-1"}, code: ErrInvalidParameter},
		{name: "bad user id", rec: ImportRecord{Vector: []float32{1, 0, 0, 0}, UserId: "a b"}, code: ErrInvalidParameter},
		{name: "bad external image id", rec: ImportRecord{Vector: []float32{1, 0, 0, 0}, ExternalImageId: "a/b"}, code: ErrInvalidParameter},
		{name: "nothing", rec: ImportRecord{}, code: ErrInvalidParameter},
		{name: "user alone with a face id", rec: ImportRecord{UserId: "u", FaceId: existing}, code: ErrInvalidParameter},
		{name: "face id of the collection", rec: ImportRecord{Vector: []float32{1, 0, 0, 0}, FaceId: existing}, code: ErrResourceAlreadyExists,
			setup: func(t *testing.T, e *Engine) {
				impAll(t, e, "c", nil, []ImportRecord{{Vector: []float32{0, 1, 0, 0}, FaceId: existing}})
			}},
		{name: "face id twice in the import", rec: ImportRecord{Vector: []float32{1, 0, 0, 0}, FaceId: "00000000-0000-4000-8000-000000000005"}, code: ErrResourceAlreadyExists},
		{name: "user past 100 faces", rec: ImportRecord{Vector: []float32{1, 0, 0, 0}, UserId: "full"}, code: ErrServiceQuotaExceeded,
			setup: func(t *testing.T, e *Engine) {
				recs := make([]ImportRecord, maxFacesPerUser)
				for i := range recs {
					recs[i] = ImportRecord{Vector: []float32{1, float32(i), 0, 0}, UserId: "full"}
				}
				impAll(t, e, "c", nil, recs)
			}},
	}
	for _, tc := range tests {
		for _, stop := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stop=%v", tc.name, stop), func(t *testing.T) {
				dir := t.TempDir()
				e := impOpen(t, dir)
				impCreate(t, e, "c", 0)
				if tc.setup != nil {
					tc.setup(t, e)
				}
				before := impSnapshot(t, e, "c")
				im, err := e.NewImporter(context.Background(), "c", &ImportOptions{BatchRecords: batch})
				require.NoError(t, err)
				r := rand.New(rand.NewPCG(4, 4))
				var want []ImportRecord // what the collection must gain
				for i := range total {
					rec := ImportRecord{Vector: impVec(r, dim), ExternalImageId: fmt.Sprintf("r%d", i), UserId: fmt.Sprintf("u%d", i%4)}
					if i == 5 {
						rec.FaceId = "00000000-0000-4000-8000-000000000005"
					}
					if i == bad {
						rec = tc.rec
					}
					err := im.Add(rec)
					if i != bad {
						require.NoError(t, err, "record %d", i)
						if i < bad-bad%batch || i > bad {
							want = append(want, rec)
						}
						continue
					}
					var ie *ImportError
					require.ErrorAs(t, err, &ie)
					assert.Equal(t, bad, ie.Record)
					assert.Equal(t, bad%batch+1, ie.Discarded, "the bad record and those of its batch before it")
					require.ErrorIs(t, err, tc.code)
					if stop {
						break
					}
				}
				require.NoError(t, im.Close())
				st := im.Stats()
				assert.Equal(t, len(want), st.Records)
				assert.Equal(t, bad%batch+1, st.Discarded)

				after := impSnapshot(t, e, "c")
				var gained []string
				for id, f := range after.Faces {
					if _, ok := before.Faces[id]; !ok {
						gained = append(gained, f.ExternalImageID)
					}
				}
				var wantIDs []string
				for _, w := range want {
					wantIDs = append(wantIDs, w.ExternalImageId)
				}
				assert.ElementsMatch(t, wantIDs, gained, "exactly the batches other than the failed one")
				impCheckRebuild(t, dir, e, "c")
			})
		}
	}
}

func TestImportDimension(t *testing.T) {
	ctx := context.Background()
	t.Run("fixed by the collection", func(t *testing.T) {
		e := impOpen(t, t.TempDir())
		impCreate(t, e, "c", 3)
		im, err := e.NewImporter(ctx, "c", nil)
		require.NoError(t, err)
		require.ErrorIs(t, im.Add(ImportRecord{Vector: []float32{1, 2}}), ErrInvalidParameter)
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 2, 3}}))
		require.NoError(t, im.Close())
	})
	t.Run("a discarded batch fixes nothing", func(t *testing.T) {
		e := impOpen(t, t.TempDir())
		impCreate(t, e, "c", 0)
		im, err := e.NewImporter(ctx, "c", nil)
		require.NoError(t, err)
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 2}}))
		require.Error(t, im.Add(ImportRecord{Vector: []float32{1, 2, 3}}))
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 2, 3}}), "the failed batch fixed no dimension")
		require.NoError(t, im.Close())
		d, err := e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: "c"})
		require.NoError(t, err)
		assert.Equal(t, 3, d.Dimension)
	})
	t.Run("fixed by another writer meanwhile", func(t *testing.T) {
		e := impOpen(t, t.TempDir())
		impCreate(t, e, "c", 0)
		im, err := e.NewImporter(ctx, "c", nil)
		require.NoError(t, err)
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 2}}))
		_, err = e.IndexFaces(ctx, &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{{Vector: []float32{1, 2, 3}}}})
		require.NoError(t, err)
		err = im.Flush()
		var ie *ImportError
		require.ErrorAs(t, err, &ie)
		assert.Equal(t, 0, ie.Record)
		require.ErrorIs(t, err, ErrInvalidParameter)
		require.NoError(t, im.Close())
		d, err := e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: "c"})
		require.NoError(t, err)
		assert.EqualValues(t, 1, d.FaceCount)
	})
}

func TestImportDryRun(t *testing.T) {
	dir := t.TempDir()
	e := impOpen(t, dir)
	impCreate(t, e, "c", 0)
	ctx := context.Background()
	im, err := e.NewImporter(ctx, "c", &ImportOptions{DryRun: true, BatchRecords: 7})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(5, 5))
	for range maxFacesPerUser {
		require.NoError(t, im.Add(ImportRecord{Vector: impVec(r, 5), UserId: "u"}))
	}
	// Checks see the records before, committed or not.
	require.ErrorIs(t, im.Add(ImportRecord{Vector: impVec(r, 5), UserId: "u"}), ErrServiceQuotaExceeded)
	require.ErrorIs(t, im.Add(ImportRecord{Vector: impVec(r, 6)}), ErrInvalidParameter)
	require.NoError(t, im.Close())
	st := im.Stats()
	assert.Equal(t, 98, st.Faces, "the batch of the 101st face was discarded")
	assert.Equal(t, 1, st.UsersCreated)
	s := impSnapshot(t, e, "c")
	assert.Empty(t, s.Faces, "a dry run writes nothing")
	assert.Empty(t, s.Users)
	assert.Zero(t, s.Dim)
}

func TestNormalizationIsBitStable(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for _, dim := range []int{1, 2, 3, 4, 8, 31, 512} {
		for range 2000 {
			once, err := normalize(impVec(r, dim), "v")
			require.NoError(t, err)
			again, err := normalize(once, "v")
			require.NoError(t, err)
			require.Equal(t, once, again, "a stored vector normalizes (and so imports) bit for bit")
		}
	}
}

func TestImportAlongsideOtherWriters(t *testing.T) {
	dir := t.TempDir()
	e := impOpen(t, dir)
	impCreate(t, e, "c", 8)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	stopped := false
	defer func() { // a failed require must not leave writers running
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()
	for w := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(7, uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := e.IndexFaces(ctx, &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{{Vector: impVec(r, 8)}, {Vector: impVec(r, 8)}}})
				if !assert.NoError(t, err) {
					return
				}
				// Users the import also adds faces to: their counts race
				// with the import's and the quota must hold for both.
				uid := fmt.Sprintf("u%d", r.IntN(5))
				if _, err := e.CreateUser(ctx, &CreateUserInput{CollectionId: "c", UserId: uid}); err != nil && !errors.Is(err, ErrConflict) {
					assert.NoError(t, err)
				}
				ids := []string{out.FaceRecords[0].Face.FaceId, out.FaceRecords[1].Face.FaceId}
				_, err = e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: "c", UserId: uid, FaceIds: ids, UserMatchThreshold: ptrTo[float32](0)})
				if err != nil && !errors.Is(err, ErrServiceQuotaExceeded) && !errors.Is(err, ErrResourceNotFound) {
					assert.NoError(t, err)
				}
				_, err = e.SearchUsersByImage(ctx, &SearchUsersByImageInput{CollectionId: "c", Vector: impVec(r, 8)})
				assert.NoError(t, err)
			}
		})
	}
	im, err := e.NewImporter(ctx, "c", &ImportOptions{BatchRecords: 16})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(8, 8))
	quotaOnly := func(err error) {
		t.Helper()
		if err != nil {
			// Other writers may fill a user between a record's check and
			// its batch's commit: that fails the batch, nothing else does.
			var ie *ImportError
			require.ErrorAs(t, err, &ie)
			require.ErrorIs(t, err, ErrServiceQuotaExceeded)
		}
	}
	for i := range 2000 {
		quotaOnly(im.Add(ImportRecord{Vector: impVec(r, 8), UserId: fmt.Sprintf("u%d", i%7)}))
	}
	quotaOnly(im.Close())
	close(stop)
	stopped = true
	wg.Wait()
	impCheckRebuild(t, dir, e, "c")
}

func TestImportEndsWithTheEngine(t *testing.T) {
	ctx := context.Background()
	t.Run("context cancelled", func(t *testing.T) {
		dir := t.TempDir()
		e := impOpen(t, dir)
		impCreate(t, e, "c", 0)
		cctx, cancel := context.WithCancel(ctx)
		im, err := e.NewImporter(cctx, "c", &ImportOptions{BatchRecords: 2})
		require.NoError(t, err)
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 0}}))
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{0, 1}}))
		cancel()
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 1}}))
		require.ErrorIs(t, im.Add(ImportRecord{Vector: []float32{1, 2}}), context.Canceled)
		require.ErrorIs(t, im.Add(ImportRecord{Vector: []float32{1, 3}}), context.Canceled, "the end is sticky")
		require.NoError(t, im.Close(), "the committed batch is synced")
		s := impSnapshot(t, e, "c")
		assert.Len(t, s.Faces, 2)
		impCheckRebuild(t, dir, e, "c")
	})
	t.Run("collection deleted", func(t *testing.T) {
		e := impOpen(t, t.TempDir())
		impCreate(t, e, "c", 0)
		im, err := e.NewImporter(ctx, "c", nil)
		require.NoError(t, err)
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 0}}))
		_, err = e.DeleteCollection(ctx, &DeleteCollectionInput{CollectionId: "c"})
		require.NoError(t, err)
		impCreate(t, e, "c", 0)
		require.ErrorIs(t, im.Flush(), ErrResourceNotFound)
		require.NoError(t, im.Close())
		assert.Empty(t, impSnapshot(t, e, "c").Faces)
	})
	t.Run("engine closed", func(t *testing.T) {
		e := impOpen(t, t.TempDir())
		impCreate(t, e, "c", 0)
		im, err := e.NewImporter(ctx, "c", nil)
		require.NoError(t, err)
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 0}}))
		require.NoError(t, e.Close())
		require.ErrorIs(t, im.Close(), ErrClosed)
	})
	t.Run("read-only engine", func(t *testing.T) {
		dir := t.TempDir()
		e := impOpen(t, dir)
		impCreate(t, e, "c", 0)
		require.NoError(t, e.Close())
		ro, err := Open(dir, &Options{ReadOnly: true})
		require.NoError(t, err)
		defer ro.Close()
		_, err = ro.NewImporter(ctx, "c", nil)
		require.ErrorIs(t, err, ErrInvalidParameter)
		im, err := ro.NewImporter(ctx, "c", &ImportOptions{DryRun: true})
		require.NoError(t, err, "a dry run reads only")
		require.NoError(t, im.Add(ImportRecord{Vector: []float32{1, 0}}))
		require.NoError(t, im.Close())
	})
	t.Run("options", func(t *testing.T) {
		e := impOpen(t, t.TempDir())
		impCreate(t, e, "c", 0)
		_, err := e.NewImporter(ctx, "c", &ImportOptions{BatchRecords: -1, BatchBytes: -1, ExpectedFaces: -1, ExpectedUsers: math.MaxInt32 + 1})
		require.ErrorContains(t, err, "BatchRecords")
		require.ErrorContains(t, err, "BatchBytes")
		require.ErrorContains(t, err, "ExpectedFaces -1 is negative")
		require.ErrorContains(t, err, "ExpectedUsers 2147483648 is more than 2147483647")
		_, err = e.NewImporter(ctx, "c", &ImportOptions{ExpectedFaces: math.MaxInt32, ExpectedUsers: math.MaxInt32, DryRun: true})
		require.NoError(t, err, "the largest hints are valid")
		_, err = e.NewImporter(ctx, "nope", nil)
		require.ErrorIs(t, err, ErrResourceNotFound)
		_, err = e.NewImporter(ctx, "no/pe", nil)
		require.ErrorIs(t, err, ErrInvalidParameter)
	})
}

func TestImportBatchBytes(t *testing.T) {
	e := impOpen(t, t.TempDir())
	impCreate(t, e, "c", 0)
	im, err := e.NewImporter(context.Background(), "c", &ImportOptions{BatchBytes: 64 << 10})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(9, 9))
	for range 100 {
		require.NoError(t, im.Add(ImportRecord{Vector: impVec(r, 1024)})) // about 4 KiB each
	}
	require.NoError(t, im.Close())
	st := im.Stats()
	assert.Equal(t, 100, st.Faces)
	assert.GreaterOrEqual(t, st.Batches, 6, "batches end at BatchBytes")
}

func BenchmarkImport(b *testing.B) {
	const dim = 512
	r := rand.New(rand.NewPCG(10, 10))
	vecs := make([][]float32, 4096)
	for i := range vecs {
		vecs[i] = impVec(r, dim)
	}
	e := impOpen(b, b.TempDir())
	impCreate(b, e, "c", dim)
	im, err := e.NewImporter(context.Background(), "c", nil)
	require.NoError(b, err)
	b.SetBytes(4 * dim)
	i := 0
	for b.Loop() {
		if err := im.Add(ImportRecord{Vector: vecs[i%len(vecs)]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	require.NoError(b, im.Close())
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "faces/s")
}

// TestImportReservesKeysOnce: the matrices' key room is reserved at one
// commit only. Here the hints say one face a user, but each user gets a
// second face a batch later, which empties soloIdx and gives its room back;
// the commits after do not take it again.
func TestImportReservesKeysOnce(t *testing.T) {
	e := impOpen(t, t.TempDir())
	impCreate(t, e, "c", 4)
	r := rand.New(rand.NewPCG(41, 42))
	impAll(t, e, "c", &ImportOptions{BatchRecords: 2, ExpectedFaces: 10_000, ExpectedUsers: 10_000}, []ImportRecord{
		{UserId: "a", Vector: impVec(r, 4)}, {UserId: "b", Vector: impVec(r, 4)}, // soloIdx: 2 rows
		{UserId: "a", Vector: impVec(r, 4)}, {UserId: "b", Vector: impVec(r, 4)}, // soloIdx: none
		{UserId: "c", Vector: impVec(r, 4)}, // soloIdx: 1 row
	})
	c, release, err := e.acquire("c")
	require.NoError(t, err)
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	require.Equal(t, 1, c.soloIdx.Len())
	keyRoom := reflect.ValueOf(c.soloIdx).Elem().FieldByName("keys").Cap()
	assert.Less(t, keyRoom, 10_000, "soloIdx's keys, reserved again")
}

// gatedFS holds the syncs of the tables that imports write (under the
// store's ingest directory) while its gate is shut, and fails them with
// fail once the gate opens, if fail is set.
type gatedFS struct {
	vfs.FS
	mu   sync.Mutex
	gate chan struct{}
	fail error
}

func newGatedFS() *gatedFS { return &gatedFS{FS: vfs.NewMem()} }

// openGated opens an engine on a gatedFS with collection "c" of dimension
// 4. The test's cleanup opens the gate before closing the engine, so that a
// failing test does not hang in Close.
func openGated(t *testing.T) (*Engine, *gatedFS) {
	fs := newGatedFS()
	e, err := openOnFS(fs, "/db")
	require.NoError(t, err)
	t.Cleanup(func() { fs.open(); e.Close() })
	impCreate(t, e, "c", 4)
	return e, fs
}

// shut holds the syncs to come until open; they fail with fail, if not nil.
func (g *gatedFS) shut(fail error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.fail = make(chan struct{}), fail
}

// open lets the syncs held, if any, go on.
func (g *gatedFS) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := g.FS.Create(name, category)
	if err != nil || !strings.Contains(name, "/ingest/") {
		return f, err
	}
	return &gatedFile{File: f, fs: g}, nil
}

type gatedFile struct {
	vfs.File
	fs *gatedFS
}

func (f *gatedFile) Sync() error {
	f.fs.mu.Lock()
	gate, fail := f.fs.gate, f.fs.fail
	f.fs.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		return fail
	}
	return f.File.Sync()
}

// TestImportChecksAgainstTheBatchCommitting: while a batch is being
// written, the next one fills, and its records are checked against the
// faces and users of the batch being written as if it were in the
// collection already: a face ID of that batch, and a user's 101st face
// counting that batch's faces, fail their record as they do once the batch
// is published.
func TestImportChecksAgainstTheBatchCommitting(t *testing.T) {
	ctx := context.Background()
	const taken = "00000000-0000-4000-8000-0000000000aa"
	e, fs := openGated(t)
	r := rand.New(rand.NewPCG(12, 12))
	before := make([]ImportRecord, maxFacesPerUser-5)
	for i := range before {
		before[i] = ImportRecord{Vector: impVec(r, 4), UserId: "full"}
	}
	impAll(t, e, "c", nil, before)

	im, err := e.NewImporter(ctx, "c", &ImportOptions{BatchRecords: 10})
	require.NoError(t, err)
	fs.shut(nil)
	for i := range 10 {
		rec := ImportRecord{Vector: impVec(r, 4), UserId: "full"}
		if i >= 5 {
			rec.UserId = fmt.Sprint("u", i)
		}
		if i == 9 {
			rec.FaceId = taken
		}
		require.NoError(t, im.Add(rec), "record %d", i)
	}
	assert.Equal(t, ImportStats{Batches: 0, Committing: 10}, im.Stats(), "the batch is being written")
	d, err := e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	require.EqualValues(t, len(before), d.FaceCount, "and not yet published")

	// The same bad records, while the batch is being written and after.
	for _, phase := range []string{"committing", "published"} {
		require.NoError(t, im.Add(ImportRecord{Vector: impVec(r, 4), UserId: "other"}))
		var ie *ImportError
		err := im.Add(ImportRecord{Vector: impVec(r, 4), FaceId: taken})
		require.ErrorAs(t, err, &ie, phase)
		require.ErrorIs(t, err, ErrResourceAlreadyExists, phase)
		assert.Equal(t, 2, ie.Discarded, phase)
		err = im.Add(ImportRecord{Vector: impVec(r, 4), UserId: "full"})
		require.ErrorAs(t, err, &ie, phase)
		require.ErrorIs(t, err, ErrServiceQuotaExceeded, phase)
		assert.Equal(t, 1, ie.Discarded, phase)
		if phase == "committing" {
			assert.Equal(t, 10, im.Stats().Committing, "the batch is still being written")
			fs.open()
			require.NoError(t, im.Flush())
			assert.Equal(t, ImportStats{Records: 10, Faces: 10, UsersCreated: 5, Batches: 1, Discarded: 3}, im.Stats())
		}
	}
	require.NoError(t, im.Close())
	faces, err := e.ListFaces(ctx, &ListFacesInput{CollectionId: "c", UserId: "full", MaxResults: ptrTo[int32](4096)})
	require.NoError(t, err)
	assert.Len(t, faces.Faces, maxFacesPerUser)
	requireConsistent(t, e)
}

// TestImportBatchFailsWhileNextFills: a batch whose tables cannot be
// written ends the import, reported at the next call, whether or not
// the next batch is full: the batches before stay, that batch and the
// one filling are discarded, and the collection is as it was before that
// batch.
func TestImportBatchFailsWhileNextFills(t *testing.T) {
	ctx := context.Background()
	diskFull := errors.New("no space left on device")
	for _, next := range []string{"Add", "Flush", "Close", "Stats, then Close"} {
		t.Run(next, func(t *testing.T) {
			e, fs := openGated(t)
			r := rand.New(rand.NewPCG(13, 13))
			im, err := e.NewImporter(ctx, "c", &ImportOptions{BatchRecords: 10})
			require.NoError(t, err)
			for i := range 10 {
				require.NoError(t, im.Add(ImportRecord{Vector: impVec(r, 4), UserId: fmt.Sprint("a", i)}))
			}
			require.NoError(t, im.Flush(), "the first batch is in")
			fs.shut(diskFull)
			for i := range 13 {
				require.NoError(t, im.Add(ImportRecord{Vector: impVec(r, 4), UserId: fmt.Sprint("b", i)}))
			}
			fs.open()
			switch next {
			case "Add":
				// The failure is found at the next Add that looks: at once
				// if the commit has ended, else when this batch is full.
				var err error
				for i := 0; err == nil && i < 10; i++ {
					err = im.Add(ImportRecord{Vector: impVec(r, 4)})
				}
				require.ErrorIs(t, err, diskFull)
				require.ErrorIs(t, err, ErrInternal)
				require.ErrorIs(t, im.Add(ImportRecord{Vector: impVec(r, 4)}), diskFull, "the end is sticky")
				require.NoError(t, im.Close())
			case "Flush":
				require.ErrorIs(t, im.Flush(), diskFull)
				require.ErrorIs(t, im.Add(ImportRecord{Vector: impVec(r, 4)}), diskFull, "the end is sticky")
				require.NoError(t, im.Close())
			case "Close":
				require.ErrorIs(t, im.Close(), diskFull)
			case "Stats, then Close":
				// Stats sees the commit end but cannot report its failure:
				// Close must.
				require.Eventually(t, im.flight.ended, time.Minute, time.Millisecond)
				assert.Equal(t, 10, im.Stats().Committing)
				require.ErrorIs(t, im.Close(), diskFull)
			}
			st := im.Stats()
			assert.Equal(t, 10, st.Records)
			assert.Zero(t, st.Committing+st.Pending)
			assert.Equal(t, im.n, st.Records+st.Discarded, "every record counted once")

			d, err := e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: "c"})
			require.NoError(t, err)
			assert.EqualValues(t, 10, d.FaceCount)
			assert.EqualValues(t, 10, d.UserCount)
			requireConsistent(t, e)
			_, err = e.IndexFaces(ctx, &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{{Vector: impVec(r, 4)}}})
			require.NoError(t, err, "the collection takes writes again")
		})
	}
}
