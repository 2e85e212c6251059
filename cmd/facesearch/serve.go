package main

import (
	"context"
	"errors"
)

// serve is not written yet.
func (m *Main) serve(ctx context.Context, args []string) error {
	return errors.New("serve: not available in this build yet")
}
