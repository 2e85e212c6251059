package npy

import (
	"errors"
	"fmt"
)

// ErrFormat reports input that is not an embedding array this package
// accepts. Every Decode and [NewReader] failure on bad input wraps it, with a
// reason naming what is wrong and what is accepted, so callers can map it to
// one user-facing error (InvalidImageFormatException) and still show why.
var ErrFormat = errors.New("npy: invalid array")

// accepted is appended to dtype, order and shape errors: the user's fix is
// to send what this says.
const accepted = "want little-endian float32 ('<f4') or float64 ('<f8'), C order, shape (d,) or (n, d)"

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}
