package store

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// The default free-space floor, after Elasticsearch's flood-stage watermark
// (95% used, at most 100 GB kept free): 5% of the file system, at least
// enough for Pebble to flush a few memtables and finish a compaction, and
// at most what no compaction here comes near.
const (
	defaultMinFreePercent = 5
	defaultMinFreeLow     = 256 << 20
	defaultMinFreeHigh    = 20 << 30
)

// diskGuard refuses writes before the file system under the store fills.
// Pebble cannot take a failed write back: a commit or manifest write that
// fails for lack of space ends the process. So writes stop while there is
// still room for Pebble's own flushes and compactions, and resume by
// themselves once space is back.
type diskGuard struct {
	fs    vfs.FS
	dir   string
	floor int64 // negative: no floor (bgFull still refuses writes); 0: the default, from the file system's size
	// bgFull is set while Pebble's flushes or compactions fail for lack of
	// space (it retries them at once), and cleared by one that succeeds.
	bgFull atomic.Bool
	// openedReadOnly is set when Open found too little space to replay the
	// log and opened the store read-only (see [diskGuard.roomToOpen]).
	openedReadOnly bool

	mu      sync.Mutex // guards backoff and logged
	backoff time.Duration
	logged  time.Time
	errorf  func(format string, args ...any)
}

// allow returns an error wrapping [ErrDiskFull] if a write of about need
// bytes would leave less free space than the floor, or while Pebble's
// background writes fail for lack of space. When the free space
// cannot be read, the write goes ahead: the floor is a margin, and a disk
// that really is full fails the write anyway.
func (g *diskGuard) allow(need int64) error {
	if g.openedReadOnly {
		return fmt.Errorf("%w: the disk under %s was too full to replay the log when the store was opened, so it was opened read-only; "+
			"free space and restart to take writes again", ErrDiskFull, g.dir)
	}
	// Whatever the floor, even with it off: a write taken while Pebble's
	// flushes fail only grows the memtables that cannot be flushed.
	if g.bgFull.Load() {
		return fmt.Errorf("%w: Pebble's background writes in %s are failing for lack of space", ErrDiskFull, g.dir)
	}
	if g.floor < 0 {
		return nil
	}
	u, err := g.fs.GetDiskUsage(g.dir)
	if err != nil {
		return nil
	}
	floor := g.floor
	if floor == 0 {
		floor = defaultFloor(u.TotalBytes)
	}
	if avail := int64(min(u.AvailBytes, 1<<62)); avail-need < floor {
		return fmt.Errorf("%w: %d bytes free on the file system of %s, and writes stop below %d (a write needs about %d)",
			ErrDiskFull, avail, g.dir, floor, need)
	}
	return nil
}

// openMargin is the space a writable open needs besides the log it
// replays: a new log, an options file, manifest edits.
const openMargin = 4 << 20

// roomToOpen reports whether the file system under dir has room for a
// writable open: Pebble flushes the log it replays before Open returns,
// and a flush failing for lack of space is retried for ever, so Open would
// never return; a manifest write failing ends the process. Without room,
// Open opens the store read-only instead. The log replayed is taken to be
// the latest (older ones are flushed, kept only for reuse). When the free
// space cannot be read, it assumes there is room.
func (g *diskGuard) roomToOpen() bool {
	u, err := g.fs.GetDiskUsage(g.dir)
	if err != nil {
		return true
	}
	logs, err := wal.Scan(wal.Dir{FS: g.fs, Dirname: g.dir})
	if err != nil {
		return true
	}
	avail := int64(min(u.AvailBytes, 1<<62))
	if len(logs) == 0 {
		return avail >= openMargin
	}
	last := logs[len(logs)-1]
	if size, err := last.PhysicalSize(); err != nil || avail >= openMargin+int64(min(size, 1<<61)) {
		return true
	}
	// A log file reused from an older one is as long as that was; what is
	// replayed is the records read back.
	return avail >= openMargin+logBytes(last)
}

// logBytes is the size of the records of ll that read back.
func logBytes(ll wal.LogicalLog) int64 {
	r := ll.OpenForRead()
	defer r.Close()
	var n int64
	for {
		rec, _, err := r.NextRecord()
		if err != nil {
			return n
		}
		m, err := io.Copy(io.Discard, rec)
		n += m
		if err != nil {
			return n
		}
	}
}

// defaultFloor is the default floor of a file system of total bytes.
func defaultFloor(total uint64) int64 {
	f := int64(min(total/100*defaultMinFreePercent, 1<<62))
	return min(max(f, defaultMinFreeLow), defaultMinFreeHigh)
}

// listen hooks g into Pebble's events: a background write that fails for
// lack of space stops writes, is logged at most once a minute (as is any background error), and delays
// Pebble's next attempt, which it otherwise makes at once, forever.
func (g *diskGuard) listen(l *pebble.EventListener) {
	l.BackgroundError = func(err error) {
		full := vfs.IsNoSpaceError(err)
		g.mu.Lock()
		if time.Since(g.logged) >= time.Minute {
			g.logged = time.Now()
			if full {
				g.errorf("the disk under %s is full; writes are refused until Pebble's background writes succeed again: %v", g.dir, err)
			} else {
				g.errorf("background error (repeats are not logged for a minute): %v", err)
			}
		}
		if !full {
			g.mu.Unlock()
			return
		}
		g.bgFull.Store(true)
		g.backoff = min(max(2*g.backoff, time.Millisecond), 250*time.Millisecond)
		wait := g.backoff
		g.mu.Unlock()
		// Pebble calls this with its mutex held, so commits and new
		// snapshots wait too; reads of what is there go on.
		time.Sleep(wait)
	}
	// Pebble's default ends the process, and a restart would end at the
	// same table again; the read that found the damage fails with it.
	l.DataCorruption = func(info pebble.DataCorruptionInfo) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if time.Since(g.logged) >= time.Minute {
			g.logged = time.Now()
			g.errorf("on-disk corruption in %s (repeats are not logged for a minute): %v", info.Path, info.Details)
		}
	}
	ok := func() {
		if g.bgFull.Swap(false) {
			g.mu.Lock()
			g.backoff = 0
			g.mu.Unlock()
		}
	}
	l.FlushEnd = func(info pebble.FlushInfo) {
		if info.Err == nil {
			ok()
		}
	}
	l.CompactionEnd = func(info pebble.CompactionInfo) {
		if info.Err == nil {
			ok()
		}
	}
}
