package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/facesearch/facesearch/engine"
)

// The 16 operations of a Replica: the eight mutations go through the log
// (mutate), the reads through the barrier and the local engine (read).

// CreateCollection creates a collection on every node.
func (r *Replica) CreateCollection(ctx context.Context, in *engine.CreateCollectionInput) (*engine.CreateCollectionOutput, error) {
	return mutate[engine.CreateCollectionOutput](ctx, r, OpCreateCollection, "", in)
}

// DeleteCollection deletes a collection on every node.
func (r *Replica) DeleteCollection(ctx context.Context, in *engine.DeleteCollectionInput) (*engine.DeleteCollectionOutput, error) {
	return mutate[engine.DeleteCollectionOutput](ctx, r, OpDeleteCollection, "", in)
}

// DescribeCollection describes a collection (see [Replica] for reads).
func (r *Replica) DescribeCollection(ctx context.Context, in *engine.DescribeCollectionInput) (*engine.DescribeCollectionOutput, error) {
	return read(ctx, r, in, (*engine.Engine).DescribeCollection)
}

// ListCollections lists the collections.
func (r *Replica) ListCollections(ctx context.Context, in *engine.ListCollectionsInput) (*engine.ListCollectionsOutput, error) {
	return read(ctx, r, in, (*engine.Engine).ListCollections)
}

// IndexFaces adds faces, with IDs this node makes before publishing.
func (r *Replica) IndexFaces(ctx context.Context, in *engine.IndexFacesInput) (*engine.IndexFacesOutput, error) {
	return mutate[engine.IndexFacesOutput](ctx, r, OpIndexFaces, "", in)
}

// ListFaces lists a collection's faces.
func (r *Replica) ListFaces(ctx context.Context, in *engine.ListFacesInput) (*engine.ListFacesOutput, error) {
	return read(ctx, r, in, (*engine.Engine).ListFaces)
}

// DeleteFaces deletes faces.
func (r *Replica) DeleteFaces(ctx context.Context, in *engine.DeleteFacesInput) (*engine.DeleteFacesOutput, error) {
	return mutate[engine.DeleteFacesOutput](ctx, r, OpDeleteFaces, "", in)
}

// SearchFaces searches faces by a face.
func (r *Replica) SearchFaces(ctx context.Context, in *engine.SearchFacesInput) (*engine.SearchFacesOutput, error) {
	return read(ctx, r, in, (*engine.Engine).SearchFaces)
}

// SearchFacesByImage searches faces by an embedding.
func (r *Replica) SearchFacesByImage(ctx context.Context, in *engine.SearchFacesByImageInput) (*engine.SearchFacesByImageOutput, error) {
	return read(ctx, r, in, (*engine.Engine).SearchFacesByImage)
}

// CreateUser creates a user; a ClientRequestToken makes a retry through
// any node the same command.
func (r *Replica) CreateUser(ctx context.Context, in *engine.CreateUserInput) (*engine.CreateUserOutput, error) {
	in = orEmpty(in)
	return mutate[engine.CreateUserOutput](ctx, r, OpCreateUser, in.ClientRequestToken, in)
}

// DeleteUser deletes a user.
func (r *Replica) DeleteUser(ctx context.Context, in *engine.DeleteUserInput) (*engine.DeleteUserOutput, error) {
	in = orEmpty(in)
	return mutate[engine.DeleteUserOutput](ctx, r, OpDeleteUser, in.ClientRequestToken, in)
}

// ListUsers lists a collection's users.
func (r *Replica) ListUsers(ctx context.Context, in *engine.ListUsersInput) (*engine.ListUsersOutput, error) {
	return read(ctx, r, in, (*engine.Engine).ListUsers)
}

// AssociateFaces associates faces with a user.
func (r *Replica) AssociateFaces(ctx context.Context, in *engine.AssociateFacesInput) (*engine.AssociateFacesOutput, error) {
	in = orEmpty(in)
	return mutate[engine.AssociateFacesOutput](ctx, r, OpAssociateFaces, in.ClientRequestToken, in)
}

// DisassociateFaces disassociates faces from a user.
func (r *Replica) DisassociateFaces(ctx context.Context, in *engine.DisassociateFacesInput) (*engine.DisassociateFacesOutput, error) {
	in = orEmpty(in)
	return mutate[engine.DisassociateFacesOutput](ctx, r, OpDisassociateFaces, in.ClientRequestToken, in)
}

// SearchUsers searches users by a face or a user.
func (r *Replica) SearchUsers(ctx context.Context, in *engine.SearchUsersInput) (*engine.SearchUsersOutput, error) {
	return read(ctx, r, in, (*engine.Engine).SearchUsers)
}

// SearchUsersByImage searches users by an embedding.
func (r *Replica) SearchUsersByImage(ctx context.Context, in *engine.SearchUsersByImageInput) (*engine.SearchUsersByImageOutput, error) {
	return read(ctx, r, in, (*engine.Engine).SearchUsersByImage)
}

func orEmpty[T any](in *T) *T {
	if in == nil {
		return new(T)
	}
	return in
}

