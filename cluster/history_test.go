package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// The linearizability check's view of the engine: per collection, whether
// its one user exists and how many faces it holds. Linearizability is
// local, so checking each collection's history alone checks the whole.

// regOp is an operation on one collection's register.
type regOp struct {
	coll string
	op   string // one of the reg* operations
}

const (
	regCreate   = "CreateUser"
	regDelete   = "DeleteUser"
	regIndex    = "IndexFaces"
	regList     = "ListUsers"
	regDescribe = "DescribeCollection"
)

// read reports whether o observes the state rather than changing it.
func (o regOp) read() bool { return o.op == regList || o.op == regDescribe }

// regUser is the one user ID of every register.
const regUser = "u"

// regResult is what an operation answered.
type regResult struct {
	// unknown marks a write whose fate the caller could not learn (a
	// timeout, an unconfirmed publish): it may or may not have applied.
	unknown bool
	// code is the engine's refusal of a write; "" for success.
	code string
	// user and faces are what a read saw (faces by DescribeCollection only).
	user  bool
	faces int64
}

// regState is one collection's state.
type regState struct {
	user  bool
	faces int64
}

// regModel is the sequential specification the replicas must be
// linearizable against.
var regModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			c := op.Input.(regOp).coll
			if by[c] == nil {
				order = append(order, c)
			}
			by[c] = append(by[c], op)
		}
		var parts [][]porcupine.Operation
		for _, c := range order {
			parts = append(parts, by[c])
		}
		return parts
	},
	Init: func() any { return regState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(regState), input.(regOp), output.(regResult)
		switch in.op {
		case regCreate:
			if s.user {
				return out.unknown || out.code == engine.CodeConflict, s
			}
			return out.unknown || out.code == "", regState{user: true, faces: s.faces}
		case regDelete:
			if !s.user {
				return out.unknown || out.code == engine.CodeResourceNotFound, s
			}
			return out.unknown || out.code == "", regState{faces: s.faces}
		case regIndex:
			return out.unknown || out.code == "", regState{user: s.user, faces: s.faces + 1}
		case regList:
			return out.user == s.user, s
		case regDescribe:
			return out.user == s.user && out.faces == s.faces, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regOp), output.(regResult)
		switch {
		case out.unknown:
			return fmt.Sprintf("%s %s -> ?", in.op, in.coll)
		case in.read():
			return fmt.Sprintf("%s %s -> user %v, faces %d", in.op, in.coll, out.user, out.faces)
		}
		return fmt.Sprintf("%s %s -> %q", in.op, in.coll, out.code)
	},
	DescribeState: func(state any) string {
		s := state.(regState)
		return fmt.Sprintf("user %v, faces %d", s.user, s.faces)
	},
}

// history records operations with their call and return times, on one
// monotonic clock.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func newHistory() *history { return &history{start: time.Now()} }

// now is the history's clock.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

// add records an operation called at call; a write of unknown fate never
// returns, as far as the checker knows.
func (h *history) add(client int, in regOp, call int64, out regResult) {
	ret := h.now()
	if out.unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// snapshot returns the operations recorded so far (at 0), or the history
// as it stood at time at: the operations that had returned, and the
// writes still in flight, which may or may not apply. Reads still in
// flight observed nothing yet. Whatever comes after at is unknown, so a
// linearizable history stays linearizable when cut there.
func (h *history) snapshot(at int64) []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ops []porcupine.Operation
	for _, op := range h.ops {
		switch {
		case at == 0 || op.Return <= at:
			ops = append(ops, op)
		case op.Call <= at && !op.Input.(regOp).read():
			op.Output, op.Return = regResult{unknown: true}, math.MaxInt64
			ops = append(ops, op)
		}
	}
	return ops
}

// checkHistory runs the checker on ops, failing the test on a time-out (an
// unchecked history proves nothing), and returns its verdict; an illegal
// history's visualization goes to the test's temporary directory.
func checkHistory(t *testing.T, what string, ops []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(regModel, ops, time.Minute)
	require.NotEqual(t, porcupine.Unknown, res, "%s: the checker timed out on %d operations", what, len(ops))
	if res == porcupine.Illegal {
		path := fmt.Sprintf("%s/%s.html", t.TempDir(), nonName.ReplaceAllString(what, "_"))
		if err := porcupine.VisualizePath(regModel, info, path); err == nil {
			t.Logf("%s: visualization in %s", what, path)
		}
		t.Logf("%s: %s", what, explainIllegal(ops, info))
	}
	return res
}

