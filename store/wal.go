package store

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// LogDamage is a write-ahead log that cannot be read to its end: its records
// stop at a damaged place that later records, already synced, prove was
// written whole. (A log that merely ends mid-record is a crash during a
// write, which lost nothing acknowledged; Open replays it without a word.)
// Open refuses such a store with a *LogDamage error, which matches
// [ErrCorrupt], unless [Options.Salvage] is set; then [Store.Salvaged]
// returns what was dropped.
type LogDamage struct {
	// File is the damaged log's path.
	File string
	// Offset is where, in File, the first record that cannot be read starts.
	Offset int64
	// Bytes is what is lost: File's bytes from Offset on, and every byte of
	// the later logs (their records come after the damage, so keeping them
	// would apply writes without the ones they followed).
	Bytes int64
	// LaterLogs are the paths of those later logs.
	LaterLogs []string
	// SavedIn is, once salvaged, the directory holding copies of the damaged
	// log and the later ones as they were.
	SavedIn string
}

func (d *LogDamage) Error() string {
	msg := fmt.Sprintf("store: corrupt write-ahead log %s at offset %d: the records from there on (%d bytes", d.File, d.Offset, d.Bytes)
	if len(d.LaterLogs) > 0 {
		msg += fmt.Sprintf(", with %d later logs", len(d.LaterLogs))
	}
	msg += ") cannot be read back, though later ones were synced"
	if d.SavedIn != "" {
		return msg + "; they were dropped and the logs as they were are saved in " + d.SavedIn
	}
	return msg
}

// Is makes a *LogDamage match [ErrCorrupt].
func (d *LogDamage) Is(target error) bool { return target == ErrCorrupt }

// findLogDamage reads every log in dir as Pebble replays them and returns
// the first damage, or nil when every log reads to its end (or only the
// last ends mid-record, which is a torn write).
func findLogDamage(fs vfs.FS, dir string) (*LogDamage, error) {
	logs, err := wal.Scan(wal.Dir{FS: fs, Dirname: dir})
	if err != nil {
		return nil, err
	}
	for i, ll := range logs {
		off, err := readLog(ll)
		if err == nil {
			continue
		}
		last := i == len(logs)-1
		if errors.Is(err, record.ErrUnexpectedEOF) && last {
			continue
		}
		if !errors.Is(err, record.ErrUnexpectedEOF) && !errors.Is(err, record.ErrInvalidChunk) &&
			!errors.Is(err, record.ErrZeroedChunk) {
			return nil, err
		}
		d := &LogDamage{File: off.PhysicalFile, Offset: off.Physical}
		st, err := fs.Stat(d.File)
		if err != nil {
			return nil, err
		}
		d.Bytes = st.Size() - d.Offset
		for _, later := range logs[i+1:] {
			for j := range later.NumSegments() {
				_, path := later.SegmentLocation(j)
				st, err := fs.Stat(path)
				if err != nil {
					return nil, err
				}
				d.LaterLogs = append(d.LaterLogs, path)
				d.Bytes += st.Size()
			}
		}
		return d, nil
	}
	return nil, nil
}

// readLog reads every record of ll; on an error it returns where the record
// that failed starts.
func readLog(ll wal.LogicalLog) (wal.Offset, error) {
	r := ll.OpenForRead()
	defer r.Close()
	for {
		_, off, err := r.NextRecord()
		if errors.Is(err, io.EOF) {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

// salvage cuts the damaged log at d.Offset and removes the later logs,
// having first copied them all, as they were, into a new directory under
// dir. The cut log is written beside and renamed into place, so a crash
// midway leaves either the old log or the cut one.
func salvage(fs vfs.FS, dir string, d *LogDamage) error {
	saved := fs.PathJoin(dir, "salvaged", time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := fs.MkdirAll(saved, 0o755); err != nil {
		return err
	}
	for _, path := range append([]string{d.File}, d.LaterLogs...) {
		if err := copyFile(fs, path, fs.PathJoin(saved, fs.PathBase(path)), -1); err != nil {
			return err
		}
	}
	if err := syncDir(fs, saved); err != nil {
		return err
	}
	tmp := d.File + ".salvage"
	if err := copyFile(fs, d.File, tmp, d.Offset); err != nil {
		return err
	}
	if err := fs.Rename(tmp, d.File); err != nil {
		return err
	}
	for _, path := range d.LaterLogs {
		if err := fs.Remove(path); err != nil {
			return err
		}
	}
	if err := syncDir(fs, dir); err != nil {
		return err
	}
	d.SavedIn = saved
	return nil
}

// copyFile copies src's first n bytes (all of it if n < 0) into a new,
// synced file dst.
func copyFile(fs vfs.FS, src, dst string, n int64) error {
	in, err := fs.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fs.Create(dst, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	var r io.Reader = in
	if n >= 0 {
		r = io.LimitReader(in, n)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
