package store

import (
	"bytes"
	"encoding/binary"
)

var (
	keySecret     = []byte("sys/secret")
	keyCollSeq    = []byte("sys/collseq")
	prefixColl    = []byte("col/")
	prefixVectors = []byte("v/")
)

func collKey(id string) []byte {
	return append(append(make([]byte, 0, len(prefixColl)+len(id)), prefixColl...), id...)
}

// collRoot is the prefix of every record of one collection.
func collRoot(id string) []byte { return collRootRoom(id, 0) }

// collRootRoom is collRoot with room for extra more bytes: a key is built
// in one allocation, not one per append (a bulk import builds millions).
func collRootRoom(id string, extra int) []byte {
	k := make([]byte, 0, len("c/")+len(id)+len("/")+extra)
	return append(append(append(k, "c/"...), id...), '/')
}

// collPrefix is the prefix of one record kind ('u', 'k', 's', 't') of a collection.
func collPrefix(id string, kind byte) []byte { return collPrefixRoom(id, kind, 0) }

// collPrefixRoom is collPrefix with room for extra more bytes.
func collPrefixRoom(id string, kind byte, extra int) []byte {
	return append(collRootRoom(id, 2+extra), kind, '/')
}

func userKey(coll, userID string) []byte {
	return append(collPrefixRoom(coll, 'u', len(userID)), userID...)
}

func pkKey(coll string, pk uint64) []byte {
	return binary.BigEndian.AppendUint64(collPrefixRoom(coll, 'k', 8), pk)
}

// faceKey is the key of a face's record: under its sequence, like its
// vector, so that new faces sort after every stored one.
func faceKey(coll string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(collPrefixRoom(coll, 's', 8), seq)
}

// legacyFaceKey is the key of a face's record in layouts 1 and 2: under
// its face ID.
func legacyFaceKey(coll, faceID string) []byte {
	return append(collPrefixRoom(coll, 'f', len(faceID)), faceID...)
}

// vectorPrefix is the prefix of a collection's vectors. It sits outside
// c/ on purpose: no other record sorts between a collection's vectors and
// the next collection's, so no table of other records can straddle the
// place where new vectors go (see [Batch.Commit] of an ingest batch).
func vectorPrefix(coll string) []byte { return vectorPrefixRoom(coll, 0) }

func vectorPrefixRoom(coll string, extra int) []byte {
	k := make([]byte, 0, len(prefixVectors)+len(coll)+len("/")+extra)
	return append(append(append(k, prefixVectors...), coll...), '/')
}

func vectorKey(coll string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(vectorPrefixRoom(coll, 8), seq)
}

func tokenKey(coll, op, token string) []byte {
	k := append(collPrefixRoom(coll, 't', len(op)+1+len(token)), op...)
	return append(append(k, '/'), token...)
}

// prefixEnd is the smallest key greater than every key starting with prefix.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func orPrefix(lower, prefix []byte) []byte {
	if lower != nil {
		return lower
	}
	return prefix
}
