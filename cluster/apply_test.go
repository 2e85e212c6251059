package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/viterin/vek"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/storetest"
)

// applyDim is over the 32 values from which the SIMD kernels take over.
const applyDim = 40

// t0 is the workloads' first command time: long past, so that an apply
// reading the wall clock instead would see every token and outcome expired.
var t0 = time.Date(2020, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// workload builds a seeded random log of the eight mutations over two
// collections: creations, deletions and re-creations, faces near a few
// people's centres, users, associations at several thresholds, tokens
// reused with the same and with other parameters, and commands repeated
// under their first ID. Times advance by up to a minute, sometimes
// stepping back (another node's clock).
func workload(t testing.TB, seed uint64, n int) []*Command {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	colls := []string{"alpha", "beta"}
	centres := make([][]float32, 6)
	for i := range centres {
		centres[i] = randVec(r, nil, 0)
	}
	faces := map[string][]string{}
	tokens := map[string][]string{} // by operation: a token is its operation's
	var cmds []*Command
	now := t0
	pickFaces := func(coll string, k int) []string {
		var ids []string
		for range k {
			if fs := faces[coll]; len(fs) > 0 && r.IntN(8) > 0 {
				ids = append(ids, fs[r.IntN(len(fs))])
			} else {
				ids = append(ids, fmt.Sprintf("00000000-0000-4000-8000-%012d", r.IntN(1000)))
			}
		}
		return ids
	}
	token := func(op string) string {
		ts := tokens[op]
		switch {
		case r.IntN(2) == 0:
			return ""
		case len(ts) > 0 && r.IntN(2) == 0:
			return ts[r.IntN(len(ts))]
		}
		tokens[op] = append(ts, fmt.Sprintf("tok-%d", len(ts)))
		return tokens[op][len(ts)]
	}
	for i := range n {
		now += int64(r.IntN(60)) * int64(time.Second)
		if r.IntN(10) == 0 {
			now -= int64(r.IntN(30)) * int64(time.Second)
		}
		if len(cmds) > 0 && r.IntN(20) == 0 {
			prev := *cmds[r.IntN(len(cmds))]
			prev.Time = now
			cmds = append(cmds, &prev)
			continue
		}
		coll := colls[r.IntN(len(colls))]
		user := fmt.Sprintf("user-%d", r.IntN(6))
		var op string
		var in any
		switch k := r.IntN(100); {
		case k < 6:
			op, in = OpCreateCollection, &engine.CreateCollectionInput{CollectionId: coll}
		case k < 7:
			op, in = OpDeleteCollection, &engine.DeleteCollectionInput{CollectionId: coll}
			faces[coll] = nil
		case k < 38:
			rows := make([][]float32, 1+r.IntN(4))
			for j := range rows {
				rows[j] = randVec(r, centres[r.IntN(len(centres))], 0.3)
			}
			var img bytes.Buffer
			require.NoError(t, npy.Encode(&img, rows, false))
			op, in = OpIndexFaces, &engine.IndexFacesInput{CollectionId: coll, Image: &engine.Image{Bytes: img.Bytes()}, ExternalImageId: fmt.Sprintf("img-%d", i)}
		case k < 48:
			op, in = OpDeleteFaces, &engine.DeleteFacesInput{CollectionId: coll, FaceIds: pickFaces(coll, 1+r.IntN(3))}
		case k < 62:
			op, in = OpCreateUser, &engine.CreateUserInput{CollectionId: coll, UserId: user, ClientRequestToken: token(OpCreateUser)}
		case k < 68:
			op, in = OpDeleteUser, &engine.DeleteUserInput{CollectionId: coll, UserId: user, ClientRequestToken: token(OpDeleteUser)}
		case k < 90:
			var threshold *float32
			if r.IntN(2) == 0 {
				th := float32(r.IntN(5) * 20)
				threshold = &th
			}
			op, in = OpAssociateFaces, &engine.AssociateFacesInput{CollectionId: coll, UserId: user, FaceIds: pickFaces(coll, 1+r.IntN(4)), UserMatchThreshold: threshold, ClientRequestToken: token(OpAssociateFaces)}
		default:
			op, in = OpDisassociateFaces, &engine.DisassociateFacesInput{CollectionId: coll, UserId: user, FaceIds: pickFaces(coll, 1+r.IntN(3)), ClientRequestToken: token(OpDisassociateFaces)}
		}
		cmd, err := NewMutation(fmt.Sprintf("cmd-%d", i), op, "node-1", now, in)
		require.NoError(t, err)
		if op == OpIndexFaces {
			var p Payload
			require.NoError(t, json.Unmarshal(cmd.Payload, &p))
			faces[coll] = append(faces[coll], p.FaceIds...)
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// randVec is a random vector, or one near centre at distance about noise.
func randVec(r *rand.Rand, centre []float32, noise float64) []float32 {
	v := make([]float32, applyDim)
	for i := range v {
		x := r.NormFloat64()
		if centre != nil {
			x = float64(centre[i]) + noise*x/6
		}
		v[i] = float32(x)
	}
	return v
}

// applyLog applies cmds to the store in dir from the command after its
// applied sequence on, and returns the applied sequence.
func applyLog(t testing.TB, dir string, opts *engine.Options, cmds []*Command) uint64 {
	t.Helper()
	e, err := engine.Open(dir, opts)
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	a, err := NewEngineApplier(e, nil)
	require.NoError(t, err)
	ctx := context.Background()
	applied, _ := a.Applied()
	for seq := applied + 1; seq <= uint64(len(cmds)); seq++ {
		require.NoError(t, a.Apply(ctx, seq, cmds[seq-1]), "sequence %d", seq)
	}
	applied, _ = a.Applied()
	return applied
}

// dump is every record of the closed store in dir but its page-token
// secret, which each store makes for itself.
func dump(t testing.TB, dir string) map[string]string {
	t.Helper()
	d := storetest.Dump(t, dir)
	delete(d, "sys/secret")
	return d
}

// requireSameStore fails unless the stores in dirs hold the same records.
func requireSameStore(t *testing.T, dirs ...string) {
	t.Helper()
	want := dump(t, dirs[0])
	for _, d := range dirs[1:] {
		got := dump(t, d)
		for k, v := range want {
			require.Equal(t, v, got[k], "store %s, key %q", d, k)
		}
		require.Len(t, got, len(want), "store %s", d)
	}
}

func TestEngineApplierReplicasAgree(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cmds := workload(t, seed, 300)
			dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
			require.EqualValues(t, len(cmds), applyLog(t, dirs[0], nil, cmds))
			require.EqualValues(t, len(cmds), applyLog(t, dirs[1], nil, cmds))
			// The third restarts twice, resuming from its stored sequence.
			require.EqualValues(t, 100, applyLog(t, dirs[2], nil, cmds[:100]))
			require.EqualValues(t, 200, applyLog(t, dirs[2], nil, cmds[:200]))
			require.EqualValues(t, len(cmds), applyLog(t, dirs[2], nil, cmds))
			requireSameStore(t, dirs...)
			requireOutcomeVariety(t, dirs[0], cmds)
		})
	}
}

// requireOutcomeVariety checks that the workload exercised what it is for:
// successes, refusals and replays of a command ID.
func requireOutcomeVariety(t *testing.T, dir string, cmds []*Command) {
	t.Helper()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	defer e.Close()
	a, err := NewEngineApplier(e, nil)
	require.NoError(t, err)
	codes := map[string]int{}
	first := map[string]uint64{}
	for i, c := range cmds {
		seq := uint64(i + 1)
		o, ok, err := a.Outcome(c.ID)
		require.NoError(t, err)
		require.True(t, ok, "command %s", c.ID)
		if s, seen := first[c.ID]; seen {
			require.Equal(t, s, o.Seq, "a repeated command ID keeps its first outcome")
			codes["repeated"]++
			continue
		}
		first[c.ID] = seq
		require.Equal(t, seq, o.Seq)
		codes[c.Op+":"+o.Code]++
		codes[o.Code]++
		if bytes.Contains(o.Response, []byte("LOW_MATCH_CONFIDENCE")) {
			codes["low match"]++
		}
	}
	for _, want := range []string{"repeated", "low match", "IndexFaces:", "AssociateFaces:", "CreateUser:" + engine.CodeConflict,
		engine.CodeIdempotentParameterMismatch, "DeleteCollection:", "CreateCollection:" + engine.CodeResourceAlreadyExists} {
		require.Positive(t, codes[want], "%s in %v", want, codes)
	}
}

// The pure-Go kernels, in a process where GODEBUG hides AVX2 and FMA from
// the kernel choice, apply the log to the same bits.
func TestEngineApplierPureGoKernels(t *testing.T) {
	if dir := os.Getenv("FACESEARCH_APPLY_CHILD"); dir != "" {
		require.False(t, vek.Info().Acceleration, "the child must run the pure-Go kernels")
		b, err := os.ReadFile(filepath.Join(dir, "log.json"))
		require.NoError(t, err)
		var cmds []*Command
		require.NoError(t, json.Unmarshal(b, &cmds))
		applyLog(t, filepath.Join(dir, "store"), nil, cmds)
		return
	}
	if !vek.Info().Acceleration {
		t.Log("this CPU has no SIMD kernels: pure Go is compared with pure Go")
	}
	cmds := workload(t, 3, 1000)
	simd, child := t.TempDir(), t.TempDir()
	b, err := json.Marshal(cmds)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(child, "log.json"), b, 0o600))
	applyLog(t, simd, nil, cmds)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestEngineApplierPureGoKernels$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FACESEARCH_APPLY_CHILD="+child, "GODEBUG=cpu.avx2=off,cpu.fma=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	requireSameStore(t, simd, filepath.Join(child, "store"))
}