// mutate publishes the mutation op of in, waits until this node has
// applied it, and returns the outcome its apply recorded, decoded into O
// (or its *engine.Error). A request no state can make succeed gets
// [engine.CheckRequest]'s *engine.Error instead, unpublished.
func mutate[O any](ctx context.Context, r *Replica, op, token string, in any) (*O, error) {
	// Every request is its own command, a token's retry too: the engine's
	// token records, replicated by the apply, answer a repeated token as a
	// single node would. An ID derived from the token would let the apply's
	// outcome (and JetStream's deduplication) answer for a deleted and
	// re-created collection, or a token whose first call failed.
	id := NewCommandID()
	cmd, req, err := newMutation(id, op, r.opts.Name, r.clock.Now(), in)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", op, err)
	}
	// A request that no state can make succeed is refused as every node's
	// apply would refuse it, on any node, healthy or not, without a log
	// entry.
	if err := engine.CheckRequest(op, req); err != nil {
		return nil, err
	}
	if err := r.health.get(); err != nil {
		return nil, unavailable(err, "this node cannot take %s now (%v); retry on another node", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.WriteTimeout)
	defer cancel()
	ack, err := r.log.Publish(ctx, cmd)
	switch {
	case errors.Is(err, ErrUnconfirmed):
		return nil, unavailable(err, "the cluster did not confirm this %s within %v (is a quorum of the command log reachable?): "+
			"it may still be applied; %s", op, r.opts.WriteTimeout, retryAdvice(token))
	case errors.Is(err, ErrInvalidCommand):
		// The one way a valid request makes an invalid command.
		return nil, &engine.Error{Code: engine.CodeImageTooLarge,
			Message: fmt.Sprintf("the %s request is over the %d bytes a command may hold", op, MaxCommandSize)}
	case err != nil:
		return nil, fmt.Errorf("cluster: %s: %w", op, err)
	}
	st := r.state.Load()
	if err := r.waitApplied(ctx, st, ack.Seq); err != nil {
		return nil, unavailable(err, "the cluster committed this %s (log sequence %d), but this node did not apply it (%v); "+
			"the other nodes apply it; %s", op, ack.Seq, err, retryAdvice(token))
	}
	o, ok, err := st.applier.Outcome(id)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("cluster: %s: no outcome recorded for command %s at sequence %d", op, id, ack.Seq)
	}
	if err := o.Err(); err != nil {
		return nil, err
	}
	out := new(O)
	if err := json.Unmarshal(o.Response, out); err != nil {
		return nil, fmt.Errorf("cluster: %s: the outcome of command %s does not decode: %w", op, id, err)
	}
	return out, nil
}

// waitApplied waits until st's applier has applied seq, or ctx is done, or
// the node turns unhealthy (its apply failed: waiting on would only reach
// the write's deadline).
func (r *Replica) waitApplied(ctx context.Context, st *replicaState, seq uint64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sick := r.health.sickness()
	go func() {
		select {
		case <-sick:
			cancel(r.health.get())
		case <-ctx.Done():
		}
	}()
	if err := st.applier.Progress().Wait(ctx, seq); err != nil {
		return cmp.Or(context.Cause(ctx), err)
	}
	return nil
}

// retryAdvice says whether a retry of a write whose fate is unknown is safe.
func retryAdvice(token string) string {
	if token != "" {
		return "retrying with the same ClientRequestToken is safe and returns its outcome"
	}
	return "check before retrying, as this operation takes no ClientRequestToken"
}

type consistencyKey struct{}

// WithReadConsistency returns ctx with the read consistency of the
// [Replica] calls made with it, overriding ReplicaOptions.ReadConsistency.
func WithReadConsistency(ctx context.Context, c ReadConsistency) context.Context {
	return context.WithValue(ctx, consistencyKey{}, c)
}

// read runs a read on the local engine, after a read barrier unless the
// read consistency is Local.
func read[I, O any](ctx context.Context, r *Replica, in *I, call func(*engine.Engine, context.Context, *I) (*O, error)) (*O, error) {
	c := r.opts.ReadConsistency
	if v, ok := ctx.Value(consistencyKey{}).(ReadConsistency); ok {
		c = v
	}
	st := r.state.Load()
	if c != Local {
		if err := r.health.get(); err != nil {
			return nil, unavailable(err, "this node cannot serve a linearizable read now (%v); retry on another node, or read with local consistency", err)
		}
		bctx, cancel := context.WithTimeout(ctx, r.opts.ReadTimeout)
		err := st.barrier.Wait(bctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return nil, unavailable(err, "this node could not make a linearizable read within %v (%v): no quorum of the command log, "+
				"or the node is behind applying it; retry, or read with local consistency", r.opts.ReadTimeout, err)
		}
		if err != nil {
			return nil, err
		}
	}
	out, err := call(st.e, ctx, in)
	if errors.Is(err, engine.ErrClosed) {
		// Closed for a re-bootstrap rather than by Close.
		if herr := r.health.get(); herr != nil {
			return nil, unavailable(herr, "this node cannot serve reads now (%v); retry on another node", herr)
		}
	}
	return out, err
}

// unavailable is the error of a call the cluster could not serve in time:
// a ThrottlingException, which Rekognition's SDKs retry with backoff,
// carrying msg, and wrapping cause ([ErrUnconfirmed], [ErrUnhealthy], a
// context error) for errors.Is.
func unavailable(cause error, format string, args ...any) error {
	return fmt.Errorf("%w (%w)", &engine.Error{Code: engine.CodeThrottling, Message: fmt.Sprintf(format, args...)}, cause)
}
