package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRowsFollowFaceCount: every change of a user's faces, by any
// operation, leaves each vector where its face count puts it (see
// soloIdx): the only face of a user in soloIdx and no row of the user's
// own, the faces of a user of several in faceIdx with the user's mean in
// userIdx, faces of no user in faceIdx. The deep check (requireConsistent)
// holds after every step, of the live collection and of one reloaded.
func TestRowsFollowFaceCount(t *testing.T) {
	for _, tier := range []string{"float32", "int8", "float16"} {
		t.Run(tier, func(t *testing.T) { testRowsFollowFaceCount(t, tier) })
	}
}

func testRowsFollowFaceCount(t *testing.T, tier string) {
	ctx := context.Background()
	e, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer e.Close()
	_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "c", Tier: tier})
	require.NoError(t, err)
	f := indexed(t, e, "c", []float32{1, 0, 0}, []float32{0, 1, 0}, []float32{0, 0, 1}, []float32{1, 1, 0})
	assoc := func(user string, ids ...string) func() error {
		return func() error {
			_, err := e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: "c", UserId: user, FaceIds: ids, UserMatchThreshold: new(float32)})
			return err
		}
	}
	disassoc := func(user string, ids ...string) func() error {
		return func() error {
			_, err := e.DisassociateFaces(ctx, &DisassociateFacesInput{CollectionId: "c", UserId: user, FaceIds: ids})
			return err
		}
	}
	create := func(user string) func() error {
		return func() error {
			_, err := e.CreateUser(ctx, &CreateUserInput{CollectionId: "c", UserId: user})
			return err
		}
	}
	deleteUser := func(user string) func() error {
		return func() error {
			_, err := e.DeleteUser(ctx, &DeleteUserInput{CollectionId: "c", UserId: user})
			return err
		}
	}
	// importing runs its records through batches of batchRecords.
	importing := func(batchRecords int, recs ...ImportRecord) func() error {
		return func() error {
			im, err := e.NewImporter(ctx, "c", &ImportOptions{BatchRecords: batchRecords})
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := im.Add(r); err != nil {
					im.Close()
					return err
				}
			}
			return im.Close()
		}
	}
	vec := func(x, y, z float32) []float32 { return []float32{x, y, z} }

	steps := []struct {
		name                  string
		do                    func() error
		faceRows, solo, users int // rows of faceIdx, soloIdx, userIdx after it
	}{
		{"faces of no user", func() error { return nil }, 4, 0, 0},
		{"user created", create("u"), 4, 0, 0},
		{"a first face", assoc("u", f[0]), 3, 1, 0},
		{"a second face", assoc("u", f[1]), 4, 0, 1},
		{"back to one face", disassoc("u", f[0]), 3, 1, 0},
		{"back to none", disassoc("u", f[1]), 4, 0, 0},
		{"two faces at once", assoc("u", f[0], f[1]), 4, 0, 1},
		{"a third face", assoc("u", f[2]), 4, 0, 1},
		{"two of three removed at once", disassoc("u", f[0], f[2]), 3, 1, 0},
		{"user of one face deleted", deleteUser("u"), 4, 0, 0},
		{"user of several deleted", func() error {
			if err := create("v")(); err != nil {
				return err
			}
			if err := assoc("v", f[0], f[3])(); err != nil {
				return err
			}
			return deleteUser("v")()
		}, 4, 0, 0},
		{"import: a new user's only face", importing(0, ImportRecord{UserId: "w", Vector: vec(0, 1, 1)}), 4, 1, 0},
		{"import: its second face, a batch later", importing(0, ImportRecord{UserId: "w", Vector: vec(1, 0, 1)}), 6, 0, 1},
		{"import: a user of two faces in one batch", importing(0,
			ImportRecord{UserId: "x", Vector: vec(1, 1, 1)}, ImportRecord{UserId: "x", Vector: vec(1, 2, 3)}), 8, 0, 2},
		{"import: a face of a user of none so far", func() error {
			if err := create("y")(); err != nil {
				return err
			}
			return importing(0, ImportRecord{UserId: "y", Vector: vec(3, 2, 1)})()
		}, 8, 1, 2},
		{"import: one batch of each kind", importing(1,
			ImportRecord{UserId: "z", Vector: vec(2, 1, 1)}, ImportRecord{UserId: "z", Vector: vec(1, 2, 1)},
			ImportRecord{UserId: "y", Vector: vec(1, 1, 2)}), 12, 0, 4},
		{"faces of no user deleted", func() error {
			_, err := e.DeleteFaces(ctx, &DeleteFacesInput{CollectionId: "c", FaceIds: f[:3]})
			return err
		}, 9, 0, 4},
		{"a face of a user of several deleted: refused", func() error {
			out, err := e.DeleteFaces(ctx, &DeleteFacesInput{CollectionId: "c", FaceIds: e.colls["c"].users["x"].faces[:1]})
			if err == nil && len(out.DeletedFaces) > 0 {
				return fmt.Errorf("deleted %v", out.DeletedFaces)
			}
			return err
		}, 9, 0, 4},
	}
	for _, s := range steps {
		require.NoError(t, s.do(), s.name)
		c := e.colls["c"]
		c.mu.RLock()
		got := [3]int{c.faceIdx.Len(), c.soloIdx.Len(), c.userIdx.Len()}
		c.mu.RUnlock()
		require.Equal(t, [3]int{s.faceRows, s.solo, s.users}, got, "%s: rows of faceIdx, soloIdx, userIdx", s.name)
		requireConsistent(t, e)
	}
}

