package engine

import "context"

// How a call holds what it works on, one way for every operation: its
// input is checked first, then the collection is found and held.

// orEmpty is in, or a new zero input for a nil one (which then fails the
// input's checks as an empty one does).
func orEmpty[T any](in *T) *T {
	if in == nil {
		return new(T)
	}
	return in
}

// result is a call's answer: out, or nil and err when the call failed.
func result[T any](out *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}

// acquire finds a collection and holds it shared for the duration of a call.
func (e *Engine) acquire(id string) (*collection, func(), error) {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, nil, ErrClosed
	}
	c := e.colls[id]
	if c != nil {
		// Taken before releasing e.mu, so Close cannot slip in between.
		c.life.RLock()
	}
	e.mu.RUnlock()
	if c == nil {
		return nil, nil, notFound("The collection id: %s does not exist", id)
	}
	if c.deleted {
		c.life.RUnlock()
		return nil, nil, notFound("The collection id: %s does not exist", id)
	}
	return c, c.life.RUnlock, nil
}

func (e *Engine) writable() error {
	if e.opts.ReadOnly {
		return errorf(CodeInvalidParameter, "the engine is open read-only")
	}
	return nil
}

// beginRead starts a call that reads collection id: it returns the first
// problem of the input (what v gathered, then each of checks in turn), or
// holds the collection for the call (see acquire). release ends the hold.
func (e *Engine) beginRead(v *validator, id string, checks ...func() error) (*collection, func(), error) {
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return nil, nil, err
		}
	}
	return e.acquire(id)
}

// beginSearch is beginRead for a call that reads the collection's maps and
// matrices throughout: it holds c.mu shared as well, until done.
func (e *Engine) beginSearch(v *validator, id string, checks ...func() error) (*collection, func(), error) {
	c, release, err := e.beginRead(v, id, checks...)
	if err != nil {
		return nil, nil, err
	}
	c.mu.RLock()
	return c, func() { c.mu.RUnlock(); release() }, nil
}

// beginWrite starts a read-modify-write call: once the input (v) passes,
// it holds collection id shared against DeleteCollection and Close, and
// exclusively against other such calls, from the check of the state
// through the commit. done releases both.
func (e *Engine) beginWrite(v *validator, id string) (*collection, func(), error) {
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	if err := e.writable(); err != nil {
		return nil, nil, err
	}
	c, release, err := e.acquire(id)
	if err != nil {
		return nil, nil, err
	}
	c.writeMu.Lock()
	return c, func() { c.writeMu.Unlock(); release() }, nil
}

// beginIdempotent is beginWrite for a call that takes a ClientRequestToken
// (token, for operation op): params are the call's input without the
// token. A call repeated with its token returns a nil collection, its
// first response decoded into out, and no error.
func (e *Engine) beginIdempotent(ctx context.Context, v *validator, id, op, token string, params, out any) (*collection, *idempotent, func(), error) {
	c, done, err := e.beginWrite(v, id)
	if err != nil {
		return nil, nil, nil, err
	}
	tok, replayed, err := e.checkToken(ctx, id, op, token, params, out)
	if err != nil || replayed {
		done()
		return nil, nil, nil, err
	}
	return c, tok, done, nil
}

// membershipCall is the input of AssociateFaces or DisassociateFaces that
// beginMembership checks; more checks the operation's other fields.
type membershipCall struct {
	op, coll, userID string
	faceIDs          []string
	token            string
	more             func(*validator)
}

// validate checks m's fields.
func (m membershipCall) validate(v *validator) {
	v.collectionID(m.coll)
	v.userID("UserId", m.userID, true)
	v.faceIDList("FaceIds", m.faceIDs, true, maxUserFaceIDs)
	if m.more != nil {
		m.more(v)
	}
	v.clientToken(m.token)
}

// beginMembership is beginIdempotent for a call that changes a user's
// faces: it also finds the user, and returns holding c.mu shared, which
// the caller releases.
func (e *Engine) beginMembership(ctx context.Context, m membershipCall, params, out any) (*collection, *user, *idempotent, func(), error) {
	var v validator
	m.validate(&v)
	c, tok, done, err := e.beginIdempotent(ctx, &v, m.coll, m.op, m.token, params, out)
	if err != nil || c == nil {
		return nil, nil, nil, nil, err
	}
	c.mu.RLock()
	u, err := c.userByID(m.userID, m.coll)
	if err != nil {
		c.mu.RUnlock()
		done()
		return nil, nil, nil, nil, err
	}
	return c, u, tok, done, nil
}

// beginImageSearch is beginSearch for a search by an embedding (img or
// vec), which it checks after the input's other fields (v), and against
// the collection's dimension once it holds the collection.
func (e *Engine) beginImageSearch(v *validator, id string, img *Image, vec []float32) (*collection, *query, func(), error) {
	var q *query
	c, done, err := e.beginSearch(v, id, func() (err error) {
		q, err = queryVector(img, vec)
		return err
	})
	if err != nil {
		return nil, q, nil, err
	}
	if err := c.checkQueryDim(q.vec, id); err != nil {
		done()
		return nil, q, nil, err
	}
	return c, q, done, nil
}

// userByID is the user id of collection coll, or ResourceNotFound. The
// caller holds c.mu.
func (c *collection) userByID(id, coll string) (*user, error) {
	if u := c.users[id]; u != nil {
		return u, nil
	}
	return nil, notFound("The user id: %s does not exist in collection %s", id, coll)
}

// faceByID is the face id of collection coll, or ResourceNotFound. The
// caller holds c.mu.
func (c *collection) faceByID(id, coll string) (*face, error) {
	if f := c.faces[id]; f != nil {
		return f, nil
	}
	return nil, notFound("The face id: %s does not exist in collection %s", id, coll)
}
