package main

import (
	"context"
	"errors"
)

// describe is not written yet.
func (m *Main) describe(ctx context.Context, args []string) error {
	return errors.New("describe: not available in this build yet")
}
