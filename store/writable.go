package store

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// writable is what the writable open of a checked store needs.
type writable struct {
	popts   *pebble.Options
	state   dirState
	reopen  bool     // the store moves to a newer format (see pebbleOptions)
	orphans []string // set aside before the open (see setAsideOrphans)
	logf    func(format string, args ...any)
	cache   *pebble.Cache // a reference to popts.Cache to drop once opened, if not nil
}

// OpenWritable gives write access to a store opened with
// [Options.WritableLater]: it closes the read-only database and opens the
// same directory, locked all the while, for writing. What the caller read
// before stays true: nothing could change the directory in between. It
// does nothing to a store opened otherwise. If it fails, the store is
// closed.
func (s *Store) OpenWritable() error {
	w := s.pending
	if w == nil {
		return nil
	}
	s.pending = nil
	defer w.cache.Unref()
	err := s.closeDB()
	if err == nil {
		err = s.openWritable(w)
	}
	if err != nil {
		return errors.Join(err, s.lock.Close())
	}
	return nil
}

// openWritable opens s, whose database is closed, with write access.
func (s *Store) openWritable(w *writable) error {
	if err := s.lock.ensureFile(); err != nil {
		return err
	}
	w.popts.Lock = s.lock.pebble
	if err := setAsideOrphans(w.popts.FS, s.dir, w.orphans, w.logf); err != nil {
		return err
	}
	db, err := pebble.Open(s.dir, w.popts)
	if err == nil && w.reopen {
		if err = db.Close(); err == nil {
			db, err = pebble.Open(s.dir, w.popts)
		}
	}
	if err != nil {
		return openError(s.dir, w.popts.FS, w.state, err)
	}
	s.db, s.popts, s.readOnly = db, w.popts, false
	if err := s.finishOpen(w.state); err != nil {
		return errors.Join(err, s.closeDB())
	}
	return nil
}

// closeDB closes s's Pebble database, leaving the directory locked.
func (s *Store) closeDB() error {
	err := s.db.Close()
	s.db = nil
	return err
}

// orphanTables are the table files in dir that levels, the manifest's
// tables, do not name.
func orphanTables(fs vfs.FS, dir string, levels [][]pebble.SSTableInfo) ([]string, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", dir, err)
	}
	live := map[uint64]bool{}
	for _, tables := range levels {
		for _, t := range tables {
			live[uint64(t.BackingSSTNum)] = true
		}
	}
	var orphans []string
	for _, name := range names {
		num, ok := strings.CutSuffix(name, ".sst")
		if n, err := strconv.ParseUint(num, 10, 64); ok && err == nil && !live[n] {
			orphans = append(orphans, name)
		}
	}
	slices.Sort(orphans)
	return orphans, nil
}

// setAsideOrphans moves the orphan tables of dir into a new directory
// under salvaged/ instead of letting the writable open delete them. A
// crash during a flush, compaction or ingest leaves such tables, and then
// they hold nothing the store lost; a manifest cut short (its last edits
// lost while the files they named and deleted stayed so) leaves tables
// whose records the store, opened at the manifest's older state, no
// longer has, and which the two cannot be told apart by: so no table is
// ever deleted unseen.
func setAsideOrphans(fs vfs.FS, dir string, orphans []string, logf func(string, ...any)) error {
	if len(orphans) == 0 {
		return nil
	}
	saved := fs.PathJoin(dir, "salvaged", time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := fs.MkdirAll(saved, 0o755); err != nil {
		return fmt.Errorf("store: set aside orphan tables: %w", err)
	}
	for _, name := range orphans {
		if err := fs.Rename(fs.PathJoin(dir, name), fs.PathJoin(saved, name)); err != nil {
			return fmt.Errorf("store: set aside orphan table %s: %w", name, err)
		}
	}
	if err := errors.Join(syncDir(fs, saved), syncDir(fs, dir)); err != nil {
		return fmt.Errorf("store: set aside orphan tables: %w", err)
	}
	logf("%s held %d tables its manifest does not name (%s): moved to %s. A crash during a flush or "+
		"compaction leaves such tables with nothing lost; if the manifest was cut short or restored from an "+
		"older copy, they hold records the store, opened at the manifest's state, no longer has",
		dir, len(orphans), strings.Join(orphans, " "), saved)
	return nil
}
