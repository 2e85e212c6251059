package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/facesearch/facesearch/internal/arena"
)

// ingestDir, under the store's directory, is where ingest batches write
// their tables before Pebble links them into the store. Open empties it:
// whatever a crash left there was never part of the store.
const ingestDir = "ingest"

// IngestArena is memory for the contents of ingest batches that is reused
// batch after batch (see [arena.Arena]). The zero value is ready to use.
//
// A batch made in an arena ([Store.NewIngestBatchIn]) keeps its vector
// records there. [IngestArena.Reset] hands the memory out again: only once
// the batch is committed or closed. An arena is not safe for concurrent
// use.
type IngestArena struct {
	records arena.Arena[byte]
	kvs     []kv // the puts' slice, reused
	sorted  []kv // the puts grouped by table at commit, reused
}

// Reset makes all of the arena's memory free to hand out again.
func (a *IngestArena) Reset() {
	a.records.Reset()
	clear(a.kvs) // let go of the small records they point to
	a.kvs = a.kvs[:0]
	clear(a.sorted)
}

type kv struct {
	k, v []byte
	n    int // the put's position in its batch: of two puts of a key, the later wins
}

// IngestBatch is a batch for bulk loads. It takes puts only
// (PutCollection, PutFace, UpdateFace, PutUser, PutToken). Its Commit
// writes the records as sorted tables, of one kind of record each (see tableGroup), and has Pebble ingest them in one
// atomic step, so each byte is written once, not to the log, then to a
// table, then again by compactions. A bulk import's new vectors sort after
// every stored vector of their collection and nothing else sorts among
// them, so their tables go straight to the bottom level, where no
// compaction rewrites them (unless IndexFaces wrote vectors among them
// meanwhile, or deletions there are not yet compacted away: then they land
// higher and are compacted once); so do its face records and primary-key
// entries, keyed by sequences and keys handed out in order too. User
// records, keyed by the callers' user IDs, are what compactions merge.
//
// The commit is durable when it returns, whatever its sync argument: the
// tables are synced before Pebble links them, and the link is logged with
// a sync. Each commit costs some file and manifest syncs, so the batches
// worth ingesting are large ones (megabytes, not records).
type IngestBatch struct {
	records
	s     *Store
	kvs   []kv // the puts, in call order
	size  int
	arena *IngestArena
}

var _ recordSink = (*IngestBatch)(nil)

// NewIngestBatch starts an [IngestBatch].
func (s *Store) NewIngestBatch() *IngestBatch { return s.NewIngestBatchIn(&IngestArena{}) }

// NewIngestBatchIn is NewIngestBatch with the batch's contents kept in a,
// which must have been Reset since the last batch made in it was done.
func (s *Store) NewIngestBatchIn(a *IngestArena) *IngestBatch {
	b := &IngestBatch{s: s, kvs: a.kvs[:0], arena: a}
	b.records.sink = b
	return b
}

func (b *IngestBatch) set(k, v []byte) {
	b.kvs = append(b.kvs, kv{k, v, len(b.kvs)})
	b.size += len(k) + len(v)
}

func (b *IngestBatch) setVector(k []byte, faceID string, vec []float32) {
	b.set(k, encodeVector(b.arena.records.Alloc(vectorRecordLen(faceID, len(vec))), faceID, vec))
}

// Size is the batch's encoded size in bytes, for callers that commit large
// imports in pieces.
func (b *IngestBatch) Size() int { return b.size }

// Empty reports whether the batch holds no writes.
func (b *IngestBatch) Empty() bool { return len(b.kvs) == 0 }

// Commit writes the batch's tables and ingests them, atomically and
// durably, whatever sync says. The batch cannot be used afterwards.
func (b *IngestBatch) Commit(sync bool) error {
	defer b.Close()
	if err := b.s.disk.allow(int64(b.Size())); err != nil {
		return err
	}
	return b.commitIngest()
}

// Close discards an uncommitted batch. It is safe to call twice.
func (b *IngestBatch) Close() {
	if b.arena != nil {
		b.arena.kvs = b.kvs // the puts' slice as grown, for the arena's next batch
		b.arena = nil
	}
}

