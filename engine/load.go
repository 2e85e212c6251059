package engine

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/facesearch/facesearch/store"
)

// Open spends its time here, reading every record and building the maps
// and matrices. Records are read and checked on all cores; each map is
// built by one goroutine (a Go map takes one writer), the maps side by
// side; the matrices are bulk-filled ([index.Matrix.AddRows]) by the
// goroutines that read the vectors, with no lock, since every vector has
// its row before the scan starts.

// loadUsers reads a collection's user records into c's user maps (each map
// on a goroutine of its own) and checks its primary-key index against them,
// refusing records that contradict each other. c is not yet shared.
func (e *Engine) loadUsers(c *collection, m store.CollectionMeta) error {
	recs, err := e.store.UserRecords(m.ID)
	if err != nil {
		return err
	}
	users := make([]*user, len(recs))
	byPK := make([]keyedUser, len(recs))
	for i, r := range recs {
		if err := checkUserPK(r.ID, r.PK, m.LastUserPK, stop); err != nil {
			return err
		}
		users[i] = &user{id: r.ID, pk: r.PK, created: r.Created}
		byPK[i] = keyedUser{r.PK, users[i]}
	}
	c.users, c.byPK = make(map[string]*user, len(users)), make(map[uint64]*user, len(users))
	var maps sync.WaitGroup
	maps.Go(func() {
		for _, u := range users {
			c.users[u.id] = u
		}
	})
	maps.Go(func() {
		for _, u := range users {
			c.byPK[u.pk] = u
		}
	})
	defer maps.Wait()
	// The checks walk the users in key order, beside the primary-key
	// index, rather than looking each key up in a map of a million.
	slices.SortFunc(byPK, func(a, b keyedUser) int { return cmp.Compare(a.pk, b.pk) })
	for i := 1; i < len(byPK); i++ {
		if a, b := byPK[i-1], byPK[i]; a.pk == b.pk {
			return sharedPK(a.u.id, b.u.id, a.pk, stop)
		}
	}
	// Records and entries match one to one: every entry's key names a
	// record of that ID, and every record has its entry.
	next := 0 // byPK[next] is the user the next entry should name
	err = e.store.ScanUserKeys(m.ID, func(pk uint64, id []byte) error {
		if next < len(byPK) && byPK[next].pk < pk {
			u := byPK[next].u
			return fmt.Errorf("%w: user %q has no primary-key entry (its key is %d)", ErrCorrupt, u.id, u.pk)
		}
		if next == len(byPK) || byPK[next].pk != pk || byPK[next].u.id != string(id) {
			return fmt.Errorf("%w: primary-key entry %d names user %q, whose record disagrees", ErrCorrupt, pk, id)
		}
		next++
		return nil
	})
	if err != nil {
		return err
	}
	if next < len(byPK) {
		u := byPK[next].u
		return fmt.Errorf("%w: user %q has no primary-key entry (its key is %d)", ErrCorrupt, u.id, u.pk)
	}
	return nil
}

type keyedUser struct {
	pk uint64
	u  *user
}

// loadedFace is a face record as Open's scan read it, with its user.
type loadedFace struct {
	// f.seq and f.id's bytes, here so that sorting by the one and checking
	// each vector's face against the other chase no pointer: in sequence
	// order the faces lie at random in memory, a cache miss apiece.
	seq uint64
	id  [16]byte
	f   *face
	u   *user // nil for a face of no user
}

