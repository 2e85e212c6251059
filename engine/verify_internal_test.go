package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/index"
)

// TestVerifyInMemory: collection.verify notices each way the in-memory
// state can disagree with itself, and requireConsistent each way it can
// disagree with the store.
func TestVerifyInMemory(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(c *collection, faces []string)
		want    string
	}{
		{"user vector not the mean", func(c *collection, faces []string) {
			c.userIdx.Upsert(c.users["u"].pk, []float32{1, 0, 0})
		}, `user "u"'s vector is not the normalized mean of its 2 faces`},
		{"user vector missing", func(c *collection, faces []string) {
			c.userIdx.Delete(c.users["u"].pk)
		}, `user "u" has 2 faces but no user vector`},
		{"user vector of a user without faces", func(c *collection, faces []string) {
			c.userIdx.Upsert(c.users["empty"].pk, []float32{1, 0, 0})
		}, `user "empty" has 0 faces but a user vector`},
		{"user vector of a user of one face", func(c *collection, faces []string) {
			c.userIdx.Upsert(c.users["solo"].pk, []float32{0, 1, 0})
		}, `user "solo" has 1 faces but a user vector`},
		{"only face of its user in the face matrix", func(c *collection, faces []string) {
			moveRow(c.soloIdx, c.faceIdx, c.faces[faces[3]].seq)
		}, "its user's only face: true, has its vector in the other matrix"},
		{"face of a user of several in the solo matrix", func(c *collection, faces []string) {
			moveRow(c.faceIdx, c.soloIdx, c.faces[faces[0]].seq)
		}, "its user's only face: false, has its vector in the other matrix"},
		{"face vector in both matrices", func(c *collection, faces []string) {
			seq := c.faces[faces[3]].seq
			v, _ := c.soloIdx.Vector(seq)
			c.faceIdx.Upsert(seq, v)
		}, "has two vectors"},
		{"face left out of its user's list", func(c *collection, faces []string) {
			c.users["u"].faces = c.users["u"].faces[:1]
		}, "whose face list leaves it out"},
		{"user lists a face it does not own", func(c *collection, faces []string) {
			c.users["empty"].faces = []string{faces[2]}
		}, `user "empty" lists face`},
		{"face vector missing", func(c *collection, faces []string) {
			c.faceIdx.Delete(c.faces[faces[2]].seq)
		}, "has no vector"},
		{"stray face vector", func(c *collection, faces []string) {
			c.faceIdx.Upsert(999, []float32{0, 1, 0})
		}, "face vector 999 belongs to no face"},
		{"face sequence counter behind", func(c *collection, faces []string) {
			c.faceSeq.Store(1)
		}, "face sequence counter 1 is below sequence 4 in use"},
		{"face of a missing user", func(c *collection, faces []string) {
			c.faces[faces[2]].userID = "ghost"
		}, `belongs to user "ghost", which does not exist`},
		{"primary key past the counter", func(c *collection, faces []string) {
			c.meta.LastUserPK = 1
		}, `user "empty" is filed inconsistently (primary key 2, last handed out 1)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e, err := Open(t.TempDir(), nil)
			require.NoError(t, err)
			defer e.Close()
			_, err = e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "c"})
			require.NoError(t, err)
			faces := indexed(t, e, "c", []float32{1, 0, 0}, []float32{1, 1, 0}, []float32{0, 0, 1}, []float32{0, 1, 0})
			for _, u := range []string{"u", "empty", "solo"} {
				_, err = e.CreateUser(ctx, &CreateUserInput{CollectionId: "c", UserId: u})
				require.NoError(t, err)
			}
			_, err = e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: faces[:2]})
			require.NoError(t, err)
			_, err = e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: "c", UserId: "solo", FaceIds: faces[3:]})
			require.NoError(t, err)
			requireConsistent(t, e)

			c := e.colls["c"]
			tc.corrupt(c, faces)
			var problems []string
			c.verify(func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }, true)
			require.Contains(t, strings.Join(problems, "\n"), tc.want)
			require.NotEmpty(t, inconsistencies(e))
		})
	}
}

// moveRow moves key's row from one matrix to another.
func moveRow(from, to *index.Matrix, key uint64) {
	v, _ := from.Vector(key)
	to.Upsert(key, v)
	from.Delete(key)
}
