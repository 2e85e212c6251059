package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/facesearch/facesearch/engine"
)

// OutcomeTTL is how long, by the commands' own times, the apply keeps a
// command's outcome to answer a repeated command ID with: the lifetime of
// a ClientRequestToken.
const OutcomeTTL = 24 * time.Hour

// expirePerCommand bounds the expired outcomes one mutation's batch
// deletes; each adds one, so the backlog cannot grow.
const expirePerCommand = 64

// barrierPersistEvery bounds the barriers a restarted node re-applies: a
// barrier changes nothing but the applied sequence, which is written with
// the next mutation, or by a barrier whose sequence is a multiple of this
// (so that replicas at one sequence hold the same records).
const barrierPersistEvery = 1024

// The applier's records in the engine's store (see engine.LogRecord):
// the applied sequence and time, and each command's outcome with an entry
// ordered by time for its expiry.
const (
	keyApplied    = "applied"
	prefixOutcome = "o/" // o/<command ID> -> Outcome as JSON
	prefixExpiry  = "x/" // x/<time, 16 hex digits>/<command ID> -> empty
)

// Payload is a mutation command's payload: the operation's input as the
// engine takes it, and the IDs the issuing node made for it.
type Payload struct {
	// Input is the operation's input struct as JSON (engine.CreateUserInput
	// for CreateUser, and so on).
	Input json.RawMessage `json:"input"`
	// ImageId and FaceIds are IndexFaces' IDs (engine.NewIndexFacesIDs).
	ImageId string   `json:"imageId,omitempty"`
	FaceIds []string `json:"faceIds,omitempty"`
}

// NewMutation builds the command of a mutation op taken by node at time t
// (from its [Clock]), with input the operation's engine input, making the
// random IDs the operation needs. id is the command ID ([NewCommandID]).
func NewMutation(id, op, node string, t int64, input any) (*Command, error) {
	c, _, err := newMutation(id, op, node, t, input)
	return c, err
}

// newMutation is [NewMutation], and the request the command carries (its
// payload's Input).
func newMutation(id, op, node string, t int64, input any) (*Command, json.RawMessage, error) {
	p := Payload{}
	if in, ok := input.(*engine.IndexFacesInput); ok && in != nil {
		p.ImageId, p.FaceIds = engine.NewIndexFacesIDs(in)
	}
	var err error
	if p.Input, err = engine.MutationRequest(op, input); err != nil {
		return nil, nil, err // the *engine.Error the caller gets
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s payload: %v", ErrInvalidCommand, op, err)
	}
	c := &Command{Version: CommandVersion, ID: id, Op: op, Node: node, Time: t, Payload: payload}
	return c, p.Input, c.Validate()
}