// loadFaces reads a collection's faces into c (after loadUsers): the face
// records (small, in sequence order) into its maps and its users' face lists,
// then the vectors (in sequence order, on all cores) into the matrices,
// refusing records that contradict each other. It leaves the matrices
// alone until reserved returns. c is not yet shared.
func (e *Engine) loadFaces(c *collection, m store.CollectionMeta, reserved func()) error {
	parts := runtime.GOMAXPROCS(0)
	faces, err := e.readFaces(c, m, parts)
	if err != nil {
		return err
	}
	if len(faces) == 0 {
		return e.loadNoFaces(c, m, reserved)
	}
	if m.Dim == 0 {
		return fmt.Errorf("%w: %d faces but no dimension", ErrCorrupt, len(faces))
	}

	c.faces, c.bySeq = make(map[string]*face, len(faces)), make(map[uint64]*face, len(faces))
	var builders sync.WaitGroup
	builders.Go(func() {
		for _, lf := range faces {
			c.faces[lf.f.id] = lf.f
		}
	})
	builders.Go(func() {
		for _, lf := range faces {
			c.bySeq[lf.seq] = lf.f
		}
	})
	// The map builders run on through the vector scan, which needs
	// neither map; they are joined before the averaging, which does.
	defer builders.Wait()
	mapsBuilt := func() error {
		builders.Wait()
		if len(c.faces) == len(faces) {
			return nil
		}
		// Records are keyed by sequence, so only an ID can repeat.
		for _, lf := range faces {
			if f := c.faces[lf.f.id]; f != lf.f {
				return faceRecordedTwice(lf.f.id, lf.seq, f.seq, stop)
			}
		}
		return nil
	}
	if err := listUserFaces(faces); err != nil {
		return err
	}
	reserved()
	c.faceSeq.Store(faces[len(faces)-1].seq)
	return c.loadVectors(e.store, faces, parts, mapsBuilt)
}

// listUserFaces gives each user its faces' IDs, kept sorted (see user);
// they come here in sequence order.
func listUserFaces(faces []loadedFace) error {
	var several []*user
	for _, lf := range faces {
		if u := lf.u; u != nil {
			if u.faces = append(u.faces, lf.f.id); len(u.faces) == 2 {
				several = append(several, u)
			}
		}
	}
	for _, u := range several {
		slices.Sort(u.faces)
		// Caught here, not with the other repeats (mapsBuilt): a user
		// listing a face twice would be averaged twice.
		for i := 1; i < len(u.faces); i++ {
			if u.faces[i] == u.faces[i-1] {
				return fmt.Errorf("%w: face %s is recorded twice, both of user %q", ErrCorrupt, u.faces[i], u.id)
			}
		}
	}
	return nil
}

