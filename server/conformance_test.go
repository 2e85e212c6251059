package server_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// TestConformanceWalk drives every operation through the real Rekognition
// client, signing every request: collection -> faces -> users -> search ->
// paginate -> delete.
func TestConformanceWalk(t *testing.T) {
	_, ts := newServer(t, &server.Options{Credentials: testCreds})
	c := newClient(ts.URL, testKeyID, testSecret)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 1))
	const dim = 16
	alice, bob := randVec(rng, dim), randVec(rng, dim)

	// Collections.
	cc, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{
		CollectionId: aws.String("staff"),
		Tags:         map[string]string{"facesearch:dimension": fmt.Sprint(dim), "facesearch:similarity": "cosine"},
	})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:rekognition:us-east-1:000000000000:collection/staff", aws.ToString(cc.CollectionArn))
	assert.Equal(t, int32(200), aws.ToInt32(cc.StatusCode))
	assert.NotEmpty(t, aws.ToString(cc.FaceModelVersion))

	lc, err := c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
	require.NoError(t, err)
	assert.Equal(t, []string{"staff"}, lc.CollectionIds)
	assert.Len(t, lc.FaceModelVersions, 1)

	// Faces: a (n, d) array honours MaxFaces and ExternalImageId.
	aliceRows := near(rng, alice, 6, 0.05)
	ix, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{
		CollectionId:    aws.String("staff"),
		Image:           &types.Image{Bytes: npyRows(t, aliceRows)},
		ExternalImageId: aws.String("alice.jpg"),
		MaxFaces:        aws.Int32(5),
	})
	require.NoError(t, err)
	require.Len(t, ix.FaceRecords, 5)
	require.Len(t, ix.UnindexedFaces, 1)
	assert.Equal(t, []types.Reason{types.ReasonExceedsMaxFaces}, ix.UnindexedFaces[0].Reasons)
	requireWholeImage(t, ix.UnindexedFaces[0].FaceDetail.BoundingBox)
	var aliceFaces []string
	for _, r := range ix.FaceRecords {
		f := r.Face
		assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, aws.ToString(f.FaceId))
		assert.Equal(t, aws.ToString(ix.FaceRecords[0].Face.ImageId), aws.ToString(f.ImageId), "one image, one ImageId")
		assert.Equal(t, "alice.jpg", aws.ToString(f.ExternalImageId))
		assert.Equal(t, float32(100), aws.ToFloat32(f.Confidence))
		requireWholeImage(t, f.BoundingBox)
		requireWholeImage(t, r.FaceDetail.BoundingBox)
		aliceFaces = append(aliceFaces, aws.ToString(f.FaceId))
	}
	// A (d,) array is one face; float64 arrays are accepted too.
	var bobFaces []string
	for i, row := range near(rng, bob, 3, 0.05) {
		img := npyVec(row)
		if i == 2 {
			img = npyRaw("{'descr': '<f8', 'fortran_order': False, 'shape': (16,), }", f64le(row))
		}
		ix, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("staff"), Image: &types.Image{Bytes: img}})
		require.NoError(t, err)
		require.Len(t, ix.FaceRecords, 1)
		requireWholeImage(t, ix.FaceRecords[0].Face.BoundingBox)
		assert.Empty(t, ix.UnindexedFaces)
		bobFaces = append(bobFaces, aws.ToString(ix.FaceRecords[0].Face.FaceId))
	}
	stray, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("staff"), Image: &types.Image{Bytes: npyVec(randVec(rng, dim))}})
	require.NoError(t, err)
	strayFace := aws.ToString(stray.FaceRecords[0].Face.FaceId)

	lf, err := c.ListFaces(ctx, &rekognition.ListFacesInput{CollectionId: aws.String("staff")})
	require.NoError(t, err)
	assert.Len(t, lf.Faces, 9)
	assert.Nil(t, lf.NextToken)
	for _, f := range lf.Faces {
		requireWholeImage(t, f.BoundingBox)
	}
	var pagedFaces []string
	for p := rekognition.NewListFacesPaginator(c, &rekognition.ListFacesInput{CollectionId: aws.String("staff"), MaxResults: aws.Int32(4)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, f := range page.Faces {
			pagedFaces = append(pagedFaces, aws.ToString(f.FaceId))
		}
	}
	assert.Len(t, pagedFaces, 9)

	// Users.
	for _, u := range []string{"alice", "bob"} {
		_, err := c.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("staff"), UserId: aws.String(u)})
		require.NoError(t, err)
	}
	as, err := c.AssociateFaces(ctx, &rekognition.AssociateFacesInput{
		CollectionId: aws.String("staff"), UserId: aws.String("alice"), FaceIds: aliceFaces,
	})
	require.NoError(t, err)
	assert.Len(t, as.AssociatedFaces, 5)
	assert.Empty(t, as.UnsuccessfulFaceAssociations)
	assert.Equal(t, types.UserStatusActive, as.UserStatus)
	as, err = c.AssociateFaces(ctx, &rekognition.AssociateFacesInput{
		CollectionId: aws.String("staff"), UserId: aws.String("bob"), FaceIds: append(bobFaces, aliceFaces[0]),
	})
	require.NoError(t, err)
	assert.Len(t, as.AssociatedFaces, 3)
	require.Len(t, as.UnsuccessfulFaceAssociations, 1)
	assert.Equal(t, []types.UnsuccessfulFaceAssociationReason{types.UnsuccessfulFaceAssociationReasonAssociatedToADifferentUser},
		as.UnsuccessfulFaceAssociations[0].Reasons)

	lu, err := c.ListUsers(ctx, &rekognition.ListUsersInput{CollectionId: aws.String("staff")})
	require.NoError(t, err)
	require.Len(t, lu.Users, 2)
	assert.Equal(t, "alice", aws.ToString(lu.Users[0].UserId))
	assert.Equal(t, types.UserStatusActive, lu.Users[0].UserStatus)

	dc, err := c.DescribeCollection(ctx, &rekognition.DescribeCollectionInput{CollectionId: aws.String("staff")})
	require.NoError(t, err)
	assert.Equal(t, int64(9), aws.ToInt64(dc.FaceCount))
	assert.Equal(t, int64(2), aws.ToInt64(dc.UserCount))
	assert.WithinDuration(t, time.Now(), aws.ToTime(dc.CreationTimestamp), time.Minute)
	assert.Equal(t, "arn:aws:rekognition:us-east-1:000000000000:collection/staff", aws.ToString(dc.CollectionARN))

	// Search.
	su, err := c.SearchUsers(ctx, &rekognition.SearchUsersInput{CollectionId: aws.String("staff"), FaceId: aws.String(aliceFaces[1])})
	require.NoError(t, err)
	require.NotEmpty(t, su.UserMatches)
	assert.Equal(t, "alice", aws.ToString(su.UserMatches[0].User.UserId))
	assert.Greater(t, aws.ToFloat32(su.UserMatches[0].Similarity), float32(90))
	assert.Equal(t, aliceFaces[1], aws.ToString(su.SearchedFace.FaceId))

	su, err = c.SearchUsers(ctx, &rekognition.SearchUsersInput{CollectionId: aws.String("staff"), UserId: aws.String("bob"), UserMatchThreshold: aws.Float32(0)})
	require.NoError(t, err)
	assert.Equal(t, "bob", aws.ToString(su.SearchedUser.UserId))
	for _, m := range su.UserMatches {
		assert.NotEqual(t, "bob", aws.ToString(m.User.UserId), "a user is left out of its own search")
	}

	sui, err := c.SearchUsersByImage(ctx, &rekognition.SearchUsersByImageInput{
		CollectionId: aws.String("staff"), Image: &types.Image{Bytes: npyVec(near(rng, bob, 1, 0.05)[0])}, MaxUsers: aws.Int32(1),
	})
	require.NoError(t, err)
	require.Len(t, sui.UserMatches, 1)
	assert.Equal(t, "bob", aws.ToString(sui.UserMatches[0].User.UserId))
	assert.Equal(t, types.UserStatusActive, sui.UserMatches[0].User.UserStatus)
	requireWholeImage(t, sui.SearchedFace.FaceDetail.BoundingBox)

	sf, err := c.SearchFaces(ctx, &rekognition.SearchFacesInput{CollectionId: aws.String("staff"), FaceId: aws.String(aliceFaces[0])})
	require.NoError(t, err)
	assert.Equal(t, aliceFaces[0], aws.ToString(sf.SearchedFaceId))
	var got []string
	for _, m := range sf.FaceMatches {
		got = append(got, aws.ToString(m.Face.FaceId))
		assert.Equal(t, "alice", aws.ToString(m.Face.UserId))
		requireWholeImage(t, m.Face.BoundingBox)
	}
	sort.Strings(got)
	want := append([]string(nil), aliceFaces[1:]...)
	sort.Strings(want)
	assert.Equal(t, want, got, "alice's other faces, not the searched one")

	sfi, err := c.SearchFacesByImage(ctx, &rekognition.SearchFacesByImageInput{
		CollectionId: aws.String("staff"), Image: &types.Image{Bytes: npyVec(bob)}, MaxFaces: aws.Int32(2),
	})
	require.NoError(t, err)
	require.Len(t, sfi.FaceMatches, 2)
	assert.Contains(t, bobFaces, aws.ToString(sfi.FaceMatches[0].Face.FaceId))
	assert.GreaterOrEqual(t, aws.ToFloat32(sfi.FaceMatches[0].Similarity), aws.ToFloat32(sfi.FaceMatches[1].Similarity))
	assert.Equal(t, float32(100), aws.ToFloat32(sfi.SearchedFaceConfidence))
	requireWholeImage(t, sfi.SearchedFaceBoundingBox)
	for _, m := range sfi.FaceMatches {
		requireWholeImage(t, m.Face.BoundingBox)
	}

	// Undo.
	ds, err := c.DisassociateFaces(ctx, &rekognition.DisassociateFacesInput{
		CollectionId: aws.String("staff"), UserId: aws.String("alice"), FaceIds: aliceFaces[:1],
	})
	require.NoError(t, err)
	require.Len(t, ds.DisassociatedFaces, 1)
	assert.Equal(t, aliceFaces[0], aws.ToString(ds.DisassociatedFaces[0].FaceId))
	assert.Equal(t, types.UserStatusActive, ds.UserStatus)

	df, err := c.DeleteFaces(ctx, &rekognition.DeleteFacesInput{
		CollectionId: aws.String("staff"), FaceIds: []string{aliceFaces[0], strayFace, aliceFaces[1]},
	})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{aliceFaces[0], strayFace}, df.DeletedFaces)
	require.Len(t, df.UnsuccessfulFaceDeletions, 1)
	assert.Equal(t, aliceFaces[1], aws.ToString(df.UnsuccessfulFaceDeletions[0].FaceId))
	assert.Equal(t, []types.UnsuccessfulFaceDeletionReason{types.UnsuccessfulFaceDeletionReasonAssociatedToAnExistingUser},
		df.UnsuccessfulFaceDeletions[0].Reasons)

	_, err = c.DeleteUser(ctx, &rekognition.DeleteUserInput{CollectionId: aws.String("staff"), UserId: aws.String("bob")})
	require.NoError(t, err)
	lf, err = c.ListFaces(ctx, &rekognition.ListFacesInput{CollectionId: aws.String("staff"), UserId: aws.String("alice")})
	require.NoError(t, err)
	assert.Len(t, lf.Faces, 4)

	dl, err := c.DeleteCollection(ctx, &rekognition.DeleteCollectionInput{CollectionId: aws.String("staff")})
	require.NoError(t, err)
	assert.Equal(t, int32(200), aws.ToInt32(dl.StatusCode))
	lc, err = c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
	require.NoError(t, err)
	assert.Empty(t, lc.CollectionIds)
}

