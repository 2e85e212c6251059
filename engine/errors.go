package engine

import (
	"errors"
	"fmt"
	"strings"
)

// Rekognition error codes. [Error.Code] holds one of them; the server sends it
// as the response's __type.
const (
	CodeInvalidParameter            = "InvalidParameterException"
	CodeResourceNotFound            = "ResourceNotFoundException"
	CodeResourceAlreadyExists       = "ResourceAlreadyExistsException"
	CodeConflict                    = "ConflictException"
	CodeServiceQuotaExceeded        = "ServiceQuotaExceededException"
	CodeIdempotentParameterMismatch = "IdempotentParameterMismatchException"
	CodeInvalidPaginationToken      = "InvalidPaginationTokenException"
	CodeInvalidImageFormat          = "InvalidImageFormatException"
	CodeImageTooLarge               = "ImageTooLargeException"
	CodeThrottling                  = "ThrottlingException"
	CodeInternalServerError         = "InternalServerError"
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
	ErrInvalidParameter            = &Error{Code: CodeInvalidParameter}
	ErrResourceNotFound            = &Error{Code: CodeResourceNotFound}
	ErrResourceAlreadyExists       = &Error{Code: CodeResourceAlreadyExists}
	ErrConflict                    = &Error{Code: CodeConflict}
	ErrServiceQuotaExceeded        = &Error{Code: CodeServiceQuotaExceeded}
	ErrIdempotentParameterMismatch = &Error{Code: CodeIdempotentParameterMismatch}
	ErrInvalidPaginationToken      = &Error{Code: CodeInvalidPaginationToken}
	ErrInvalidImageFormat          = &Error{Code: CodeInvalidImageFormat}
	ErrInternal                    = &Error{Code: CodeInternalServerError}
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

// validator gathers every constraint violation of one request, so a caller
// learns of all of them at once, in Rekognition's wording.
type validator struct{ problems []string }

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	switch len(v.problems) {
	case 0:
		return nil
	case 1:
		return invalid("1 validation error detected: %s", v.problems[0])
	default:
		return invalid("%d validation errors detected: %s", len(v.problems), strings.Join(v.problems, "; "))
	}
}
