package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/store"
)

// Options configure [Open]. A nil *Options is valid and means all defaults.
type Options struct {
	// ReadOnly opens the store for reading only: every mutating call fails.
	// The default value is false.
	ReadOnly bool
	// CacheSize is the storage block cache in bytes. The default value is 64 MiB.
	CacheSize int64
	// IdempotencyTTL is how long a ClientRequestToken is remembered.
	// The default value is 24 hours.
	IdempotencyTTL time.Duration
	// MinFreeBytes is the free-space floor: a mutating call that would
	// leave less free space than this on the store's file system fails with
	// ThrottlingException (see [ErrDiskFull]); reads go on, and writes
	// resume once there is more. A negative value turns the floor off.
	// The default value is 5% of the file system, at least 256 MiB and at
	// most 20 GiB.
	MinFreeBytes int64
	// Salvage opens a store whose write-ahead log is damaged before its end
	// (see [LogDamage]) by dropping the records from the damage on, after
	// saving the logs as they were; [Engine.Salvaged] says what was dropped.
	// Without it, Open refuses such a store. The default value is false.
	Salvage bool
}

// Validate reports every problem of o at once.
func (o *Options) Validate() error {
	var errs []error
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("engine: Options.CacheSize %d is negative", o.CacheSize))
	}
	if o.IdempotencyTTL < 0 {
		errs = append(errs, fmt.Errorf("engine: Options.IdempotencyTTL %v is negative", o.IdempotencyTTL))
	}
	return errors.Join(errs...)
}

func (o *Options) clone() *Options {
	if o == nil {
		return &Options{}
	}
	c := *o
	return &c
}

func (o *Options) ensureDefaults() {
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.IdempotencyTTL == 0 {
		o.IdempotencyTTL = 24 * time.Hour
	}
}

// Engine is a facesearch database: collections of faces and users, kept in a
// store directory and searched in memory. It is safe for concurrent use.
type Engine struct {
	opts   *Options
	store  *store.Store
	secret []byte
	now    func() time.Time

	mu      sync.RWMutex // guards colls, collSeq, closed
	colls   map[string]*collection
	collSeq uint64
	closed  bool
}

// collection is one collection's in-memory state.
//
// Locking, outermost first:
//   - life: every call on the collection holds it shared for its whole
//     duration; DeleteCollection and Close hold it exclusively, so they wait
//     for calls in flight and no call writes into a deleted collection.
//   - writeMu: serializes read-modify-write mutations (users, associations,
//     deletions) across their commit. IndexFaces only adds fresh faces, so it
//     skips writeMu and concurrent IndexFaces calls share fsyncs.
//   - mu: guards the maps and matrices below. Searches hold it shared;
//     mutations hold it exclusively only to publish what they committed.
type collection struct {
	life    sync.RWMutex
	deleted bool

	// Fixed at creation, so readable without locks.
	seq     uint64 // incarnation: page tokens are bound to it
	created time.Time
	curve   *curve
	tier    index.Tier // what searches scan

	writeMu sync.Mutex
	meta    store.CollectionMeta // guarded by writeMu

	mu    sync.RWMutex
	dim   int
	faces map[string]*face
	bySeq map[uint64]*face
	users map[string]*user
	byPK  map[uint64]*user
	// Every face's vector has one row, in soloIdx if the face is its
	// user's only face, else in faceIdx. A user of one face searches as
	// that face's row (see vectorOf), so those rows serve both searches;
	// a user of several has an averaged row of its own in userIdx. With a
	// copy of each lone face in userIdx instead, a million users of one
	// face each (512 dimensions) faulted in 2 GB more: importing them took
	// 14.4-22.4 s against 9.4-15.2 s, and reopening 2.49-3.10 s against
	// 1.90-2.31 s (three alternating runs).
	faceIdx *index.Matrix // rows keyed by face sequence: faces of no user, or of a user of several
	soloIdx *index.Matrix // rows keyed by face sequence: the faces of users of one face
	userIdx *index.Matrix // rows keyed by user primary key: users of several faces

	faceSeq atomic.Uint64 // last face sequence handed out
}

type face struct {
	id, imageID, externalImageID string
	seq                          uint64
	userID                       string
}

type user struct {
	id      string
	pk      uint64
	created time.Time
	faces   []string // face IDs, sorted
}

func (u *user) status() string {
	if len(u.faces) > 0 {
		return UserStatusActive
	}
	return UserStatusCreated
}

// Open opens the facesearch database in dir, creating it if needed, and
// loads every collection into memory. It refuses a store whose records
// contradict each other (see [ErrCorrupt]).
func Open(dir string, opts *Options) (*Engine, error) {
	o := opts.clone()
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	st, err := store.Open(dir, &store.Options{ReadOnly: o.ReadOnly, CacheSize: o.CacheSize,
		MinFreeBytes: o.MinFreeBytes, Salvage: o.Salvage})
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: o, store: st, secret: st.Secret(), now: time.Now, colls: map[string]*collection{}}
	if err := e.loadVerified(dir); err != nil {
		st.Close()
		return nil, err
	}
	return e, nil
}

