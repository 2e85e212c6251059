package main

import (
	"context"
	"errors"
)

// users is not written yet.
func (m *Main) users(ctx context.Context, args []string) error {
	return errors.New("users: not available in this build yet")
}