// commitIngest is Commit for an ingest batch.
func (b *IngestBatch) commitIngest() error {
	kvs := b.kvs
	if len(kvs) == 0 {
		return nil
	}
	groups := groupPuts(kvs, &b.arena.sorted)

	s := b.s
	fs := s.popts.FS
	dir := fs.PathJoin(s.dir, ingestDir)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store: ingest: %w", err)
	}
	// Tables of one key range each (see tableGroup): tables given to one
	// Ingest must not overlap, and what is written in key order (vectors,
	// face records, primary-key entries) must have tables of its own to
	// land at the bottom, not with what lands higher (user records, keyed
	// by the callers' IDs) and is compacted again and again. A large range (the vectors)
	// is cut into runs of keys written as tables side by side, on all
	// cores: writing is most of a bulk import's own time.
	var tables [][]kv
	for _, g := range groups {
		n, size := len(g), 0
		for _, e := range g {
			size += len(e.k) + len(e.v)
		}
		parts := max(1, min(runtime.GOMAXPROCS(0), size/s.ingestSplitBytes, n)) // no empty table
		for p := range parts {
			tables = append(tables, g[n*p/parts:n*(p+1)/parts])
		}
	}
	paths := make([]string, len(tables))
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		paths[i] = fs.PathJoin(dir, fmt.Sprintf("%08d.sst", s.ingestSeq.Add(1)))
		wg.Go(func() {
			if err := s.writeTable(paths[i], t); err != nil {
				errs[i] = fmt.Errorf("write %s: %w", paths[i], err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		removeAll(fs, paths)
		return fmt.Errorf("store: ingest: %w", err)
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

// groupPuts returns kvs by table group (see tableGroup), in key order, each
// group sorted by key with only the last put of each key. The groups are
// laid out in *buf, grown as needed.
//
// Each group is sorted on its own, not all the puts together: a bulk
// import puts its vectors, face records and primary-key entries in key
// order already, which one pass confirms, so only its user records need
// sorting. Sorting everything together was 6% of a bulk import's CPU.
func groupPuts(kvs []kv, buf *[]kv) [][]kv {
	// The group of each put, as an index into prefixes; few groups, so
	// the last one found is tried first.
	var prefixes [][]byte
	of := map[string]int{}
	counts := []int{}
	groupOf := make([]int32, len(kvs))
	last := -1
	for i, e := range kvs {
		g := tableGroup(e.k)
		if last < 0 || !bytes.Equal(prefixes[last], g) {
			j, ok := of[string(g)]
			if !ok {
				j = len(prefixes)
				of[string(g)] = j
				prefixes = append(prefixes, g)
				counts = append(counts, 0)
			}
			last = j
		}
		groupOf[i] = int32(last)
		counts[last]++
	}
	order := make([]int, len(prefixes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return bytes.Compare(prefixes[x], prefixes[y]) })
	start := make([]int, len(prefixes))
	off := 0
	for _, j := range order {
		start[j] = off
		off += counts[j]
	}
	out := slices.Grow((*buf)[:0], len(kvs))[:len(kvs)]
	*buf = out
	next := slices.Clone(start)
	for i, e := range kvs {
		g := groupOf[i]
		out[next[g]] = e
		next[g]++
	}
	groups := make([][]kv, 0, len(order))
	for _, j := range order {
		groups = append(groups, sortPuts(out[start[j]:start[j]+counts[j]]))
	}
	for i := 1; i < len(groups); i++ {
		if bytes.Compare(groups[i-1][len(groups[i-1])-1].k, groups[i][0].k) >= 0 {
			// Groups whose keys interleave (a c/ key without a kind: none
			// that the store builds) would make overlapping tables, which
			// Pebble refuses: sort all the puts and cut them where the
			// group changes instead.
			return runsOf(sortPuts(out[:copy(out, kvs)]))
		}
	}
	return groups
}

// runsOf cuts sorted puts into runs of one table group each.
func runsOf(kvs []kv) [][]kv {
	var runs [][]kv
	for len(kvs) > 0 {
		group := tableGroup(kvs[0].k)
		n := 1
		for n < len(kvs) && bytes.Equal(tableGroup(kvs[n].k), group) {
			n++
		}
		runs = append(runs, kvs[:n])
		kvs = kvs[n:]
	}
	return runs
}

// sortPuts sorts g by key, then by position, and keeps only the last put of
// each key, as a batch would.
func sortPuts(g []kv) []kv {
	if len(g) == 0 {
		return g
	}
	byKeyThenPut := func(x, y kv) int {
		if c := bytes.Compare(x.k, y.k); c != 0 {
			return c
		}
		return cmp.Compare(x.n, y.n)
	}
	// (Not a stable sort by key: that is several times slower.)
	if !slices.IsSortedFunc(g, byKeyThenPut) {
		slices.SortFunc(g, byKeyThenPut)
	}
	last := 0
	for i := 1; i < len(g); i++ {
		if !bytes.Equal(g[i].k, g[last].k) {
			last++
		}
		g[last] = g[i]
	}
	return g[:last+1]
}

// tableGroup is the key range of k that an ingest batch writes tables of
// its own for: its top-level range (col/, v/...), but under c/ one kind of
// a collection's records (c/<coll>/s/, c/<coll>/u/, c/<coll>/k/...).
func tableGroup(k []byte) []byte {
	top := topLevel(k)
	if string(top) != "c/" {
		return top
	}
	rest := k[len(top):]
	// The collection ID has no '/'; the key after the kind may (a primary
	// key's bytes), so the kind is found from the front.
	i := bytes.IndexByte(rest, '/')
	if i < 0 || len(rest) < i+3 {
		return top
	}
	return k[:len(top)+i+3]
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
	// The row-block format (Pebblev4) at most: an import writes each table
	// once, and row blocks write faster than the columnar ones of newer
	// formats (the ingest figure of `facesearch bench`); compactions rewrite
	// them in the store's own format.
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
