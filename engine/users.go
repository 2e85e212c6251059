package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"slices"

	"github.com/facesearch/facesearch/internal/vector"
	"github.com/facesearch/facesearch/store"
)

// idempotent is one ClientRequestToken check: held under c.writeMu from
// lookup to commit, so two calls with one token cannot both run.
type idempotent struct {
	op, token string
	hash      [32]byte
}

// checkToken looks a token up. When the token was used before with the same
// parameters it decodes the first response into out and reports true.
func (e *Engine) checkToken(ctx context.Context, coll, op, token string, params any, out any) (*idempotent, bool, error) {
	if token == "" {
		return nil, false, nil
	}
	p, err := json.Marshal(params)
	if err != nil {
		return nil, false, internal(op, err)
	}
	id := &idempotent{op: op, token: token, hash: sha256.Sum256(append([]byte(op+"\x00"), p...))}
	t, ok, err := e.store.Token(coll, op, token, e.clock(ctx))
	if err != nil {
		return nil, false, internal(op, err)
	}
	if !ok {
		return id, false, nil
	}
	if t.ParamHash != id.hash {
		return nil, false, errorf(CodeIdempotentParameterMismatch, "ClientRequestToken %s was used with other parameters", token)
	}
	if err := json.Unmarshal(t.Response, out); err != nil {
		return nil, false, internal(op, err)
	}
	return id, true, nil
}

// record adds the token and the response to the call's batch.
func (e *Engine) record(ctx context.Context, b *store.Batch, coll string, id *idempotent, out any) error {
	if id == nil {
		return nil
	}
	resp, err := json.Marshal(out)
	if err != nil {
		return internal(id.op, err)
	}
	b.PutToken(coll, id.op, id.token, store.Token{ParamHash: id.hash, Response: resp, Expires: e.clock(ctx).Add(e.opts.IdempotencyTTL)})
	return nil
}

// validate checks CreateUser's input.
func (in *CreateUserInput) validate(v *validator) {
	v.collectionID(in.CollectionId)
	v.userID("UserId", in.UserId, true)
	v.clientToken(in.ClientRequestToken)
}

// validate checks DeleteUser's input, whose fields are CreateUser's.
func (in *DeleteUserInput) validate(v *validator) { (*CreateUserInput)(in).validate(v) }

// CreateUser creates a user with the next primary key of the collection.
func (e *Engine) CreateUser(ctx context.Context, in *CreateUserInput) (*CreateUserOutput, error) {
	in = orEmpty(in)
	out := &CreateUserOutput{}
	var v validator
	in.validate(&v)
	c, tok, done, err := e.beginIdempotent(ctx, &v, in.CollectionId, "CreateUser", in.ClientRequestToken, in.withoutToken(), out)
	if err != nil || c == nil { // c is nil for a repeated call, answered in out
		return result(out, err)
	}
	defer done()
	c.mu.RLock()
	exists := c.users[in.UserId] != nil
	c.mu.RUnlock()
	if exists {
		return nil, errorf(CodeConflict, "The user id: %s already exists in collection %s", in.UserId, in.CollectionId)
	}
	m := c.meta
	m.LastUserPK++
	u := store.User{ID: in.UserId, PK: m.LastUserPK, Created: e.clock(ctx).UTC()}
	b := e.store.NewBatch()
	defer b.Close()
	b.PutCollection(m)
	b.PutUser(in.CollectionId, u)
	if err := e.record(ctx, b, in.CollectionId, tok, out); err != nil {
		return nil, err
	}
	if err := e.commit(ctx, b, "CreateUser", out); err != nil {
		return nil, err
	}
	c.meta = m
	us := &user{id: u.ID, pk: u.PK, created: u.Created}
	c.mu.Lock()
	c.users[u.ID], c.byPK[u.PK] = us, us
	c.mu.Unlock()
	return out, nil
}

// DeleteUser disassociates a user's faces (they stay in the collection) and
// deletes the user.
func (e *Engine) DeleteUser(ctx context.Context, in *DeleteUserInput) (*DeleteUserOutput, error) {
	in = orEmpty(in)
	out := &DeleteUserOutput{}
	var v validator
	in.validate(&v)
	c, tok, done, err := e.beginIdempotent(ctx, &v, in.CollectionId, "DeleteUser", in.ClientRequestToken, in.withoutToken(), out)
	if err != nil || c == nil { // c is nil for a repeated call, answered in out
		return result(out, err)
	}
	defer done()
	c.mu.RLock()
	u, err := c.userByID(in.UserId, in.CollectionId)
	var recs []*store.Face
	if u != nil {
		recs = c.faceRecords(u.faces, "")
	}
	c.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	b := e.store.NewBatch()
	defer b.Close()
	for _, r := range recs {
		b.UpdateFace(in.CollectionId, r)
	}
	b.DeleteUser(in.CollectionId, store.User{ID: u.id, PK: u.pk})
	if err := e.record(ctx, b, in.CollectionId, tok, out); err != nil {
		return nil, err
	}
	if err := e.commit(ctx, b, "DeleteUser", out); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for _, id := range u.faces {
		c.faces[id].userID = ""
	}
	before := u.faces
	u.faces = nil // as for a user left without faces: a lone face moves back to faceIdx
	c.regroup(u, before)
	delete(c.users, u.id)
	delete(c.byPK, u.pk)
	c.mu.Unlock()
	return out, nil
}

