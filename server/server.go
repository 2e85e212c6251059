// Package server speaks Amazon Rekognition's wire protocol (AWS JSON 1.1
// over HTTP) in front of an [engine.Engine], so unmodified AWS SDKs work
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
//   - GET /healthz answers "ok"; GET /metrics serves Prometheus metrics.
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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/facesearch/facesearch/engine"
)

// Options configure [New]. A nil *Options is valid and means all defaults.
type Options struct {
	// Credentials maps AWS access key IDs to their secret access keys (see
	// [LoadCredentials]). When it is not empty, every request except
	// GET /healthz must carry a valid AWS Signature Version 4 made with one
	// of these keys for the service "rekognition", covering host,
	// X-Amz-Date, Content-Type and every X-Amz-* header it has.
	// The default value is nil: requests are not authenticated, so serve only
	// on a loopback address.
	Credentials map[string]string
	// Region, when set, is the only region a signature's credential scope
	// may name; a request signed for another gets InvalidSignatureException.
	// Collection ARNs name the region a request was signed for.
	// The default value is "": any region.
	Region string
	// UnsignedMetrics serves GET /metrics without a signature even when
	// Credentials is set, for scrapers that cannot sign requests.
	// The default value is false.
	UnsignedMetrics bool
	// MaxBodyBytes bounds a request body; a larger one is refused with
	// ImageTooLargeException before more than this many bytes are read.
	// The default value is 8 MiB.
	MaxBodyBytes int64
	// BodyTimeout and MinBodyRate pace a request body, which is read in
	// full before the request takes one of [Options.MaxConcurrentRequests]:
	// it must arrive within BodyTimeout plus one second for every
	// MinBodyRate bytes, or it gets RequestTimeoutException. A slow body
	// costs its own connection, never another caller's turn.
	// The default values are 10 seconds and 64 KiB per second.
	BodyTimeout time.Duration
	MinBodyRate int64
	// MaxBufferedBodyBytes bounds the memory held by the bodies of all
	// requests being read or served at once; a body that would go over it
	// gets ThrottlingException. Bodies arriving slowly hold only what has
	// arrived. The default value is 1 GiB.
	MaxBufferedBodyBytes int64
	// MaxConcurrentRequests bounds the operations in flight; one more is
	// answered at once with ThrottlingException instead of queueing, so load
	// cannot grow memory without bound. The default value is 256.
	MaxConcurrentRequests int
	// RequestTimeout bounds one operation; its context is cancelled after
	// it and a request that did not finish gets RequestTimeoutException.
	// The default value is 30 seconds.
	RequestTimeout time.Duration
	// MaxClockSkew is how far a signed request's X-Amz-Date may be from the
	// server's clock, as in AWS. The default value is 15 minutes.
	MaxClockSkew time.Duration
	// Logger receives one structured record per request and the details of
	// internal errors. The default value is [slog.Default].
	Logger *slog.Logger
}

// Validate reports every problem of o at once.
func (o *Options) Validate() error {
	var errs []error
	for id, secret := range o.Credentials {
		if id == "" {
			errs = append(errs, errors.New("server: Options.Credentials has an empty access key ID"))
		} else if secret == "" {
			errs = append(errs, fmt.Errorf("server: Options.Credentials[%q] has an empty secret", id))
		}
	}
	if o.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxBodyBytes %d is negative", o.MaxBodyBytes))
	}
	if o.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("server: Options.BodyTimeout %v is negative", o.BodyTimeout))
	}
	if o.MaxBufferedBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxBufferedBodyBytes %d is negative", o.MaxBufferedBodyBytes))
	}
	if o.MinBodyRate < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MinBodyRate %d is negative", o.MinBodyRate))
	}
	if o.MaxConcurrentRequests < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxConcurrentRequests %d is negative", o.MaxConcurrentRequests))
	}
	if o.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("server: Options.RequestTimeout %v is negative", o.RequestTimeout))
	}
	if o.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("server: Options.MaxClockSkew %v is negative", o.MaxClockSkew))
	}
	return errors.Join(errs...)
}

func (o *Options) clone() *Options {
	if o == nil {
		return &Options{}
	}
	c := *o
	if o.Credentials != nil {
		c.Credentials = make(map[string]string, len(o.Credentials))
		for k, v := range o.Credentials {
			c.Credentials[k] = v
		}
	}
	return &c
}

func (o *Options) ensureDefaults() {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 8 << 20
	}
	if o.BodyTimeout == 0 {
		o.BodyTimeout = 10 * time.Second
	}
	if o.MaxBufferedBodyBytes == 0 {
		o.MaxBufferedBodyBytes = 1 << 30
	}
	if o.MinBodyRate == 0 {
		o.MinBodyRate = 64 << 10
	}
	if o.MaxConcurrentRequests == 0 {
		o.MaxConcurrentRequests = 256
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = 15 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Server serves the Rekognition API of one engine. It is an [http.Handler]
// and safe for concurrent use.
type Server struct {
	engine *engine.Engine
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

// New returns a server for e. The caller keeps ownership of e: close the
// engine after the HTTP server that uses s has shut down.
func New(e *engine.Engine, opts *Options) (*Server, error) {
	if e == nil {
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
		healthz(w, r)
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

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: CodeUnknownOperation,
		Message: fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)})
}

