package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/store"
)

// runCheck runs "facesearch check args..." and returns the exit code and
// output.
func runCheck(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	code = m.Run(context.Background(), append([]string{"check"}, args...))
	return code, out.String(), errOut.String()
}

// checkTestStore makes a store with one collection, two faces and a user
// owning one of them.
func checkTestStore(t *testing.T) (dir string, faceIDs []string) {
	t.Helper()
	dir = t.TempDir()
	ctx := context.Background()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "staff"})
	require.NoError(t, err)
	out, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "staff", Faces: []engine.FaceEmbedding{
		{Vector: []float32{1, 0, 0}}, {Vector: []float32{0, 1, 0}},
	}})
	require.NoError(t, err)
	for _, r := range out.FaceRecords {
		faceIDs = append(faceIDs, r.Face.FaceId)
	}
	_, err = e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "staff", UserId: "ann"})
	require.NoError(t, err)
	_, err = e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "staff", UserId: "ann", FaceIds: faceIDs[:1]})
	require.NoError(t, err)
	require.NoError(t, e.Close())
	return dir, faceIDs
}

func TestCheckCommand(t *testing.T) {
	t.Run("healthy store", func(t *testing.T) {
		dir, _ := checkTestStore(t)
		code, out, errOut := runCheck("--data", dir)
		require.Equal(t, exitOK, code, errOut)
		require.Contains(t, out, "1 collection, 2 faces, 1 user, 0 idempotency records")
		require.Contains(t, out, "no problems found")

		code, out, errOut = runCheck("--data", dir, "--output", "json")
		require.Equal(t, exitOK, code, errOut)
		var rep engine.CheckReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		require.Equal(t, engine.CheckReport{Dir: dir, Collections: 1, Faces: 2, Users: 1, Problems: []engine.Problem{}}, rep)
	})

	t.Run("corrupt store", func(t *testing.T) {
		dir, faceIDs := checkTestStore(t)
		// A face claims a user that does not exist, and records survive
		// a collection whose metadata is gone.
		st, err := store.Open(dir, nil)
		require.NoError(t, err)
		b := st.NewBatch()
		b.PutFace("staff", &store.Face{ID: faceIDs[1], Seq: 2, ImageID: "i", UserID: "ghost", Vector: []float32{0, 1, 0}})
		b.PutUser("gone", store.User{ID: "x", PK: 1})
		require.NoError(t, b.Commit(true))
		require.NoError(t, st.Close())

		code, out, errOut := runCheck("--data", dir)
		require.Equal(t, exitFailure, code)
		require.Contains(t, out, `problem: collection "staff": face `+faceIDs[1]+` belongs to user "ghost", which has no record`)
		require.Contains(t, out, `problem: 2 records under "c/gone/" belong to collection "gone"`)
		require.Contains(t, errOut, "2 problems found in "+dir)

		code, out, _ = runCheck("--data", dir, "--output", "json")
		require.Equal(t, exitFailure, code)
		var rep engine.CheckReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		require.Len(t, rep.Problems, 2)
		require.Equal(t, "staff", rep.Problems[1].Collection)

		// serve would refuse it the same way.
		_, err = engine.Open(dir, nil)
		require.ErrorIs(t, err, engine.ErrCorrupt)
	})

	t.Run("no store", func(t *testing.T) {
		code, _, errOut := runCheck("--data", t.TempDir()+"/nothing")
		require.Equal(t, exitFailure, code)
		require.Contains(t, errOut, "no facesearch store in")
	})

	t.Run("store in use", func(t *testing.T) {
		dir, _ := checkTestStore(t)
		e, err := engine.Open(dir, nil)
		require.NoError(t, err)
		defer e.Close()
		code, _, errOut := runCheck("--data", dir)
		require.Equal(t, exitFailure, code)
		require.Contains(t, errOut, "in use by another process")
	})

	t.Run("usage", func(t *testing.T) {
		code, _, errOut := runCheck("--data", t.TempDir(), "extra")
		require.Equal(t, exitUsage, code)
		require.Contains(t, errOut, `unexpected argument "extra"`)
		code, _, _ = runCheck("--output", "yaml")
		require.Equal(t, exitUsage, code)
	})
}
