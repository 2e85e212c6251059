package engine

import (
	"errors"
	"fmt"

	"github.com/facesearch/facesearch/store"
)

// Rekognition error codes. [Error.Code] holds one of them; the server sends it
// as the response's __type.
const (
	// CodeInvalidParameter: an input field breaks its constraint, the
	// engine is read-only, or an embedding is unusable.
	CodeInvalidParameter = "InvalidParameterException"
	// CodeResourceNotFound: the collection, user or face does not exist.
	CodeResourceNotFound = "ResourceNotFoundException"
	// CodeResourceAlreadyExists: the collection, or an imported face ID,
	// exists already.
	CodeResourceAlreadyExists = "ResourceAlreadyExistsException"
	// CodeConflict: CreateUser of a user that exists.
	CodeConflict = "ConflictException"
	// CodeServiceQuotaExceeded: the call would give a user more than 100
	// faces.
	CodeServiceQuotaExceeded = "ServiceQuotaExceededException"
	// CodeIdempotentParameterMismatch: a ClientRequestToken used again with
	// other parameters.
	CodeIdempotentParameterMismatch = "IdempotentParameterMismatchException"
	// CodeInvalidPaginationToken: a NextToken this listing did not issue,
	// or issued for another collection or other parameters.
	CodeInvalidPaginationToken = "InvalidPaginationTokenException"
	// CodeInvalidImageFormat: Image.Bytes is not an embedding array.
	CodeInvalidImageFormat = "InvalidImageFormatException"
	// CodeImageTooLarge: Image.Bytes is over its size limit.
	CodeImageTooLarge = "ImageTooLargeException"
	// CodeThrottling: the server refused a request over its concurrency
	// limit; the engine itself never returns it.
	CodeThrottling = "ThrottlingException"
	// CodeInternalServerError: storage failed; [Error.Err] holds the cause.
	CodeInternalServerError = "InternalServerError"
)

// Error is every error the engine returns to a caller: a Rekognition error
// code and a message naming the offending parameter or resource.
// Use errors.Is with the sentinels below to test the code, and errors.As to
// read the message.
type Error struct {
	Code    string
	Message string
	// Err is the underlying cause of an InternalServerError, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels for errors.Is: each matches every [Error] with its code.
var (
	// ErrInvalidParameter matches errors of [CodeInvalidParameter].
	ErrInvalidParameter = &Error{Code: CodeInvalidParameter}
	// ErrResourceNotFound matches errors of [CodeResourceNotFound].
	ErrResourceNotFound = &Error{Code: CodeResourceNotFound}
	// ErrResourceAlreadyExists matches errors of [CodeResourceAlreadyExists].
	ErrResourceAlreadyExists = &Error{Code: CodeResourceAlreadyExists}
	// ErrConflict matches errors of [CodeConflict].
	ErrConflict = &Error{Code: CodeConflict}
	// ErrServiceQuotaExceeded matches errors of [CodeServiceQuotaExceeded].
	ErrServiceQuotaExceeded = &Error{Code: CodeServiceQuotaExceeded}
	// ErrIdempotentParameterMismatch matches errors of
	// [CodeIdempotentParameterMismatch].
	ErrIdempotentParameterMismatch = &Error{Code: CodeIdempotentParameterMismatch}
	// ErrInvalidPaginationToken matches errors of [CodeInvalidPaginationToken].
	ErrInvalidPaginationToken = &Error{Code: CodeInvalidPaginationToken}
	// ErrInvalidImageFormat matches errors of [CodeInvalidImageFormat].
	ErrInvalidImageFormat = &Error{Code: CodeInvalidImageFormat}
	// ErrInternal matches errors of [CodeInternalServerError].
	ErrInternal = &Error{Code: CodeInternalServerError}
	// ErrClosed is returned by every call on a closed engine.
	ErrClosed = errors.New("engine: closed")
)

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return errorf(CodeResourceNotFound, format, args...)
}

func invalid(format string, args ...any) *Error {
	return errorf(CodeInvalidParameter, format, args...)
}

// internal wraps a storage failure; the caller sees InternalServerError and
// errors.Is still reaches the cause. A write refused for lack of disk space
// is ThrottlingException instead: Rekognition documents it as "temporarily
// unable to process the request. Try your call again", and every AWS SDK
// retries it with backoff (aws-sdk-go-v2 and botocore list it among their
// throttling codes), so clients ride out the time it takes to free space.
func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, ErrDiskFull) {
		return &Error{Code: CodeThrottling, Message: op + ": " + err.Error(), Err: err}
	}
	return &Error{Code: CodeInternalServerError, Message: op + ": " + err.Error(), Err: err}
}

// ErrCorrupt is returned by [Open] for a store it cannot trust, and wrapped
// by [CheckReport.Err]; it is [store.ErrCorrupt].
var ErrCorrupt = store.ErrCorrupt

// ErrLocked is returned by [Open] and [Check] when another process has the
// directory open; it is [store.ErrLocked].
var ErrLocked = store.ErrLocked

// ImportError is a record that failed its batch: the record and every
// record added since the last commit were discarded.
type ImportError struct {
	// Record is the failed record's position among all records passed to
	// [Importer.Add], from 0.
	Record int
	// Discarded is how many records were dropped with the batch, the failed
	// one included.
	Discarded int
	// Err is why, an [*Error] with the Rekognition code.
	Err error
}

// Error says which record failed, why, and how much of its batch went.
func (e *ImportError) Error() string {
	return fmt.Sprintf("import record %d: %v (%d records of its batch discarded)", e.Record, e.Err, e.Discarded)
}

// Unwrap returns the reason, so errors.Is(err, ErrInvalidParameter) and the
// like work.
func (e *ImportError) Unwrap() error { return e.Err }

// ErrImporterClosed is returned by calls on an [Importer] after Close.
var ErrImporterClosed = errors.New("engine: importer closed")
