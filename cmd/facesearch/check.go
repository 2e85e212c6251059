package main

import (
	"context"
	"errors"
)

// check is not written yet.
func (m *Main) check(ctx context.Context, args []string) error {
	return errors.New("check: not available in this build yet")
}
