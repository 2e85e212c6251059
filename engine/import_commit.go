package engine

import "github.com/facesearch/facesearch/store"

// commit checks the current batch, under the collection's write lock, and
// has a goroutine write it, durably, and publish it, while the next batch
// fills. It first waits for the commit before; with wait, it also waits
// for its own.
func (im *Importer) commit(wait bool) error {
	if err := im.join(); err != nil {
		return err
	}
	b := im.batch
	if len(b.entries) == 0 {
		return nil
	}
	if err := im.ctx.Err(); err != nil {
		return im.end(err)
	}
	if im.opts.DryRun {
		im.commitDry()
		return nil
	}

	c, done, err := im.e.beginWrite(&validator{}, im.coll)
	if err != nil {
		return im.end(err)
	}
	if c != im.c {
		done()
		return im.end(notFound("The collection id: %s was deleted during the import", im.coll))
	}
	// Other writers may have run since the records were checked: check
	// again what they could have changed, now that none can.
	m := c.meta
	c.mu.RLock()
	bad, err := im.recheck(c, m.Dim)
	c.mu.RUnlock()
	if err != nil {
		done()
		return im.failBatch(bad, err, true)
	}
	users := im.newMeta(&m)
	im.launch(c, m, users, done)
	if wait {
		return im.join()
	}
	return nil
}

// commitDry is commit for a dry run: the batch's faces and users join the
// dry run's state instead of the collection.
func (im *Importer) commitDry() {
	b, d := im.batch, im.dry
	for _, ent := range b.entries {
		if ent.face != nil {
			d.faces++
			if ent.preserved {
				d.faceIDs[ent.face.ID] = true
			}
			if ent.userID != "" {
				d.userFaces[ent.userID]++
			}
		}
	}
	for _, u := range b.newUsers {
		d.users[u] = true
	}
	im.dim = max(im.dim, b.dim)
	im.count(b, len(b.newUsers))
	im.resetBatch()
}

// newMeta adds to the batch the users it creates, with the next primary
// keys of m, and m itself if that or the batch's dimension changes it. It
// returns the users created. The caller holds the collection's writeMu.
func (im *Importer) newMeta(m *store.CollectionMeta) []*user {
	b := im.batch
	metaChanged := false
	if m.Dim == 0 && b.dim != 0 {
		m.Dim = b.dim
		metaChanged = true
	}
	created := im.e.now().UTC()
	var users []*user
	for i := range im.commitUsers {
		cu := &im.commitUsers[i]
		if cu.u != nil {
			continue
		}
		m.LastUserPK++
		cu.u = &user{id: cu.id, pk: m.LastUserPK, created: created}
		users = append(users, cu.u)
		b.sb.PutUser(im.coll, store.User{ID: cu.u.id, PK: m.LastUserPK, Created: created})
		metaChanged = true
	}
	if metaChanged {
		b.sb.PutCollection(*m)
	}
	return users
}

// launch hands the current batch, and the collection's write lock (done
// releases it), to a goroutine that writes, syncs and publishes it, and
// starts the next batch.
func (im *Importer) launch(c *collection, m store.CollectionMeta, users []*user, done func()) {
	b := im.batch
	// The write lock goes with the batch: no other writer may change
	// what recheck found until the batch is published.
	f := &importFlight{b: b, usersCreated: len(users), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer done()
		if err := b.sb.Commit(true); err != nil {
			f.err = err
			return
		}
		im.publish(c, m, users, f)
	}()
	im.flight = f
	im.dim = m.Dim // fixed, unless the commit fails, which ends the import
	im.batch, im.spare = im.spare, im.batch
	im.resetBatch()
}

// join waits for the commit under way, if any, and counts it, or ends the
// import with its error.
func (im *Importer) join() error {
	f := im.flight
	if f == nil {
		return nil
	}
	<-f.done
	im.flight = nil
	if f.err != nil {
		im.stats.Discarded += len(f.b.entries)
		return im.end(internal("import", f.err))
	}
	im.count(f.b, f.usersCreated)
	return nil
}

// poll joins the commit under way if it has ended, so that Add reports
// its failure at once rather than at the next commit.
func (im *Importer) poll() {
	if f := im.flight; f != nil && f.ended() {
		im.join() // its error, if any, is now im.err
	}
}

// ended reports whether the commit has ended; f.err is then set.
func (f *importFlight) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// recheck runs the checks that depend on the collection's state over the
// whole batch and finds the users it names (commitUsers: those still to be
// created have no *user yet), or returns the first failing record and why.
// The caller holds c.writeMu and c.mu shared.
func (im *Importer) recheck(c *collection, dim int) (int, error) {
	b := im.batch
	if im.commitUserIdx == nil {
		im.commitUserIdx = map[string]int32{}
	}
	clear(im.commitUserIdx)
	clear(im.commitUsers) // let go of the users
	im.commitUsers = im.commitUsers[:0]
	for i := range b.entries {
		ent := &b.entries[i]
		if f := ent.face; f != nil {
			if err := checkDim("the embedding", len(f.Vector), im.coll, dim); err != nil {
				return ent.idx, err
			}
			if ent.preserved && c.faces[f.ID] != nil {
				return ent.idx, errorf(CodeResourceAlreadyExists, "the face id: %s already exists in collection %s", f.ID, im.coll)
			}
		}
		ent.user = -1
		if ent.userID == "" {
			continue
		}
		j, seen := im.commitUserIdx[ent.userID]
		if !seen {
			cu := commitUser{id: ent.userID, u: c.users[ent.userID]}
			if cu.u != nil {
				cu.faces = len(cu.u.faces)
			}
			j = int32(len(im.commitUsers))
			im.commitUserIdx[ent.userID] = j
			im.commitUsers = append(im.commitUsers, cu)
		}
		ent.user = j
		if ent.face != nil {
			cu := &im.commitUsers[j]
			if err := userFacesQuota(ent.userID, cu.faces, 1); err != nil {
				return ent.idx, err
			}
			cu.faces++
		}
	}
	return 0, nil
}
