package main

import (
	"context"
	"errors"
)

// backup is not written yet.
func (m *Main) backup(ctx context.Context, args []string) error {
	return errors.New("backup: not available in this build yet")
}
