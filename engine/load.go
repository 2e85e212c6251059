package engine

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/facesearch/facesearch/store"
)

// Open spends its time here: reading every face with its vector and
// computing every user vector. Both run on all cores (a 2-core machine
// loads 1M 512-d faces about twice as fast as one goroutine); what must be
// serial (the maps and matrices) runs under a mutex while the next records
// decode.

// loadFaces reads a collection's faces into c: its maps, its users' face
// lists and the face matrix, refusing records that contradict each other.
// c is not yet shared.
func (e *Engine) loadFaces(c *collection, m store.CollectionMeta) error {
	parts := runtime.GOMAXPROCS(0)
	lastSeq := make([]uint64, parts)
	if m.Dim > 0 {
		// Sized up front, the maps do not rehash a million entries as they
		// grow; an estimate off by some percent costs nothing.
		n := e.store.EstimateFaces(m.ID, m.Dim)
		c.faces, c.bySeq = make(map[string]*face, n), make(map[uint64]*face, n)
		c.faceIdx.Reserve(n)
		c.userIdx.Reserve(min(n, len(c.users)))
	}
	var mu sync.Mutex
	err := e.store.ScanFaces(m.ID, parts, func(p int, f *store.Face, vec []float32) error {
		if len(vec) != m.Dim {
			return fmt.Errorf("%w: face %s has %d dimensions, collection has %d", ErrCorrupt, f.ID, len(vec), m.Dim)
		}
		if n := norm(vec); math.Abs(n-1) > 1e-3 {
			return fmt.Errorf("%w: face %s has norm %g, want 1", ErrCorrupt, f.ID, n)
		}
		if f.Seq == 0 {
			return fmt.Errorf("%w: face %s has sequence 0", ErrCorrupt, f.ID)
		}
		fc := &face{id: f.ID, imageID: f.ImageID, externalImageID: f.ExternalImageID, seq: f.Seq, userID: f.UserID}
		lastSeq[p] = max(lastSeq[p], f.Seq)
		mu.Lock()
		defer mu.Unlock()
		if c.bySeq[f.Seq] != nil {
			return fmt.Errorf("%w: face %s reuses sequence %d", ErrCorrupt, f.ID, f.Seq)
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
		c.faceIdx.Upsert(f.Seq, vec)
		return nil
	})
	if err != nil {
		return err
	}
	c.faceSeq.Store(slices.Max(lastSeq))
	// Each part reads its faces in ID order, but the parts interleave.
	for _, u := range c.users {
		if !slices.IsSorted(u.faces) {
			slices.Sort(u.faces)
		}
	}
	return nil
}

// loadUserVectors computes the vector of every user with faces into the
// user matrix, on all cores.
func (c *collection) loadUserVectors() error {
	var active []*user
	for _, u := range c.users {
		if len(u.faces) > maxFacesPerUser {
			return fmt.Errorf("%w: user %q has %d faces, the limit is %d", ErrCorrupt, u.id, len(u.faces), maxFacesPerUser)
		}
		if len(u.faces) > 0 {
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
