package engine_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestCollectionARN: the ARN names the context's region (else
// Options.Region) and Options.AccountID; bad settings are refused at Open.
func TestCollectionARN(t *testing.T) {
	e, err := engine.Open(t.TempDir(), &engine.Options{AccountID: "111122223333", Region: "on-prem-1"})
	require.NoError(t, err)
	defer e.Close()
	tests := []struct {
		name, region, want string
	}{
		{"context region", "eu-central-1", "arn:aws:rekognition:eu-central-1:111122223333:collection/"},
		{"no region", "", "arn:aws:rekognition:on-prem-1:111122223333:collection/"},
		{"invalid region ignored", "EU/1", "arn:aws:rekognition:on-prem-1:111122223333:collection/"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "c" + string(rune('0'+i))
			rctx := engine.WithRegion(ctx, tt.region)
			cc, err := e.CreateCollection(rctx, &engine.CreateCollectionInput{CollectionId: id})
			require.NoError(t, err)
			require.Equal(t, tt.want+id, cc.CollectionArn)
			dc, err := e.DescribeCollection(rctx, &engine.DescribeCollectionInput{CollectionId: id})
			require.NoError(t, err)
			require.Equal(t, tt.want+id, dc.CollectionARN)
		})
	}

	d, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	cc, err := d.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "x"})
	require.NoError(t, err)
	require.Equal(t, "arn:aws:rekognition:local:000000000000:collection/x", cc.CollectionArn, "the defaults")
	require.NoError(t, d.Close())

	for _, o := range []*engine.Options{{AccountID: "12345"}, {AccountID: "12345678901a"}, {Region: "US-EAST-1"}} {
		require.Error(t, o.Validate(), "%+v", o)
		_, err := engine.Open(t.TempDir(), o)
		require.Error(t, err, "%+v", o)
	}
}
