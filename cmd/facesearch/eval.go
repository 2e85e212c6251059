package main

import (
	"context"
	"errors"
)

// eval is not written yet.
func (m *Main) eval(ctx context.Context, args []string) error {
	return errors.New("eval: not available in this build yet")
}