// explainIllegal says where the longest partial linearization of the
// partition that has none stops: its state there, and the operations that
// had to come next (those returning first among the rest).
func explainIllegal(ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	parts := regModel.Partition(ops)
	for p, lins := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, l := range lins {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(parts[p]) {
			continue
		}
		state := regModel.Init()
		type key struct {
			client int
			call   int64
		}
		done := map[key]bool{}
		for _, op := range longest {
			_, state = regModel.Step(state, op.Input, op.Output)
			done[key{op.ClientId, op.Call}] = true
		}
		var rest []porcupine.Operation
		for _, op := range parts[p] {
			if !done[key{op.ClientId, op.Call}] {
				rest = append(rest, op)
			}
		}
		slices.SortFunc(rest, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
		msg := fmt.Sprintf("%d of %d operations linearized, state %s; next by return:", len(longest), len(parts[p]), regModel.DescribeState(state))
		for _, op := range rest[:min(4, len(rest))] {
			msg += fmt.Sprintf("\n\tclient %d [%v, %v] %s", op.ClientId, time.Duration(op.Call), time.Duration(op.Return), regModel.DescribeOperation(op.Input, op.Output))
		}
		return msg
	}
	return "no partial linearization"
}

// regClient runs register operations against a Replica, as the engine's
// callers see them.
type regClient struct {
	r *Replica
	// ctx carries the read consistency, when not the replica's default.
	ctx context.Context
}

// vector1 is a one-face embedding of dimension regDim.
var vector1 = npy.EncodeVector([]float32{1, 0.5, 0.25, 0.125})

const regDim = "4"

// do runs op and says what it answered; ok is false for a read that failed
// (it observed nothing, so it is left out of the history).
func (c regClient) do(op regOp) (res regResult, ok bool) {
	ctx := c.ctx
	var err error
	switch op.op {
	case regCreate:
		_, err = c.r.CreateUser(ctx, &engine.CreateUserInput{CollectionId: op.coll, UserId: regUser})
	case regDelete:
		_, err = c.r.DeleteUser(ctx, &engine.DeleteUserInput{CollectionId: op.coll, UserId: regUser})
	case regIndex:
		_, err = c.r.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: op.coll, Image: &engine.Image{Bytes: vector1}})
	case regList:
		var out *engine.ListUsersOutput
		if out, err = c.r.ListUsers(ctx, &engine.ListUsersInput{CollectionId: op.coll}); err == nil {
			res.user = len(out.Users) > 0
		}
		return res, err == nil
	case regDescribe:
		var out *engine.DescribeCollectionOutput
		if out, err = c.r.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: op.coll}); err == nil {
			res.user, res.faces = out.UserCount > 0, out.FaceCount
		}
		return res, err == nil
	}
	var e *engine.Error
	switch {
	case err == nil:
	case errors.As(err, &e) && (e.Code == engine.CodeConflict || e.Code == engine.CodeResourceNotFound):
		res.code = e.Code
	default:
		// Throttling (unconfirmed, unhealthy), a context error: the write
		// may have been applied.
		res.unknown = true
	}
	return res, true
}

// TestRegisterModelRejectsStaleReads checks the checker on small histories
// written by hand: it must accept the linearizable ones and reject the
// others, or the cluster's check could not fail.
func TestRegisterModelRejectsStaleReads(t *testing.T) {
	type op struct {
		in        regOp
		call, ret int64
		out       regResult
	}
	create := regOp{"c", regCreate}
	list := regOp{"c", regList}
	other := regOp{"d", regList}
	absent, present := regResult{}, regResult{user: true}
	unknown := regResult{unknown: true}
	cases := []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"read after an acknowledged create sees it", []op{{create, 0, 10, absent}, {list, 11, 12, present}}, porcupine.Ok},
		{"read after an acknowledged create misses it", []op{{create, 0, 10, absent}, {list, 11, 12, absent}}, porcupine.Illegal},
		{"reads concurrent with a create do not go back", []op{{create, 0, 10, absent}, {list, 1, 2, present}, {list, 3, 4, absent}}, porcupine.Illegal},
		{"a read may see a create of unknown fate", []op{{create, 0, math.MaxInt64, unknown}, {list, 11, 12, present}}, porcupine.Ok},
		{"or not see it", []op{{create, 0, math.MaxInt64, unknown}, {list, 11, 12, absent}}, porcupine.Ok},
		{"but not lose it once seen", []op{{create, 0, math.MaxInt64, unknown}, {list, 11, 12, present}, {list, 13, 14, absent}}, porcupine.Illegal},
		{"a second create is a conflict", []op{{create, 0, 1, absent}, {create, 2, 3, regResult{code: engine.CodeConflict}}}, porcupine.Ok},
		{"a second create cannot succeed", []op{{create, 0, 1, absent}, {create, 2, 3, absent}}, porcupine.Illegal},
		{"collections are apart", []op{{create, 0, 1, absent}, {other, 2, 3, absent}}, porcupine.Ok},
		{"faces count", []op{{regOp{"c", regIndex}, 0, 1, absent}, {regOp{"c", regDescribe}, 2, 3, regResult{faces: 1}}}, porcupine.Ok},
		{"faces do not vanish", []op{{regOp{"c", regIndex}, 0, 1, absent}, {regOp{"c", regDescribe}, 2, 3, regResult{}}}, porcupine.Illegal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h []porcupine.Operation
			for i, o := range tc.ops {
				h = append(h, porcupine.Operation{ClientId: i, Input: o.in, Call: o.call, Output: o.out, Return: o.ret})
			}
			require.Equal(t, tc.want, porcupine.CheckOperationsTimeout(regModel, h, 0))
		})
	}
}

// TestHistorySnapshotKeepsInFlightWrites checks the cut of a history at a
// time: what returned stays, a write in flight becomes one of unknown
// fate, a read in flight and whatever started later go.
func TestHistorySnapshotKeepsInFlightWrites(t *testing.T) {
	h := &history{}
	op := func(o string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: regOp{"c", o}, Call: call, Output: regResult{}, Return: ret}
	}
	h.ops = []porcupine.Operation{
		op(regCreate, 0, 5), op(regList, 1, 6), op(regDelete, 4, 20), op(regList, 8, 30), op(regIndex, 12, 13),
	}
	inFlight := op(regDelete, 4, math.MaxInt64)
	inFlight.Output = regResult{unknown: true}
	require.Equal(t, []porcupine.Operation{h.ops[0], h.ops[1], inFlight}, h.snapshot(10))
	require.Equal(t, h.ops, h.snapshot(0))
}
