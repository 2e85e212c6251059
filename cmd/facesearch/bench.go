package main

import (
	"context"
	"errors"
)

// bench is not written yet.
func (m *Main) bench(ctx context.Context, args []string) error {
	return errors.New("bench: not available in this build yet")
}
