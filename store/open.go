package store

import (
	"errors"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// preflight opens the existing store in dir read-only and runs every check
// a writable Open would, so that a store Open refuses is left as it was.
// With salvage it cuts a damaged log (see [LogDamage]) and returns what it
// dropped. It also returns the store's format.
func preflight(dir string, popts *pebble.Options, state dirState, salvageLog bool) (pebble.FormatMajorVersion, *LogDamage, error) {
	ro := popts.Clone()
	ro.ReadOnly = true
	var dropped *LogDamage
	for {
		db, err := pebble.Open(dir, ro)
		if err != nil {
			err = openError(dir, ro.FS, state, err)
			var d *LogDamage
			if salvageLog && dropped == nil && errors.As(err, &d) {
				if err := salvage(ro.FS, dir, d); err != nil {
					return 0, nil, fmt.Errorf("store: salvage %s: %w", d.File, err)
				}
				dropped = d
				continue
			}
			return 0, nil, err
		}
		s := &Store{db: db, dir: dir, readOnly: true, popts: ro}
		format := db.FormatMajorVersion()
		err = s.preflightChecks(state)
		return format, dropped, errors.Join(err, db.Close())
	}
}

// preflightChecks are the checks of a writable Open that can refuse the
// store, run on it opened read-only. An old layout is not among them: the
// writable Open upgrades it.
func (s *Store) preflightChecks(state dirState) error {
	// Opens every table's footer and properties: a table damaged there is
	// refused now, not found by the engine's load after the writable open.
	// Damage inside a data block shows only when the block is read.
	if _, err := s.db.SSTables(pebble.WithProperties()); err != nil {
		return fmt.Errorf("%w: %s cannot be opened (%v); Open changed nothing", ErrDamaged, s.dir, err)
	}
	if _, err := s.layout(); err != nil {
		return err
	}
	secret, ok, err := s.get(keySecret)
	if err != nil {
		return err
	}
	if ok && len(secret) != 32 {
		return fmt.Errorf("%w: sys/secret has %d bytes, want 32", ErrCorrupt, len(secret))
	}
	if state == dirUnidentified && !ok {
		// A facesearch store has its secret from its first open on; a
		// Pebble database without one is someone else's, unless it is
		// empty (a first open that stopped before writing it).
		it, err := s.db.NewIter(nil)
		if err != nil {
			return err
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: %s holds a Pebble database that is not a facesearch store (it has no sys/secret)", ErrDamaged, s.dir)
		}
	}
	return nil
}

// openError says why Pebble could not open the store in dir.
func openError(dir string, fs vfs.FS, state dirState, err error) error {
	switch {
	case isLockError(err):
		return fmt.Errorf("%w: %s", ErrLocked, dir)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("store: open %s: %w", dir, err)
	case errors.Is(err, pebble.ErrDBDoesNotExist):
		what := "Pebble's files"
		if state == dirIdentified {
			what = "its identity file (" + identityFile + ")"
		}
		return fmt.Errorf("%w: %s has %s but no current manifest (its marker.manifest.* file is missing): "+
			"restore the store from a backup; Open changed nothing", ErrDamaged, dir, what)
	case pebble.IsCorruptionError(err):
		d, ferr := findLogDamage(fs, dir)
		if ferr == nil && d != nil {
			return d
		}
	}
	return fmt.Errorf("%w: %s cannot be opened (%v); Open changed nothing", ErrDamaged, dir, err)
}
