package engine_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// TestLimits drives every identifier pattern, length and numeric range of the
// contract through the operation that takes it: each violation is an
// InvalidParameterException whose message names the parameter.
func TestLimits(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	faces := indexFaces(t, e, "c", []float32{1, 0, 0, 0}, []float32{0, 1, 0, 0})
	createUser(t, e, "c", "u", faces[0])
	face := faces[1]
	const unknownFace = "00000000-0000-4000-8000-000000000000"

	long := func(n int) string { return strings.Repeat("a", n) }
	idList := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = unknownFace
		}
		return out
	}
	vec := []float32{1, 0, 0, 0}
	tests := []struct {
		name  string
		param string // must appear in the message
		call  func() error
	}{
		{"CollectionId empty", "CollectionId", func() error {
			_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{})
			return err
		}},
		{"CollectionId 256 chars", "CollectionId", func() error {
			_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: long(256)})
			return err
		}},
		{"CollectionId bad pattern", "CollectionId", func() error {
			_, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "a/b"})
			return err
		}},
		{"CollectionId colon not allowed", "CollectionId", func() error {
			_, err := e.DeleteCollection(ctx, &engine.DeleteCollectionInput{CollectionId: "a:b"})
			return err
		}},
		{"UserId 129 chars", "UserId", func() error {
			_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: long(129)})
			return err
		}},
		{"UserId bad pattern", "UserId", func() error {
			_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "a b"})
			return err
		}},
		{"UserId missing", "UserId", func() error {
			_, err := e.DeleteUser(ctx, &engine.DeleteUserInput{CollectionId: "c"})
			return err
		}},
		{"ExternalImageId 256 chars", "ExternalImageId", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", ExternalImageId: long(256), Faces: []engine.FaceEmbedding{{Vector: vec}}})
			return err
		}},
		{"ExternalImageId bad pattern", "ExternalImageId", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: vec, ExternalImageId: "x/y"}}})
			return err
		}},
		{"FaceId uppercase", "FaceId", func() error {
			_, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: strings.ToUpper(face)})
			return err
		}},
		{"FaceId missing", "FaceId", func() error {
			_, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c"})
			return err
		}},
		{"ClientRequestToken bad pattern", "ClientRequestToken", func() error {
			_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "v", ClientRequestToken: "a.b"})
			return err
		}},
		{"ClientRequestToken 65 chars", "ClientRequestToken", func() error {
			_, err := e.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "c", UserId: "v", ClientRequestToken: long(65)})
			return err
		}},
		{"MaxUsers 0", "MaxUsers", func() error {
			_, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: face, MaxUsers: ptr[int32](0)})
			return err
		}},
		{"MaxUsers 501", "MaxUsers", func() error {
			_, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: vec, MaxUsers: ptr[int32](501)})
			return err
		}},
		{"ListUsers MaxResults 0", "MaxResults", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: ptr[int32](0)})
			return err
		}},
		{"ListUsers MaxResults 501", "MaxResults", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: ptr[int32](501)})
			return err
		}},
		{"ListFaces MaxResults -1", "MaxResults", func() error {
			_, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", MaxResults: ptr[int32](-1)})
			return err
		}},
		{"ListFaces MaxResults 4097", "MaxResults", func() error {
			_, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", MaxResults: ptr[int32](4097)})
			return err
		}},
		{"ListCollections MaxResults 4097", "MaxResults", func() error {
			_, err := e.ListCollections(ctx, &engine.ListCollectionsInput{MaxResults: ptr[int32](4097)})
			return err
		}},
		{"MaxFaces 0", "MaxFaces", func() error {
			_, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: face, MaxFaces: ptr[int32](0)})
			return err
		}},
		{"MaxFaces 4097", "MaxFaces", func() error {
			_, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: vec, MaxFaces: ptr[int32](4097)})
			return err
		}},
		{"IndexFaces MaxFaces 0", "MaxFaces", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", MaxFaces: ptr[int32](0), Faces: []engine.FaceEmbedding{{Vector: vec}}})
			return err
		}},
		{"UserMatchThreshold -1", "UserMatchThreshold", func() error {
			_, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: face, UserMatchThreshold: ptr[float32](-1)})
			return err
		}},
		{"UserMatchThreshold 100.5", "UserMatchThreshold", func() error {
			_, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{face}, UserMatchThreshold: ptr[float32](100.5)})
			return err
		}},
		{"UserMatchThreshold NaN", "UserMatchThreshold", func() error {
			_, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: face, UserMatchThreshold: ptr(float32(math.NaN()))})
			return err
		}},
		{"FaceMatchThreshold 101", "FaceMatchThreshold", func() error {
			_, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: "c", FaceId: face, FaceMatchThreshold: ptr[float32](101)})
			return err
		}},
		{"Associate FaceIds empty", "FaceIds", func() error {
			_, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: []string{}})
			return err
		}},
		{"Associate FaceIds 101", "FaceIds", func() error {
			_, err := e.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: idList(101)})
			return err
		}},
		{"Disassociate FaceIds 101", "FaceIds", func() error {
			_, err := e.DisassociateFaces(ctx, &engine.DisassociateFacesInput{CollectionId: "c", UserId: "u", FaceIds: idList(101)})
			return err
		}},
		{"Disassociate FaceIds missing", "FaceIds", func() error {
			_, err := e.DisassociateFaces(ctx, &engine.DisassociateFacesInput{CollectionId: "c", UserId: "u"})
			return err
		}},
		{"DeleteFaces FaceIds 4097", "FaceIds", func() error {
			_, err := e.DeleteFaces(ctx, &engine.DeleteFacesInput{CollectionId: "c", FaceIds: idList(4097)})
			return err
		}},
		{"DeleteFaces FaceIds bad member", "FaceIds", func() error {
			_, err := e.DeleteFaces(ctx, &engine.DeleteFacesInput{CollectionId: "c", FaceIds: []string{"nope"}})
			return err
		}},
		{"ListFaces FaceIds 4097", "FaceIds", func() error {
			_, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", FaceIds: idList(4097)})
			return err
		}},
		{"NextToken 256 chars", "NextToken", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", NextToken: long(256)})
			return err
		}},
		{"SearchUsers neither FaceId nor UserId", "FaceId or UserId", func() error {
			_, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c"})
			return err
		}},
		{"SearchUsers both FaceId and UserId", "FaceId or UserId", func() error {
			_, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "c", FaceId: face, UserId: "u"})
			return err
		}},
		{"QualityFilter unknown", "QualityFilter", func() error {
			_, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: vec, QualityFilter: "BEST"})
			return err
		}},
		{"DetectionAttributes unknown", "DetectionAttributes", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", DetectionAttributes: []string{"HAIR"}, Faces: []engine.FaceEmbedding{{Vector: vec}}})
			return err
		}},
		{"vector wrong dimension", "dimensions", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: []float32{1, 2, 3}}}})
			return err
		}},
		{"query wrong dimension", "dimensions", func() error {
			_, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: []float32{1, 2, 3}})
			return err
		}},
		{"vector NaN", "non-finite", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: []float32{1, float32(math.NaN()), 0, 0}}}})
			return err
		}},
		{"vector Inf", "non-finite", func() error {
			_, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: "c", Vector: []float32{float32(math.Inf(1)), 0, 0, 0}})
			return err
		}},
		{"vector zero", "zero vector", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Faces: []engine.FaceEmbedding{{Vector: []float32{0, 0, 0, 0}}}})
			return err
		}},
		{"vector too long", "dimensions", func() error {
			_, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Vector: make([]float32, 4097)})
			return err
		}},
		{"no faces given", "Image", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c"})
			return err
		}},
		{"S3Object", "S3 is not available on-prem", func() error {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Image: &engine.Image{S3Object: &engine.S3Object{Bucket: "b", Name: "n"}}})
			return err
		}},
		{"Dimension tag not a number", "facesearch:dimension", func() error {
			_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "d", Tags: map[string]string{engine.TagDimension: "big"}})
			return err
		}},
		{"Dimension 4097", "Dimension", func() error {
			_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "d", Dimension: 4097})
			return err
		}},
		{"unknown similarity", "Similarity", func() error {
			_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "d", Similarity: "euclid"})
			return err
		}},
		{"unknown reserved tag", "facesearch:colour", func() error {
			_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "d", Tags: map[string]string{"facesearch:colour": "blue"}})
			return err
		}},
	}
	before := snapshot(t, e, "c")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			requireCode(t, err, engine.ErrInvalidParameter)
			require.Contains(t, err.Error(), tt.param)
		})
	}
	require.Equal(t, before, snapshot(t, e, "c"), "a refused call changed the collection")
	_, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "d"})
	requireCode(t, err, engine.ErrResourceNotFound)
}

