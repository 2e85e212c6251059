package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/facesearch/facesearch/engine"
)

// maxDrainBytes is how much of a body over the limit the server reads and
// discards before answering, so a client that is still sending reads the
// ImageTooLargeException instead of a connection reset. Past it the
// server answers and closes, as it must stop reading somewhere.
const maxDrainBytes = 32 << 20

// readBody reads the whole body before the request takes a slot, under its
// own deadline: [Options.BodyTimeout] plus one second for every
// [Options.MinBodyRate] bytes received, so a body trickling in costs its
// connection and nothing else. A body over [Options.MaxBodyBytes] is
// refused with ImageTooLargeException once up to maxDrainBytes of it are
// read and discarded.
//
// The bytes of every body being read or served count against
// [Options.MaxBufferedBodyBytes]; release returns a body's share once the
// request is done with it. A body that would go over is refused with
// ThrottlingException.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), aerr *apiError) {
	var charged int64
	release = func() { s.buffered.Add(-charged) }
	body, aerr = s.readBodyCharged(w, r, &charged)
	return body, release, aerr
}

func (s *Server) readBodyCharged(w http.ResponseWriter, r *http.Request, charged *int64) ([]byte, *apiError) {
	limit := s.opts.MaxBodyBytes
	tooLarge := &apiError{Status: http.StatusBadRequest, Code: engine.CodeImageTooLarge,
		Message: fmt.Sprintf("the request body is larger than %d bytes", limit)}
	rc := http.NewResponseController(w)
	// The answer's deadline runs from the body's end, however long the
	// body took.
	defer func() { rc.SetWriteDeadline(time.Now().Add(s.opts.RequestTimeout + writeMargin)) }()
	body := &pacedReader{r: r.Body, rc: rc, start: time.Now(), grace: s.opts.BodyTimeout, rate: s.opts.MinBodyRate}
	if r.ContentLength > limit {
		if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
			// The client waits for a go-ahead it will not get: it sends
			// nothing more, so there is nothing to drain.
			w.Header().Set("Connection", "close")
			return nil, tooLarge
		}
		return nil, s.drain(w, body, tooLarge)
	}
	b, err := s.readAllCharged(io.LimitReader(body, limit+1), charged)
	if errors.Is(err, errBodyBudget) {
		return nil, s.drain(w, body, &apiError{Status: http.StatusBadRequest, Code: engine.CodeThrottling,
			Message: fmt.Sprintf("Rate exceeded: the request bodies in the server hold %d bytes; retry with backoff", s.opts.MaxBufferedBodyBytes)})
	}
	if err != nil {
		return nil, s.bodyError(w, err)
	}
	if int64(len(b)) > limit {
		return nil, s.drain(w, body, tooLarge)
	}
	rc.SetReadDeadline(time.Time{}) // the body is in: nothing more to pace
	return b, nil
}

// errBodyBudget means a body would take the bodies in the server past
// Options.MaxBufferedBodyBytes.
var errBodyBudget = errors.New("server: the body budget is spent")

// readAllCharged reads r to its end like io.ReadAll, adding every byte of
// buffer it allocates to s.buffered and *charged; it fails with
// errBodyBudget rather than go over the budget.
func (s *Server) readAllCharged(r io.Reader, charged *int64) ([]byte, error) {
	var b []byte
	for {
		if len(b) == cap(b) {
			grown := append(b, 0)[:len(b)] // the growth io.ReadAll uses
			n := int64(cap(grown) - cap(b))
			if s.buffered.Add(n) > s.opts.MaxBufferedBodyBytes {
				s.buffered.Add(-n)
				return nil, errBodyBudget
			}
			*charged += n
			b = grown
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// drain discards the rest of an oversized body, up to maxDrainBytes, and
// returns refusal. A body that does not end within them, or in time, closes
// the connection after the answer.
func (s *Server) drain(w http.ResponseWriter, body io.Reader, refusal *apiError) *apiError {
	if _, err := io.CopyN(io.Discard, body, maxDrainBytes); !errors.Is(err, io.EOF) {
		w.Header().Set("Connection", "close")
	}
	return refusal
}

// bodyError maps a failed body read to the wire; the connection is not
// reused, since the request's end was never found.
func (s *Server) bodyError(w http.ResponseWriter, err error) *apiError {
	w.Header().Set("Connection", "close")
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &apiError{Status: http.StatusRequestTimeout, Code: CodeRequestTimeout,
			Message: fmt.Sprintf("the request body arrived too slowly: it must arrive within %v plus one second per %d bytes", s.opts.BodyTimeout, s.opts.MinBodyRate)}
	}
	return &apiError{Status: http.StatusBadRequest, Code: CodeSerialization,
		Message: "could not read the request body: " + err.Error()}
}

// pacedReader reads a body under a deadline that starts at grace and
// grows by one second for every rate bytes read.
type pacedReader struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	// A writer without deadlines (httptest.ResponseRecorder) reads unpaced.
	p.rc.SetReadDeadline(p.start.Add(p.grace + time.Duration(p.n)*time.Second/time.Duration(p.rate)))
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}
