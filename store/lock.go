package store

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// lockFile is the name of Pebble's lock file in a store directory.
const lockFile = "LOCK"

// dirLock holds a store directory from the start of Open to the Store's
// Close, across every Pebble open in between (the read-only checks, the
// read-only open a caller loads from, the writable open), so no other
// process can change the directory between them. It takes facesearch's own
// lock, flock(2) on the directory itself, which creates no file, and
// Pebble's lock on LOCK, which an earlier release or Pebble's tools take.
// Pebble's lock creates LOCK when it is missing; then it is taken only by
// the writable open (see [dirLock.ensureFile]), so an Open that refuses
// the store leaves the directory without one, as it was.
type dirLock struct {
	dir    string
	fs     vfs.FS
	flock  io.Closer
	pebble *pebble.Lock // passed to every pebble.Open as Options.Lock
	noFile bool         // pebble holds no file yet: LOCK was missing
}

// lockDir locks dir, which exists. create says LOCK may be created at once
// (a new store).
func lockDir(fs vfs.FS, dir string, create bool) (*dirLock, error) {
	l := &dirLock{dir: dir, fs: fs}
	var err error
	if l.flock, err = flockDir(fs, dir); err != nil {
		return nil, err
	}
	lockFS := fs
	if _, err := fs.Stat(fs.PathJoin(dir, lockFile)); !create && errors.Is(err, os.ErrNotExist) {
		lockFS, l.noFile = noLockFileFS{fs}, true
	}
	if l.pebble, err = pebble.LockDirectory(dir, lockFS); err != nil {
		l.flock.Close()
		return nil, lockError(dir, err)
	}
	return l, nil
}

// ensureFile makes Pebble's lock a lock on LOCK, creating the file, before
// the writable open.
func (l *dirLock) ensureFile() error {
	if !l.noFile {
		return nil
	}
	real, err := pebble.LockDirectory(l.dir, l.fs)
	if err != nil {
		return lockError(l.dir, err)
	}
	l.pebble.Close()
	l.pebble, l.noFile = real, false
	return nil
}

// Close releases both locks; the Pebble databases opened with them must be
// closed first.
func (l *dirLock) Close() error {
	return errors.Join(l.pebble.Close(), l.flock.Close())
}

func lockError(dir string, err error) error {
	if isLockError(err) {
		return fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	return fmt.Errorf("store: lock %s: %w", dir, err)
}

// noLockFileFS is fs whose Lock holds nothing and creates no file: the
// directory's flock already keeps other facesearch processes out.
type noLockFileFS struct{ vfs.FS }

func (noLockFileFS) Lock(string) (io.Closer, error) { return io.NopCloser(nil), nil }