// Outcome is what a command answered, as every node's apply recorded it.
type Outcome struct {
	// Op is the command's operation.
	Op string `json:"op"`
	// Seq and Time are the log sequence and the time it was applied at.
	Seq  uint64 `json:"seq"`
	Time int64  `json:"time"`
	// Response is the operation's output as JSON; empty when it failed.
	Response json.RawMessage `json:"response,omitempty"`
	// Code and Message are the [engine.Error] the caller gets instead.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Err is the outcome's error as an [*engine.Error], or nil for a success.
func (o *Outcome) Err() error {
	if o.Code == "" {
		return nil
	}
	return &engine.Error{Code: o.Code, Message: o.Message}
}

// EngineApplier is the [Applier] that applies the log to an engine: each
// command through [engine.Engine.Apply], with the applied sequence and the
// command's outcome written in the batch of its effects. A command ID
// applied before (within [OutcomeTTL] of the log's time) is answered with
// its recorded outcome and not run again.
//
// The log is the durable record, so batches are committed unsynced
// ([engine.ApplyEnv.NoSync]): a crash loses at most a tail of them, and
// with it the applied sequence they recorded, and the node applies those
// commands again, to the same outcomes. A barrier writes no batch of its
// own (see barrierPersistEvery): a restarted node re-applies the barriers
// after its recorded sequence, which changes nothing but that sequence.
type EngineApplier struct {
	e        *engine.Engine
	progress *Progress
	clock    *Clock

	mu      sync.Mutex // guards applied and last
	applied uint64
	last    int64 // the applied time of the command at applied
}

var _ Applier = (*EngineApplier)(nil)

// NewEngineApplier returns the applier of e, resuming after the sequence
// recorded in e's store (0 for a store that applied nothing). clock, if
// not nil, observes every applied time, so that the node's next commands
// are later than any it applied.
func NewEngineApplier(e *engine.Engine, clock *Clock) (*EngineApplier, error) {
	v, ok, err := e.LogRecord(keyApplied)
	if err != nil {
		return nil, fmt.Errorf("cluster: read the applied sequence: %w", err)
	}
	a := &EngineApplier{e: e, clock: clock}
	if ok {
		if a.applied, a.last, err = decodeApplied(v); err != nil {
			return nil, err
		}
	}
	if clock != nil {
		clock.Observe(a.last)
	}
	a.progress = NewProgress(a.applied)
	return a, nil
}

// Applied returns the last sequence applied and the time it applied at.
func (a *EngineApplier) Applied() (seq uint64, t int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied, a.last
}

// Progress is the applied sequence for reads to wait on; it moves once a
// command's effects are committed and visible.
func (a *EngineApplier) Progress() *Progress { return a.progress }

// Outcome returns the recorded outcome of command id, if it is kept.
func (a *EngineApplier) Outcome(id string) (*Outcome, bool, error) {
	v, ok, err := a.e.LogRecord(prefixOutcome + id)
	if err != nil || !ok {
		return nil, false, err
	}
	var o Outcome
	if err := json.Unmarshal(v, &o); err != nil {
		return nil, false, fmt.Errorf("cluster: the outcome of command %s does not decode: %w", id, err)
	}
	return &o, true, nil
}

// Apply applies cmd at seq: see [Applier]. Its errors are the node's own
// failures (wrapping [engine.ErrApply], and [engine.ErrDiskFull] for a
// full disk): the applied sequence stays, and the same command may be
// offered again.
func (a *EngineApplier) Apply(ctx context.Context, seq uint64, cmd *Command) error {
	applied, last := a.Applied()
	if seq != applied+1 {
		return &GapError{Applied: applied, Next: seq}
	}
	t := cmd.ApplyTime(last)
	if err := a.write(ctx, seq, t, cmd); err != nil {
		return err
	}
	a.mu.Lock()
	a.applied, a.last = seq, t
	a.mu.Unlock()
	if a.clock != nil {
		a.clock.Observe(t)
	}
	a.progress.Advance(seq)
	return nil
}

// write writes what cmd changes in the store with the applied sequence,
// nothing for most barriers. Outcomes expire with mutations and repeated
// commands only, as on every node.
func (a *EngineApplier) write(ctx context.Context, seq uint64, t int64, cmd *Command) error {
	applied := engine.LogRecord{Key: keyApplied, Value: appliedRecord(seq, t)}
	if cmd.Op == OpBarrier {
		if seq%barrierPersistEvery != 0 {
			return nil
		}
		return a.e.WriteLogRecords([]engine.LogRecord{applied}, false)
	}
	recs, err := a.expired(t)
	if err != nil {
		return err
	}
	recs = append(recs, applied)
	kept, err := a.kept(cmd.ID)
	switch {
	case err != nil:
		return err
	case kept:
		return a.e.WriteLogRecords(recs, false)
	}
	return a.mutate(ctx, seq, t, cmd, recs)
}

// mutate runs a mutation, recording its outcome and recs with it.
func (a *EngineApplier) mutate(ctx context.Context, seq uint64, t int64, cmd *Command, recs []engine.LogRecord) error {
	env := &engine.ApplyEnv{Time: At(t), NoSync: true}
	record := func(o *engine.Outcome) []engine.LogRecord {
		out := Outcome{Op: cmd.Op, Seq: seq, Time: t, Response: o.Response}
		if o.Err != nil {
			out.Code, out.Message = o.Err.Code, o.Err.Message
		}
		v, _ := json.Marshal(out) // of plain fields and valid JSON: cannot fail
		return append(recs,
			engine.LogRecord{Key: prefixOutcome + cmd.ID, Value: v},
			engine.LogRecord{Key: expiryKey(t, cmd.ID), Value: []byte{}})
	}
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(cmd.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || len(p.Input) == 0 {
		// Every node decodes the same bytes alike: the failure is the
		// command's outcome.
		msg := fmt.Sprintf("the %s command's payload does not decode: %v", cmd.Op, err)
		return a.e.WriteLogRecords(record(&engine.Outcome{Err: &engine.Error{Code: engine.CodeInvalidParameter, Message: msg}}), false)
	}
	env.ImageID, env.FaceIDs, env.Records = p.ImageId, p.FaceIds, record
	_, err := a.e.Apply(ctx, cmd.Op, p.Input, env)
	return err
}

// kept reports whether command id has a recorded outcome.
func (a *EngineApplier) kept(id string) (bool, error) {
	_, ok, err := a.e.LogRecord(prefixOutcome + id)
	if err != nil {
		return false, fmt.Errorf("%w: %w", engine.ErrApply, err)
	}
	return ok, nil
}

// expired returns the deletions of outcomes recorded more than OutcomeTTL
// before t, at most expirePerCommand of them, oldest first.
func (a *EngineApplier) expired(t int64) ([]engine.LogRecord, error) {
	cut := t - int64(OutcomeTTL)
	if cut <= 0 {
		return nil, nil
	}
	old, err := a.e.LogRecords(prefixExpiry, expiryKey(cut, ""), expirePerCommand)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrApply, err)
	}
	var recs []engine.LogRecord
	for _, r := range old {
		_, id, ok := strings.Cut(strings.TrimPrefix(r.Key, prefixExpiry), "/")
		if !ok {
			return nil, fmt.Errorf("%w: malformed expiry record %q", engine.ErrApply, r.Key)
		}
		recs = append(recs, engine.LogRecord{Key: r.Key}, engine.LogRecord{Key: prefixOutcome + id})
	}
	return recs, nil
}

func expiryKey(t int64, id string) string {
	return fmt.Sprintf("%s%016x/%s", prefixExpiry, uint64(t), id)
}

func appliedRecord(seq uint64, t int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, seq)
	return binary.BigEndian.AppendUint64(b, uint64(t))
}

// decodeApplied reads the applied record: the sequence and the applied time.
func decodeApplied(v []byte) (seq uint64, t int64, err error) {
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("cluster: the store's applied record has %d bytes, want 16", len(v))
	}
	return binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:])), nil
}