// The idempotency records hash a call's input without its token.
func (in CreateUserInput) withoutToken() any        { in.ClientRequestToken = ""; return in }
func (in DeleteUserInput) withoutToken() any        { in.ClientRequestToken = ""; return in }
func (in AssociateFacesInput) withoutToken() any    { in.ClientRequestToken = ""; return in }
func (in DisassociateFacesInput) withoutToken() any { in.ClientRequestToken = ""; return in }

// faceRecords builds the store records of faces as they will be with owner
// userID (their vectors do not change). The caller holds c.mu.
func (c *collection) faceRecords(ids []string, userID string) []*store.Face {
	recs := make([]*store.Face, len(ids))
	for i, id := range ids {
		f := c.faces[id]
		recs[i] = &store.Face{ID: f.id, Seq: f.seq, ImageID: f.imageID, ExternalImageID: f.externalImageID, UserID: userID, Box: f.box}
	}
	return recs
}

// ListUsers lists a collection's users in primary-key (creation) order.
func (e *Engine) ListUsers(ctx context.Context, in *ListUsersInput) (*ListUsersOutput, error) {
	in = orEmpty(in)
	var v validator
	v.collectionID(in.CollectionId)
	limit := v.intRange("MaxResults", in.MaxResults, 1, 500, DefaultListUsersPageSize)
	v.pageToken(in.NextToken)
	c, release, err := e.beginRead(&v, in.CollectionId)
	if err != nil {
		return nil, err
	}
	defer release()
	after, err := e.openPosition(in.NextToken, tokenListUsers, c.seq, 0)
	if err != nil {
		return nil, err
	}
	out := &ListUsersOutput{Users: []User{}}
	var lastPK uint64
	for u, err := range e.store.Users(in.CollectionId, after) {
		if err != nil {
			return nil, internal("ListUsers", err)
		}
		if len(out.Users) == limit {
			out.NextToken = e.signToken(pageToken{kind: tokenListUsers, scope: c.seq, position: binary.BigEndian.AppendUint64(nil, lastPK)})
			break
		}
		status := UserStatusCreated
		c.mu.RLock()
		if mu := c.users[u.ID]; mu != nil {
			status = mu.status()
		}
		c.mu.RUnlock()
		out.Users = append(out.Users, User{UserId: u.ID, UserStatus: status})
		lastPK = u.PK
	}
	return out, nil
}

// AssociateFaces adds faces to a user. Faces that are unknown, owned by
// another user or (when the user already has faces) too unlike the user
// come back in UnsuccessfulFaceAssociations; faces the user already has are
// skipped. A call that would take the user past 100 faces changes nothing.
func (e *Engine) AssociateFaces(ctx context.Context, in *AssociateFacesInput) (*AssociateFacesOutput, error) {
	in = orEmpty(in)
	var threshold float64
	out := &AssociateFacesOutput{AssociatedFaces: []AssociatedFace{}, UnsuccessfulFaceAssociations: []UnsuccessfulFaceAssociation{}}
	c, u, tok, done, err := e.beginMembership(ctx, in.membership(&threshold), in.withoutToken(), out)
	if err != nil || c == nil { // c is nil for a repeated call, answered in out
		return result(out, err)
	}
	defer done()
	userVec := c.vectorOf(u)
	var added []string
	for _, id := range distinct(in.FaceIds) {
		f := c.faces[id]
		switch {
		case f == nil:
			out.UnsuccessfulFaceAssociations = append(out.UnsuccessfulFaceAssociations, UnsuccessfulFaceAssociation{FaceId: id, Reasons: []string{ReasonFaceNotFound}})
			continue
		case f.userID == in.UserId:
			continue
		case f.userID != "":
			out.UnsuccessfulFaceAssociations = append(out.UnsuccessfulFaceAssociations, UnsuccessfulFaceAssociation{FaceId: id, UserId: f.userID, Reasons: []string{ReasonAssociatedToADifferentUser}})
			continue
		}
		if userVec != nil {
			fv, _ := c.faceVector(f.seq)
			if sim := c.curve.similarity(vector.Dot(fv, userVec)); float64(sim) < threshold {
				out.UnsuccessfulFaceAssociations = append(out.UnsuccessfulFaceAssociations, UnsuccessfulFaceAssociation{FaceId: id, UserId: in.UserId, Confidence: &sim, Reasons: []string{ReasonLowMatchConfidence}})
				continue
			}
		}
		added = append(added, id)
	}
	if err := userFacesQuota(in.UserId, len(u.faces), len(added)); err != nil {
		c.mu.RUnlock()
		return nil, err
	}
	newFaces := sortedUnique(append(slices.Clone(u.faces), added...))
	recs := c.faceRecords(added, in.UserId)
	c.mu.RUnlock()

	for _, id := range added {
		out.AssociatedFaces = append(out.AssociatedFaces, AssociatedFace{FaceId: id})
	}
	out.UserStatus = userStatus(len(newFaces))
	if err := e.commitMembership(ctx, c, in.CollectionId, u, newFaces, recs, tok, out); err != nil {
		return nil, err
	}
	return out, nil
}

