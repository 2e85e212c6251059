package engine

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/facesearch/facesearch/store"
)

// ImportOptions configure [Engine.NewImporter]. A nil *ImportOptions is
// valid and means all defaults.
type ImportOptions struct {
	// BatchRecords is how many records a batch holds before it is
	// committed. The default value is 16384.
	BatchRecords int
	// BatchBytes is the encoded size at which a batch is committed before
	// it has BatchRecords records. The default value is 64 MiB. (16,384
	// faces of 512 dimensions, each of its own user, come to 36 MiB, so at
	// that size BatchRecords ends the batches.)
	//
	// Each commit writes its batch as tables and syncs them: small batches
	// (kilobytes) spend their time in syncs, and a bad record discards more
	// records the larger its batch. Beyond the defaults a 1M-face import
	// gains nothing measurable: 65,536 records a batch did no better. The
	// Importer keeps about four times the batch's size in memory until
	// Close (two batches, the one filling and the one committing, each with
	// its tables' records), reused batch after batch.
	BatchBytes int
	// DryRun checks every record, against the collection and against the
	// records before it, without writing anything. The default value is
	// false.
	DryRun bool
	// ExpectedFaces and ExpectedUsers are how many faces and new users the
	// import expects to add, if the caller knows. The first commit then
	// sizes the collection's maps and key indexes for them at once; grown
	// batch by batch instead, a map hashes again every key it moves at each
	// growth (importing 1M faces, each of its own user, took 1.4-5.1 s less
	// user CPU with the hints in five of six alternating pairs, the same in
	// the sixth). Each map is sized only if still empty: a collection with
	// faces keeps its face maps, one with users its user maps. The key
	// indexes are divided as if every new user got a face, exactly so for
	// users of one or two faces each. They are hints, taken at their
	// word: an import may add more or fewer, at the cost of that growth or
	// of room unused, about 140 bytes a face and as much a user, allocated
	// at the first commit. The default value, 0, sizes nothing.
	ExpectedFaces int
	ExpectedUsers int
}

// maxExpected bounds ImportOptions.ExpectedFaces and ExpectedUsers: the
// most rows a matrix of the index holds.
const maxExpected = math.MaxInt32

// Validate reports every problem of o at once.
func (o *ImportOptions) Validate() error {
	var errs []error
	if o.BatchRecords < 0 {
		errs = append(errs, fmt.Errorf("engine: ImportOptions.BatchRecords %d is negative", o.BatchRecords))
	}
	if o.BatchBytes < 0 {
		errs = append(errs, fmt.Errorf("engine: ImportOptions.BatchBytes %d is negative", o.BatchBytes))
	}
	for _, h := range []struct {
		name string
		n    int
	}{{"ExpectedFaces", o.ExpectedFaces}, {"ExpectedUsers", o.ExpectedUsers}} {
		switch {
		case h.n < 0:
			errs = append(errs, fmt.Errorf("engine: ImportOptions.%s %d is negative", h.name, h.n))
		case h.n > maxExpected:
			errs = append(errs, fmt.Errorf("engine: ImportOptions.%s %d is more than %d", h.name, h.n, maxExpected))
		}
	}
	return errors.Join(errs...)
}

func (o *ImportOptions) clone() *ImportOptions {
	if o == nil {
		return &ImportOptions{}
	}
	c := *o
	return &c
}

func (o *ImportOptions) ensureDefaults() {
	if o.BatchRecords == 0 {
		o.BatchRecords = 16384
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = 64 << 20
	}
}

