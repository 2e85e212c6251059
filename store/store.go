package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Store is the durable state of one data directory. It is safe for
// concurrent use.
type Store struct {
	db       *pebble.DB
	dir      string
	id       string
	secret   []byte
	readOnly bool
	disk     *diskGuard
	salvaged *LogDamage
	lock     *dirLock
	// pending is the writable open that [Store.OpenWritable] will do, for a
	// store opened with [Options.WritableLater].
	pending *writable
	// popts are the options the store was opened with, defaults filled in:
	// ingest batches write their tables with them.
	popts     *pebble.Options
	ingestSeq atomic.Uint64 // names the tables of ingest batches
	// ingestSplitBytes is the least a key range of an ingest batch holds
	// per table once it is cut into several (tests lower it).
	ingestSplitBytes int
	// ingestMu is held shared by each ingest and exclusively by Checkpoint.
	ingestMu sync.RWMutex
}

// Dir is the directory the store was opened in.
func (s *Store) Dir() string { return s.dir }

// ID is the store's ID, from its identity file: 32 hex digits, random at
// creation. It is empty for a read-only store that has no identity file
// yet (a store of an earlier release).
func (s *Store) ID() string { return s.id }

// Salvaged is what Open dropped from a damaged log when [Options.Salvage]
// was set, or nil if it dropped nothing.
func (s *Store) Salvaged() *LogDamage { return s.salvaged }

// Close flushes the memtable to a table and releases the directory. Every
// commit that mattered was already synced to the log; the flush is for the
// next Open, which would otherwise replay up to a memtable's worth of log
// and write that table itself before serving.
func (s *Store) Close() error {
	if s.db == nil {
		return ErrClosed
	}
	var err error
	if !s.readOnly {
		err = s.flush()
	}
	err = errors.Join(err, s.closeDB(), s.lock.Close())
	if s.pending != nil {
		s.pending.cache.Unref()
		s.pending = nil
	}
	return err
}

// Flush writes the memtable to a table, so that the next Open has little
// log to replay. When Pebble's flush fails for lack of space it returns at
// once with an error wrapping [ErrDiskFull]; Pebble keeps retrying it, and
// the log keeps every write meanwhile.
func (s *Store) Flush() error {
	if s.db == nil {
		return ErrClosed
	}
	if err := s.flush(); err != nil {
		return err
	}
	if s.disk.bgFull.Load() {
		return fmt.Errorf("%w: the flush of %s failed for lack of space", ErrDiskFull, s.dir)
	}
	return nil
}

// flush flushes the memtable, unless the disk is full: Pebble retries a
// failed flush until it succeeds, and Close would wait for it forever.
// Without the flush, the next Open replays the log, which holds every
// acknowledged write.
func (s *Store) flush() error {
	done, err := s.db.AsyncFlush()
	if err != nil {
		return err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-tick.C:
			if s.disk.bgFull.Load() {
				return nil
			}
		}
	}
}

// Secret is the store's page-token signing key, created with the store.
func (s *Store) Secret() []byte { return s.secret }

func (s *Store) loadSecret(readOnly bool) error {
	v, ok, err := s.get(keySecret)
	if err != nil {
		return err
	}
	if ok && len(v) == 32 {
		s.secret = v
		return nil
	}
	if ok {
		// Replacing it would silently void every page token handed out.
		return fmt.Errorf("%w: sys/secret has %d bytes, want 32", ErrCorrupt, len(v))
	}
	if readOnly {
		// A read-only store that never had a secret holds no collections
		// whose tokens could matter; an ephemeral key is enough.
		s.secret = make([]byte, 32)
		_, err := rand.Read(s.secret)
		return err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	if err := s.db.Set(keySecret, secret, pebble.Sync); err != nil {
		return fmt.Errorf("store: write secret: %w", err)
	}
	s.secret = secret
	return nil
}

// Checkpoint writes a consistent copy of the store into dir (which must not
// exist), while the store stays in use. Opening dir gives the state as of
// one instant.
func (s *Store) Checkpoint(dir string) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return err
	}
	// An ingest changes only the manifest, which Pebble's checkpoint copies
	// up to a length fixed at its start, while it copies the log as it is at
	// its end: an ingest in between, followed by a write that builds on it
	// (a change of owner of an imported face), would leave a copy holding
	// the write but not the face. Ingests wait for checkpoints instead.
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	return s.db.Checkpoint(dir, pebble.WithFlushedWAL())
}

// get returns a copy of key's value.
func (s *Store) get(key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get %q: %w", key, err)
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, true, nil
}

