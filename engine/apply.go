package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/facesearch/facesearch/store"
)

// ApplyEnv is what a replicated log decided for one mutation before it was
// published, so that every node applying it computes the same outcome: the
// time, the random IDs, and the applier's own records, written in the same
// atomic batch as the mutation's effects. Outside [Engine.Apply] the engine
// reads its clock and makes its IDs itself.
type ApplyEnv struct {
	// Time is the mutation's time: creation times, idempotency expiries and
	// the clock token lookups are checked against. It must not be zero.
	Time time.Time
	// ImageID and FaceIDs are IndexFaces' IDs: the image's, and one per
	// face indexed, in order (see [NewIndexFacesIDs]). Each must be a
	// lowercase UUID, the face IDs distinct and new to the collection;
	// otherwise the outcome is InvalidParameterException.
	ImageID string
	FaceIDs []string
	// Records returns the applier's records for the outcome o (nil Value
	// deletes); they are written in the batch that commits the mutation, or
	// alone when the outcome changes nothing else. Nil writes none.
	Records func(o *Outcome) []LogRecord
	// NoSync commits the mutation and its records without waiting for
	// stable storage, for an applier whose log is the durable record: a
	// crash may lose the batch, and the applier then applies the command
	// again from its log. Pebble's write-ahead log keeps commits in order,
	// so a batch that survives a crash has every earlier one with it. The
	// default value is false: synced, like every call outside Apply.
	NoSync bool
}

// LogRecord is one of an applier's own records (see [ApplyEnv.Records]),
// kept in the store beside the data.
type LogRecord struct {
	Key   string
	Value []byte // nil: delete Key
}

// Outcome is what a mutation answered: its response as JSON, or the error
// its caller gets. The same command gives the same Outcome on every node.
type Outcome struct {
	Response json.RawMessage // the operation's output; nil when Err is set
	Err      *Error          // Code and Message only
}

// ErrApply wraps a failure of [Engine.Apply] that is the node's own (its
// disk, a closed engine), not an outcome: nothing was written, and the same
// call may be made again.
var ErrApply = errors.New("engine: apply failed on this node")

// applyCall is the state of one Apply, carried in its ctx to the places
// where a call reads the clock, makes an ID or commits.
type applyCall struct {
	env       *ApplyEnv
	committed *Outcome // the outcome the call's batch committed with its records
}

type applyKey struct{}

func applying(ctx context.Context) *applyCall {
	a, _ := ctx.Value(applyKey{}).(*applyCall)
	return a
}

// mutation is how Apply runs one operation on its request (run), and the
// checks of the request that the operation makes before it reads the
// engine (check, for [CheckRequest]).
type mutation struct {
	run   func(e *Engine, ctx context.Context, request []byte) (any, error)
	check func(request []byte) error
}

// applyOps are the mutations Apply runs, by operation name. Each check is
// the first step of its operation, which makes it again itself.
var applyOps = map[string]mutation{
	"CreateCollection": applyOp((*Engine).CreateCollection, func(in *CreateCollectionInput) error {
		_, _, _, err := in.settings()
		return err
	}),
	"DeleteCollection": applyOp((*Engine).DeleteCollection, func(in *DeleteCollectionInput) error { return checked(in.validate) }),
	"IndexFaces": applyOp((*Engine).IndexFaces, func(in *IndexFacesInput) error {
		p, err := in.prepare()
		if err == nil {
			p.putBack()
		}
		return err
	}),
	"DeleteFaces": applyOp((*Engine).DeleteFaces, func(in *DeleteFacesInput) error { return checked(in.validate) }),
	"CreateUser":  applyOp((*Engine).CreateUser, func(in *CreateUserInput) error { return checked(in.validate) }),
	"DeleteUser":  applyOp((*Engine).DeleteUser, func(in *DeleteUserInput) error { return checked(in.validate) }),
	"AssociateFaces": applyOp((*Engine).AssociateFaces, func(in *AssociateFacesInput) error {
		var threshold float64
		return checked(in.membership(&threshold).validate)
	}),
	"DisassociateFaces": applyOp((*Engine).DisassociateFaces, func(in *DisassociateFacesInput) error {
		return checked(in.membership().validate)
	}),
}

// IsMutation reports whether op names an operation [Engine.Apply] runs.
func IsMutation(op string) bool { _, ok := applyOps[op]; return ok }

// notMutation is the outcome of an op Apply does not run.
func notMutation(op string) *Error {
	return invalid("%s is not an operation a command applies", op)
}