// TestListUsersPaginator walks the SDK's own paginator across pages.
func TestListUsersPaginator(t *testing.T) {
	_, ts := newServer(t, &server.Options{Credentials: testCreds})
	c := newClient(ts.URL, testKeyID, testSecret)
	ctx := context.Background()
	_, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("people")})
	require.NoError(t, err)
	var want []string
	for i := range 23 {
		// Creation order, not name order, is the listing order.
		id := fmt.Sprintf("user-%02d", (i*7)%23)
		_, err := c.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("people"), UserId: aws.String(id)})
		require.NoError(t, err)
		want = append(want, id)
	}
	tests := []struct {
		pageSize  int32
		wantPages int
	}{{5, 5}, {10, 3}, {23, 1}, {500, 1}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.pageSize), func(t *testing.T) {
			p := rekognition.NewListUsersPaginator(c, &rekognition.ListUsersInput{CollectionId: aws.String("people"), MaxResults: aws.Int32(tt.pageSize)})
			var got []string
			pages := 0
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				require.NoError(t, err)
				pages++
				assert.LessOrEqual(t, len(page.Users), int(tt.pageSize))
				for _, u := range page.Users {
					got = append(got, aws.ToString(u.UserId))
					assert.Equal(t, types.UserStatusCreated, u.UserStatus)
				}
			}
			assert.Equal(t, want, got)
			assert.Equal(t, tt.wantPages, pages)
		})
	}
}

