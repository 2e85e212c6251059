package engine

import (
	"slices"
	"sync"

	"github.com/facesearch/facesearch/store"
)

// publish makes a committed batch visible to searches: its faces, and the
// users it created (users) or gave faces. The caller holds c.writeMu.
func (im *Importer) publish(c *collection, m store.CollectionMeta, users []*user, f *importFlight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.published = true
	if c.dim == 0 && m.Dim != 0 {
		c.dim = m.Dim
		c.newIndexes(m.Dim)
	}
	c.meta.Dim, c.meta.LastUserPK = m.Dim, m.LastUserPK
	im.sizeForHints(c)
	// The faces go in on one core while the users take the other.
	entries := f.b.entries
	var faces sync.WaitGroup
	faces.Go(func() { im.publishFaces(c, entries) })
	for _, u := range users {
		c.users[u.id], c.byPK[u.pk] = u, u
	}
	regrouped := im.giveFaces(entries)
	faces.Wait()
	for _, cu := range regrouped {
		c.regroup(cu.u, cu.before)
	}
}

// sizeForHints sizes c's maps and key indexes for ImportOptions'
// ExpectedFaces and ExpectedUsers, once each. c.mu is held for writing.
func (im *Importer) sizeForHints(c *collection) {
	if !im.presized {
		im.presized = true
		c.presizeMaps(im.opts.ExpectedFaces, im.opts.ExpectedUsers)
	}
	if c.faceIdx != nil && !im.keysReserved {
		// At the first commit with matrices, which may be a later one than
		// the first (which held users only); only once, as a matrix that
		// rows leave gives its room back (rows of users given a second
		// face leave soloIdx), and would take it again at every commit.
		im.keysReserved = true
		solo, other, several := hintedRows(im.opts.ExpectedFaces, im.opts.ExpectedUsers)
		c.soloIdx.ReserveKeys(solo)
		c.faceIdx.ReserveKeys(other)
		c.userIdx.ReserveKeys(several)
	}
}

// publishFaces adds the batch's faces to c's maps and matrices: a face
// that is its user's only one, once the batch is in, to soloIdx (see
// soloIdx), the others to faceIdx. c.mu is held for writing.
func (im *Importer) publishFaces(c *collection, entries []importEntry) {
	cus := im.commitUsers
	for _, ent := range entries {
		if f := ent.face; f != nil {
			fc := &face{id: f.ID, imageID: f.ImageID, externalImageID: f.ExternalImageID, seq: f.Seq, userID: f.UserID, box: f.Box}
			c.faces[f.ID], c.bySeq[f.Seq] = fc, fc
			if ent.user >= 0 && cus[ent.user].faces == 1 {
				c.soloIdx.Upsert(f.Seq, f.Vector)
			} else {
				c.faceIdx.Upsert(f.Seq, f.Vector)
			}
		}
	}
}

// giveFaces gives each user the batch's faces of it, in a new list
// (readers may hold the old), and returns the users to regroup once the
// faces are in: a user whose one face is new needs nothing more. It
// touches no map of c, so it runs beside publishFaces.
func (im *Importer) giveFaces(entries []importEntry) []*commitUser {
	cus := im.commitUsers
	for _, ent := range entries {
		if ent.face == nil || ent.user < 0 {
			continue
		}
		cu := &cus[ent.user]
		if !cu.updated {
			cu.updated = true
			cu.before = cu.u.faces
			cu.u.faces = append(make([]string, 0, cu.faces), cu.u.faces...)
		}
		cu.u.faces = append(cu.u.faces, ent.face.ID)
		cu.added++
	}
	var regrouped []*commitUser
	for i := range cus {
		cu := &cus[i]
		if cu.added == 0 || len(cu.u.faces) == 1 {
			continue
		}
		slices.Sort(cu.u.faces) // a list of publish's own
		cu.u.faces = slices.Compact(cu.u.faces)
		regrouped = append(regrouped, cu)
	}
	return regrouped
}

// hintedRows divides the rows of an import of faces faces and users new
// users among the matrices (see soloIdx), taking every user to get a face:
// then at least 2*users-faces of them have one face only (solo), the
// other faces are of users of several or of none, and the users of
// several number at most half those faces. For users of one face each,
// or of no more than two, the division is exact.
func hintedRows(faces, users int) (solo, other, several int) {
	solo = min(faces, max(0, 2*users-faces))
	other = faces - solo
	several = max(0, min(users-solo, other/2))
	return solo, other, several
}

// presizeMaps sizes those of c's maps that are still empty for faces
// faces and users users (see ImportOptions.ExpectedFaces). c.mu is held
// for writing.
func (c *collection) presizeMaps(faces, users int) {
	if faces > 0 {
		sizeIfEmpty(&c.faces, faces)
		sizeIfEmpty(&c.bySeq, faces)
	}
	if users > 0 {
		sizeIfEmpty(&c.users, users)
		sizeIfEmpty(&c.byPK, users)
	}
}

// sizeIfEmpty replaces *m, if it is empty, with a map sized for n keys.
func sizeIfEmpty[K comparable, V any](m *map[K]V, n int) {
	if len(*m) == 0 {
		*m = make(map[K]V, n)
	}
}

// count adds batch b, which created usersCreated users, to the stats.
func (im *Importer) count(b *importBatch, usersCreated int) {
	im.stats.Batches++
	im.stats.Records += len(b.entries)
	im.stats.UsersCreated += usersCreated
	for _, ent := range b.entries {
		if ent.face != nil {
			im.stats.Faces++
		}
	}
}