// CheckRequest returns the error [Engine.Apply] answers for the request of
// the mutation op whatever any engine holds: op is not a mutation, the
// request does not decode, or its parameters break a constraint (the
// checks each operation makes before it reads the engine, the same
// function). nil means only an engine's state may still refuse it. A
// replicated log calls it before it publishes a request, so that one that
// can never succeed costs no entry and gets the same [*Error].
func CheckRequest(op string, request []byte) error {
	m, ok := applyOps[op]
	if !ok {
		return notMutation(op)
	}
	return m.check(request)
}

func applyOp[In, Out any](call func(*Engine, context.Context, *In) (*Out, error), check func(*In) error) mutation {
	return mutation{
		run: func(e *Engine, ctx context.Context, request []byte) (any, error) {
			in, err := decodeRequest[In](request)
			if err != nil {
				return nil, err
			}
			out, err := call(e, ctx, in)
			if err != nil {
				return nil, err
			}
			return out, nil
		},
		check: func(request []byte) error {
			in, err := decodeRequest[In](request)
			if err != nil {
				return err
			}
			return check(in)
		},
	}
}

// decodeRequest decodes an Apply's request into the operation's input,
// its Go-only fields included.
func decodeRequest[In any](request []byte) (*In, error) {
	in := new(In)
	target, done := requestTarget(in)
	dec := json.NewDecoder(bytes.NewReader(request))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return nil, invalid("the request does not decode: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("the request has data after its end")
	}
	done()
	return in, nil
}

// Apply runs the mutation op (one of the eight that change a collection)
// on its request, the operation's input as JSON, with what env decided, and
// returns its outcome: the response, or the [*Error] its caller gets.
// Apply reads no clock and makes no random ID, so every engine that
// applies the same mutations in the same order holds the same data.
//
// An error return (wrapping [ErrApply], and [ErrDiskFull] when that is the
// cause) is a failure of this node, never an outcome: nothing of the
// mutation or of env's records was written, and the same Apply may be
// made again. Calls from one goroutine only, in the log's order.
func (e *Engine) Apply(ctx context.Context, op string, request []byte, env *ApplyEnv) (*Outcome, error) {
	run := applyOps[op].run
	switch {
	case env == nil || env.Time.IsZero():
		return nil, fmt.Errorf("%w: %s without a time", ErrApply, op)
	case e.opts.ReadOnly:
		return nil, fmt.Errorf("%w: the engine is open read-only", ErrApply)
	}
	if err := e.whileOpen(func() error { return nil }); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrApply, err)
	}
	a := &applyCall{env: env}
	var o *Outcome
	if run == nil {
		o = &Outcome{Err: notMutation(op)}
	} else {
		out, err := run(e, context.WithValue(ctx, applyKey{}, a), request)
		if local := localFailure(err); local != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrApply, op, local)
		}
		if a.committed != nil { // commit made the outcome, and wrote its records
			return a.committed, nil
		}
		if o, err = outcomeOf(op, out, err); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrApply, op, err)
		}
	}
	if env.Records != nil {
		if err := e.WriteLogRecords(env.Records(o), !env.NoSync); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	return o, nil
}

// localFailure returns err if it is the node's own failure rather than an
// outcome: a closed engine, or storage (InternalServerError, and the
// ThrottlingException of a full disk).
func localFailure(err error) error {
	var ee *Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ee):
		return err
	case ee.Code == CodeInternalServerError || ee.Code == CodeThrottling:
		return err
	}
	return nil
}

// outcomeOf is the outcome of a call that answered out or err; err is an
// [*Error] (see localFailure).
func outcomeOf(op string, out any, err error) (*Outcome, error) {
	if err != nil {
		var ee *Error
		errors.As(err, &ee)
		return &Outcome{Err: &Error{Code: ee.Code, Message: ee.Message}}, nil
	}
	resp, err := json.Marshal(out)
	if err != nil {
		return nil, internal(op, err)
	}
	return &Outcome{Response: resp}, nil
}

func putRecords(b *store.Batch, recs []LogRecord) {
	for _, r := range recs {
		if r.Value == nil {
			b.DeleteApplyRecord(r.Key)
		} else {
			b.PutApplyRecord(r.Key, r.Value)
		}
	}
}