// CollectionSeq is the last collection incarnation number handed out.
func (s *Store) CollectionSeq() (uint64, error) {
	v, ok, err := s.get(keyCollSeq)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: sys/collseq has %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Collections returns every collection's metadata in ID order.
func (s *Store) Collections() ([]CollectionMeta, error) {
	var out []CollectionMeta
	err := s.scan(prefixColl, func(k, v []byte) error {
		m, err := decodeCollection(string(k[len(prefixColl):]), v)
		out = append(out, m)
		return err
	})
	return out, err
}

// Collection returns one collection's metadata.
func (s *Store) Collection(id string) (CollectionMeta, bool, error) {
	v, ok, err := s.get(collKey(id))
	if err != nil || !ok {
		return CollectionMeta{}, false, err
	}
	m, err := decodeCollection(id, v)
	return m, err == nil, err
}

// Faces yields every face of a collection in sequence order (the order
// they were indexed), vectors included, as of one instant.
func (s *Store) Faces(coll string) iter.Seq2[*Face, error] {
	return s.faces(coll, 0, true)
}

// FacesAfter yields a collection's faces of sequences greater than after
// (0 means from the first), in sequence order, without their vectors
// (listing does not need them).
func (s *Store) FacesAfter(coll string, after uint64) iter.Seq2[*Face, error] {
	return s.faces(coll, after, false)
}

func (s *Store) faces(coll string, after uint64, withVector bool) iter.Seq2[*Face, error] {
	return func(yield func(*Face, error) bool) {
		if after == ^uint64(0) {
			return
		}
		// The records and the vectors they point to are read from one
		// snapshot, so a face deleted meanwhile is either whole or absent.
		snap := s.db.NewSnapshot()
		defer snap.Close()
		prefix := collPrefix(coll, 's')
		lower := prefix // from the first, even a corrupt record of sequence 0 (for checks)
		if after > 0 {
			lower = faceKey(coll, after+1)
		}
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
		if err != nil {
			yield(nil, err)
			return
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			seq, err := seqOf(it.Key(), prefix, "face record")
			var f *Face
			if err == nil {
				f, err = decodeFace(seq, it.Value())
			}
			if err == nil && withVector {
				f.Vector, err = readVector(snap, coll, f)
			}
			if !yield(f, err) || err != nil {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(nil, err)
		}
	}
}

// seqOf is the sequence a face record's or vector's key ends in.
func seqOf(k, prefix []byte, what string) (uint64, error) {
	rest := k[len(prefix):]
	if len(rest) != 8 {
		return 0, fmt.Errorf("%w: %s key %q", ErrCorrupt, what, k)
	}
	return binary.BigEndian.Uint64(rest), nil
}

// readVector reads face f's vector, checking that it is f's.
func readVector(r pebble.Reader, coll string, f *Face) ([]float32, error) {
	v, closer, err := r.Get(vectorKey(coll, f.Seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: face %s has no vector (sequence %d)", ErrCorrupt, f.ID, f.Seq)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get vector %d: %w", f.Seq, err)
	}
	defer closer.Close()
	id, raw, err := decodeVectorRaw(f.Seq, v)
	if err != nil {
		return nil, err
	}
	if string(id) != f.ID {
		return nil, fmt.Errorf("%w: face %s has sequence %d, whose vector is face %s's", ErrCorrupt, f.ID, f.Seq, id)
	}
	return decodeVector(nil, raw), nil
}

// Face returns the record of the face of sequence seq, vector included.
func (s *Store) Face(coll string, seq uint64) (*Face, bool, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	v, closer, err := snap.Get(faceKey(coll, seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get face %d: %w", seq, err)
	}
	f, err := decodeFace(seq, v)
	closer.Close()
	if err == nil {
		f.Vector, err = readVector(snap, coll, f)
	}
	return f, err == nil, err
}

// Users yields a collection's users in primary-key order, starting after
// primary key after (0 means from the first). It reads only the primary-key
// index, so one iterator gives a consistent view; Created is left zero.
func (s *Store) Users(coll string, after uint64) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		if after == ^uint64(0) {
			return
		}
		prefix := collPrefix(coll, 'k')
		lower := binary.BigEndian.AppendUint64(bytes.Clone(prefix), after+1)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
		if err != nil {
			yield(User{}, err)
			return
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()[len(prefix):]
			if len(k) != 8 {
				yield(User{}, fmt.Errorf("%w: user key %q", ErrCorrupt, it.Key()))
				return
			}
			if !yield(User{ID: string(it.Value()), PK: binary.BigEndian.Uint64(k)}, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(User{}, err)
		}
	}
}

// ScanUserKeys calls fn for every entry of a collection's primary-key
// index, in key order, with the user ID it names, which fn may keep only
// during the call: Open checks the index against the user records without
// a string per entry. The first error from fn or the store is returned.
func (s *Store) ScanUserKeys(coll string, fn func(pk uint64, userID []byte) error) error {
	prefix := collPrefix(coll, 'k')
	return s.scan(prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+8 {
			return fmt.Errorf("%w: user key %q", ErrCorrupt, k)
		}
		return fn(binary.BigEndian.Uint64(k[len(prefix):]), v)
	})
}

// User returns one user record.
func (s *Store) User(coll, userID string) (User, bool, error) {
	v, ok, err := s.get(userKey(coll, userID))
	if err != nil || !ok {
		return User{}, false, err
	}
	u, err := decodeUser(userID, v)
	return u, err == nil, err
}

// UserRecords returns every user record of a collection in user ID order.
func (s *Store) UserRecords(coll string) ([]User, error) {
	var out []User
	prefix := collPrefix(coll, 'u')
	err := s.scan(prefix, func(k, v []byte) error {
		u, err := decodeUser(string(k[len(prefix):]), v)
		out = append(out, u)
		return err
	})
	return out, err
}

// Token returns the idempotency record of (op, token) in a collection, if it
// exists and has not expired at now.
func (s *Store) Token(coll, op, token string, now time.Time) (*Token, bool, error) {
	v, ok, err := s.get(tokenKey(coll, op, token))
	if err != nil || !ok {
		return nil, false, err
	}
	t, err := decodeToken(v)
	if err != nil {
		return nil, false, err
	}
	if !now.Before(t.Expires) {
		return nil, false, nil
	}
	return t, true, nil
}

// scan calls fn for every key under prefix, stopping at fn's first error.
// The slices passed to fn are only valid during the call.
func (s *Store) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}

var _ io.Closer = (*Store)(nil)
