package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/facesearch/facesearch/engine"
)

// One API call: the operation named by X-Amz-Target, its checks, the
// engine call, and the error mapped to Rekognition's wire shape.

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