// commit commits a call's batch b, durably; under Apply with the
// applier's records for the call's answer out, so that they and the
// mutation are written together or not at all, and unsynced if the
// applier asks (see [ApplyEnv.NoSync]). Every mutation commits here.
func (e *Engine) commit(ctx context.Context, b *store.Batch, op string, out any) error {
	a := applying(ctx)
	var o *Outcome
	if a != nil {
		var err error
		if o, err = outcomeOf(op, out, nil); err != nil {
			return err
		}
		if a.env.Records != nil {
			putRecords(b, a.env.Records(o))
		}
	}
	if err := b.Commit(a == nil || !a.env.NoSync); err != nil {
		return internal(op, err)
	}
	if a != nil {
		a.committed = o
	}
	return nil
}

// clock is the time of a call: the command's under Apply, else now.
func (e *Engine) clock(ctx context.Context) time.Time {
	if a := applying(ctx); a != nil {
		return a.env.Time
	}
	return e.now()
}

// newImageIDs returns the image ID and n face IDs of an IndexFaces call:
// the command's under Apply (refused unless each is a UUID, the faces'
// distinct and new to c), else fresh ones. The caller holds c.mu or
// c.writeMu against other writers of c.faces when applying.
func (e *Engine) newImageIDs(ctx context.Context, c *collection, n int) (string, []string, error) {
	a := applying(ctx)
	if a == nil {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = newUUID()
		}
		return newUUID(), ids, nil
	}
	env := a.env
	if !isFaceID(env.ImageID) {
		return "", nil, invalid("the command's ImageId %q is not a UUID", env.ImageID)
	}
	if len(env.FaceIDs) != n {
		return "", nil, invalid("the command carries %d face IDs for %d faces", len(env.FaceIDs), n)
	}
	seen := make(map[string]bool, n)
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, id := range env.FaceIDs {
		if !isFaceID(id) || seen[id] || c.faces[id] != nil {
			return "", nil, invalid("the command's face ID %q is not a new, distinct UUID", id)
		}
		seen[id] = true
	}
	return env.ImageID, env.FaceIDs, nil
}

// NewIndexFacesIDs makes the IDs an IndexFaces of in needs under
// [Engine.Apply]: a fresh image ID and one fresh face ID per face it would
// index (its faces or image rows, up to MaxFaces and the 100 of a call).
// An input that does not decode gets none; its Apply fails the same way.
func NewIndexFacesIDs(in *IndexFacesInput) (imageID string, faceIDs []string) {
	n := len(in.Faces)
	if in.Image != nil {
		rows, _, err := decodeImage(in.Image)
		if err != nil {
			return newUUID(), nil
		}
		n = len(rows)
	}
	n = min(n, maxFacesPerIndexCall)
	if in.MaxFaces != nil {
		n = min(n, max(int(*in.MaxFaces), 0))
	}
	faceIDs = make([]string, n)
	for i := range faceIDs {
		faceIDs[i] = newUUID()
	}
	return newUUID(), faceIDs
}

// LogRecord returns the applier's record key (see [ApplyEnv.Records]).
func (e *Engine) LogRecord(key string) (v []byte, ok bool, err error) {
	err = e.whileOpen(func() (err error) {
		v, ok, err = e.store.ApplyRecord(key)
		return err
	})
	return v, ok, err
}

// LogRecords returns, in key order, at most limit of the applier's records
// whose keys are at least from and below to.
func (e *Engine) LogRecords(from, to string, limit int) ([]LogRecord, error) {
	var out []LogRecord
	err := e.whileOpen(func() error {
		kvs, err := e.store.ApplyRecords(from, to, limit)
		for _, kv := range kvs {
			out = append(out, LogRecord{Key: kv.Key, Value: kv.Value})
		}
		return err
	})
	return out, err
}

// WriteLogRecords writes the applier's records alone, atomically: for a
// log entry that changes no data (a read barrier, a repeated command).
// With sync it returns once they are on stable storage; without, a crash
// may lose them, together with every later write (see [ApplyEnv.NoSync]).
// A failure wraps [ErrApply].
func (e *Engine) WriteLogRecords(recs []LogRecord, sync bool) error {
	err := e.whileOpen(func() error {
		b := e.store.NewBatch()
		defer b.Close()
		putRecords(b, recs)
		if b.Empty() {
			return nil
		}
		return b.Commit(sync)
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrApply, err)
	}
	return nil
}

// whileOpen runs fn with the engine held open (Close waits for it), or
// returns ErrClosed.
func (e *Engine) whileOpen(fn func() error) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	return fn()
}