// ErrCorrupt is returned by [Open] for a store it cannot trust.
var ErrCorrupt = store.ErrCorrupt

// ErrLocked is returned by [Open] when another process has the directory open.
var ErrLocked = store.ErrLocked

func (e *Engine) load() error {
	seq, err := e.store.CollectionSeq()
	if err != nil {
		return err
	}
	metas, err := e.store.Collections()
	if err != nil {
		return err
	}
	e.collSeq = seq
	for _, m := range metas {
		c, err := e.loadCollection(m)
		if err != nil {
			return fmt.Errorf("collection %q: %w", m.ID, err)
		}
		e.colls[m.ID] = c
		e.collSeq = max(e.collSeq, m.Seq)
	}
	return nil
}

func newCollection(m store.CollectionMeta, cv *curve, tier index.Tier) *collection {
	c := &collection{
		seq:     m.Seq,
		created: m.Created,
		meta:    m,
		curve:   cv,
		tier:    tier,
		dim:     m.Dim,
		faces:   map[string]*face{},
		bySeq:   map[uint64]*face{},
		users:   map[string]*user{},
		byPK:    map[uint64]*user{},
	}
	if m.Dim > 0 {
		c.newIndexes(m.Dim)
	}
	return c
}

// newIndexes makes the matrices of a collection whose dimension is now
// fixed, in the collection's tier.
func (c *collection) newIndexes(dim int) {
	c.faceIdx = index.NewMatrixTier(dim, c.tier)
	c.soloIdx = index.NewMatrixTier(dim, c.tier)
	c.userIdx = index.NewMatrixTier(dim, c.tier)
}

func (e *Engine) loadCollection(m store.CollectionMeta) (*collection, error) {
	cv, err := parseCurve(m.Similarity)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if m.Dim < 0 || m.Dim > maxDimension {
		return nil, fmt.Errorf("%w: dimension %d", ErrCorrupt, m.Dim)
	}
	tier, err := index.ParseTier(m.Tier)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	c := newCollection(m, cv, tier)
	// The face matrix's blocks, room for every face, are allocated first
	// (see index.Matrix.Reserve), alongside the users' load, which does
	// not touch them: allocated after it, they competed with the face scan
	// for the cores (a 1M x 512 reopen took 0.2-0.5 s longer, median of 6
	// in two alternating rounds). The faces that turn out to be their
	// user's only face take their share of that room to soloIdx (see
	// loadVectors); the users of several faces, at most half as many as
	// the faces, get theirs as their rows are added. The estimate may be
	// off either way, high when many faces were deleted; Fill.Done and
	// Trim free the blocks left unused, and the key maps are sized by the
	// keys.
	var reserving sync.WaitGroup
	defer reserving.Wait()
	if m.Dim > 0 {
		n := e.store.EstimateFaces(m.ID, m.Dim)
		reserving.Go(func() { c.faceIdx.Reserve(n) })
	}
	if err := e.loadUsers(c, m); err != nil {
		return nil, err
	}
	if err := e.loadFaces(c, m, reserving.Wait); err != nil {
		return nil, err
	}
	return c, nil
}

// Close waits for calls in flight and closes the store. Calls after Close
// return [ErrClosed].
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.closed = true
	colls := e.colls
	e.mu.Unlock()
	for _, c := range colls {
		c.life.Lock() // wait for calls in flight; never released: the engine is done
	}
	return e.store.Close()
}

// acquire finds a collection and holds it shared for the duration of a call.
func (e *Engine) acquire(id string) (*collection, func(), error) {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, nil, ErrClosed
	}
	c := e.colls[id]
	if c != nil {
		// Taken before releasing e.mu, so Close cannot slip in between.
		c.life.RLock()
	}
	e.mu.RUnlock()
	if c == nil {
		return nil, nil, notFound("The collection id: %s does not exist", id)
	}
	if c.deleted {
		c.life.RUnlock()
		return nil, nil, notFound("The collection id: %s does not exist", id)
	}
	return c, c.life.RUnlock, nil
}

func (e *Engine) writable() error {
	if e.opts.ReadOnly {
		return errorf(CodeInvalidParameter, "the engine is open read-only")
	}
	return nil
}

