package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ingestDir, under the store's directory, is where ingest batches write
// their tables before Pebble links them into the store. Open empties it:
// whatever a crash left there was never part of the store.
const ingestDir = "ingest"

// ingestBuf is what an ingest batch holds: its puts, in call order.
type ingestBuf struct {
	kvs  []kv
	size int
}

type kv struct{ k, v []byte }

// errIngestDelete is the error of a delete on an ingest batch.
var errIngestDelete = errors.New("store: an ingest batch takes puts only")

// NewIngestBatch starts a batch for bulk loads. It takes puts only
// (PutCollection, PutFace, UpdateFace, PutUser, PutToken): a delete makes
// its Commit fail. Its Commit writes the records as sorted tables, one per
// top-level key range, and has Pebble ingest them in one atomic step, so
// each byte is written once, not to the log, then to a table, then again by
// compactions. A bulk import's new vectors sort after every stored vector
// of their collection and nothing else sorts among them, so their table
// goes straight to the bottom level, where no compaction rewrites it
// (unless IndexFaces wrote vectors among them meanwhile, or deletions there
// are not yet compacted away: then it lands higher and is compacted once).
//
// The commit is durable when it returns, whatever its sync argument: the
// tables are synced before Pebble links them, and the link is logged with
// a sync. Each commit costs some file and manifest syncs, so the batches
// worth ingesting are large ones (megabytes, not records).
func (s *Store) NewIngestBatch() *Batch { return &Batch{s: s, in: &ingestBuf{}} }

// commitIngest is Commit for an ingest batch.
func (b *Batch) commitIngest() error {
	kvs := b.in.kvs
	if len(kvs) == 0 {
		return nil
	}
	// Stable, so that of two puts of one key the later wins, as in a batch.
	slices.SortStableFunc(kvs, func(x, y kv) int { return bytes.Compare(x.k, y.k) })
	last := 0
	for i := 1; i < len(kvs); i++ {
		if bytes.Equal(kvs[i].k, kvs[last].k) {
			kvs[last] = kvs[i]
		} else {
			last++
			kvs[last] = kvs[i]
		}
	}
	kvs = kvs[:last+1]

	s := b.s
	fs := s.popts.FS
	dir := fs.PathJoin(s.dir, ingestDir)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store: ingest: %w", err)
	}
	// One table per top-level key range (c/, col/, v/...): tables given to
	// one Ingest must not overlap, and the vectors must have a table of
	// their own to land at the bottom.
	var paths []string
	for len(kvs) > 0 {
		top := topLevel(kvs[0].k)
		n := 1
		for n < len(kvs) && bytes.Equal(topLevel(kvs[n].k), top) {
			n++
		}
		path := fs.PathJoin(dir, fmt.Sprintf("%08d.sst", s.ingestSeq.Add(1)))
		paths = append(paths, path)
		if err := s.writeTable(path, kvs[:n]); err != nil {
			removeAll(fs, paths)
			return fmt.Errorf("store: ingest: write %s: %w", path, err)
		}
		kvs = kvs[n:]
	}
	s.ingestMu.RLock()
	err := s.db.Ingest(context.Background(), paths)
	s.ingestMu.RUnlock()
	if err != nil {
		removeAll(fs, paths)
		return fmt.Errorf("store: ingest: %w", err)
	}
	return nil // Pebble removed the files it linked
}

// topLevel is a key's first component, up to and including its '/'.
func topLevel(k []byte) []byte {
	if i := bytes.IndexByte(k, '/'); i >= 0 {
		return k[:i+1]
	}
	return k
}

// writeTable writes sorted, unique kvs into a new table at path in the
// store's table format. Closing the writer syncs the file.
func (s *Store) writeTable(path string, kvs []kv) error {
	f, err := s.popts.FS.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	// Level 0's options: what Pebble's own ingestion tests use, and the
	// table may land there (a table for the lowest level is written
	// without the obsolete-key bits the levels above need).
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.popts.MakeWriterOptions(0, s.db.TableFormat()))
	for _, e := range kvs {
		if err := w.Set(e.k, e.v); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

func removeAll(fs vfs.FS, paths []string) {
	for _, p := range paths {
		fs.Remove(p) // best effort: Open empties the directory anyway
	}
}
