package engine

import "github.com/facesearch/facesearch/store"

// ErrDiskFull is reached by errors.Is from the error of a mutating call
// refused because the disk is nearly full ([Options.MinFreeBytes]). The
// call's code is ThrottlingException, which clients retry; nothing of the
// call was written.
var ErrDiskFull = store.ErrDiskFull

// ErrDamaged is returned by [Open] and [Check] for a directory that holds a
// store Pebble cannot open as it is (a lost manifest marker, a damaged
// identity file, a missing table, ...). The error names the problem; the
// open changed nothing in the directory.
var ErrDamaged = store.ErrDamaged

// LogDamage describes a write-ahead log damaged before its end. [Open]
// refuses such a store with a *LogDamage error (which matches [ErrCorrupt])
// unless [Options.Salvage] is set.
type LogDamage = store.LogDamage

// Salvaged is what [Open] dropped from a damaged log under
// [Options.Salvage], or nil if it dropped nothing.
func (e *Engine) Salvaged() *LogDamage { return e.store.Salvaged() }
