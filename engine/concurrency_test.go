package engine_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestConcurrentReadYourWrites: writers and searchers share one collection.
// Every search that starts after a write returned sees that write.
func TestConcurrentReadYourWrites(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	const dim, writers, perWriter, searchers = 32, 6, 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter+searchers)
	stop := make(chan struct{})
	for s := range searchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(s), 99))
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: randomUnit(r, dim), UserMatchThreshold: ptr[float32](0)})
				if err != nil {
					errs <- err
					return
				}
				if _, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWriter {
				v := randomUnit(r, dim)
				id := fmt.Sprintf("w%d-%d", w, i)
				out, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: v}}})
				if err != nil {
					errs <- err
					return
				}
				face := out.FaceRecords[0].Face.FaceId
				// The face is searchable as soon as IndexFaces returned.
				fs, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: v, FaceMatchThreshold: ptr[float32](99.99), MaxFaces: ptr[int32](5)})
				if err != nil || len(fs.FaceMatches) == 0 || fs.FaceMatches[0].Face.FaceId != face {
					errs <- fmt.Errorf("face %s not found right after IndexFaces: %v %+v", face, err, fs)
					return
				}
				if _, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: id}); err != nil {
					errs <- err
					return
				}
				if _, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: id, FaceIds: []string{face}}); err != nil {
					errs <- err
					return
				}
				us, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: v, UserMatchThreshold: ptr[float32](99.99), MaxUsers: ptr[int32](5)})
				if err != nil || len(us.UserMatches) == 0 || us.UserMatches[0].User.UserId != id {
					errs <- fmt.Errorf("user %s not found right after AssociateFaces: %v %+v", id, err, us)
					return
				}
				if i%3 == 0 {
					if _, err := e.DeleteUser(ctx, &engine.DeleteUserInput{CollectionId: "c", UserId: id}); err != nil {
						errs <- err
						return
					}
					us, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: v, UserMatchThreshold: ptr[float32](99.99)})
					if err != nil || len(us.UserMatches) != 0 {
						errs <- fmt.Errorf("user %s still found after DeleteUser: %v %+v", id, err, us)
						return
					}
				}
			}
		}()
	}
	writersWG.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	require.EqualValues(t, writers*perWriter, d.FaceCount)
	require.EqualValues(t, writers*(perWriter-3), d.UserCount)
}

// TestConcurrentFirstFaces: racing first IndexFaces calls with different
// dimensions fix exactly one dimension.
func TestConcurrentFirstFaces(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := make([]float32, 2+i%2)
			v[0] = 1
			_, results[i] = e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: v}}})
		}()
	}
	wg.Wait()
	d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	ok := 0
	for i, err := range results {
		if err == nil {
			ok++
			require.Equal(t, 2+i%2, d.Dimension)
		} else {
			requireCode(t, err, engine.ErrInvalidParameter)
		}
	}
	require.EqualValues(t, ok, d.FaceCount)
	require.Equal(t, 4, ok)
}

// TestDeleteCollectionWhileBusy: deleting a collection under load leaves no
// trace of it, and calls fail cleanly with ResourceNotFoundException.
func TestDeleteCollectionWhileBusy(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: []float32{1, float32(w), float32(i)}}}})
				if err != nil {
					require.ErrorIs(t, err, engine.ErrResourceNotFound)
					return
				}
			}
		}()
	}
	_, err := e.DeleteCollection(ctx, &engine.DeleteCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	wg.Wait()
	createCollection(t, e, "c", "")
	require.Empty(t, snapshot(t, e, "c").Faces, "nothing written after the delete survived into the new collection")
}
