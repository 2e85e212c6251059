package store

import "errors"

var (
	// ErrLocked means another process has the data directory open.
	ErrLocked = errors.New("store: data directory is in use by another process")
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt means a record could not be decoded or contradicts another.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrOldLayout means a read-only Open found a store written in the
	// layout of an earlier release, which only a writable Open upgrades.
	ErrOldLayout = errors.New("store: the store is in the layout of an earlier release")
)
