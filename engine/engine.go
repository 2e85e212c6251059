package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/store"
)

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

// Open opens the facesearch database in dir, creating it if needed, and
// loads every collection into memory. It refuses a store whose records
// contradict each other (see [ErrCorrupt]).
func Open(dir string, opts *Options) (*Engine, error) {
	o := opts.clone()
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return openStore(dir, o, &store.Options{ReadOnly: o.ReadOnly, CacheSize: o.CacheSize,
		MinFreeBytes: o.MinFreeBytes, Salvage: o.Salvage, FS: o.FS})
}

// openStore is Open once o is complete, with the store's options so.
// The load reads every record of the store still open read-only, so a
// table damaged anywhere is refused before the writable open changes the
// directory; nothing can change it in between (see store.Options.WritableLater).
func openStore(dir string, o *Options, so *store.Options) (*Engine, error) {
	so.WritableLater = !so.ReadOnly
	st, err := store.Open(dir, so)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: o, store: st, secret: st.Secret(), now: time.Now, colls: map[string]*collection{}}
	if len(o.PageTokenSecret) > 0 {
		e.secret = o.PageTokenSecret
	}
	if err := e.loadVerified(dir); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.OpenWritable(); err != nil {
		return nil, err
	}
	return e, nil
}

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

func (e *Engine) loadCollection(m store.CollectionMeta) (*collection, error) {
	if err := checkMeta(m, stop); err != nil {
		return nil, err
	}
	cv, _ := parseCurve(m.Similarity)
	tier, _ := index.ParseTier(m.Tier)
	c := newCollection(m, cv, tier)
	// The face matrix's blocks, room for every face, are allocated first
	// (see index.Matrix.Reserve), alongside the users' load, which does
	// not touch them: allocated after it, they compete with the face scan
	// for the cores (facesearch bench's open_s shows the reopen). The faces
	// that turn out to be their user's only face take their share of that
	// room to soloIdx (see loadVectors); the users of several faces, at
	// most half as many as the faces, get theirs as their rows are added.
	// The estimate may be off either way, high when many faces were
	// deleted; Fill.Done and Trim free the blocks left unused, and the key
	// maps are sized by the keys.
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
	// After the faces: the sequences of deleted faces are not handed out
	// again (see store.Batch.PutLastFaceSeq).
	last, err := e.store.LastFaceSeq(m.ID)
	if err != nil {
		return nil, err
	}
	c.faceSeq.Store(max(c.faceSeq.Load(), last))
	return c, nil
}

// Flush writes what the store holds in memory to its tables, so that the
// next Open has little of the write-ahead log to replay. When the disk is
// full (Pebble's flush fails for lack of space) it returns at once with an
// error wrapping [ErrDiskFull], and mutating calls fail with
// ThrottlingException until a flush succeeds; Pebble retries it by itself.
func (e *Engine) Flush() error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	if err := e.store.Flush(); err != nil {
		return fmt.Errorf("engine: flush: %w", err)
	}
	return nil
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