// serveAPI runs one operation and records its log line and metrics.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, reqID string) {
	start := s.now()
	opName, op := lookupOperation(r.Header.Get("X-Amz-Target"))
	label := opName
	if op == nil {
		label = "unknown" // bounded metric cardinality whatever clients send
	}
	code, err := s.runAPI(w, r, op)
	elapsed := s.now().Sub(start)
	s.metrics.observe(label, code, elapsed)

	attrs := []slog.Attr{
		slog.String("request_id", reqID),
		slog.String("operation", label),
		slog.String("code", code),
		slog.Duration("duration", elapsed),
		slog.String("remote", r.RemoteAddr),
	}
	level := slog.LevelInfo
	if code == CodeInternalServerError {
		level = slog.LevelError
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// runAPI answers one API request and returns the code it answered with
// ("OK" on success) and, for internal errors, the cause to log.
func (s *Server) runAPI(w http.ResponseWriter, r *http.Request, op operation) (code string, cause error) {
	defer func() {
		// A panic must cost one request, not the connection or the process.
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			cause = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			code = writeError(w, internalError())
		}
	}()
	var sig *sigCheck
	if len(s.opts.Credentials) > 0 {
		// Header-level checks first, so an unknown key or a stale date costs
		// neither a slot nor a body read, and tells nothing of the API.
		var err *apiError
		if sig, err = s.authenticate(r); err != nil {
			return writeError(w, err), nil
		}
	}
	if err := s.checkRequest(r, op); err != nil {
		return writeError(w, err), nil
	}
	// The body is read and its signature checked before the request takes
	// a slot, so slots go only to requests ready to run.
	body, release, rerr := s.readBody(w, r)
	defer release()
	if rerr != nil {
		return writeError(w, rerr), nil
	}
	if sig != nil {
		if err := sig.verify(r, body); err != nil {
			return writeError(w, err), nil
		}
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		return writeError(w, &apiError{Status: http.StatusBadRequest, Code: engine.CodeThrottling,
			Message: fmt.Sprintf("Rate exceeded: %d requests are in flight; retry with backoff", cap(s.slots))}), nil
	}

	ctx, cancel := context.WithTimeout(engine.WithRegion(r.Context(), scopeRegion(r, sig)), s.opts.RequestTimeout)
	defer cancel()
	out, err := op(ctx, s.engine, body)
	if err != nil {
		ae := s.toAPIError(ctx, err)
		if ae.Code == CodeInternalServerError {
			cause = err
		}
		return writeError(w, ae), cause
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return "OK", nil
}

const contentType = "application/x-amz-json-1.1"

// checkRequest checks what AWS JSON 1.1 requires of a request before its
// body is read.
func (s *Server) checkRequest(r *http.Request, op operation) *apiError {
	if r.Method != http.MethodPost {
		return &apiError{Status: http.StatusMethodNotAllowed, Code: CodeUnknownOperation,
			Message: fmt.Sprintf("method %s is not allowed on /; AWS JSON 1.1 requests are POST", r.Method)}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != contentType {
			return &apiError{Status: http.StatusBadRequest, Code: CodeSerialization,
				Message: fmt.Sprintf("Content-Type %q is not accepted; send %s", ct, contentType)}
		}
	} else {
		return &apiError{Status: http.StatusBadRequest, Code: CodeSerialization,
			Message: "the Content-Type header is missing; send " + contentType}
	}
	if op == nil {
		t := r.Header.Get("X-Amz-Target")
		if t == "" {
			return &apiError{Status: http.StatusBadRequest, Code: CodeUnknownOperation,
				Message: "the X-Amz-Target header is missing; send RekognitionService.<Operation>"}
		}
		return &apiError{Status: http.StatusBadRequest, Code: CodeUnknownOperation,
			Message: fmt.Sprintf("unknown operation %s; facesearch serves %s", clip(t), strings.Join(operationNames(), ", "))}
	}
	return nil
}

// toAPIError maps an engine error to the wire. Engine errors keep their
// code; anything else is internal and its details stay in the log.
func (s *Server) toAPIError(ctx context.Context, err error) *apiError {
	var ee *engine.Error
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ee):
		if ee.Code == engine.CodeInternalServerError {
			return internalError()
		}
		return &apiError{Status: http.StatusBadRequest, Code: ee.Code, Message: ee.Message}
	case errors.Is(err, engine.ErrClosed):
		// Only while shutting down; 503 makes SDKs retry elsewhere or later.
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeServiceUnavailable,
			Message: "facesearch is shutting down; retry"}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return &apiError{Status: http.StatusRequestTimeout, Code: CodeRequestTimeout,
			Message: fmt.Sprintf("the request did not finish within %v", s.opts.RequestTimeout)}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The client went away; nobody reads this answer.
		return &apiError{Status: 499, Code: CodeRequestCanceled, Message: "the client closed the request"}
	}
	return internalError()
}

func internalError() *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternalServerError,
		Message: "Internal server error; the server log has the details under this request's x-amzn-RequestId"}
}

// clip shortens client-controlled text echoed in messages.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