// ImportRecord is one record of a bulk import: a face, a face of a user, or
// (without Vector) a user. It is also what [Engine.Export] yields, so what a
// collection exports imports back as the same collection.
type ImportRecord struct {
	// Vector is the embedding. It is normalized as IndexFaces normalizes,
	// except that a vector already of unit length to float32 precision
	// (|‖v‖-1| <= 2^-23, as every stored vector is) is kept bit for bit, so
	// exported vectors import unchanged. A nil Vector makes the record a
	// user alone: UserId is created unless it exists.
	Vector []float32
	// FaceId keeps a face's ID from an export: a lowercase UUID not yet in
	// the collection. Empty means a new ID.
	FaceId string
	// ImageId keeps the ID of the face's image. Empty means a new ID.
	ImageId string
	// ExternalImageId is the caller's name for the image.
	ExternalImageId string
	// UserId, when set, is the user the face joins; the user is created
	// unless it exists. The file's associations are taken as given:
	// AssociateFaces' UserMatchThreshold check does not apply, the limit of
	// 100 faces per user does.
	UserId string
}

// ImportError is a record that failed its batch: the record and every
// record added since the last commit were discarded.
type ImportError struct {
	// Record is the failed record's position among all records passed to
	// [Importer.Add], from 0.
	Record int
	// Discarded is how many records were dropped with the batch, the failed
	// one included.
	Discarded int
	// Err is why, an [*Error] with the Rekognition code.
	Err error
}

// Error says which record failed, why, and how much of its batch went.
func (e *ImportError) Error() string {
	return fmt.Sprintf("import record %d: %v (%d records of its batch discarded)", e.Record, e.Err, e.Discarded)
}

// Unwrap returns the reason, so errors.Is(err, ErrInvalidParameter) and the
// like work.
func (e *ImportError) Unwrap() error { return e.Err }

// ImportStats counts what an [Importer] has done so far. Every record
// passed to [Importer.Add] is counted once, in Records, Committing, Pending
// or Discarded.
type ImportStats struct {
	// Records, Faces and UsersCreated count committed work (in a dry run,
	// work that passed its checks).
	Records      int
	Faces        int
	UsersCreated int
	// Batches is the number of batches committed.
	Batches int
	// Committing is the number of records of the batch whose commit is
	// under way, 0 if none is.
	Committing int
	// Pending is the number of records in the batch being filled.
	Pending int
	// Discarded is the number of records dropped with failed batches.
	Discarded int
}