// apply1 applies one command to a and returns its outcome.
func apply1(t *testing.T, a *EngineApplier, cmd *Command) *Outcome {
	t.Helper()
	seq, _ := a.Applied()
	require.NoError(t, a.Apply(context.Background(), seq+1, cmd))
	o, ok, err := a.Outcome(cmd.ID)
	require.NoError(t, err)
	if cmd.Op != OpBarrier {
		require.True(t, ok)
	}
	return o
}

func mutation(t testing.TB, id, op string, at time.Duration, in any) *Command {
	t.Helper()
	c, err := NewMutation(id, op, "node-1", t0+int64(at), in)
	require.NoError(t, err)
	return c
}

func TestEngineApplierRepeatedCommandKeepsItsOutcome(t *testing.T) {
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer e.Close()
	a, err := NewEngineApplier(e, nil)
	require.NoError(t, err)
	ctx := context.Background()
	apply1(t, a, mutation(t, "c1", OpCreateCollection, 0, &engine.CreateCollectionInput{CollectionId: "staff"}))
	create := mutation(t, "c2", OpCreateUser, time.Second, &engine.CreateUserInput{CollectionId: "staff", UserId: "alice"})
	first := apply1(t, a, create)
	require.NoError(t, first.Err())
	apply1(t, a, mutation(t, "c3", OpDeleteUser, 2*time.Second, &engine.DeleteUserInput{CollectionId: "staff", UserId: "alice"}))

	again := *create
	again.Time += int64(time.Hour) // past JetStream's dedup window, within the outcome's
	got := apply1(t, a, &again)
	require.Equal(t, first, got, "the stored outcome, not a second apply")
	users, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "staff"})
	require.NoError(t, err)
	require.Empty(t, users.Users, "the repeated CreateUser did not run again")
	seq, _ := a.Applied()
	require.EqualValues(t, 4, seq)

	// A barrier advances the sequence and records nothing else.
	apply1(t, a, &Command{Version: CommandVersion, ID: "b1", Op: OpBarrier, Node: "node-1", Time: t0 + int64(2*time.Hour)})
	seq, _ = a.Applied()
	require.EqualValues(t, 5, seq)
	require.Equal(t, uint64(5), a.Progress().Applied())

	// A sequence other than the next is refused, changing nothing.
	err = a.Apply(ctx, 7, mutation(t, "c9", OpCreateUser, 3*time.Hour, &engine.CreateUserInput{CollectionId: "staff", UserId: "bob"}))
	require.ErrorIs(t, err, ErrGap)
}

