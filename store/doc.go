// Package store keeps facesearch's durable state in Pebble. Nothing above it
// sees Pebble: the engine reads and writes typed records and commits each
// mutating call as one atomic [Batch]; a bulk import commits its batches as
// [IngestBatch]es, which take puts only.
//
// # Key layout
//
// All keys are byte strings; <coll> is a collection ID, which cannot contain
// '/', so every collection's keys sit under a prefix no other collection shares.
//
//	sys/secret              32 random bytes: the key that signs page tokens
//	sys/collseq             uint64: the last collection incarnation number handed out
//	sys/format              uint64: the key layout, 3 (see below)
//	col/<coll>              collection metadata (dimension, similarity, counters)
//	c/<coll>/u/<userID>     user record: primary key, creation time
//	c/<coll>/k/<pk>         userID, under the 8-byte big-endian primary key:
//	                        iterating this prefix walks users in primary-key order
//	c/<coll>/s/<seq>        face record, under the face's 8-byte big-endian
//	                        sequence: face ID, image ID, external image ID,
//	                        owning user
//	c/<coll>/t/<op>/<token> idempotency record: parameter hash, first response, expiry
//	v/<coll>/<seq>          a face's vector, under the face's 8-byte big-endian
//	                        sequence: face ID, normalized float32 values
//
// A face's owner is stored only in the face record, so a user's faces and
// the faces' owner can never disagree; the user vector is derived from the
// faces when the engine loads a collection.
//
// Faces are keyed by sequence rather than by face ID (a random UUID), and
// vectors, nearly all of the bytes, sit outside c/: sequences only grow, so
// a bulk import's new records sort after every stored one of their kind and
// collection, and its ingest batches (see [IngestBatch]) usually
// put them in the bottom level as whole tables that no compaction rewrites.
// Open reads them back sequentially in parallel ranges, and a change of
// owner rewrites only the small face record. Nothing is looked up by face
// ID in the store: the engine holds every face in memory.
//
// Values start with a one-byte format version so that later releases can
// read what earlier ones wrote, and sys/format holds the layout: a store of
// layout 1 (face records under c/<coll>/f/<faceID>, vectors inside them) or
// 2 (face records there, vectors apart) is upgraded the first time it is
// opened with write access; a read-only Open refuses it ([ErrOldLayout]).
//
// # The directory
//
// Beside Pebble's files, the directory holds FACESEARCH, facesearch's own
// identity file (JSON: a random store ID and the file's format), written
// atomically when the store is created. [Open] reads it before Pebble sees
// the directory, opens an existing store read-only to check it before the
// writable open, and never lets Pebble create a database where one was; a
// successful writable open of a store that has no identity file (one of an
// earlier release) writes it. A salvaging Open ([Options.Salvage]) keeps
// the logs as they were under salvaged/. Every writable Open moves there
// too the tables the manifest does not name, which Pebble would delete: a
// crash during a flush or compaction leaves such tables, but so does a
// manifest cut short, and the two cannot be told apart.
//
// Open locks the directory for the life of the Store: flock(2) on the
// directory itself, which creates nothing, and Pebble's LOCK file, which
// is created, if missing, only by the writable open. With
// [Options.WritableLater] the engine loads every record from the store
// opened read-only, so a table damaged inside a data block is refused
// before anything in the directory changes, and [Store.OpenWritable] then
// opens it for writing under the same lock.
package store