// TestReopenSplitsRoom: Open reserves room for every face in faceIdx and
// hands soloIdx its share (index.Matrix.GiveRoom), whole blocks of 2,048
// rows at 512 dimensions here; in every tier the reopened collection is
// the one imported, row for row, and answers searches as it did.
func TestReopenSplitsRoom(t *testing.T) {
	const dim = 512
	for _, tier := range []string{"float32", "int8", "float16"} {
		t.Run(tier, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			e, err := Open(dir, nil)
			require.NoError(t, err)
			_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "c", Dimension: dim, Tier: tier})
			require.NoError(t, err)
			r := rand.New(rand.NewPCG(71, 72))
			im, err := e.NewImporter(ctx, "c", nil)
			require.NoError(t, err)
			for i := range 4000 { // users of one face: soloIdx
				require.NoError(t, im.Add(ImportRecord{UserId: fmt.Sprintf("one-%04d", i), Vector: impVec(r, dim)}))
			}
			for i := range 2000 { // users of two faces, and faces of no user: faceIdx
				require.NoError(t, im.Add(ImportRecord{UserId: fmt.Sprintf("two-%04d", i/2), Vector: impVec(r, dim)}))
			}
			for range 500 {
				require.NoError(t, im.Add(ImportRecord{Vector: impVec(r, dim)}))
			}
			require.NoError(t, im.Close())

			queries := make([][]float32, 20)
			for i := range queries {
				queries[i] = impVec(r, dim)
			}
			search := func(e *Engine) (users []*SearchUsersByImageOutput, faces []*SearchFacesByImageOutput) {
				for _, q := range queries {
					u, err := e.SearchUsersByImage(ctx, &SearchUsersByImageInput{CollectionId: "c", Vector: q, MaxUsers: ptrTo[int32](50), UserMatchThreshold: new(float32)})
					require.NoError(t, err)
					f, err := e.SearchFacesByImage(ctx, &SearchFacesByImageInput{CollectionId: "c", Vector: q, MaxFaces: ptrTo[int32](50), FaceMatchThreshold: new(float32)})
					require.NoError(t, err)
					users, faces = append(users, u), append(faces, f)
				}
				return users, faces
			}
			users, faces := search(e)
			require.NoError(t, e.Close())

			e, err = Open(dir, nil)
			require.NoError(t, err)
			defer e.Close()
			c := e.colls["c"]
			require.Equal(t, [3]int{2500, 4000, 1000}, [3]int{c.faceIdx.Len(), c.soloIdx.Len(), c.userIdx.Len()})
			// The room past faceIdx's two blocks of rows went to soloIdx; a
			// Reserve left whole would keep one spare block (Fill.Done).
			blocks := reflect.ValueOf(c.faceIdx).Elem().FieldByName("blocks").Len()
			require.Equal(t, 2, blocks, "faceIdx's blocks")
			requireConsistent(t, e)
			gotUsers, gotFaces := search(e)
			require.Equal(t, users, gotUsers)
			require.Equal(t, faces, gotFaces)
		})
	}
}
