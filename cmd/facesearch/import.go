package main

import (
	"context"
	"errors"
)

// importCmd is not written yet.
func (m *Main) importCmd(ctx context.Context, args []string) error {
	return errors.New("import: not available in this build yet")
}
