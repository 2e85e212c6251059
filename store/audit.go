package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
)

// recordKinds are the record kinds under c/<coll>/ this release reads (see
// the key layout in the package documentation). A kind it does not know is
// a record it cannot interpret, so [Store.Audit] reports it.
var recordKinds = []byte{'k', 'q', 's', 't', 'u'}

// Audit is what [Store.Audit] found.
type Audit struct {
	// Collections are the IDs that have metadata (col/<id>), in ID order.
	Collections []string
	// CollectionSeq is the value of sys/collseq (0 when absent).
	CollectionSeq uint64
	// Tokens counts the idempotency records of each collection.
	Tokens map[string]int
	// Problems are the keys that fit no record of the key layout, and the
	// idempotency records that do not decode, each with why.
	Problems []string
}

// Audit walks the key layout of the whole store and reports every key that
// fits no record: keys outside sys/, col/, c/, v/ and a/, malformed system values,
// records of a collection that has no metadata, record kinds this release
// does not know, and idempotency records that do not decode. It only skips
// over face, user and primary-key records: the engine decodes and
// cross-checks those when it loads a collection, and Audit stays cheap
// (its cost grows with collections and tokens, not faces).
func (s *Store) Audit(ctx context.Context) (*Audit, error) {
	a := &Audit{Tokens: map[string]int{}}
	add := func(format string, args ...any) { a.Problems = append(a.Problems, fmt.Sprintf(format, args...)) }
	// col/ sorts after c/, so gather the collections first.
	if err := s.scan(prefixColl, func(k, _ []byte) error {
		a.Collections = append(a.Collections, string(k[len(prefixColl):]))
		return nil
	}); err != nil {
		return nil, err
	}
	for _, id := range a.Collections {
		if id == "" || bytes.IndexByte([]byte(id), '/') >= 0 {
			add("collection metadata key %s has an ID that cannot name a collection", strconv.Quote("col/"+id))
		}
	}
	secret := false
	it, err := s.db.NewIter(&pebble.IterOptions{})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for valid := it.First(); valid; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := it.Key()
		switch {
		case bytes.Equal(k, keySecret):
			secret = true
			if n := len(it.Value()); n != 32 {
				add("sys/secret has %d bytes, want 32", n)
			}
			valid = it.Next()
		case bytes.Equal(k, keyFormat):
			if v := it.Value(); len(v) != 8 || binary.BigEndian.Uint64(v) > storeFormat {
				add("sys/format is %x, this release reads layout %d", v, storeFormat)
			}
			valid = it.Next()
		case bytes.Equal(k, keyCollSeq):
			if v := it.Value(); len(v) != 8 {
				add("sys/collseq has %d bytes, want 8", len(v))
			} else {
				a.CollectionSeq = binary.BigEndian.Uint64(v)
			}
			valid = it.Next()
		case bytes.HasPrefix(k, prefixColl):
			valid = it.Next()
		case bytes.HasPrefix(k, []byte("c/")):
			valid = s.auditCollectionKey(it, a, add)
		case bytes.HasPrefix(k, prefixVectors):
			valid = s.auditVectorKey(it, a, add)
		case bytes.HasPrefix(k, prefixApply):
			valid = it.Next() // an applier's own records (see PutApplyRecord)
		default:
			add("key %s is outside the key layout", quoteKey(k))
			valid = it.Next()
		}
	}
	if err := it.Error(); err != nil {
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, err
	}
	if !secret && len(a.Collections) > 0 {
		add("sys/secret is missing, so the page tokens of %d collections can no longer be checked", len(a.Collections))
	}
	return a, nil
}

// auditCollectionKey checks the key under c/ the iterator is at and moves
// on, skipping whole ranges where it can.
func (s *Store) auditCollectionKey(it *pebble.Iterator, a *Audit, add func(string, ...any)) bool {
	k := it.Key()
	rest := k[len("c/"):]
	slash := bytes.IndexByte(rest, '/')
	if slash <= 0 {
		add("key %s names no collection", quoteKey(k))
		return it.Next()
	}
	coll := string(rest[:slash])
	if _, ok := slices.BinarySearch(a.Collections, coll); !ok {
		return skipOrphans(it, collRoot(coll), "records", coll, add)
	}
	kind := rest[slash+1:]
	if len(kind) < 2 || kind[1] != '/' || !slices.Contains(recordKinds, kind[0]) {
		add("key %s is of a record kind this release does not know (it knows %q)", quoteKey(k), recordKinds)
		return it.Next()
	}
	prefix := collPrefix(coll, kind[0])
	if kind[0] != 't' {
		// Faces, users and primary keys are the engine's to check as it
		// loads them.
		return it.SeekGE(prefixEnd(prefix))
	}
	valid := true
	for ; valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
		name := it.Key()[len(prefix):]
		op, token, ok := bytes.Cut(name, []byte{'/'})
		if !ok || len(op) == 0 || len(token) == 0 {
			add("idempotency key %s is not t/<operation>/<token>", quoteKey(it.Key()))
			continue
		}
		if _, err := decodeToken(it.Value()); err != nil {
			add("idempotency record %s: %v", quoteKey(it.Key()), err)
			continue
		}
		a.Tokens[coll]++
	}
	return valid
}

// auditVectorKey checks that the vector key the iterator is at belongs to
// a collection, and skips that collection's vectors: the engine checks them
// against the faces as it loads them.
func (s *Store) auditVectorKey(it *pebble.Iterator, a *Audit, add func(string, ...any)) bool {
	k := it.Key()
	coll, _, ok := bytes.Cut(k[len(prefixVectors):], []byte{'/'})
	if !ok || len(coll) == 0 {
		add("key %s names no collection", quoteKey(k))
		return it.Next()
	}
	prefix := vectorPrefix(string(coll))
	if _, ok := slices.BinarySearch(a.Collections, string(coll)); !ok {
		return skipOrphans(it, prefix, "vectors", string(coll), add)
	}
	return it.SeekGE(prefixEnd(prefix))
}

// skipOrphans moves the iterator past the keys under prefix, which belong
// to collection coll that has no metadata, and reports how many there were.
func skipOrphans(it *pebble.Iterator, prefix []byte, what, coll string, add func(string, ...any)) bool {
	n := 0
	for valid := true; valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
		n++
	}
	add("%d %s under %s belong to collection %s, which has no metadata (col/%s)", n, what, strconv.Quote(string(prefix)), strconv.Quote(coll), coll)
	return it.Valid()
}

// quoteKey prints a key for a person, shortened when it is long.
func quoteKey(k []byte) string {
	if len(k) > 96 {
		return strconv.Quote(string(k[:93])) + "..."
	}
	return strconv.Quote(string(k))
}
