package engine

import (
	"errors"
	"fmt"
	"math"
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
	// records the larger its batch; larger batches than the defaults gain
	// a 1M-face import nothing measurable (facesearch bench). The
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
	// growth (seconds of CPU over a 1M-face import: ingest_faces_per_s of
	// facesearch bench --faces-per-user 1 --users 1000000). Each map is sized only if still empty: a collection with
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
	// BoundingBox is where the face lies in its image. The default value
	// is nil: the whole image.
	BoundingBox *BoundingBox
}

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