// ErrImporterClosed is returned by calls on an [Importer] after Close.
var ErrImporterClosed = errors.New("engine: importer closed")

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
	// arena holds the batch's vectors and vector records, and is reset
	// with it: after a commit has published them, or a discard.
	arena    store.IngestArena
	sb       *store.Batch
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
	b.arena.Reset()
	if !im.opts.DryRun {
		b.sb = im.e.store.NewIngestBatchIn(&b.arena)
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

// admit checks rec against the collection, the dry run's state and the
// current batch, and adds it to the batch.
func (im *Importer) admit(rec ImportRecord, idx int) error {
	var v validator
	v.faceID("FaceId", rec.FaceId, false)
	v.faceID("ImageId", rec.ImageId, false)
	v.externalImageID(rec.ExternalImageId)
	v.userID("UserId", rec.UserId, false)
	if rec.Vector == nil {
		switch {
		case rec.UserId == "":
			v.addf("a record needs an embedding, a UserId, or both")
		case rec.FaceId != "" || rec.ImageId != "" || rec.ExternalImageId != "":
			v.addf("a record without an embedding is a user alone: it cannot have FaceId, ImageId or ExternalImageId")
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	var norm float64
	if rec.Vector != nil {
		var err error
		if norm, err = checkEmbedding(rec.Vector, "the embedding"); err != nil {
			return err
		}
		dim := im.dim
		if dim == 0 {
			dim = im.batch.dim
		}
		if dim == 0 && !im.opts.DryRun {
			im.c.mu.RLock()
			dim = im.c.dim // another writer may have fixed it since
			im.c.mu.RUnlock()
		}
		if err := checkDim("the embedding", len(rec.Vector), im.coll, dim); err != nil {
			return err
		}
	}

	b := im.batch
	userExists, userFaces := false, 0
	if rec.FaceId != "" || rec.UserId != "" {
		im.c.mu.RLock()
		// The batch being committed, until it is published, holds faces
		// and users that the collection does not yet.
		var committing *importBatch
		if f := im.flight; f != nil && !f.published {
			committing = f.b
		}
		if rec.FaceId != "" {
			exists := im.c.faces[rec.FaceId] != nil
			if committing != nil {
				_, in := committing.faceIDs[rec.FaceId]
				exists = exists || in
			}
			if exists {
				im.c.mu.RUnlock()
				return errorf(CodeResourceAlreadyExists, "the face id: %s already exists in collection %s", rec.FaceId, im.coll)
			}
		}
		if u := im.c.users[rec.UserId]; u != nil {
			userExists, userFaces = true, len(u.faces)
		}
		if committing != nil {
			if i, ok := committing.userIdx[rec.UserId]; ok {
				userExists = true
				userFaces += committing.users[i].faces
			}
		}
		im.c.mu.RUnlock()
	}
	if rec.FaceId != "" {
		if _, dup := b.faceIDs[rec.FaceId]; dup || im.dry != nil && im.dry.faceIDs[rec.FaceId] {
			return errorf(CodeResourceAlreadyExists, "the face id: %s appears twice in the import", rec.FaceId)
		}
	}
	bu := int32(-1) // rec.UserId's index in b.users
	if rec.UserId != "" {
		if im.dry != nil {
			userExists = userExists || im.dry.users[rec.UserId]
			userFaces += im.dry.userFaces[rec.UserId]
		}
		if i, ok := b.userIdx[rec.UserId]; ok {
			bu = i
			userExists = userExists || b.users[i].isNew
			userFaces += b.users[i].faces
		}
		if rec.Vector != nil {
			if err := userFacesQuota(rec.UserId, userFaces, 1); err != nil {
				return err
			}
		}
	}

	// The record is good: add it.
	ent := importEntry{idx: idx, userID: rec.UserId}
	if rec.UserId != "" && bu < 0 {
		bu = int32(len(b.users))
		b.userIdx[rec.UserId] = bu
		b.users = append(b.users, batchUser{})
	}
	if rec.UserId != "" && !userExists {
		b.newUsers = append(b.newUsers, rec.UserId)
		b.users[bu].isNew = true
	}
	if rec.Vector != nil {
		// In the arena, with the batch's records: reused once it is done.
		vec := b.arena.Floats(len(rec.Vector))
		normalizeInto(vec, rec.Vector, norm)
		if b.dim == 0 && im.dim == 0 {
			b.dim = len(vec)
		}
		f := &store.Face{ID: rec.FaceId, ImageID: rec.ImageId, ExternalImageID: rec.ExternalImageId, UserID: rec.UserId, Vector: vec}
		if f.ID == "" {
			f.ID = im.newID()
		} else {
			ent.preserved = true
			b.faceIDs[f.ID] = idx
		}
		if f.ImageID == "" {
			f.ImageID = im.newID()
		}
		if rec.UserId != "" {
			b.users[bu].faces++
		}
		if !im.opts.DryRun {
			f.Seq = im.c.faceSeq.Add(1)
			b.sb.PutFace(im.coll, f)
		}
		ent.face = f
	}
	b.entries = append(b.entries, ent)
	return nil
}

// commit checks the current batch, under the collection's write lock, and
// has a goroutine write it, durably, and publish it, while the next batch
// fills. It first waits for the commit before; with wait, it also waits
// for its own.
func (im *Importer) commit(wait bool) error {
	if err := im.join(); err != nil {
		return err
	}
	b := im.batch
	if len(b.entries) == 0 {
		return nil
	}
	if err := im.ctx.Err(); err != nil {
		return im.end(err)
	}
	if im.opts.DryRun {
		d := im.dry
		for _, ent := range b.entries {
			if ent.face != nil {
				d.faces++
				if ent.preserved {
					d.faceIDs[ent.face.ID] = true
				}
				if ent.userID != "" {
					d.userFaces[ent.userID]++
				}
			}
		}
		for _, u := range b.newUsers {
			d.users[u] = true
		}
		im.dim = max(im.dim, b.dim)
		im.count(b, len(b.newUsers))
		im.resetBatch()
		return nil
	}

	c, done, err := im.e.beginWrite(&validator{}, im.coll)
	if err != nil {
		return im.end(err)
	}
	handedOff := false
	defer func() {
		if !handedOff {
			done()
		}
	}()
	if c != im.c {
		return im.end(notFound("The collection id: %s was deleted during the import", im.coll))
	}

	// Other writers may have run since the records were checked: check
	// again what they could have changed, now that none can.
	m := c.meta
	c.mu.RLock()
	bad, err := im.recheck(c, m.Dim)
	c.mu.RUnlock()
	if err != nil {
		return im.failBatch(bad, err, true)
	}
	metaChanged := false
	if m.Dim == 0 && b.dim != 0 {
		m.Dim = b.dim
		metaChanged = true
	}
	created := im.e.now().UTC()
	var users []*user
	for i := range im.commitUsers {
		cu := &im.commitUsers[i]
		if cu.u != nil {
			continue
		}
		m.LastUserPK++
		cu.u = &user{id: cu.id, pk: m.LastUserPK, created: created}
		users = append(users, cu.u)
		b.sb.PutUser(im.coll, store.User{ID: cu.u.id, PK: m.LastUserPK, Created: created})
		metaChanged = true
	}
	if metaChanged {
		b.sb.PutCollection(m)
	}
	// The write lock goes with the batch: no other writer may change
	// what recheck found until the batch is published.
	f := &importFlight{b: b, usersCreated: len(users), done: make(chan struct{})}
	handedOff = true
	go func() {
		defer close(f.done)
		defer done()
		if err := b.sb.Commit(true); err != nil {
			f.err = err
			return
		}
		im.publish(c, m, users, f)
	}()
	im.flight = f
	im.dim = m.Dim // fixed, unless the commit fails, which ends the import
	im.batch, im.spare = im.spare, im.batch
	im.resetBatch()
	if wait {
		return im.join()
	}
	return nil
}

// join waits for the commit under way, if any, and counts it, or ends the
// import with its error.
func (im *Importer) join() error {
	f := im.flight
	if f == nil {
		return nil
	}
	<-f.done
	im.flight = nil
	if f.err != nil {
		im.stats.Discarded += len(f.b.entries)
		return im.end(internal("import", f.err))
	}
	im.count(f.b, f.usersCreated)
	return nil
}

// poll joins the commit under way if it has ended, so that Add reports
// its failure at once rather than at the next commit.
func (im *Importer) poll() {
	if f := im.flight; f != nil && f.ended() {
		im.join() // its error, if any, is now im.err
	}
}

// ended reports whether the commit has ended; f.err is then set.
func (f *importFlight) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// recheck runs the checks that depend on the collection's state over the
// whole batch and finds the users it names (commitUsers: those still to be
// created have no *user yet), or returns the first failing record and why.
// The caller holds c.writeMu and c.mu shared.
func (im *Importer) recheck(c *collection, dim int) (int, error) {
	b := im.batch
	if im.commitUserIdx == nil {
		im.commitUserIdx = map[string]int32{}
	}
	clear(im.commitUserIdx)
	clear(im.commitUsers) // let go of the users
	im.commitUsers = im.commitUsers[:0]
	for i := range b.entries {
		ent := &b.entries[i]
		if f := ent.face; f != nil {
			if err := checkDim("the embedding", len(f.Vector), im.coll, dim); err != nil {
				return ent.idx, err
			}
			if ent.preserved && c.faces[f.ID] != nil {
				return ent.idx, errorf(CodeResourceAlreadyExists, "the face id: %s already exists in collection %s", f.ID, im.coll)
			}
		}
		ent.user = -1
		if ent.userID == "" {
			continue
		}
		j, seen := im.commitUserIdx[ent.userID]
		if !seen {
			cu := commitUser{id: ent.userID, u: c.users[ent.userID]}
			if cu.u != nil {
				cu.faces = len(cu.u.faces)
			}
			j = int32(len(im.commitUsers))
			im.commitUserIdx[ent.userID] = j
			im.commitUsers = append(im.commitUsers, cu)
		}
		ent.user = j
		if ent.face != nil {
			cu := &im.commitUsers[j]
			if err := userFacesQuota(ent.userID, cu.faces, 1); err != nil {
				return ent.idx, err
			}
			cu.faces++
		}
	}
	return 0, nil
}

// publish makes a committed batch visible to searches: its faces, and the
// users it created (users) or gave faces. The caller holds c.writeMu.
func (im *Importer) publish(c *collection, m store.CollectionMeta, users []*user, f *importFlight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.published = true
	if c.dim == 0 && m.Dim != 0 {
		c.dim = m.Dim
		c.newIndexes(m.Dim)
	}
	c.meta.Dim, c.meta.LastUserPK = m.Dim, m.LastUserPK
	if !im.presized {
		im.presized = true
		c.presizeMaps(im.opts.ExpectedFaces, im.opts.ExpectedUsers)
	}
	if c.faceIdx != nil && !im.keysReserved {
		// At the first commit with matrices, which may be a later one than
		// the first (which held users only); only once, as a matrix that
		// rows leave gives its room back (rows of users given a second
		// face leave soloIdx), and would take it again at every commit.
		im.keysReserved = true
		solo, other, several := hintedRows(im.opts.ExpectedFaces, im.opts.ExpectedUsers)
		c.soloIdx.ReserveKeys(solo)
		c.faceIdx.ReserveKeys(other)
		c.userIdx.ReserveKeys(several)
	}
	// The faces go in on one core while the users take the other. A face
	// that is its user's only one, once the batch is in, goes to soloIdx
	// (see soloIdx), the others to faceIdx.
	entries := f.b.entries
	cus := im.commitUsers
	var faces sync.WaitGroup
	faces.Go(func() {
		for _, ent := range entries {
			if f := ent.face; f != nil {
				fc := &face{id: f.ID, imageID: f.ImageID, externalImageID: f.ExternalImageID, seq: f.Seq, userID: f.UserID}
				c.faces[f.ID], c.bySeq[f.Seq] = fc, fc
				if ent.user >= 0 && cus[ent.user].faces == 1 {
					c.soloIdx.Upsert(f.Seq, f.Vector)
				} else {
					c.faceIdx.Upsert(f.Seq, f.Vector)
				}
			}
		}
	})
	for _, u := range users {
		c.users[u.id], c.byPK[u.pk] = u, u
	}
	// Each user given faces gets a new list (readers may hold the old).
	for _, ent := range entries {
		if ent.face == nil || ent.user < 0 {
			continue
		}
		cu := &cus[ent.user]
		if !cu.updated {
			cu.updated = true
			cu.before = cu.u.faces
			cu.u.faces = append(make([]string, 0, cu.faces), cu.u.faces...)
		}
		cu.u.faces = append(cu.u.faces, ent.face.ID)
		cu.added++
	}
	// A user whose one face is new needs nothing more; the others are
	// regrouped once the faces are in.
	var regrouped []*commitUser
	for i := range cus {
		cu := &cus[i]
		if cu.added == 0 {
			continue
		}
		u := cu.u
		if len(u.faces) == 1 {
			continue
		}
		slices.Sort(u.faces) // a list of publish's own
		u.faces = slices.Compact(u.faces)
		regrouped = append(regrouped, cu)
	}
	faces.Wait()
	for _, cu := range regrouped {
		c.regroup(cu.u, cu.before)
	}
}

// hintedRows divides the rows of an import of faces faces and users new
// users among the matrices (see soloIdx), taking every user to get a face:
// then at least 2*users-faces of them have one face only (solo), the
// other faces are of users of several or of none, and the users of
// several number at most half those faces. For users of one face each,
// or of no more than two, the division is exact.
func hintedRows(faces, users int) (solo, other, several int) {
	solo = min(faces, max(0, 2*users-faces))
	other = faces - solo
	several = max(0, min(users-solo, other/2))
	return solo, other, several
}

// presizeMaps sizes those of c's maps that are still empty for faces
// faces and users users (see ImportOptions.ExpectedFaces). c.mu is held
// for writing.
func (c *collection) presizeMaps(faces, users int) {
	if faces > 0 {
		sizeIfEmpty(&c.faces, faces)
		sizeIfEmpty(&c.bySeq, faces)
	}
	if users > 0 {
		sizeIfEmpty(&c.users, users)
		sizeIfEmpty(&c.byPK, users)
	}
}

// sizeIfEmpty replaces *m, if it is empty, with a map sized for n keys.
func sizeIfEmpty[K comparable, V any](m *map[K]V, n int) {
	if len(*m) == 0 {
		*m = make(map[K]V, n)
	}
}

// count adds batch b, which created usersCreated users, to the stats.
func (im *Importer) count(b *importBatch, usersCreated int) {
	im.stats.Batches++
	im.stats.Records += len(b.entries)
	im.stats.UsersCreated += usersCreated
	for _, ent := range b.entries {
		if ent.face != nil {
			im.stats.Faces++
		}
	}
}

// Export yields a collection's contents as the records that re-create it:
// first every user, in primary-key order, as a record without Vector; then
// every face in the order it was indexed, with its IDs, its stored
// (normalized) vector and its user. Importing the records in order into an
// empty collection gives the same face IDs, vector bits and associations,
// faces listed in the same order, and users in the same primary-key order.
//
// Export reads the store as it goes: on a collection that changes meanwhile,
// it may see some changes and not others (a [Engine.Backup] is a
// point-in-time copy to export from). The collection cannot be deleted, nor
// the engine closed, until the iteration ends, so the loop body must not
// try to.
func (e *Engine) Export(ctx context.Context, collectionID string) iter.Seq2[ImportRecord, error] {
	return func(yield func(ImportRecord, error) bool) {
		var v validator
		v.collectionID(collectionID)
		if err := v.err(); err != nil {
			yield(ImportRecord{}, err)
			return
		}
		c, release, err := e.acquire(collectionID)
		if err != nil {
			yield(ImportRecord{}, err)
			return
		}
		defer release()
		n := 0
		cancelled := func() bool {
			n++
			if n%1024 != 0 {
				return false
			}
			if err := ctx.Err(); err != nil {
				yield(ImportRecord{}, err)
				return true
			}
			return false
		}
		for u, err := range e.store.Users(collectionID, 0) {
			if err != nil {
				yield(ImportRecord{}, internal("Export", err))
				return
			}
			if cancelled() || !yield(ImportRecord{UserId: u.ID}, nil) {
				return
			}
		}
		// The records come from the store in sequence order; the vectors from
		// the face matrices, which hold the stored bits, so that an export
		// reads no vector from disk. A face
		// deleted since the records were read has left the matrices, and is
		// left out.
		for f, err := range e.store.FacesAfter(collectionID, 0) {
			if err != nil {
				yield(ImportRecord{}, internal("Export", err))
				return
			}
			c.mu.RLock()
			var vec []float32
			if v, ok := c.faceVector(f.Seq); ok {
				vec = slices.Clone(v)
			}
			c.mu.RUnlock()
			if vec == nil {
				continue
			}
			rec := ImportRecord{Vector: vec, FaceId: f.ID, ImageId: f.ImageID, ExternalImageId: f.ExternalImageID, UserId: f.UserID}
			if cancelled() || !yield(rec, nil) {
				return
			}
		}
	}
}
