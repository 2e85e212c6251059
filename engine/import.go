package engine

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"

	"github.com/google/uuid"

	"github.com/facesearch/facesearch/internal/arena"
	"github.com/facesearch/facesearch/store"
)

// Importer loads many records into one collection through the bulk path:
// records gather into batches, each committed once it holds
// ImportOptions.BatchRecords records or BatchBytes bytes: written as sorted
// tables straight into the store (not through its log, see
// store.NewIngestBatch), atomically and durably, and published to searches
// at once. A commit runs while the next batch fills: [Importer.Add] checks
// the batch (see below) and hands it to a goroutine that writes, syncs and
// publishes it, so that checking records and writing tables share the
// cores; the next commit waits for it. [Importer.Flush] and
// [Importer.Close] return once every batch before them is durable and
// published; a crash loses at most the batch being filled and the one
// being committed.
//
// A record that fails fails its batch and only its batch: [Importer.Add]
// returns an [*ImportError], the record and every record added since the
// last commit began are discarded, the batches before stay, and the next
// record starts a new batch. A caller that must stop at the first bad
// record stops adding and calls Close: the collection then holds exactly
// the batches before the bad one. A batch that fails to be written ends
// the import: the next call returns the store's error. [Importer.Flush]
// ends a batch early, for callers that want batch boundaries of their own
// (per file, say).
//
// The collection's invariants hold as for the single-item calls: the first
// face fixes the dimension, a user holds at most 100 faces, a user vector
// is the normalized mean of its faces. The Importer takes the collection's
// write lock only while it commits a batch, so other calls may run
// alongside it. An Importer is not safe for concurrent use.
type Importer struct {
	e    *Engine
	ctx  context.Context
	coll string
	c    *collection
	opts *ImportOptions
	rnd  io.Reader // buffered crypto/rand: two UUIDs per face

	dim   int          // the dimension committed or being committed, 0 until one is fixed
	batch *importBatch // the batch being filled
	// spare is the other batch: the one being committed while flight is
	// set, else the next one to fill. Both are reset and reused, maps,
	// slices and arena, batch after batch.
	spare  *importBatch
	flight *importFlight // the commit under way, nil if none
	dry    *importDry    // what a dry run has accepted so far
	// commitUsers is the users the batch being committed names, as its
	// recheck finds them; commitUserIdx finds them by ID. Both are kept
	// from batch to batch, as the batch's maps are: a bulk import would
	// otherwise grow them from nothing, batch after batch. A commit
	// rechecks only once the one before has ended, so one pair serves.
	commitUsers   []commitUser
	commitUserIdx map[string]int32

	presized     bool // the first commit has sized the maps for ExpectedFaces and ExpectedUsers
	keysReserved bool // a commit has sized the matrices' key indexes for them

	n       int // records passed to Add
	stats   ImportStats
	err     error // sticky: storage failure, cancellation, engine closed
	closing bool
	closed  bool
}

// importEntry is one record of a batch.
type importEntry struct {
	idx       int
	face      *store.Face // nil for a user-only record
	preserved bool        // FaceId came from the record
	userID    string
	user      int32 // userID's index in Importer.commitUsers, set by recheck
}

type importBatch struct {
	// vectors holds the batch's vectors and records its store records;
	// both are reset with it: after a commit has published them, or a
	// discard.
	vectors  arena.Arena[float32]
	records  store.IngestArena
	sb       *store.IngestBatch
	entries  []importEntry
	dim      int              // fixed by this batch's first face when dim is 0
	faceIDs  map[string]int   // preserved face IDs -> record index
	userIdx  map[string]int32 // users the batch names -> index in users
	users    []batchUser      // what the batch does to each
	newUsers []string         // users to create, in first-appearance order
}

// importFlight is a batch being written, synced and published by a
// goroutine of its own.
type importFlight struct {
	b            *importBatch
	usersCreated int
	done         chan struct{} // closed when the commit has ended
	err          error         // the store's error, if the commit failed; set before done is closed
	// published is set by publish, under the collection's lock: admit,
	// which reads the collection under that lock, counts the batch's faces
	// from the batch until then, and from the collection after.
	published bool
}

// batchUser is what admit knows of a user the batch names.
type batchUser struct {
	faces int  // faces the batch adds to it
	isNew bool // the batch creates it
}

// commitUser is a user that a batch being committed names.
type commitUser struct {
	id      string
	u       *user    // nil until commit creates it
	faces   int      // its faces once the batch is in
	added   int      // faces the batch adds to it
	before  []string // its face list before the batch, once updated
	updated bool     // publish has given it a new face list
}

// importDry is the state a dry run builds instead of committing.
type importDry struct {
	faceIDs   map[string]bool
	userFaces map[string]int
	users     map[string]bool
	faces     int
}

