package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Backup writes a consistent copy of the database into dir, which must not
// exist yet (an error wrapping [fs.ErrExist] says it does), while the
// engine stays in use. The copy is the state as of one
// instant: every call holds one atomic batch, so each call is in it whole or
// not at all, and every call that returned before Backup began is in it
// (bulk-import batches included: a batch ingested while the copy is made
// waits for it). Files are hard-linked where
// the file system allows, so a backup on the same file system is fast and
// small until the stores diverge.
//
// Restore by opening the copy: [Open](dir, nil), or `facesearch serve --data
// dir`. Only the process that has the store open can back it up; another
// process is refused with [ErrLocked] by [Open].
func (e *Engine) Backup(dir string) error {
	// Held shared so that Close waits for the checkpoint to finish.
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	switch _, err := os.Stat(dir); {
	case err == nil:
		return fmt.Errorf("engine: backup: %s: %w; give a new directory", dir, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("engine: backup: %w", err)
	}
	if err := e.store.Checkpoint(dir); err != nil {
		return fmt.Errorf("engine: backup to %s: %w", dir, err)
	}
	return nil
}
