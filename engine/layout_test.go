package engine

import (
	"context"
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
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, nil)
	require.NoError(t, err)
	defer func() { e.Close() }()
	_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	out, err := e.IndexFaces(ctx, &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{
		{Vector: []float32{1, 0, 0}}, {Vector: []float32{0, 1, 0}}, {Vector: []float32{0, 0, 1}}, {Vector: []float32{1, 1, 0}}}})
	require.NoError(t, err)
	var f []string
	for _, r := range out.FaceRecords {
		f = append(f, r.Face.FaceId)
	}
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
