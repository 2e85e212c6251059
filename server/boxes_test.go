package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// requireWholeImage: a face given without a box has the whole image.
func requireWholeImage(t testing.TB, b *types.BoundingBox) {
	t.Helper()
	require.NotNil(t, b, "BoundingBox")
	require.Equal(t, types.BoundingBox{Width: aws.Float32(1), Height: aws.Float32(1), Left: aws.Float32(0), Top: aws.Float32(0)}, *b)
}

// TestBoundingBoxFromHeader: a box given in the .npy header reaches the
// SDK wherever the face appears, and the searched face's box is its row's.
func TestBoundingBoxFromHeader(t *testing.T) {
	_, ts := newServer(t, nil)
	c := newClient(ts.URL, "any", "any")
	ctx := context.Background()
	_, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("c")})
	require.NoError(t, err)
	var img bytes.Buffer
	require.NoError(t, npy.EncodeBoxed(&img, [][]float32{{1, 0, 0}}, true, []npy.Box{{Width: 0.5, Height: 0.25, Left: 0.125, Top: 0.75}}))
	want := types.BoundingBox{Width: aws.Float32(0.5), Height: aws.Float32(0.25), Left: aws.Float32(0.125), Top: aws.Float32(0.75)}

	ix, err := c.IndexFaces(ctx, &rekognition.IndexFacesInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: img.Bytes()}})
	require.NoError(t, err)
	require.Equal(t, want, *ix.FaceRecords[0].Face.BoundingBox)
	require.Equal(t, want, *ix.FaceRecords[0].FaceDetail.BoundingBox)
	lf, err := c.ListFaces(ctx, &rekognition.ListFacesInput{CollectionId: aws.String("c")})
	require.NoError(t, err)
	require.Equal(t, want, *lf.Faces[0].BoundingBox)
	sfi, err := c.SearchFacesByImage(ctx, &rekognition.SearchFacesByImageInput{CollectionId: aws.String("c"), Image: &types.Image{Bytes: img.Bytes()}})
	require.NoError(t, err)
	require.Equal(t, want, *sfi.SearchedFaceBoundingBox)
	require.Equal(t, want, *sfi.FaceMatches[0].Face.BoundingBox)
}

// TestCollectionARN: a collection's ARN names the region of the request's
// credential scope (the engine's Region when unsigned) and the engine's
// account.
func TestCollectionARN(t *testing.T) {
	e, err := engine.Open(t.TempDir(), &engine.Options{AccountID: "123456789012"})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	ts := serveEngine(t, e, nil)
	ctx := context.Background()

	for _, region := range []string{"eu-west-2", "ap-southeast-1"} {
		c := newClient(ts.URL, "any", "any", func(o *rekognition.Options) { o.Region = region })
		cc, err := c.CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String(region)})
		require.NoError(t, err)
		require.Equal(t, "arn:aws:rekognition:"+region+":123456789012:collection/"+region, aws.ToString(cc.CollectionArn))
		dc, err := c.DescribeCollection(ctx, &rekognition.DescribeCollectionInput{CollectionId: aws.String(region)})
		require.NoError(t, err)
		require.Equal(t, aws.ToString(cc.CollectionArn), aws.ToString(dc.CollectionARN))
	}

	req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{"CollectionId":"unsigned"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "RekognitionService.CreateCollection")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, buf.String())
	require.Contains(t, buf.String(), `"arn:aws:rekognition:local:123456789012:collection/unsigned"`)
}
