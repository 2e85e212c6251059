package engine

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/facesearch/facesearch/store"
)

// Open spends its time here: reading every face vector and computing every
// user vector. Both run on all cores (a 2-core machine loads 1M 512-d faces
// about twice as fast as one goroutine); what must be serial (the maps and
// matrices) runs under a mutex while the next records decode.

// loadFaces reads a collection's faces into c: first the face records (small,
// in ID order) into its maps and its users' face lists, then the vectors (in
// sequence order, on all cores) into the face matrix, refusing records that
// contradict each other. c is not yet shared.
func (e *Engine) loadFaces(c *collection, m store.CollectionMeta) error {
	n := 0
	if m.Dim > 0 {
		// Sized up front, the maps do not rehash a million entries as they
		// grow; an estimate off by some percent costs nothing.
		n = e.store.EstimateFaces(m.ID, m.Dim)
		c.faceIdx.Reserve(n)
		c.userIdx.Reserve(min(n, len(c.users)))
	}
	c.faces, c.bySeq = make(map[string]*face, n), make(map[uint64]*face, n)
	parts := runtime.GOMAXPROCS(0)
	lastSeq := make([]uint64, parts)
	var mu sync.Mutex
	err := e.store.ScanFaces(m.ID, parts, func(p int, f *store.Face) error {
		if !isFaceID(f.ID) {
			return fmt.Errorf("%w: face ID %s is not a lowercase UUID", ErrCorrupt, quoted(f.ID))
		}
		if f.Seq == 0 {
			return fmt.Errorf("%w: face %s has sequence 0", ErrCorrupt, f.ID)
		}
		fc := &face{id: f.ID, imageID: f.ImageID, externalImageID: f.ExternalImageID, seq: f.Seq}
		lastSeq[p] = max(lastSeq[p], f.Seq)
		mu.Lock()
		defer mu.Unlock()
		if other := c.bySeq[f.Seq]; other != nil {
			return fmt.Errorf("%w: faces %s and %s share sequence %d", ErrCorrupt, other.id, f.ID, f.Seq)
		}
		if f.UserID != "" {
			u := c.users[f.UserID]
			if u == nil {
				return fmt.Errorf("%w: face %s belongs to missing user %q", ErrCorrupt, f.ID, f.UserID)
			}
			u.faces = append(u.faces, f.ID)
			fc.userID = u.id // one copy of the string, not one per face
		}
		c.faces[f.ID], c.bySeq[f.Seq] = fc, fc
		return nil
	})
	if err != nil {
		return err
	}
	c.faceSeq.Store(slices.Max(lastSeq))
	if len(c.faces) > 0 && m.Dim == 0 {
		return fmt.Errorf("%w: %d faces but no dimension", ErrCorrupt, len(c.faces))
	}
	// Each part reads its faces in ID order, but the parts interleave.
	for _, u := range c.users {
		if !slices.IsSorted(u.faces) {
			slices.Sort(u.faces)
		}
	}

	// The scan only reads the maps, so its parts need no lock for them. A
	// user of one face has that face's vector (see userVector), so it goes
	// into the user matrix here, sparing loadUserVectors two map lookups
	// per user; users of several faces are loadUserVectors' to average.
	loaded := 0
	err = e.store.ScanVectors(m.ID, parts, func(_ int, seq uint64, faceID string, vec []float32) error {
		f := c.bySeq[seq]
		if f == nil {
			return fmt.Errorf("%w: vector %d (of face %s) belongs to no face", ErrCorrupt, seq, quoted(faceID))
		}
		if f.id != faceID {
			return fmt.Errorf("%w: face %s has sequence %d, whose vector is face %s's", ErrCorrupt, f.id, seq, quoted(faceID))
		}
		if msg := checkUnit(vec, m.Dim); msg != "" {
			return fmt.Errorf("%w: face %s %s", ErrCorrupt, f.id, msg)
		}
		var alone *user
		if f.userID != "" {
			if u := c.users[f.userID]; len(u.faces) == 1 {
				alone = u
			}
		}
		mu.Lock()
		defer mu.Unlock()
		c.faceIdx.Upsert(seq, vec)
		if alone != nil {
			c.userIdx.Upsert(alone.pk, vec)
		}
		loaded++
		return nil
	})
	if err != nil {
		return err
	}
	if loaded != len(c.faces) {
		missing := make([]string, 0, len(c.faces)-loaded)
		for id, f := range c.faces {
			if _, ok := c.faceIdx.Vector(f.seq); !ok {
				missing = append(missing, id)
			}
		}
		slices.Sort(missing)
		return fmt.Errorf("%w: face %s has no vector (sequence %d; faces without one: %d)", ErrCorrupt, missing[0], c.faces[missing[0]].seq, len(missing))
	}
	return nil
}

// loadUserVectors computes the vector of every user with several faces into
// the user matrix, on all cores (loadFaces has filed those of one face).
func (c *collection) loadUserVectors() error {
	var active []*user
	for _, u := range c.users {
		if len(u.faces) > maxFacesPerUser {
			return fmt.Errorf("%w: user %q has %d faces, the limit is %d", ErrCorrupt, u.id, len(u.faces), maxFacesPerUser)
		}
		if len(u.faces) > 1 {
			active = append(active, u)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, len(active)/1024))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// userVector only reads c; the matrix takes one writer at a
			// time, a batch of rows per lock.
			const batch = 64
			vecs := make([][]float32, 0, batch)
			flush := func(us []*user) {
				mu.Lock()
				for i, u := range us {
					c.userIdx.Upsert(u.pk, vecs[i])
				}
				mu.Unlock()
				vecs = vecs[:0]
			}
			mine := active[w*len(active)/workers : (w+1)*len(active)/workers]
			for len(mine) > 0 {
				n := min(batch, len(mine))
				for _, u := range mine[:n] {
					vecs = append(vecs, c.userVector(u.faces))
				}
				flush(mine[:n])
				mine = mine[n:]
			}
		})
	}
	wg.Wait()
	return nil
}
