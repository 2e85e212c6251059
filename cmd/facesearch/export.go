package main

import (
	"context"
	"errors"
)

// export is not written yet.
func (m *Main) export(ctx context.Context, args []string) error {
	return errors.New("export: not available in this build yet")
}
