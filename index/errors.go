package index

import "errors"

// ErrDimension reports a query whose length differs from the matrix
// dimension. [Matrix.Search] wraps it with both lengths.
var ErrDimension = errors.New("index: vector length does not match the matrix dimension")

// ErrTier reports a tier name [ParseTier] does not know.
var ErrTier = errors.New("index: unknown tier")
