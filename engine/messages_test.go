package engine_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// TestCollectionSettingErrors: a bad setting is one problem, named as the
// caller sent it: the reserved tag's key when it came as a tag, the field
// otherwise, and never a member the caller did not send.
func TestCollectionSettingErrors(t *testing.T) {
	e := openEngine(t, "")
	tests := []struct {
		name          string
		in            engine.CreateCollectionInput
		names, absent string
	}{
		{"dimension tag not a number", engine.CreateCollectionInput{Tags: map[string]string{engine.TagDimension: "abc"}}, "'Tags.facesearch:dimension'", "'Dimension'"},
		{"dimension tag zero", engine.CreateCollectionInput{Tags: map[string]string{engine.TagDimension: "0"}}, "'Tags.facesearch:dimension'", "'Dimension'"},
		{"dimension tag too big", engine.CreateCollectionInput{Tags: map[string]string{engine.TagDimension: "4097"}}, "'Tags.facesearch:dimension'", "'Dimension'"},
		{"dimension field too big", engine.CreateCollectionInput{Dimension: 4097}, "'Dimension'", "Tags"},
		{"dimension field negative", engine.CreateCollectionInput{Dimension: -1}, "'Dimension'", "Tags"},
		{"dimension tag disagrees", engine.CreateCollectionInput{Dimension: 8, Tags: map[string]string{engine.TagDimension: "16"}}, "'Tags.facesearch:dimension' disagrees with Dimension", "failed to satisfy"},
		{"tier tag unknown", engine.CreateCollectionInput{Tags: map[string]string{engine.TagTier: "int4"}}, "'Tags.facesearch:tier'", "'Tier'"},
		{"tier field unknown", engine.CreateCollectionInput{Tier: "int4"}, "'Tier'", "Tags"},
		{"similarity tag unknown", engine.CreateCollectionInput{Tags: map[string]string{engine.TagSimilarity: "euclid"}}, "'Tags.facesearch:similarity'", "'Similarity'"},
		{"similarity field unknown", engine.CreateCollectionInput{Similarity: "euclid"}, "'Similarity'", "Tags"},
		{"similarity tag disagrees", engine.CreateCollectionInput{Similarity: "cosine", Tags: map[string]string{engine.TagSimilarity: "arcface"}}, "disagrees with Similarity", "failed to satisfy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.CollectionId = "c"
			_, err := e.CreateCollection(ctx, &in)
			requireCode(t, err, engine.ErrInvalidParameter)
			var ee *engine.Error
			require.True(t, errors.As(err, &ee))
			require.Contains(t, ee.Message, "1 validation error detected")
			require.Contains(t, ee.Message, tt.names)
			require.NotContains(t, ee.Message, tt.absent)
		})
	}
	_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "ok", Dimension: 8, Tags: map[string]string{engine.TagDimension: "8", engine.TagTier: "int8", engine.TagSimilarity: "cosine"}})
	require.NoError(t, err, "agreeing field and tag")
	d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: "ok"})
	require.NoError(t, err)
	require.Equal(t, 8, d.Dimension)
	require.Equal(t, "int8", d.Tier)
	require.Equal(t, "cosine", d.Similarity)
}

// TestDoubleBase64Image: Image.Bytes that are the base64 text of a .npy
// file (the AWS CLI v1's --image '{"Bytes": ...}') are refused saying so
// and how to pass the file; other bad bytes get the usual message.
func TestDoubleBase64Image(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", engine.SimilarityCosine)
	file := npy.EncodeVector([]float32{1, 0, 0})
	tests := []struct {
		name, want, absent string
		bytes              []byte
	}{
		{"base64 of a .npy", "fileb://", "want little-endian", []byte(base64.StdEncoding.EncodeToString(file))},
		{"base64 of a .npy, URL alphabet", "fileb://", "want little-endian", []byte(base64.URLEncoding.EncodeToString(file))},
		{"other text", "not a .npy file", "fileb://", []byte("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: "c", Image: &engine.Image{Bytes: tt.bytes}})
			requireCode(t, err, engine.ErrInvalidImageFormat)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), tt.absent)
			_, err = e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: "c", Image: &engine.Image{Bytes: tt.bytes}})
			requireCode(t, err, engine.ErrInvalidImageFormat)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}
