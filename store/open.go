package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure [Open]. A nil *Options is valid and means all defaults.
type Options struct {
	// ReadOnly opens the store without taking writes (offline inspection).
	// The default value is false.
	ReadOnly bool
	// CacheSize is Pebble's block cache in bytes. The default value is 64 MiB.
	CacheSize int64
	// Logger receives Pebble's log lines. The default value discards them
	// except errors, which go to standard error.
	Logger pebble.Logger
	// FS is the file system the store lives on; crash tests pass one that
	// can lose what was not synced. The default value is the operating
	// system's.
	FS vfs.FS
	// MinFreeBytes is the free-space floor: a write that would leave less
	// free space than this on the store's file system is refused with
	// [ErrDiskFull], and writes resume once there is more. A negative value
	// turns the floor off. The default value is 5% of the file system's
	// size, at least 256 MiB and at most 20 GiB.
	MinFreeBytes int64
	// Salvage lets Open drop the records of a write-ahead log from a place
	// where it is damaged (see [LogDamage]), after copying the logs as they
	// were into the store's salvaged/ directory; [Store.Salvaged] says what
	// was dropped. Without it, Open refuses such a store. It has no effect
	// with ReadOnly. The default value is false.
	Salvage bool
}

// Open opens (creating if needed) the store in dir. It fails with [ErrLocked]
// when another process holds the directory.
//
// A directory that holds a store is never changed by an Open that fails:
// it is opened read-only first, and every check that can refuse it runs
// before the writable open (which starts a new log and options file and
// deletes obsolete files). Open fails with [ErrDamaged] when the directory
// has the store's identity file but Pebble cannot open what is beside it
// (Pebble would otherwise take a lost manifest marker for a new database
// and delete every table), and with a [*LogDamage] when a log is damaged
// before its end. A directory of Pebble's files without the identity file,
// as earlier releases left them, is adopted, and given the file, only once
// Pebble has opened it read-only and it holds facesearch's records (or no
// records at all).
func Open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	state, id, err := inspectDir(o.FS, dir)
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	disk := &diskGuard{fs: o.FS, dir: dir, floor: o.MinFreeBytes, errorf: o.Logger.Errorf}
	popts := pebbleOptions(&o, cache, disk)
	var salvaged *LogDamage
	// A log is started before Pebble moves a store to the format that marks
	// synced offsets in it (see pebbleOptions), so a store created or moved
	// now is reopened at once: every acknowledged write goes to a log in
	// which damage can be told from a torn tail.
	reopen := !o.ReadOnly
	switch {
	case state == dirFresh && o.ReadOnly:
		return nil, fmt.Errorf("store: open %s: %w", dir, ErrNoStore)
	case state == dirFresh:
		if err := o.FS.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dir, err)
		}
	default:
		popts.ErrorIfNotExists = true
		if !o.ReadOnly {
			var format pebble.FormatMajorVersion
			if format, salvaged, err = preflight(dir, popts, state, o.Salvage); err != nil {
				return nil, err
			}
			reopen = format < popts.FormatMajorVersion
			if !disk.roomToOpen() {
				o.Logger.Errorf("the disk under %s is too full to replay the store's log: opening it read-only; "+
					"writes are refused until space is freed and the store reopened", dir)
				disk.openedReadOnly = true
				o.ReadOnly, popts.ReadOnly, reopen = true, true, false
			}
		}
	}
	db, err := pebble.Open(dir, popts)
	if err == nil && reopen {
		if err = db.Close(); err == nil {
			db, err = pebble.Open(dir, popts)
		}
	}
	if err != nil {
		return nil, openError(dir, popts.FS, state, err)
	}
	s := &Store{db: db, dir: dir, id: id.Store, readOnly: o.ReadOnly, disk: disk, salvaged: salvaged,
		popts: popts, ingestSplitBytes: 8 << 20}
	if err := s.finishOpen(state); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// pebbleOptions are the Pebble options of a store opened with o.
func pebbleOptions(o *Options, cache *pebble.Cache, disk *diskGuard) *pebble.Options {
	popts := &pebble.Options{
		Cache:    cache,
		Logger:   o.Logger,
		ReadOnly: o.ReadOnly,
		FS:       o.FS,
		// Bulk imports write large batches; a bigger memtable keeps them
		// from stalling on flushes.
		MemTableSize: 64 << 20,
		// The first format whose logs tell a damaged record (followed by
		// synced ones) from a torn last write; writable opens of older
		// stores move them to it.
		FormatMajorVersion: pebble.FormatWALSyncChunks,
		EventListener:      &pebble.EventListener{},
	}
	disk.listen(popts.EventListener)
	for i := range popts.Levels {
		l := &popts.Levels[i]
		// Most of the bytes are face vectors: random floats that no block
		// compressor shrinks, so trying costs CPU on every flush and
		// compaction for nothing. Blocks of 32 KiB (not 4) cut the per-block
		// work (a read, a checksum, a cache insert) of Open's full scan 8x.
		l.BlockSize = 32 << 10
		l.Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	// An ingest whose tables overlap the memtable would otherwise be queued
	// as a "flushable" that the log refers to until it is flushed; a
	// checkpoint taken meanwhile copies that log but not the tables, and
	// does not open. Waiting for the flush instead costs an import one flush
	// of a memtable that, during an import, holds next to nothing.
	popts.Experimental.DisableIngestAsFlushable = func() bool { return true }
	// Records keyed in no order (user records, by the callers' IDs) make
	// each bulk-import batch's table of them overlap all the others in L0,
	// and each L0 compaction rewrites those below it. Measured when face
	// records were keyed by random face IDs (layout 2): at Pebble's default
	// (4 sublevels) a 1M-face import compacted 37 times, reading 799 MB to
	// import 95 MB of face records, and left L0 over the threshold, so the
	// next Open compacted beside its load. At 16: 12 compactions reading
	// 221 MB, none at Open, which was 0.4 s faster (medians of six
	// alternating reopens, 5 of 6 pairs faster), and 0.9 s less import
	// user CPU. Point reads, rare here (the engine serves from memory), may
	// look at more L0 tables.
	popts.L0CompactionThreshold = 16
	popts.L0StopWritesThreshold = 64
	popts.EnsureDefaults()
	return popts
}

// finishOpen runs the store's own checks on a freshly opened Pebble
// database and, with write access, clears what a crash left and gives the
// directory its identity file.
func (s *Store) finishOpen(state dirState) error {
	fs := s.popts.FS
	if !s.readOnly {
		// Tables of ingest batches a crash interrupted. Only now, with the
		// directory locked: before, they could be another process's.
		if err := fs.RemoveAll(fs.PathJoin(s.dir, ingestDir)); err != nil {
			return fmt.Errorf("store: clear %s: %w", ingestDir, err)
		}
	}
	if err := s.loadSecret(s.readOnly); err != nil {
		return err
	}
	check := s.upgrade
	if s.readOnly {
		check = s.checkLayout
	}
	if err := check(); err != nil {
		return err
	}
	if state != dirIdentified && !s.readOnly {
		id, err := writeIdentity(fs, s.dir)
		if err != nil {
			return err
		}
		s.id = id.Store
	}
	return nil
}

func isLockError(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) ||
		strings.Contains(err.Error(), "lock held by current process")
}

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