// userVector is the L2-normalized mean of the given faces' vectors, two or
// more (a user of one face has no vector of its own: see vectorOf), summed
// in face ID order in float64 so it is the same bits on every rebuild. The
// caller holds c.mu (either way) or owns c exclusively; concurrent calls
// are safe while nobody writes c.
func (c *collection) userVector(faceIDs []string) []float32 {
	out := make([]float32, c.dim)
	sum := make([]float64, c.dim)
	for _, id := range faceIDs {
		v, _ := c.faceVector(c.faces[id].seq)
		v = v[:len(sum)]
		for i, x := range v {
			sum[i] += float64(x)
		}
	}
	n := math.Sqrt(sumSquares(sum))
	if n == 0 {
		// Faces that cancel out exactly: keep the first face's direction so
		// the user still has a well-defined vector.
		v, _ := c.faceVector(c.faces[faceIDs[0]].seq)
		copy(out, v)
		return out
	}
	for i, x := range sum {
		out[i] = float32(x / n)
	}
	return out
}

// faceVector is the row of the face of sequence seq, wherever it is. The
// caller holds c.mu.
func (c *collection) faceVector(seq uint64) ([]float32, bool) {
	if c.faceIdx == nil {
		return nil, false
	}
	if v, ok := c.faceIdx.Vector(seq); ok {
		return v, true
	}
	return c.soloIdx.Vector(seq)
}

// vectorOf is u's vector as searches see it: its face's row for a user of
// one face, its own row for a user of several, nil for a user of none. A
// single face's vector is normalized already (to float32 precision), so it
// is its own mean. The result must not be modified, and is valid only
// until the matrices next change. The caller holds c.mu.
func (c *collection) vectorOf(u *user) []float32 {
	switch len(u.faces) {
	case 0:
		return nil
	case 1:
		v, _ := c.faceVector(c.faces[u.faces[0]].seq)
		return v
	}
	v, _ := c.userIdx.Vector(u.pk)
	return v
}

// regroup moves u's rows to where its face list, changed from before to
// u.faces, puts them (see soloIdx): a face that stops being its user's
// only face moves to faceIdx, one that becomes it moves to soloIdx, and
// a user of several faces gets its mean in userIdx. Every face of both
// lists must be in c.faces with its row. The caller holds c.mu for
// writing.
func (c *collection) regroup(u *user, before []string) {
	after := u.faces
	if len(before) == 1 && !(len(after) == 1 && after[0] == before[0]) {
		seq := c.faces[before[0]].seq
		if v, ok := c.soloIdx.Vector(seq); ok {
			c.faceIdx.Upsert(seq, v)
			c.soloIdx.Delete(seq)
		}
	}
	if len(before) > 1 && len(after) <= 1 {
		c.userIdx.Delete(u.pk)
	}
	switch len(after) {
	case 0:
	case 1:
		seq := c.faces[after[0]].seq
		if v, ok := c.faceIdx.Vector(seq); ok {
			c.soloIdx.Upsert(seq, v)
			c.faceIdx.Delete(seq)
		}
	default:
		c.userIdx.Upsert(u.pk, c.userVector(after))
	}
}

// sumSquares is the sum of v's squares, in float64 (the check for unit
// length is finer than float32 sums are). Four partial sums break the add
// chain; their order is fixed, so the bits are too.
func sumSquares[T float32 | float64](v []T) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(v); i += 4 {
		x0, x1, x2, x3 := float64(v[i]), float64(v[i+1]), float64(v[i+2]), float64(v[i+3])
		s0 += x0 * x0
		s1 += x1 * x1
		s2 += x2 * x2
		s3 += x3 * x3
	}
	for ; i < len(v); i++ {
		s0 += float64(v[i]) * float64(v[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// normalize validates an embedding and returns its L2-normalized copy.
func normalize(v []float32, what string) ([]float32, error) {
	n, err := checkEmbedding(v, what)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	normalizeInto(out, v, n)
	return out, nil
}

// checkEmbedding validates an embedding and returns its L2 norm.
func checkEmbedding(v []float32, what string) (float64, error) {
	if len(v) == 0 || len(v) > maxDimension {
		return 0, invalid("%s has %d dimensions; a vector must have 1 to %d", what, len(v), maxDimension)
	}
	s := sumSquares(v)
	// Squares of finite float32s are far from overflowing a float64, so
	// only a NaN or an infinity in v makes s other than finite.
	if math.IsNaN(s) || math.IsInf(s, 0) {
		i := slices.IndexFunc(v, func(x float32) bool { return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) })
		return 0, invalid("%s has a non-finite value at position %d", what, i)
	}
	if s == 0 {
		return 0, invalid("%s is the zero vector; it has no direction to compare", what)
	}
	return math.Sqrt(s), nil
}

// normalizeInto writes v, of norm n (see checkEmbedding), normalized into out.
func normalizeInto(out, v []float32, n float64) {
	if math.Abs(n-1) <= unitTolerance {
		// Already unit length (every stored vector is): keep its bits, so
		// exported vectors import unchanged.
		copy(out, v)
		return
	}
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
}

// unitTolerance is how far from 1 a vector's norm may be for the vector to
// count as normalized already: normalize's own output is within 2^-24 of
// unit length, so re-normalizing such a vector could only move its last bits.
const unitTolerance = 0x1p-23

func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
