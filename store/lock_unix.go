//go:build unix

package store

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// flockDir takes an exclusive flock(2) on the directory dir, held until the
// returned closer closes it. An in-memory file system has no descriptor to
// lock, and needs none: it lives in one process, which Pebble's own lock
// covers.
func flockDir(fs vfs.FS, dir string) (io.Closer, error) {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", dir, err)
	}
	fd := d.Fd()
	if fd == vfs.InvalidFd {
		return d, nil
	}
	if err := syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("store: lock %s: %w", dir, err)
	}
	// Closing the descriptor releases the lock.
	return d, nil
}
