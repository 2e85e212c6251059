package server

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestThrottling: past MaxConcurrentRequests a request is refused at once
// with the SDK's ThrottlingException, and served again when a slot frees.
// The test holds the slots itself, as operations in flight would.
func TestThrottling(t *testing.T) {
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	s, err := New(e, &Options{MaxConcurrentRequests: 2, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	c := rekognition.New(rekognition.Options{
		BaseEndpoint:     aws.String(ts.URL),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		RetryMaxAttempts: 1,
	})
	ctx := context.Background()

	s.slots <- struct{}{}
	s.slots <- struct{}{}
	_, err = c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
	var te *types.ThrottlingException
	require.ErrorAs(t, err, &te)

	<-s.slots
	_, err = c.ListCollections(ctx, &rekognition.ListCollectionsInput{})
	require.NoError(t, err)
	<-s.slots
}
