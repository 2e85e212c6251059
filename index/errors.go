package index

import "errors"

// ErrDimension reports a query whose length differs from the matrix
// dimension. [Matrix.Search] wraps it with both lengths.
var ErrDimension = errors.New("index: vector length does not match the matrix dimension")

// ErrTier reports a tier name [ParseTier] does not know.
var ErrTier = errors.New("index: unknown tier")

// ErrPassFailed is what the other searches of a shared pass get when the
// pass fails under its leader (a panic there, which its leader's caller
// sees): they are not answered, and say so.
var ErrPassFailed = errors.New("index: the shared pass this search was part of failed")
