package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/facesearch/facesearch/engine"
)

// Error codes the protocol layer answers with itself; every other code comes
// from the engine (see the engine.Code* constants).
const (
	// CodeSerialization means the body is not JSON, a member has the wrong
	// type, or a member is unknown.
	CodeSerialization = "SerializationException"
	// CodeUnknownOperation means X-Amz-Target names no operation, or the
	// method or path is not the API's.
	CodeUnknownOperation = "UnknownOperationException"
	// CodeUnrecognizedClient means the access key ID of a signature is not
	// one of the server's credentials.
	CodeUnrecognizedClient = "UnrecognizedClientException"
	// CodeInvalidSignature means the request is not signed, or its
	// signature, date or payload hash does not verify.
	CodeInvalidSignature = "InvalidSignatureException"
	// CodeRequestTimeout means the operation did not finish within
	// [Options.RequestTimeout], or its body arrived slower than
	// [Options.BodyTimeout] and [Options.MinBodyRate] allow.
	CodeRequestTimeout = "RequestTimeoutException"
	// CodeServiceUnavailable means the engine is closed: the server is
	// shutting down.
	CodeServiceUnavailable = "ServiceUnavailableException"
	// CodeInternalServerError is Rekognition's code for a server fault.
	CodeInternalServerError = engine.CodeInternalServerError
	// CodeRequestCanceled is logged (never seen by a client) when the client
	// went away before the answer.
	CodeRequestCanceled = "RequestCanceled"
)

// apiError is an error as it goes on the wire.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// writeError writes e in the AWS JSON 1.1 error shape and returns its code.
func writeError(w http.ResponseWriter, e *apiError) string {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-Errortype", e.Code)
	w.WriteHeader(e.Status)
	w.Write(body)
	return e.Code
}
