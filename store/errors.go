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
	// ErrDamaged means the directory holds a store that cannot be opened as
	// it is: its identity file is damaged, or Pebble cannot open the files
	// beside it. The error says which; Open changed nothing in the directory.
	ErrDamaged = errors.New("store: the directory holds a store that cannot be opened")
	// ErrNoStore means a read-only Open found no store in the directory.
	ErrNoStore = errors.New("store: no store in the directory")
	// ErrDiskFull means a write was refused because it would leave less free
	// space on the store's file system than [Options.MinFreeBytes], or came
	// while Pebble's flushes fail for lack of space. Nothing of it was
	// written; writes resume by themselves once space is freed, and reads go
	// on meanwhile. A store that Open found without room even to replay its
	// log is opened read-only, and takes writes again once reopened with
	// space.
	ErrDiskFull = errors.New("store: too little free disk space to take writes")
)
