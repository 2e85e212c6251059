package engine

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackupDuringWrites takes backups while writers run and requires each
// copy to open, to hold every call whole or not at all, and to answer
// searches as the original did.
func TestBackupDuringWrites(t *testing.T) {
	const dim = 8
	ctx := context.Background()
	dir := t.TempDir()
	e := impOpen(t, dir)
	impCreate(t, e, "c", dim)

	var wg sync.WaitGroup
	var stop atomic.Bool
	var written atomic.Int64 // faces written so far
	// Writers: IndexFaces of two faces of one image, then a user, then an
	// AssociateFaces of both faces.
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(11, uint64(w)))
			for i := 0; !stop.Load(); i++ {
				out, err := e.IndexFaces(ctx, &IndexFacesInput{CollectionId: "c", Faces: []FaceEmbedding{{Vector: impVec(r, dim)}, {Vector: impVec(r, dim)}}})
				if !assert.NoError(t, err) {
					return
				}
				written.Add(2)
				uid := fmt.Sprintf("w%d-%d", w, i)
				_, err = e.CreateUser(ctx, &CreateUserInput{CollectionId: "c", UserId: uid})
				if !assert.NoError(t, err) {
					return
				}
				_, err = e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: "c", UserId: uid, UserMatchThreshold: ptrTo[float32](0),
					FaceIds: []string{out.FaceRecords[0].Face.FaceId, out.FaceRecords[1].Face.FaceId}})
				assert.NoError(t, err)
			}
		})
	}
	// A bulk import whose batches each hold one user's ten faces.
	wg.Go(func() {
		im, err := e.NewImporter(ctx, "c", &ImportOptions{BatchRecords: 10})
		if !assert.NoError(t, err) {
			return
		}
		r := rand.New(rand.NewPCG(12, 12))
		for i := 0; !stop.Load() || i%10 != 0; i++ {
			if !assert.NoError(t, im.Add(ImportRecord{Vector: impVec(r, dim), UserId: fmt.Sprintf("imp-%d", i/10)})) {
				return
			}
			written.Add(1)
		}
		assert.NoError(t, im.Close())
	})

	var backups []string
	for i := range 3 {
		// Let the writers get somewhere between backups.
		deadline := time.Now().Add(time.Minute)
		for {
			if written.Load() >= int64(200*(i+1)) {
				break
			}
			require.True(t, time.Now().Before(deadline), "the writers stalled")
			time.Sleep(time.Millisecond)
		}
		b := filepath.Join(t.TempDir(), "backup")
		require.NoError(t, e.Backup(b))
		backups = append(backups, b)
	}
	stop.Store(true)
	wg.Wait()

	var prev impState
	for i, b := range backups {
		be, err := Open(b, nil)
		require.NoError(t, err, "backup %d opens", i)
		s := impSnapshot(t, be, "c")
		require.NotEmpty(t, s.Faces)
		images := map[string]int{}
		for _, f := range s.Faces {
			images[f.ImageID]++
		}
		for id, f := range s.Faces {
			if f.UserID == "" || f.UserID[0] == 'w' {
				require.Equal(t, 2, images[f.ImageID], "IndexFaces of face %s is in backup %d whole", id, i)
			}
		}
		for u, faces := range s.Members {
			switch u[0] {
			case 'w':
				require.Contains(t, []int{0, 2}, len(faces), "AssociateFaces of user %s is in backup %d whole", u, i)
			default:
				require.Len(t, faces, 10, "the import batch of user %s is in backup %d whole", u, i)
			}
		}
		// The copy answers: every face finds itself, every user with faces
		// is found from its own faces' users.
		n := 0
		for id, f := range s.Faces {
			out, err := be.SearchFacesByImage(ctx, &SearchFacesByImageInput{CollectionId: "c", Vector: f.Vector, FaceMatchThreshold: ptrTo[float32](99.99), MaxFaces: ptrTo[int32](4096)})
			require.NoError(t, err)
			var ids []string
			for _, m := range out.FaceMatches {
				ids = append(ids, m.Face.FaceId)
			}
			require.Contains(t, ids, id)
			if n++; n == 50 {
				break
			}
		}
		list, err := be.ListUsers(ctx, &ListUsersInput{CollectionId: "c", MaxResults: ptrTo[int32](500)})
		require.NoError(t, err)
		require.Equal(t, min(len(s.Users), 500), len(list.Users))
		// Later backups hold everything earlier ones did.
		for id := range prev.Faces {
			require.Contains(t, s.Faces, id, "backup %d lost face %s of backup %d", i, id, i-1)
		}
		prev = s
		require.NoError(t, be.Close())
	}
	impCheckRebuild(t, dir, e, "c")
}

func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	e := impOpen(t, dir)
	impCreate(t, e, "c", 2)
	existing := t.TempDir()
	require.ErrorIs(t, e.Backup(existing), fs.ErrExist)
	b := filepath.Join(t.TempDir(), "nested", "copy")
	require.NoError(t, e.Backup(b), "parents are created")
	require.NoError(t, e.Close())
	require.ErrorIs(t, e.Backup(filepath.Join(t.TempDir(), "late")), ErrClosed)
	c, err := Open(b, nil)
	require.NoError(t, err)
	defer c.Close()
	d, err := c.DescribeCollection(context.Background(), &DescribeCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	assert.Equal(t, 2, d.Dimension)
}