// TestTypedErrors checks that every error reaches the SDK as its typed
// exception, with the message and the request ID.
func TestTypedErrors(t *testing.T) {
	_, ts := newServer(t, &server.Options{Credentials: testCreds})
	c := newClient(ts.URL, testKeyID, testSecret)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	base := randVec(rng, 8)
	_, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("c")})
	require.NoError(t, err)
	var faces []string
	for _, rows := range [][][]float32{near(rng, base, 100, 0.01), near(rng, base, 1, 0.01)} {
		ix, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: npyRows(t, rows)}})
		require.NoError(t, err)
		for _, r := range ix.FaceRecords {
			faces = append(faces, aws.ToString(r.Face.FaceId))
		}
	}
	require.Len(t, faces, 101)
	_, err = c.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("c"), UserId: aws.String("full"), ClientRequestToken: aws.String("tok-1")})
	require.NoError(t, err)
	_, err = c.AssociateFaces(ctx, &rekognition.AssociateFacesInput{CollectionId: aws.String("c"), UserId: aws.String("full"), FaceIds: faces[:100]})
	require.NoError(t, err)

	tests := []struct {
		name string
		call func() error
		want any // pointer to the SDK's exception type
	}{
		{"ResourceNotFound", func() error {
			_, err := c.DescribeCollection(ctx, &rekognition.DescribeCollectionInput{CollectionId: aws.String("nope")})
			return err
		}, new(*types.ResourceNotFoundException)},
		{"ResourceNotFound/user", func() error {
			_, err := c.DeleteUser(ctx, &rekognition.DeleteUserInput{CollectionId: aws.String("c"), UserId: aws.String("ghost")})
			return err
		}, new(*types.ResourceNotFoundException)},
		{"ResourceAlreadyExists", func() error {
			_, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("c")})
			return err
		}, new(*types.ResourceAlreadyExistsException)},
		{"InvalidParameter/pattern", func() error {
			_, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("no spaces")})
			return err
		}, new(*types.InvalidParameterException)},
		{"InvalidParameter/S3Object", func() error {
			_, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("c"),
				Image: &types.Image{S3Object: &types.S3Object{Bucket: aws.String("b"), Name: aws.String("n")}}})
			return err
		}, new(*types.InvalidParameterException)},
		{"InvalidParameter/range", func() error {
			_, err := c.ListUsers(ctx, &rekognition.ListUsersInput{CollectionId: aws.String("c"), MaxResults: aws.Int32(501)})
			return err
		}, new(*types.InvalidParameterException)},
		{"Conflict", func() error {
			_, err := c.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("c"), UserId: aws.String("full")})
			return err
		}, new(*types.ConflictException)},
		{"IdempotentParameterMismatch", func() error {
			_, err := c.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("c"), UserId: aws.String("other"), ClientRequestToken: aws.String("tok-1")})
			return err
		}, new(*types.IdempotentParameterMismatchException)},
		{"ServiceQuotaExceeded", func() error {
			_, err := c.AssociateFaces(ctx, &rekognition.AssociateFacesInput{CollectionId: aws.String("c"), UserId: aws.String("full"),
				FaceIds: faces[100:], UserMatchThreshold: aws.Float32(0)})
			return err
		}, new(*types.ServiceQuotaExceededException)},
		{"InvalidPaginationToken", func() error {
			_, err := c.ListUsers(ctx, &rekognition.ListUsersInput{CollectionId: aws.String("c"), NextToken: aws.String("not-a-token")})
			return err
		}, new(*types.InvalidPaginationTokenException)},
		{"InvalidImageFormat/IndexFaces", func() error {
			_, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: []byte("\xff\xd8\xff\xe0 a JPEG")}})
			return err
		}, new(*types.InvalidImageFormatException)},
		{"InvalidImageFormat/SearchUsersByImage", func() error {
			_, err := c.SearchUsersByImage(ctx, &rekognition.SearchUsersByImageInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: []byte("PNG")}})
			return err
		}, new(*types.InvalidImageFormatException)},
		{"InvalidImageFormat/SearchFacesByImage", func() error {
			_, err := c.SearchFacesByImage(ctx, &rekognition.SearchFacesByImageInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: []byte("GIF89a")}})
			return err
		}, new(*types.InvalidImageFormatException)},
		{"ImageTooLarge/engine limit", func() error {
			// 5 MiB + a row: under the 8 MiB body limit, over Rekognition's image limit.
			_, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: make([]byte, 5<<20+64)}})
			return err
		}, new(*types.ImageTooLargeException)},
		{"ImageTooLarge/body limit", func() error {
			_, err := c.SearchFacesByImage(ctx, &rekognition.SearchFacesByImageInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: make([]byte, 7<<20)}})
			return err
		}, new(*types.ImageTooLargeException)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			assert.True(t, errors.As(err, tt.want), "got %T: %v", errors.Unwrap(err), err)
			var apiErr smithy.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.NotEmpty(t, apiErr.ErrorMessage())
			var re *awshttp.ResponseError
			require.ErrorAs(t, err, &re)
			assert.NotEmpty(t, re.ServiceRequestID(), "x-amzn-RequestId reaches the SDK")
			assert.Equal(t, http.StatusBadRequest, re.HTTPStatusCode())
		})
	}
}

