package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/store"
)

// fillableFS reports a full disk while full is set.
type fillableFS struct {
	vfs.FS
	full atomic.Bool
}

func (fs *fillableFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	avail := uint64(50 << 30)
	if fs.full.Load() {
		avail = 0
	}
	return vfs.DiskUsage{AvailBytes: avail, TotalBytes: 100 << 30, UsedBytes: 100<<30 - avail}, nil
}

var applyT0 = time.Date(2020, 3, 1, 12, 0, 0, 0, time.UTC)

func applyJSON(t *testing.T, e *Engine, op string, in any, env *ApplyEnv) *Outcome {
	t.Helper()
	req, err := json.Marshal(in)
	require.NoError(t, err)
	o, err := e.Apply(context.Background(), op, req, env)
	require.NoError(t, err)
	return o
}

func indexInput(coll string, n int) *IndexFacesInput {
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = []float32{1, float32(i), 0, 1}
	}
	var b bytes.Buffer
	_ = npy.Encode(&b, rows, false) // a bytes.Buffer takes every write
	return &IndexFacesInput{CollectionId: coll, Image: &Image{Bytes: b.Bytes()}}
}

func TestApplyIndexFacesTakesTheCommandsIDs(t *testing.T) {
	e, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer e.Close()
	env := &ApplyEnv{Time: applyT0}
	require.Nil(t, applyJSON(t, e, "CreateCollection", &CreateCollectionInput{CollectionId: "c"}, env).Err)

	in := indexInput("c", 2)
	imageID, faceIDs := NewIndexFacesIDs(in)
	require.Len(t, faceIDs, 2)
	cases := []struct {
		name    string
		imageID string
		faceIDs []string
	}{
		{"too few", imageID, faceIDs[:1]},
		{"repeated", imageID, []string{faceIDs[0], faceIDs[0]}},
		{"not a UUID", imageID, []string{faceIDs[0], "face-2"}},
		{"no image ID", "", faceIDs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := applyJSON(t, e, "IndexFaces", in, &ApplyEnv{Time: applyT0, ImageID: tc.imageID, FaceIDs: tc.faceIDs})
			require.ErrorIs(t, o.Err, ErrInvalidParameter)
		})
	}
	o := applyJSON(t, e, "IndexFaces", in, &ApplyEnv{Time: applyT0, ImageID: imageID, FaceIDs: faceIDs})
	require.Nil(t, o.Err)
	var out IndexFacesOutput
	require.NoError(t, json.Unmarshal(o.Response, &out))
	for i, r := range out.FaceRecords {
		require.Equal(t, faceIDs[i], r.Face.FaceId)
		require.Equal(t, imageID, r.Face.ImageId)
	}
	o = applyJSON(t, e, "IndexFaces", in, &ApplyEnv{Time: applyT0, ImageID: imageID, FaceIDs: faceIDs})
	require.ErrorIs(t, o.Err, ErrInvalidParameter, "face IDs the collection has")

	o = applyJSON(t, e, "SearchUsers", &SearchUsersInput{CollectionId: "c"}, &ApplyEnv{Time: applyT0})
	require.ErrorIs(t, o.Err, ErrInvalidParameter, "a read is no command")
	_, err = e.Apply(context.Background(), "CreateUser", []byte(`{}`), &ApplyEnv{})
	require.ErrorIs(t, err, ErrApply, "a command without a time")
}

// An IndexFaces the disk refuses hands its face sequences back, so that
// the retry numbers the faces as a replica that never failed does.
func TestApplyDiskFullHandsFaceSequencesBack(t *testing.T) {
	fs := &fillableFS{FS: vfs.NewMem()}
	o := (*Options)(nil).clone()
	o.ensureDefaults()
	e, err := openStore("db", o, &store.Options{FS: fs, CacheSize: 8 << 20, MinFreeBytes: 1 << 20})
	require.NoError(t, err)
	defer e.Close()
	env := &ApplyEnv{Time: applyT0}
	require.Nil(t, applyJSON(t, e, "CreateCollection", &CreateCollectionInput{CollectionId: "c"}, env).Err)

	in := indexInput("c", 3)
	imageID, faceIDs := NewIndexFacesIDs(in)
	req, err := json.Marshal(in)
	require.NoError(t, err)
	env = &ApplyEnv{Time: applyT0, ImageID: imageID, FaceIDs: faceIDs}
	fs.full.Store(true)
	_, err = e.Apply(context.Background(), "IndexFaces", req, env)
	require.ErrorIs(t, err, ErrApply)
	require.ErrorIs(t, err, ErrDiskFull)
	fs.full.Store(false)
	_, err = e.Apply(context.Background(), "IndexFaces", req, env)
	require.NoError(t, err)

	c, release, err := e.acquire("c")
	require.NoError(t, err)
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, id := range faceIDs {
		require.EqualValues(t, i+1, c.faces[id].seq, "face %d", i)
	}
}