// A log 25 hours old, applied today on a fresh store, decides by the
// commands' times: tokens and outcomes expire 24 hours after their
// command, not 24 hours before the wall clock.
func TestEngineApplierOldLogUsesCommandTimes(t *testing.T) {
	coll := &engine.CreateCollectionInput{CollectionId: "staff"}
	tokened := &engine.CreateUserInput{CollectionId: "staff", UserId: "alice", ClientRequestToken: "t1"}
	cmds := []*Command{
		mutation(t, "a", OpCreateCollection, 0, coll),
		mutation(t, "b", OpCreateUser, time.Minute, tokened),
		mutation(t, "c", OpCreateUser, time.Hour, tokened),       // the token's replay: success
		mutation(t, "d", OpCreateUser, 25*time.Hour, tokened),    // the token expired: Conflict
		mutation(t, "a", OpCreateCollection, 26*time.Hour, coll), // outcome "a" expired: runs again
	}
	want := []string{"", "", "", engine.CodeConflict, engine.CodeResourceAlreadyExists}
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		e, err := engine.Open(dir, nil)
		require.NoError(t, err)
		a, err := NewEngineApplier(e, nil)
		require.NoError(t, err)
		for i, c := range cmds {
			require.Equal(t, want[i], apply1(t, a, c).Code, "command %d (%s)", i, c.ID)
		}
		_, ok, err := a.Outcome("b")
		require.NoError(t, err)
		require.False(t, ok, "outcome b, 26 hours old, is deleted")
		d, err := e.DescribeCollection(context.Background(), &engine.DescribeCollectionInput{CollectionId: "staff"})
		require.NoError(t, err)
		require.Equal(t, At(t0), d.CreationTimestamp.Time, "the collection's time is its command's")
		require.NoError(t, e.Close())
	}
	requireSameStore(t, dirs...)
}