// TestClosedEngine: calls after the engine closed get 503, which SDKs retry.
func TestClosedEngine(t *testing.T) {
	e, ts := newServer(t, nil)
	require.NoError(t, e.Close())
	c := newClient(ts.URL, testKeyID, testSecret)
	_, err := c.ListCollections(context.Background(), &rekognition.ListCollectionsInput{})
	var apiErr smithy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, server.CodeServiceUnavailable, apiErr.ErrorCode())
	var re *awshttp.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusServiceUnavailable, re.HTTPStatusCode())
}

// TestRequestTimeout: an operation that outlives RequestTimeout is answered
// with RequestTimeoutException.
func TestRequestTimeout(t *testing.T) {
	e, ts := newServer(t, &server.Options{RequestTimeout: time.Nanosecond})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c"})
	require.NoError(t, err)
	_, err = e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: embeddings(near(rng, randVec(rng, 8), 50, 0.1))})
	require.NoError(t, err)
	r := rawCall(t, ts.URL, "SearchFacesByImage", mustJSON(t, map[string]any{"CollectionId": "c", "Image": map[string]any{"Bytes": npyVec(randVec(rng, 8))}}))
	assert.Equal(t, http.StatusRequestTimeout, r.Status, "%s", r.Body)
	assert.Equal(t, server.CodeRequestTimeout, r.Code)
}
