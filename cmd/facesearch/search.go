package main

import (
	"context"
	"errors"
)

// search is not written yet.
func (m *Main) search(ctx context.Context, args []string) error {
	return errors.New("search: not available in this build yet")
}