// A write the disk refuses is the node's failure, not an outcome: the
// applied sequence stays, and once there is room the same command applies
// and the store ends as a replica's that never failed.
func TestEngineApplierDiskFullRetries(t *testing.T) {
	cmds := workload(t, 4, 120)
	ref, dir := t.TempDir(), t.TempDir()
	applyLog(t, ref, nil, cmds)
	require.EqualValues(t, 60, applyLog(t, dir, nil, cmds[:60]))

	e, err := engine.Open(dir, &engine.Options{MinFreeBytes: 1 << 62})
	require.NoError(t, err)
	a, err := NewEngineApplier(e, nil)
	require.NoError(t, err)
	for seq := uint64(61); seq <= 63; seq++ { // retried, as the reader would
		err = a.Apply(context.Background(), 61, cmds[60])
		require.ErrorIs(t, err, engine.ErrDiskFull)
		require.ErrorIs(t, err, engine.ErrApply)
		applied, _ := a.Applied()
		require.EqualValues(t, 60, applied)
	}
	_, ok, err := a.Outcome(cmds[60].ID)
	require.NoError(t, err)
	require.False(t, ok, "no outcome recorded for a command that did not apply")
	require.NoError(t, e.Close())

	require.EqualValues(t, len(cmds), applyLog(t, dir, nil, cmds))
	requireSameStore(t, ref, dir)
}
