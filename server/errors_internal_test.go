package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/facesearch/facesearch/engine"
)

// TestToAPIError: engine errors keep their code; internal details never
// reach the client.
func TestToAPIError(t *testing.T) {
	s := &Server{opts: &Options{RequestTimeout: time.Second}}
	expired, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"engine error", context.Background(), &engine.Error{Code: engine.CodeResourceNotFound, Message: "no c"}, 400, engine.CodeResourceNotFound, "no c"},
		{"wrapped engine error", context.Background(), fmt.Errorf("x: %w", &engine.Error{Code: engine.CodeConflict, Message: "dup"}), 400, engine.CodeConflict, "dup"},
		{"engine internal", context.Background(), &engine.Error{Code: engine.CodeInternalServerError, Message: "pebble: /var/lib/secret/000001.sst corrupt"}, 500, CodeInternalServerError, "request"},
		{"closed", context.Background(), engine.ErrClosed, 503, CodeServiceUnavailable, "shutting down"},
		{"deadline", expired, context.DeadlineExceeded, http.StatusRequestTimeout, CodeRequestTimeout, "1s"},
		{"canceled", canceled, context.Canceled, 499, CodeRequestCanceled, "closed"},
		{"deadline without an expired context", context.Background(), context.DeadlineExceeded, 500, CodeInternalServerError, "request"},
		{"anything else", context.Background(), errors.New("disk on fire at /dev/sda"), 500, CodeInternalServerError, "request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.toAPIError(tt.ctx, tt.err)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, tt.wantCode, got.Code)
			assert.Contains(t, got.Message, tt.wantMsg)
			assert.NotContains(t, got.Message, "secret")
			assert.NotContains(t, got.Message, "/dev/sda")
		})
	}
}
