// Package server speaks Amazon Rekognition's wire protocol (AWS JSON 1.1
// over HTTP) in front of an [engine.Engine] (or another [Backend]), so unmodified AWS SDKs work
// against facesearch with an endpoint override.
//
// A [Server] is an [http.Handler]:
//
//   - POST / with Content-Type application/x-amz-json-1.1 and
//     X-Amz-Target RekognitionService.<Operation> runs one of the 16
//     operations: decode the JSON body into the engine's input, call the
//     engine, encode its output. Errors are {"__type": code, "message": ...}
//     with the X-Amzn-ErrorType header and status 400 (500 for
//     InternalServerError, 503 while the engine closes, 408 past
//     [Options.RequestTimeout] or for a body slower than
//     [Options.BodyTimeout] and [Options.MinBodyRate] allow). The body is
//     read whole, at most [Options.MaxBodyBytes] and nested at most
//     [MaxJSONDepth] deep, before the request takes a slot.
//   - GET /healthz answers "ok" (503 with the reason when the backend
//     reports itself unhealthy); GET /metrics serves Prometheus metrics.
//     [Server.MetricsHandler] serves both without a signature, for a
//     listener of their own.
//
// Every response carries an x-amzn-RequestId. With [Options.Credentials]
// set, every request but /healthz (and /metrics with
// [Options.UnsignedMetrics]) must carry a valid AWS Signature Version 4
// covering host, X-Amz-Date, Content-Type and every X-Amz-* header, for
// [Options.Region] when that is set. The server holds no business rule:
// validation and every Rekognition error code but the protocol's own come
// from the engine.
package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/facesearch/facesearch/engine"
)

// Server serves the Rekognition API of one [Backend]: an engine, or a
// cluster node. It is an [http.Handler] and safe for concurrent use.
type Server struct {
	engine Backend
	opts   *Options
	log    *slog.Logger
	slots  chan struct{} // one token per operation in flight
	// buffered is the bytes held by request bodies, bounded by
	// Options.MaxBufferedBodyBytes.
	buffered atomic.Int64
	metrics  *metrics
	promh    http.Handler
	now      func() time.Time
}

var _ http.Handler = (*Server)(nil)

// New returns a server for e, an [*engine.Engine] or another [Backend].
// The caller keeps ownership of e: close it after the HTTP server that
// uses s has shut down.
func New(e Backend, opts *Options) (*Server, error) {
	if e == nil {
		return nil, errors.New("server: nil engine")
	}
	if en, ok := e.(*engine.Engine); ok && en == nil {
		return nil, errors.New("server: nil engine")
	}
	o := opts.clone()
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	s := &Server{
		engine:  e,
		opts:    o,
		log:     o.Logger,
		slots:   make(chan struct{}, o.MaxConcurrentRequests),
		metrics: newMetrics(reg, e),
		now:     time.Now,
	}
	s.promh = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return s, nil
}

// HTTPServer returns an [http.Server] for s on addr with the timeouts and
// header limit facesearch is meant to run with: headers within 10 s and
// 64 KiB, a request to anything but the API within a minute (an API body is
// paced by [Options.BodyTimeout] and [Options.MinBodyRate]), and the
// response written within the request timeout plus a margin.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      s.opts.RequestTimeout + writeMargin,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// writeMargin is how long past [Options.RequestTimeout] an answer may take
// to write.
const writeMargin = 60 * time.Second

// ServeHTTP routes a request: POST / to the API, GET /healthz, GET /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	w.Header().Set("X-Amzn-Requestid", reqID)
	switch r.URL.Path {
	case "/":
		s.serveAPI(w, r, reqID)
	case "/healthz":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		s.healthz(w, r)
	case "/metrics":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r, "GET, HEAD")
			return
		}
		if len(s.opts.Credentials) > 0 && !s.opts.UnsignedMetrics {
			chk, err := s.authenticate(r)
			if err == nil {
				err = chk.verify(r, nil) // a GET has no body to sign
			}
			if err != nil {
				writeError(w, err)
				return
			}
		}
		s.promh.ServeHTTP(w, r)
	default:
		writeError(w, &apiError{Status: http.StatusNotFound, Code: CodeUnknownOperation,
			Message: fmt.Sprintf("no resource at %s; the API is POST /, health is GET /healthz, metrics GET /metrics", r.URL.Path)})
	}
}

// healthz answers "ok", or 503 with the reason when the backend says it
// cannot serve (see [Backend]).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if h, ok := s.engine.(healthChecker); ok {
		if err := h.Health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "unhealthy: "+err.Error()+"\n")
			return
		}
	}
	io.WriteString(w, "ok\n")
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: CodeUnknownOperation,
		Message: fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)})
}