// readFaces reads a collection's face records, on parts goroutines, in
// sequence order, each with its user (c's users are loaded).
func (e *Engine) readFaces(c *collection, m store.CollectionMeta, parts int) ([]loadedFace, error) {
	read := make([][]loadedFace, parts)
	// The user map is only read here, so the parts share it without a lock.
	userOf := func(id string) (*user, bool) {
		u := c.users[id]
		return u, u != nil
	}
	err := walkFaces(e.store, m.ID, parts, userOf, stop, func(p int, f *store.Face, id [16]byte, u *user) error {
		lf := loadedFace{seq: f.Seq, id: id, u: u, f: &face{id: f.ID, imageID: f.ImageID, externalImageID: f.ExternalImageID, seq: f.Seq, box: f.Box}}
		if u != nil {
			lf.f.userID = u.id // one copy of the string, not one per face
		}
		read[p] = append(read[p], lf)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The parts are ranges of sequences in order, so this is every face in
	// sequence order, which loadVectors wants.
	return slices.Concat(read...), nil
}

// loadNoFaces ends the load of a collection without faces: then no vector
// may be left either, whatever the dimension.
func (e *Engine) loadNoFaces(c *collection, m store.CollectionMeta, reserved func()) error {
	none := func(int, uint64, []byte) (struct{}, string, bool, bool) { return struct{}{}, "", false, false }
	err := walkVectors(e.store, m.ID, 1, m.Dim, none, stop, func(int, struct{}, []float32) error { return nil })
	if err != nil {
		return err
	}
	if m.Dim > 0 { // the blocks Reserve allocated for vectors since deleted
		reserved()
		c.faceIdx.Trim()
	}
	return nil
}

// loadVectors reads the vectors of faces (sorted by sequence) into the
// matrices, each into the row it was given up front: the only face of its
// user into soloIdx, the others into faceIdx (see soloIdx). Users of
// several faces are averaged into userIdx once every face is in, and
// mapsBuilt has returned.
func (c *collection) loadVectors(st *store.Store, faces []loadedFace, parts int, mapsBuilt func() error) error {
	// One pass, as each face's user is a random access.
	keys := make([]uint64, len(faces))
	rows := make([]int32, len(faces)) // a row of faceIdx, or -1-r for row r of soloIdx
	var faceKeys, soloKeys, averagedKeys []uint64
	var averaged []*user
	for i, lf := range faces {
		keys[i] = lf.seq
		u := lf.u
		if u != nil && len(u.faces) == 1 {
			rows[i] = int32(-1 - len(soloKeys))
			soloKeys = append(soloKeys, lf.seq)
			continue
		}
		rows[i] = int32(len(faceKeys))
		faceKeys = append(faceKeys, lf.seq)
		if u != nil && u.faces[0] == lf.f.id {
			if err := checkUserFaces(u.id, len(u.faces), stop); err != nil {
				return err
			}
			averaged = append(averaged, u)
			averagedKeys = append(averagedKeys, u.pk)
		}
	}
	// loadCollection reserved faceIdx room for every face; soloIdx takes
	// its share of it.
	c.faceIdx.GiveRoom(c.soloIdx, len(faceKeys))
	faceRows := c.faceIdx.AddRows(faceKeys)
	soloRows := c.soloIdx.AddRows(soloKeys)
	userRows := c.userIdx.AddRows(averagedKeys)
	// The fills must end (their key maps are being built) whatever
	// happens; a failed load drops the matrices.
	defer userRows.Done()
	defer soloRows.Done()
	defer faceRows.Done()

	type part struct {
		next int // the row after the last vector read: the next one's, unless faces lack vectors
		_    [56]byte
	}
	progress := make([]part, parts)
	have := make([]bool, len(faces))
	owner := func(p int, seq uint64, faceID []byte) (int, string, bool, bool) {
		r := progress[p].next
		if r >= len(keys) || keys[r] != seq {
			var ok bool
			if r, ok = slices.BinarySearch(keys, seq); !ok {
				return 0, "", false, false
			}
		}
		progress[p].next = r + 1
		lf := &faces[r]
		id, ok := faceBytes(faceID)
		return r, lf.f.id, true, ok && id == lf.id
	}
	err := walkVectors(st, c.meta.ID, parts, c.dim, owner, stop, func(_ int, r int, vec []float32) error {
		if fr := rows[r]; fr >= 0 {
			faceRows.Set(int(fr), vec)
		} else {
			soloRows.Set(int(-1-fr), vec)
		}
		have[r] = true // rows are distinct, as sequences are
		return nil
	})
	if err != nil {
		return err
	}
	var missing []loadedFace
	for r, ok := range have {
		if !ok {
			missing = append(missing, faces[r])
		}
	}
	if len(missing) > 0 {
		first := slices.MinFunc(missing, func(a, b loadedFace) int { return cmp.Compare(a.f.id, b.f.id) })
		return fmt.Errorf("%w: face %s has no vector (sequence %d; faces without one: %d)", ErrCorrupt, first.f.id, first.seq, len(missing))
	}

	faceRows.Done() // userVector looks rows up by key, and faces by ID
	soloRows.Done()
	if err := mapsBuilt(); err != nil {
		return err
	}
	// Each worker sets runs of whole panels of rows: rows of one panel
	// share their cache lines.
	const span = 1024
	workers := min(parts, max(1, len(averaged)/span))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for lo := w * span; lo < len(averaged); lo += workers * span {
				for i := lo; i < min(lo+span, len(averaged)); i++ {
					userRows.Set(i, c.userVector(averaged[i].faces))
				}
			}
		})
	}
	wg.Wait()
	return nil
}
