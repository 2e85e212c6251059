package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// TestSigningRegion: an operation's context carries the region of the
// verified signature; an unsigned server's operations get none.
func TestSigningRegion(t *testing.T) {
	operations["SigningRegion"] = func(ctx context.Context, _ *engine.Engine, _ []byte) ([]byte, error) {
		region, ok := SigningRegion(ctx)
		return json.Marshal(map[string]any{"Region": region, "OK": ok})
	}
	t.Cleanup(func() { delete(operations, "SigningRegion") })
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })

	tests := []struct {
		name  string
		creds map[string]string
		want  string
	}{
		{"signed", map[string]string{"AKID": "secret"}, `{"Region":"ap-south-2","OK":true}`},
		{"unsigned server", nil, `{"Region":"","OK":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(e, &Options{Credentials: tt.creds, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			ts := httptest.NewServer(s)
			defer ts.Close()
			req, err := http.NewRequest(http.MethodPost, ts.URL+"/", strings.NewReader(`{}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("X-Amz-Target", targetPrefix+"SigningRegion")
			sum := sha256.Sum256([]byte(`{}`))
			require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
				req, hex.EncodeToString(sum[:]), sigService, "ap-south-2", time.Now()))
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(b))
		})
	}
}