// membership is AssociateFaces' membershipCall, which sets threshold.
func (in *AssociateFacesInput) membership(threshold *float64) membershipCall {
	return membershipCall{op: "AssociateFaces", coll: in.CollectionId, userID: in.UserId, faceIDs: in.FaceIds, token: in.ClientRequestToken,
		more: func(v *validator) {
			*threshold = v.percent("UserMatchThreshold", in.UserMatchThreshold, DefaultAssociateFacesThreshold)
		}}
}

// commitMembership writes a user's new face set and, once durable, publishes
// it with the recomputed user vector. The caller holds c.writeMu.
func (e *Engine) commitMembership(ctx context.Context, c *collection, coll string, u *user, newFaces []string, recs []*store.Face, tok *idempotent, out any) error {
	b := e.store.NewBatch()
	defer b.Close()
	for _, r := range recs {
		b.UpdateFace(coll, r)
	}
	if err := e.record(ctx, b, coll, tok, out); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := e.commit(ctx, b, "commit", out); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		c.faces[r.ID].userID = r.UserID
	}
	before := u.faces
	u.faces = newFaces
	c.regroup(u, before)
	return nil
}

// membership is DisassociateFaces' membershipCall.
func (in *DisassociateFacesInput) membership() membershipCall {
	return membershipCall{op: "DisassociateFaces", coll: in.CollectionId, userID: in.UserId, faceIDs: in.FaceIds, token: in.ClientRequestToken}
}

// DisassociateFaces removes faces from a user. Unknown faces and faces of
// another user come back in UnsuccessfulFaceDisassociations; faces of no
// user are skipped.
func (e *Engine) DisassociateFaces(ctx context.Context, in *DisassociateFacesInput) (*DisassociateFacesOutput, error) {
	in = orEmpty(in)
	out := &DisassociateFacesOutput{DisassociatedFaces: []DisassociatedFace{}, UnsuccessfulFaceDisassociations: []UnsuccessfulFaceDisassociation{}}
	c, u, tok, done, err := e.beginMembership(ctx, in.membership(), in.withoutToken(), out)
	if err != nil || c == nil { // c is nil for a repeated call, answered in out
		return result(out, err)
	}
	defer done()
	var removed []string
	for _, id := range distinct(in.FaceIds) {
		f := c.faces[id]
		switch {
		case f == nil:
			out.UnsuccessfulFaceDisassociations = append(out.UnsuccessfulFaceDisassociations, UnsuccessfulFaceDisassociation{FaceId: id, Reasons: []string{ReasonFaceNotFound}})
		case f.userID == in.UserId:
			removed = append(removed, id)
		case f.userID != "":
			out.UnsuccessfulFaceDisassociations = append(out.UnsuccessfulFaceDisassociations, UnsuccessfulFaceDisassociation{FaceId: id, UserId: f.userID, Reasons: []string{ReasonAssociatedToADifferentUser}})
		}
	}
	newFaces := slices.DeleteFunc(slices.Clone(u.faces), func(id string) bool { return slices.Contains(removed, id) })
	recs := c.faceRecords(removed, "")
	c.mu.RUnlock()

	for _, id := range removed {
		out.DisassociatedFaces = append(out.DisassociatedFaces, DisassociatedFace{FaceId: id})
	}
	out.UserStatus = userStatus(len(newFaces))
	if err := e.commitMembership(ctx, c, in.CollectionId, u, newFaces, recs, tok, out); err != nil {
		return nil, err
	}
	return out, nil
}
