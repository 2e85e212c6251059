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

func collKey(id string) []byte { return append(bytes.Clone(prefixColl), id...) }

// collRoot is the prefix of every record of one collection.
func collRoot(id string) []byte { return append(append([]byte("c/"), id...), '/') }

// collPrefix is the prefix of one record kind ('u', 'k', 'f', 't') of a collection.
func collPrefix(id string, kind byte) []byte { return append(collRoot(id), kind, '/') }

func userKey(coll, userID string) []byte { return append(collPrefix(coll, 'u'), userID...) }

func pkKey(coll string, pk uint64) []byte {
	k := collPrefix(coll, 'k')
	return append(k, byte(pk>>56), byte(pk>>48), byte(pk>>40), byte(pk>>32), byte(pk>>24), byte(pk>>16), byte(pk>>8), byte(pk))
}

func faceKey(coll, faceID string) []byte { return append(collPrefix(coll, 'f'), faceID...) }

// vectorPrefix is the prefix of a collection's vectors. It sits outside
// c/ on purpose: no other record sorts between a collection's vectors and
// the next collection's, so no table of other records can straddle the
// place where new vectors go (see [Batch.Commit] of an ingest batch).
func vectorPrefix(coll string) []byte {
	return append(append(bytes.Clone(prefixVectors), coll...), '/')
}

func vectorKey(coll string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(vectorPrefix(coll), seq)
}

func tokenKey(coll, op, token string) []byte {
	k := append(collPrefix(coll, 't'), op...)
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
