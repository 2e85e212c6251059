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
	// turns the floor off; a flush failing for lack of space refuses writes
	// the same way whatever the floor. The default value is 5% of the file
	// system's size, at least 256 MiB and at most 20 GiB.
	MinFreeBytes int64
	// Salvage lets Open drop the records of a write-ahead log from a place
	// where it is damaged (see [LogDamage]), after copying the logs as they
	// were into the store's salvaged/ directory; [Store.Salvaged] says what
	// was dropped. Without it, Open refuses such a store. It has no effect
	// with ReadOnly. The default value is false.
	Salvage bool
	// WritableLater makes a writable Open of an existing store stop at the
	// read-only open that checked it, keeping the directory locked, until
	// [Store.OpenWritable]: a caller that reads every record in between
	// has every table block checksummed before anything in the directory
	// changes. A store that the writable open must first write to (a new
	// one, one of an earlier layout, one without room to replay its log) is
	// opened at once as without it. The default value is false.
	WritableLater bool
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
// records at all). With [Options.WritableLater] the writable open waits
// for [Store.OpenWritable].
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
	state, _, err := inspectDir(o.FS, dir)
	if err != nil {
		return nil, err
	}
	switch {
	case state == dirFresh && o.ReadOnly:
		return nil, fmt.Errorf("store: open %s: %w", dir, ErrNoStore)
	case state == dirFresh:
		if err := o.FS.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dir, err)
		}
	}
	lock, err := lockDir(o.FS, dir, state == dirFresh)
	if err != nil {
		return nil, err
	}
	// Looked at again under the lock: another process may have created
	// the store in between.
	state, id, err := inspectDir(o.FS, dir)
	var s *Store
	if err == nil {
		s, err = open(dir, &o, state, lock)
	}
	if err != nil {
		return nil, errors.Join(err, lock.Close())
	}
	if s.id == "" {
		s.id = id.Store // finishOpen gives a store it adopts a new one
	}
	return s, nil
}

// open is Open once dir is locked.
func open(dir string, o *Options, state dirState, lock *dirLock) (*Store, error) {
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	disk := &diskGuard{fs: o.FS, dir: dir, floor: o.MinFreeBytes, errorf: o.Logger.Errorf}
	popts := pebbleOptions(o, cache, disk)
	popts.Lock = lock.pebble
	s := &Store{dir: dir, readOnly: true, disk: disk, lock: lock, popts: popts, ingestSplitBytes: 8 << 20}
	if state == dirFresh {
		// A log is started before Pebble moves a store to the format that
		// marks synced offsets in it (see pebbleOptions), so a new store is
		// reopened at once: every acknowledged write goes to a log in which
		// damage can be told from a torn tail.
		return s, s.openWritable(&writable{popts: popts, state: state, reopen: true, logf: o.Logger.Errorf})
	}
	popts.ErrorIfNotExists = true
	if o.ReadOnly {
		return s, s.openReadOnly(state)
	}
	pf, err := preflight(dir, popts, state, o.Salvage)
	if err != nil {
		return nil, err
	}
	s.db, s.popts, s.salvaged = pf.db, pf.popts, pf.salvaged
	if !disk.roomToOpen() {
		o.Logger.Errorf("the disk under %s is too full to replay the store's log: opening it read-only; "+
			"writes are refused until space is freed and the store reopened", dir)
		disk.openedReadOnly = true
		return s, s.finishReadOnly(state)
	}
	w := &writable{popts: popts, state: state, reopen: pf.format < popts.FormatMajorVersion,
		orphans: pf.orphans, logf: o.Logger.Errorf}
	if o.WritableLater && pf.current {
		// The caller reads the store as checked, every table block it
		// reads checksummed, before the writable open changes anything.
		// The read-only database's reference to the cache goes when it
		// closes; the writable open's must be taken by then.
		cache.Ref()
		w.cache, s.pending = cache, w
		return s, s.finishReadOnly(state)
	}
	if err := s.closeDB(); err != nil {
		return nil, err
	}
	return s, s.openWritable(w)
}

// openReadOnly opens s's Pebble database read-only.
func (s *Store) openReadOnly(state dirState) error {
	db, err := pebble.Open(s.dir, s.popts)
	if err != nil {
		return openError(s.dir, s.popts.FS, state, err)
	}
	s.db = db
	return s.finishReadOnly(state)
}

// finishReadOnly is finishOpen on s opened read-only, closing it on failure.
func (s *Store) finishReadOnly(state dirState) error {
	if err := s.finishOpen(state); err != nil {
		return errors.Join(err, s.closeDB())
	}
	return nil
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

// checked is a store opened read-only by [preflight] and found fit for the
// writable open.
type checked struct {
	db       *pebble.DB      // open read-only; the caller closes it
	popts    *pebble.Options // db's options
	format   pebble.FormatMajorVersion
	salvaged *LogDamage
	// orphans are the table files in the directory that the manifest does
	// not name, which the writable open would delete (see setAsideOrphans).
	orphans []string
	// current: the writable open has nothing to write before the records
	// can be read (the layout is this release's and the secret is there).
	current bool
}

// preflight opens the existing store in dir read-only and runs every check
// a writable Open would, so that a store Open refuses is left as it was.
// With salvage it cuts a damaged log (see [LogDamage]) and says what it
// dropped.
func preflight(dir string, popts *pebble.Options, state dirState, salvageLog bool) (*checked, error) {
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
					return nil, fmt.Errorf("store: salvage %s: %w", d.File, err)
				}
				dropped = d
				continue
			}
			return nil, err
		}
		s := &Store{db: db, dir: dir, readOnly: true, popts: ro}
		c := &checked{db: db, popts: ro, format: db.FormatMajorVersion(), salvaged: dropped}
		if c.current, c.orphans, err = s.preflightChecks(state); err != nil {
			return nil, errors.Join(err, db.Close())
		}
		return c, nil
	}
}

// preflightChecks are the checks of a writable Open that can refuse the
// store, run on it opened read-only. An old layout is not among them: the
// writable Open upgrades it. It reports whether the store is current (see
// [checked]) and its orphan tables.
func (s *Store) preflightChecks(state dirState) (current bool, orphans []string, err error) {
	// Opens every table's footer and properties: a table damaged there is
	// refused now. Damage inside a data block shows only when the block is
	// read: by the engine's load, before the writable open when the caller
	// defers it (see [Options.WritableLater]).
	tables, err := s.db.SSTables(pebble.WithProperties())
	if err != nil {
		return false, nil, fmt.Errorf("%w: %s cannot be opened (%v); Open changed nothing", ErrDamaged, s.dir, err)
	}
	if orphans, err = orphanTables(s.popts.FS, s.dir, tables); err != nil {
		return false, nil, err
	}
	layout, err := s.layout()
	if err != nil {
		return false, nil, err
	}
	secret, ok, err := s.get(keySecret)
	if err != nil {
		return false, nil, err
	}
	if ok && len(secret) != 32 {
		return false, nil, fmt.Errorf("%w: sys/secret has %d bytes, want 32", ErrCorrupt, len(secret))
	}
	if state == dirUnidentified && !ok {
		// A facesearch store has its secret from its first open on; a
		// Pebble database without one is someone else's, unless it is
		// empty (a first open that stopped before writing it).
		it, err := s.db.NewIter(nil)
		if err != nil {
			return false, nil, err
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return false, nil, err
		}
		if !empty {
			return false, nil, fmt.Errorf("%w: %s holds a Pebble database that is not a facesearch store (it has no sys/secret)", ErrDamaged, s.dir)
		}
	}
	return ok && layout >= storeFormat, orphans, nil
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
