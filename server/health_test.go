package server_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// sickBackend is an engine that reports the health it is given.
type sickBackend struct {
	*engine.Engine
	err atomic.Pointer[error]
}

func (b *sickBackend) Health() error {
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}

// A backend with a Health method decides /healthz, on the API's listener
// and on the metrics one: 503 with the reason while it reports an error.
func TestHealthzAsksTheBackend(t *testing.T) {
	b := &sickBackend{Engine: newEngine(t)}
	s, err := server.New(b, &server.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	for name, h := range map[string]http.Handler{"api": s, "metrics": s.MetricsHandler()} {
		t.Run(name, func(t *testing.T) {
			get := func() (int, string) {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
				body, _ := io.ReadAll(w.Result().Body)
				return w.Code, string(body)
			}
			b.err.Store(nil)
			code, body := get()
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "ok\n", body)
			sick := errors.New("the disk is full")
			b.err.Store(&sick)
			code, body = get()
			require.Equal(t, http.StatusServiceUnavailable, code)
			require.True(t, strings.Contains(body, "the disk is full"), body)
		})
	}
}
