package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/vector"
	"github.com/facesearch/facesearch/store"
)

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
	// a user of several has an averaged row of its own in userIdx. A copy
	// of each lone face in userIdx instead would double the memory of users
	// of one face (2 GB more for a million of 512 dimensions: facesearch
	// bench --users 1000000 --faces-per-user 1 shows import and reopen).
	faceIdx *index.Matrix // rows keyed by face sequence: faces of no user, or of a user of several
	soloIdx *index.Matrix // rows keyed by face sequence: the faces of users of one face
	userIdx *index.Matrix // rows keyed by user primary key: users of several faces

	faceSeq atomic.Uint64 // last face sequence handed out
}

type face struct {
	id, imageID, externalImageID string
	seq                          uint64
	userID                       string
	box                          *store.Box // nil: the whole image
}

type user struct {
	id      string
	pk      uint64
	created time.Time
	faces   []string // face IDs, sorted
}

func (u *user) status() string { return userStatus(len(u.faces)) }

// userStatus is the status of a user of n faces.
func userStatus(n int) string {
	if n > 0 {
		return UserStatusActive
	}
	return UserStatusCreated
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

// userVector is the user vector ([vector.Mean]) of the given faces, two or
// more (a user of one face has no vector of its own: see vectorOf), summed
// in face ID order. The caller holds c.mu (either way) or owns c exclusively; concurrent calls
// are safe while nobody writes c.
func (c *collection) userVector(faceIDs []string) []float32 {
	out := make([]float32, c.dim)
	buf := make([]float32, 0, c.dim) // Mean reads each face before asking for the next
	vector.Mean(out, nil, len(faceIDs), func(i int) []float32 {
		v, _ := c.appendFaceVector(buf[:0], c.faces[faceIDs[i]].seq)
		return v
	})
	return out
}

// faceVector is a copy of the row of the face of sequence seq, wherever it
// is. The caller holds c.mu.
func (c *collection) faceVector(seq uint64) ([]float32, bool) {
	return c.appendFaceVector(nil, seq)
}

// appendFaceVector is faceVector appended to dst.
func (c *collection) appendFaceVector(dst []float32, seq uint64) ([]float32, bool) {
	if c.faceIdx == nil {
		return dst, false
	}
	if v, ok := c.faceIdx.AppendVector(dst, seq); ok {
		return v, true
	}
	return c.soloIdx.AppendVector(dst, seq)
}

// vectorOf is u's vector as searches see it: its face's row for a user of
// one face, its own row for a user of several, nil for a user of none. A
// single face's vector is normalized already (to float32 precision), so it
// is its own mean. The result is a copy. The caller holds c.mu.
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