// NewImporter starts a bulk import into an existing collection. ctx bounds
// the whole import, as database/sql's BeginTx bounds a transaction: once it
// is done, the batch being filled is discarded and Add fails.
func (e *Engine) NewImporter(ctx context.Context, collectionID string, opts *ImportOptions) (*Importer, error) {
	o := opts.clone()
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var v validator
	v.collectionID(collectionID)
	if err := v.err(); err != nil {
		return nil, err
	}
	if !o.DryRun {
		if err := e.writable(); err != nil {
			return nil, err
		}
	}
	c, release, err := e.acquire(collectionID)
	if err != nil {
		return nil, err
	}
	defer release()
	c.mu.RLock()
	dim := c.dim
	c.mu.RUnlock()
	im := &Importer{e: e, ctx: ctx, coll: collectionID, c: c, opts: o, dim: dim,
		rnd: bufio.NewReaderSize(rand.Reader, 4096), batch: &importBatch{}, spare: &importBatch{}}
	if o.DryRun {
		im.dry = &importDry{faceIDs: map[string]bool{}, userFaces: map[string]int{}, users: map[string]bool{}}
	}
	im.resetBatch()
	return im, nil
}

// resetBatch empties the batch, keeping its maps' and slices' room.
func (im *Importer) resetBatch() {
	b := im.batch
	if b.sb != nil {
		b.sb.Close()
		b.sb = nil
	}
	if b.faceIDs == nil {
		b.faceIDs, b.userIdx = map[string]int{}, map[string]int32{}
	}
	clear(b.faceIDs)
	clear(b.userIdx)
	clear(b.entries) // let go of the faces
	b.entries, b.users, b.newUsers, b.dim = b.entries[:0], b.users[:0], b.newUsers[:0], 0
	b.vectors.Reset()
	b.records.Reset()
	if !im.opts.DryRun {
		b.sb = im.e.store.NewIngestBatchIn(&b.records)
	}
}

func (im *Importer) newID() string {
	return uuid.Must(uuid.NewRandomFromReader(im.rnd)).String()
}

// Stats reports what the import has done so far. It does not wait for a
// commit under way.
func (im *Importer) Stats() ImportStats {
	if f := im.flight; f != nil && f.ended() && f.err == nil {
		im.join() // counted now; a failure is left for a call that can return it
	}
	s := im.stats
	s.Pending = len(im.batch.entries)
	if im.flight != nil {
		s.Committing = len(im.flight.b.entries)
	}
	return s
}

// Add checks a record and adds it to the current batch, committing the
// batch when it is full. A record that fails its checks, or a batch that
// fails to commit, discards the batch and returns an [*ImportError].
// Errors that end the import (the context is done, the engine closed, the
// store failed) are returned as they are, and from every later call.
func (im *Importer) Add(rec ImportRecord) error {
	if im.poll(); im.err != nil {
		return im.err
	}
	idx := im.n
	im.n++
	if err := im.admit(rec, idx); err != nil {
		return im.failBatch(idx, err, false)
	}
	if len(im.batch.entries) >= im.opts.BatchRecords || (im.batch.sb != nil && im.batch.sb.Size() >= im.opts.BatchBytes) {
		return im.commit(false)
	}
	return nil
}

// Flush commits the current batch now, and returns once it and every batch
// before it are durable and published.
func (im *Importer) Flush() error {
	if im.err != nil {
		return im.err
	}
	return im.commit(true)
}

// Discard drops the records of the batch being filled and reports how many
// there were; the import goes on with a new batch. A batch whose commit is
// under way is not discarded.
func (im *Importer) Discard() int {
	n := len(im.batch.entries)
	im.stats.Discarded += n
	im.resetBatch()
	return n
}

// Close commits the current batch (unless a failure ended the import) and
// ends the import. It returns the error of that commit, and
// [ErrImporterClosed] when called again.
func (im *Importer) Close() error {
	if im.closed {
		return ErrImporterClosed
	}
	var err error
	if im.err == nil {
		err = im.commit(true)
	}
	im.Discard()
	if im.batch.sb != nil {
		im.batch.sb.Close()
		im.batch.sb = nil
	}
	// The batches' memory, for the collector (commitUsers point into it).
	im.batch, im.spare, im.commitUsers, im.commitUserIdx = &importBatch{}, &importBatch{}, nil, nil
	im.closed = true
	if im.err == nil {
		im.err = ErrImporterClosed
	}
	return err
}

// failBatch discards the current batch because of record idx. inBatch says
// whether idx was already one of its records.
func (im *Importer) failBatch(idx int, err error, inBatch bool) error {
	n := im.Discard()
	if !inBatch {
		n++
		im.stats.Discarded++
	}
	return &ImportError{Record: idx, Discarded: n, Err: err}
}

// end makes err sticky: the import cannot go on.
func (im *Importer) end(err error) error {
	im.Discard()
	im.err = err
	return err
}