// TestValidationReportsEveryProblem: one call with several bad parameters
// names all of them.
func TestValidationReportsEveryProblem(t *testing.T) {
	e := openEngine(t, "")
	_, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: "a/b", MaxUsers: ptr[int32](0), UserMatchThreshold: ptr[float32](200)})
	var ee *engine.Error
	require.True(t, errors.As(err, &ee))
	require.Equal(t, engine.CodeInvalidParameter, ee.Code)
	for _, p := range []string{"CollectionId", "MaxUsers", "UserMatchThreshold", "FaceId or UserId"} {
		require.Contains(t, ee.Message, p)
	}
	require.Contains(t, ee.Message, "4 validation errors")
}

// TestImageBytes: .npy embeddings are accepted as Rekognition's Image.Bytes;
// anything else is InvalidImageFormatException saying what is accepted.
func TestImageBytes(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	var two []byte
	{
		var b strings.Builder
		require.NoError(t, npy.Encode(&b, [][]float32{{1, 0, 0}, {0, 1, 0}}, false))
		two = []byte(b.String())
	}
	out, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Image: &engine.Image{Bytes: two}, ExternalImageId: "photo.jpg"})
	require.NoError(t, err)
	require.Len(t, out.FaceRecords, 2)
	require.Equal(t, out.FaceRecords[0].Face.ImageId, out.FaceRecords[1].Face.ImageId, "faces of one image share its ImageId")
	require.Equal(t, "photo.jpg", out.FaceRecords[1].Face.ExternalImageId)

	for name, b := range map[string][]byte{
		"jpeg":      {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F'},
		"truncated": two[:len(two)-3],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Image: &engine.Image{Bytes: b}})
			requireCode(t, err, engine.ErrInvalidImageFormat)
			require.Contains(t, err.Error(), ".npy")
		})
	}
	sr, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Image: &engine.Image{Bytes: two}})
	require.NoError(t, err)
	require.Len(t, sr.UnsearchedFaces, 1, "the second row of a two-row image is not searched")
	require.Equal(t, []string{engine.ReasonFaceNotLargest}, sr.UnsearchedFaces[0].Reasons)
}
