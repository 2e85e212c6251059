package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The crash test. TestCrash re-executes this test binary as a child
// (TestCrashChild) that runs a mixed workload against a store, writing each
// operation to stdout as an intent before the call and an acknowledgement
// after it returns, and kills it with SIGKILL at a seeded random moment.
// After each kill the parent opens the store (Open verifies it), applies the
// acknowledged operations to its model, decides for each operation in
// flight whether it happened (all of it) or not (none of it), and compares
// everything observable, the vectors and the searches with the model, and
// the in-memory state with the store. The store carries over from one
// cycle to the next.
//
// FACESEARCH_STRESS=1 runs 200 kills instead of 24; FACESEARCH_CRASH_SEED
// picks another seed. Kill moments, operations and vectors follow the seed;
// how the child's goroutines interleave does not.

const (
	crashEnvDir   = "FACESEARCH_CRASH_CHILD_DIR"
	crashEnvCycle = "FACESEARCH_CRASH_CHILD_CYCLE"
	crashColl     = "crash"
	crashDim      = 8
	crashWorkers  = 4
)

// crashLine is one line the child writes: readiness, an intent (Op set) or
// an acknowledgement (Ack set) of worker W's N-th operation.
type crashLine struct {
	Ready bool            `json:"ready,omitempty"`
	W     int             `json:"w"`
	N     int             `json:"n"`
	Op    string          `json:"op,omitempty"`
	Ack   bool            `json:"ack,omitempty"`
	User  string          `json:"user,omitempty"`
	Faces []string        `json:"faces,omitempty"`
	Ext   string          `json:"ext,omitempty"`
	Vecs  [][]float32     `json:"vecs,omitempty"`
	Token string          `json:"token,omitempty"`
	Out   json.RawMessage `json:"out,omitempty"`
	Err   string          `json:"err,omitempty"`
}

// --- the child ---

// TestCrashChild is the child process of TestCrash; on its own it skips.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("runs only as the child process of TestCrash")
	}
	var seed, cycle uint64
	if _, err := fmt.Sscanf(os.Getenv(crashEnvCycle), "%d:%d", &seed, &cycle); err != nil {
		crashChildFail("bad %s: %v", crashEnvCycle, err)
	}
	e, err := Open(dir, nil)
	if err != nil {
		crashChildFail("open: %v", err)
	}
	out := &crashOut{w: os.Stdout}
	workers := make([]*crashWorker, crashWorkers)
	for k := range workers {
		workers[k] = &crashWorker{k: k, cycle: cycle, e: e, out: out, users: map[string][]string{},
			r: rand.New(rand.NewPCG(seed, cycle*crashWorkers+uint64(k)))}
	}
	// Each worker owns the faces and users whose names start with "w<k>-",
	// so the operations in flight at a kill touch disjoint things.
	owner := func(name string) *crashWorker {
		k, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(name, "-", 2)[0], "w"))
		if err != nil || k < 0 || k >= crashWorkers {
			crashChildFail("name %q belongs to no worker", name)
		}
		return workers[k]
	}
	ctx := context.Background()
	users, err := e.ListUsers(ctx, &ListUsersInput{CollectionId: crashColl, MaxResults: valuePtr[int32](500)})
	if err != nil || users.NextToken != "" {
		crashChildFail("list users: %v", err)
	}
	for _, u := range users.Users {
		w := owner(u.UserId)
		w.users[u.UserId] = nil
		w.order = append(w.order, u.UserId)
	}
	in := &ListFacesInput{CollectionId: crashColl}
	for {
		page, err := e.ListFaces(ctx, in)
		if err != nil {
			crashChildFail("list faces: %v", err)
		}
		for _, f := range page.Faces {
			w := owner(f.ExternalImageId)
			if f.UserId == "" {
				w.free = append(w.free, f.FaceId)
			} else {
				w.users[f.UserId] = append(w.users[f.UserId], f.FaceId)
			}
		}
		if page.NextToken == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	out.emit(crashLine{Ready: true})
	for _, w := range workers {
		go w.run(ctx)
	}
	time.Sleep(2 * time.Minute) // the parent kills us long before
	crashChildFail("not killed")
}

func crashChildFail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
	os.Exit(3)
}

// crashOut writes whole lines, one write each, so a kill cuts at most the
// last line short.
type crashOut struct {
	mu sync.Mutex
	w  io.Writer
}

// cut runs fn while no line can be written and returns what was written
// before: no operation can be acknowledged or started meanwhile.
func (o *crashOut) cut(fn func()) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	fn()
	return bytes.Clone(o.w.(*bytes.Buffer).Bytes())
}

func (o *crashOut) emit(l crashLine) {
	b, err := json.Marshal(l)
	if err != nil {
		crashChildFail("marshal: %v", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := o.w.Write(append(b, '\n')); err != nil {
		crashChildFail("write: %v", err)
	}
}

type crashWorker struct {
	k, n  int
	cycle uint64
	r     *rand.Rand
	e     *Engine
	out   *crashOut
	stop  *atomic.Bool        // when set, run returns
	gate  *sync.RWMutex       // when set, held shared by each operation
	free  []string            // own faces of no user
	users map[string][]string // own users and their faces
	order []string            // own users in creation order
}

const (
	crashMaxFaces     = 60 // per worker
	crashMaxUsers     = 8  // per worker
	crashMaxUserFaces = 12
)

func (w *crashWorker) name() string { return fmt.Sprintf("w%d-%d-%d", w.k, w.cycle, w.n) }

func (w *crashWorker) pick(list []string, n int) []string {
	n = min(n, len(list))
	out := make([]string, 0, n)
	for _, i := range w.r.Perm(len(list))[:n] {
		out = append(out, list[i])
	}
	return out
}

func (w *crashWorker) token() string {
	if w.r.IntN(2) == 0 {
		return ""
	}
	return "t-" + w.name()
}

func (w *crashWorker) run(ctx context.Context) {
	for w.stop == nil || !w.stop.Load() {
		if w.gate != nil {
			w.gate.RLock()
		}
		w.n++
		w.step(ctx)
		if w.gate != nil {
			w.gate.RUnlock()
		}
	}
}

// step runs one operation the worker can run on what it owns.
func (w *crashWorker) step(ctx context.Context) {
	owned := len(w.free)
	var withFaces, roomy []string
	for _, u := range w.order {
		owned += len(w.users[u])
		if len(w.users[u]) > 0 {
			withFaces = append(withFaces, u)
		}
		if len(w.users[u]) < crashMaxUserFaces {
			roomy = append(roomy, u)
		}
	}
	l := crashLine{W: w.k, N: w.n}
	switch x := w.r.IntN(13); {
	case x < 3 && len(roomy) > 0 && len(w.free) > 0:
		l.Op, l.User, l.Token = "AssociateFaces", w.pick(roomy, 1)[0], w.token()
		l.Faces = w.pick(w.free, 1+w.r.IntN(3))
		out, err := w.call(l, func() (any, error) {
			return w.e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: crashColl, UserId: l.User, FaceIds: l.Faces,
				UserMatchThreshold: valuePtr[float32](0), ClientRequestToken: l.Token})
		})
		if err == nil {
			for _, f := range out.(*AssociateFacesOutput).AssociatedFaces {
				w.free = slices.DeleteFunc(w.free, func(id string) bool { return id == f.FaceId })
				w.users[l.User] = append(w.users[l.User], f.FaceId)
			}
		}
	case x < 5 && len(withFaces) > 0:
		l.Op, l.User, l.Token = "DisassociateFaces", w.pick(withFaces, 1)[0], w.token()
		l.Faces = w.pick(w.users[l.User], 1+w.r.IntN(2))
		out, err := w.call(l, func() (any, error) {
			return w.e.DisassociateFaces(ctx, &DisassociateFacesInput{CollectionId: crashColl, UserId: l.User, FaceIds: l.Faces,
				ClientRequestToken: l.Token})
		})
		if err == nil {
			for _, f := range out.(*DisassociateFacesOutput).DisassociatedFaces {
				w.users[l.User] = slices.DeleteFunc(w.users[l.User], func(id string) bool { return id == f.FaceId })
				w.free = append(w.free, f.FaceId)
			}
		}
	case x < 7 && len(w.free) > 0:
		l.Op = "DeleteFaces"
		l.Faces = w.pick(w.free, 1+w.r.IntN(3))
		if len(withFaces) > 0 && w.r.IntN(4) == 0 {
			l.Faces = append(l.Faces, w.users[withFaces[0]][0]) // refused: it has a user
		}
		out, err := w.call(l, func() (any, error) {
			return w.e.DeleteFaces(ctx, &DeleteFacesInput{CollectionId: crashColl, FaceIds: l.Faces})
		})
		if err == nil {
			for _, id := range out.(*DeleteFacesOutput).DeletedFaces {
				w.free = slices.DeleteFunc(w.free, func(f string) bool { return f == id })
			}
		}
	case x < 8 && len(w.order) > 0:
		l.Op, l.User, l.Token = "DeleteUser", w.pick(w.order, 1)[0], w.token()
		if _, err := w.call(l, func() (any, error) {
			return w.e.DeleteUser(ctx, &DeleteUserInput{CollectionId: crashColl, UserId: l.User, ClientRequestToken: l.Token})
		}); err == nil {
			w.free = append(w.free, w.users[l.User]...)
			delete(w.users, l.User)
			w.order = slices.DeleteFunc(w.order, func(u string) bool { return u == l.User })
		}
	case x < 10 && len(w.order) < crashMaxUsers:
		l.Op, l.User, l.Token = "CreateUser", w.name(), w.token()
		if _, err := w.call(l, func() (any, error) {
			return w.e.CreateUser(ctx, &CreateUserInput{CollectionId: crashColl, UserId: l.User, ClientRequestToken: l.Token})
		}); err == nil {
			w.users[l.User] = nil
			w.order = append(w.order, l.User)
		}
	case owned < crashMaxFaces:
		l.Op, l.Ext = "IndexFaces", w.name()
		in := &IndexFacesInput{CollectionId: crashColl, ExternalImageId: l.Ext}
		for range 1 + w.r.IntN(4) {
			v := make([]float32, crashDim)
			for i := range v {
				v[i] = float32(w.r.NormFloat64())
			}
			l.Vecs = append(l.Vecs, v)
			in.Faces = append(in.Faces, FaceEmbedding{Vector: v})
		}
		out, err := w.call(l, func() (any, error) { return w.e.IndexFaces(ctx, in) })
		if err == nil {
			for _, r := range out.(*IndexFacesOutput).FaceRecords {
				w.free = append(w.free, r.Face.FaceId)
			}
		}
	default:
		// Full: a read keeps the clock running until something frees up.
		_, _ = w.e.SearchFacesByImage(ctx, &SearchFacesByImageInput{CollectionId: crashColl, Vector: []float32{1, 0, 0, 0, 0, 0, 0, 0}})
	}
}

// call writes the intent, runs fn and writes the acknowledgement.
func (w *crashWorker) call(l crashLine, fn func() (any, error)) (any, error) {
	w.out.emit(l)
	out, err := fn()
	ack := crashLine{W: l.W, N: l.N, Ack: true}
	if err != nil {
		ack.Err = errorCode(err)
	} else {
		b, merr := json.Marshal(out)
		if merr != nil {
			crashChildFail("marshal output: %v", merr)
		}
		ack.Out = b
	}
	w.out.emit(ack)
	return out, err
}

func errorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return err.Error()
}

func valuePtr[T any](v T) *T { return &v }

// --- the parent ---

type crashStats struct {
	kills, acked, inflightApplied, inflightAbsent, replays, searches, faces, users int
}

func TestCrash(t *testing.T) {
	kills := 24
	if os.Getenv("FACESEARCH_STRESS") != "" {
		kills = 200
	}
	seed := uint64(20260601)
	if s := os.Getenv("FACESEARCH_CRASH_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	dir := t.TempDir()
	e, err := Open(dir, nil)
	require.NoError(t, err)
	_, err = e.CreateCollection(context.Background(), &CreateCollectionInput{CollectionId: crashColl, Dimension: crashDim, Similarity: SimilarityCosine})
	require.NoError(t, err)
	require.NoError(t, e.Close())

	r := rand.New(rand.NewPCG(seed, 0))
	m := newCrashModel()
	var st crashStats
	for cycle := range kills {
		delay := time.Duration(50+r.IntN(251)) * time.Millisecond
		lines := runCrashChild(t, dir, seed, uint64(cycle), delay)
		st.kills++

		e, err := Open(dir, nil)
		require.NoError(t, err, "cycle %d (seed %d): the store after a kill must open", cycle, seed)
		m.cycle = cycle
		m.apply(t, e, lines, &st)
		m.check(t, e, rand.New(rand.NewPCG(seed, uint64(cycle)+1<<32)), &st)
		requireConsistent(t, e)
		m.replayTokens(t, e, lines, &st)
		require.NoError(t, e.Close())
		if t.Failed() {
			t.Fatalf("cycle %d failed; reproduce with FACESEARCH_CRASH_SEED=%d", cycle, seed)
		}
	}
	t.Logf("crash: seed %d: %d kills survived, %d acknowledged operations checked present, %d operations in flight at a kill "+
		"(%d applied whole, %d absent whole, 0 partial), %d idempotent replays, %d searches compared; final store %d faces, %d users; nothing lost",
		seed, st.kills, st.acked, st.inflightApplied+st.inflightAbsent, st.inflightApplied, st.inflightAbsent, st.replays, st.searches, st.faces, st.users)
}

// runCrashChild runs one child until delay after it is ready, kills it and
// returns the complete lines it wrote.
func runCrashChild(t *testing.T, dir string, seed, cycle uint64, delay time.Duration) []crashLine {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, fmt.Sprintf("%s=%d:%d", crashEnvCycle, seed, cycle))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	var lines []crashLine
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(stdout)
		for {
			b, err := br.ReadBytes('\n')
			if err != nil {
				return // a line without its newline was cut by the kill
			}
			var l crashLine
			if json.Unmarshal(b, &l) != nil {
				continue // the test framework's own output
			}
			if l.Ready {
				close(ready)
				continue
			}
			lines = append(lines, l)
		}
	}()
	select {
	case <-ready:
		time.Sleep(delay)
	case <-done:
	case <-time.After(time.Minute):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("cycle %d: the child ended by itself (%v) instead of being killed:\n%s", cycle, err, stderr.String())
	}
	return lines
}

type crashFace struct {
	ext, owner string
	vec        []float32 // normalized, as stored
}

type crashModel struct {
	cycle   int
	faces   map[string]*crashFace
	users   map[string]map[string]bool // user -> its faces
	order   [crashWorkers][]string     // each worker's users in creation order
	pending map[int]crashLine          // worker -> its operation in flight
}

func newCrashModel() *crashModel {
	return &crashModel{faces: map[string]*crashFace{}, users: map[string]map[string]bool{}, pending: map[int]crashLine{}}
}

// observed is the state as the engine reports it.
type observed struct {
	faces map[string]Face
	users []string // in ListUsers order
	vecs  map[string][]float32
}

func observe(t *testing.T, e *Engine) observed {
	t.Helper()
	ctx := context.Background()
	o := observed{faces: map[string]Face{}, vecs: map[string][]float32{}}
	in := &ListFacesInput{CollectionId: crashColl, MaxResults: valuePtr[int32](97)}
	for {
		page, err := e.ListFaces(ctx, in)
		require.NoError(t, err)
		for _, f := range page.Faces {
			o.faces[f.FaceId] = f
		}
		if page.NextToken == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	uin := &ListUsersInput{CollectionId: crashColl, MaxResults: valuePtr[int32](7)}
	for {
		page, err := e.ListUsers(ctx, uin)
		require.NoError(t, err)
		for _, u := range page.Users {
			o.users = append(o.users, u.UserId)
		}
		if page.NextToken == "" {
			break
		}
		uin.NextToken = page.NextToken
	}
	c, release, err := e.acquire(crashColl)
	require.NoError(t, err)
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id, f := range c.faces {
		v, _ := c.faceVector(f.seq)
		o.vecs[id] = slices.Clone(v)
	}
	return o
}

func crashWorkerOf(name string) int {
	k, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(name, "-", 2)[0], "w"))
	return k
}

// apply brings the model up to date with a restarted store: feed, then
// settle.
func (m *crashModel) apply(t *testing.T, e *Engine, lines []crashLine, st *crashStats) {
	t.Helper()
	m.feed(t, lines, st)
	m.settle(t, e, st)
}

// feed applies every acknowledged operation as its acknowledgement says,
// and keeps each worker's operation in flight (intent, no acknowledgement
// yet) pending.
func (m *crashModel) feed(t *testing.T, lines []crashLine, st *crashStats) {
	t.Helper()
	for _, l := range lines {
		if !l.Ack {
			require.NotContains(t, m.pending, l.W, "worker %d started an operation before the last one returned", l.W)
			m.pending[l.W] = l
			continue
		}
		in, ok := m.pending[l.W]
		require.True(t, ok && in.N == l.N, "acknowledgement without its intent: %+v", l)
		delete(m.pending, l.W)
		m.applyAck(t, in, l)
		st.acked++
	}
}

// settle decides each pending operation by what the store shows, which
// must be all of it or none of it.
func (m *crashModel) settle(t *testing.T, e *Engine, st *crashStats) {
	t.Helper()
	if len(m.pending) == 0 {
		return
	}
	o := observe(t, e)
	for _, w := range slices.Sorted(maps.Keys(m.pending)) {
		if m.reconcile(t, m.pending[w], o) {
			st.inflightApplied++
		} else {
			st.inflightAbsent++
		}
		delete(m.pending, w)
	}
}

// clone is a copy of m to settle without changing m.
func (m *crashModel) clone() *crashModel {
	c := &crashModel{cycle: m.cycle, faces: map[string]*crashFace{}, users: map[string]map[string]bool{}, pending: maps.Clone(m.pending)}
	for id, f := range m.faces {
		g := *f
		c.faces[id] = &g
	}
	for u, fs := range m.users {
		c.users[u] = maps.Clone(fs)
	}
	for w, o := range m.order {
		c.order[w] = slices.Clone(o)
	}
	return c
}

func (m *crashModel) addUser(u string) {
	m.users[u] = map[string]bool{}
	w := crashWorkerOf(u)
	m.order[w] = append(m.order[w], u)
}

func (m *crashModel) deleteUser(u string) {
	for f := range m.users[u] {
		m.faces[f].owner = ""
	}
	delete(m.users, u)
	w := crashWorkerOf(u)
	m.order[w] = slices.DeleteFunc(m.order[w], func(x string) bool { return x == u })
}

func mustNormalize(t *testing.T, v []float32) []float32 {
	t.Helper()
	n, err := normalize(v, "vector")
	require.NoError(t, err)
	return n
}

func (m *crashModel) applyAck(t *testing.T, in, ack crashLine) {
	t.Helper()
	require.Empty(t, ack.Err, "cycle %d: %s %+v failed", m.cycle, in.Op, in)
	switch in.Op {
	case "IndexFaces":
		var out IndexFacesOutput
		require.NoError(t, json.Unmarshal(ack.Out, &out))
		require.Len(t, out.FaceRecords, len(in.Vecs))
		for i, r := range out.FaceRecords {
			require.NotContains(t, m.faces, r.Face.FaceId)
			m.faces[r.Face.FaceId] = &crashFace{ext: in.Ext, vec: mustNormalize(t, in.Vecs[i])}
		}
	case "CreateUser":
		require.NotContains(t, m.users, in.User)
		m.addUser(in.User)
	case "AssociateFaces":
		var out AssociateFacesOutput
		require.NoError(t, json.Unmarshal(ack.Out, &out))
		require.Empty(t, out.UnsuccessfulFaceAssociations, "cycle %d: %+v", m.cycle, in)
		require.Len(t, out.AssociatedFaces, len(in.Faces))
		for _, f := range out.AssociatedFaces {
			require.Equal(t, "", m.faces[f.FaceId].owner)
			m.faces[f.FaceId].owner = in.User
			m.users[in.User][f.FaceId] = true
		}
	case "DisassociateFaces":
		var out DisassociateFacesOutput
		require.NoError(t, json.Unmarshal(ack.Out, &out))
		require.Empty(t, out.UnsuccessfulFaceDisassociations)
		require.Len(t, out.DisassociatedFaces, len(in.Faces))
		for _, f := range out.DisassociatedFaces {
			require.Equal(t, in.User, m.faces[f.FaceId].owner)
			m.faces[f.FaceId].owner = ""
			delete(m.users[in.User], f.FaceId)
		}
	case "DeleteFaces":
		var out DeleteFacesOutput
		require.NoError(t, json.Unmarshal(ack.Out, &out))
		for _, f := range out.UnsuccessfulFaceDeletions {
			require.Equal(t, []string{ReasonAssociatedToAnExistingUser}, f.Reasons)
			require.NotEqual(t, "", m.faces[f.FaceId].owner)
		}
		for _, id := range out.DeletedFaces {
			require.Equal(t, "", m.faces[id].owner)
			delete(m.faces, id)
		}
	case "DeleteUser":
		require.Contains(t, m.users, in.User)
		m.deleteUser(in.User)
	default:
		t.Fatalf("unknown operation %q", in.Op)
	}
}

// reconcile decides whether the operation in flight at the kill happened,
// failing t if the store holds part of it, and applies it if it did.
func (m *crashModel) reconcile(t *testing.T, in crashLine, o observed) (applied bool) {
	t.Helper()
	half := func(format string, args ...any) {
		t.Fatalf("cycle %d: %s in flight at the kill is half-applied: %s", m.cycle, in.Op, fmt.Sprintf(format, args...))
	}
	// all reports whether every one of ids satisfies ok, failing t if some
	// do and some do not.
	all := func(ids []string, ok func(string) bool) bool {
		n := 0
		for _, id := range ids {
			if ok(id) {
				n++
			}
		}
		if n != 0 && n != len(ids) {
			half("%d of %v changed", n, ids)
		}
		return len(ids) > 0 && n == len(ids)
	}
	switch in.Op {
	case "IndexFaces":
		var ids []string
		for id, f := range o.faces {
			if f.ExternalImageId == in.Ext {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return false
		}
		if len(ids) != len(in.Vecs) {
			half("%d of %d faces stored", len(ids), len(in.Vecs))
		}
		want := make([][]float32, len(in.Vecs))
		for i, v := range in.Vecs {
			want[i] = mustNormalize(t, v)
		}
		for _, id := range ids {
			i := slices.IndexFunc(want, func(v []float32) bool { return slices.Equal(v, o.vecs[id]) })
			require.GreaterOrEqual(t, i, 0, "face %s of an IndexFaces in flight has a vector it was not given", id)
			m.faces[id] = &crashFace{ext: in.Ext, vec: want[i]}
			want = slices.Delete(want, i, i+1)
		}
		return true
	case "CreateUser":
		if !slices.Contains(o.users, in.User) {
			return false
		}
		m.addUser(in.User)
		return true
	case "DeleteUser":
		if slices.Contains(o.users, in.User) {
			for f := range m.users[in.User] {
				require.Equal(t, in.User, o.faces[f].UserId, "face %s of user %s in flight for deletion", f, in.User)
			}
			return false
		}
		for f := range m.users[in.User] {
			require.Equal(t, "", o.faces[f].UserId, "face %s of deleted user %s keeps its user", f, in.User)
		}
		m.deleteUser(in.User)
		return true
	case "AssociateFaces":
		var todo []string
		for _, f := range in.Faces {
			if m.faces[f].owner == "" {
				todo = append(todo, f)
			}
		}
		if !all(todo, func(f string) bool { return o.faces[f].UserId == in.User }) {
			return false
		}
		for _, f := range todo {
			m.faces[f].owner = in.User
			m.users[in.User][f] = true
		}
		return true
	case "DisassociateFaces":
		var todo []string
		for _, f := range in.Faces {
			if m.faces[f].owner == in.User {
				todo = append(todo, f)
			}
		}
		if !all(todo, func(f string) bool { return o.faces[f].UserId == "" }) {
			return false
		}
		for _, f := range todo {
			m.faces[f].owner = ""
			delete(m.users[in.User], f)
		}
		return true
	case "DeleteFaces":
		var todo []string
		for _, f := range in.Faces {
			if m.faces[f].owner == "" {
				todo = append(todo, f)
			}
		}
		if !all(todo, func(f string) bool { _, ok := o.faces[f]; return !ok }) {
			return false
		}
		for _, f := range todo {
			delete(m.faces, f)
		}
		return true
	}
	t.Fatalf("unknown operation %q", in.Op)
	return false
}

// check compares everything observable with the model.
func (m *crashModel) check(t *testing.T, e *Engine, r *rand.Rand, st *crashStats) {
	t.Helper()
	ctx := context.Background()
	o := observe(t, e)
	require.Equal(t, len(m.faces), len(o.faces), "cycle %d: face count", m.cycle)
	for id, f := range m.faces {
		got, ok := o.faces[id]
		require.True(t, ok, "cycle %d: acknowledged face %s is missing", m.cycle, id)
		require.Equal(t, f.ext, got.ExternalImageId)
		require.Equal(t, f.owner, got.UserId, "cycle %d: face %s", m.cycle, id)
		require.Equal(t, f.vec, o.vecs[id], "cycle %d: face %s vector", m.cycle, id)
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(m.users)), o.users, "cycle %d: users", m.cycle)
	for w, order := range m.order {
		got := []string{}
		for _, u := range o.users {
			if crashWorkerOf(u) == w {
				got = append(got, u)
			}
		}
		require.Equal(t, append([]string{}, order...), got, "cycle %d: worker %d's users in primary-key order", m.cycle, w)
	}
	d, err := e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: crashColl})
	require.NoError(t, err)
	require.Equal(t, int64(len(m.faces)), d.FaceCount)
	require.Equal(t, int64(len(m.users)), d.UserCount)

	c, release, err := e.acquire(crashColl)
	require.NoError(t, err)
	for u, faces := range m.users {
		lf, err := e.ListFaces(ctx, &ListFacesInput{CollectionId: crashColl, UserId: u})
		require.NoError(t, err)
		var ids []string
		for _, f := range lf.Faces {
			ids = append(ids, f.FaceId)
		}
		require.ElementsMatch(t, slices.Collect(maps.Keys(faces)), ids, "cycle %d: ListFaces of user %s", m.cycle, u)
		c.mu.RLock()
		v := slices.Clone(c.vectorOf(c.users[u]))
		ok := v != nil
		c.mu.RUnlock()
		require.Equal(t, len(faces) > 0, ok, "user %s has a vector iff it has faces", u)
		if ok {
			want := m.userVector(u)
			require.InDelta(t, 1, cos64(v, want), 1e-6, "cycle %d: user %s's vector is not the mean of its faces", m.cycle, u)
		}
	}
	release()

	// Searches answer what the model computes from the stored vectors.
	for range 3 {
		q := make([]float32, crashDim)
		for i := range q {
			q[i] = float32(r.NormFloat64())
		}
		fo, err := e.SearchFacesByImage(ctx, &SearchFacesByImageInput{CollectionId: crashColl, Vector: q,
			FaceMatchThreshold: valuePtr[float32](0), MaxFaces: valuePtr[int32](4096)})
		require.NoError(t, err)
		var gotF []ranked
		for _, h := range fo.FaceMatches {
			gotF = append(gotF, ranked{h.Face.FaceId, float64(h.Similarity)})
		}
		var wantF []ranked
		for id, f := range m.faces {
			wantF = append(wantF, ranked{id, 100 * max(0, cos64(q, f.vec))})
		}
		requireRanking(t, wantF, gotF, "cycle %d: SearchFacesByImage", m.cycle)

		uo, err := e.SearchUsersByImage(ctx, &SearchUsersByImageInput{CollectionId: crashColl, Vector: q,
			UserMatchThreshold: valuePtr[float32](0), MaxUsers: valuePtr[int32](500)})
		require.NoError(t, err)
		var gotU []ranked
		for _, h := range uo.UserMatches {
			gotU = append(gotU, ranked{h.User.UserId, float64(h.Similarity)})
		}
		var wantU []ranked
		for u, faces := range m.users {
			if len(faces) > 0 {
				wantU = append(wantU, ranked{u, 100 * max(0, cos64(q, m.userVector(u)))})
			}
		}
		requireRanking(t, wantU, gotU, "cycle %d: SearchUsersByImage", m.cycle)
		st.searches += 2
	}
	st.faces, st.users = len(m.faces), len(m.users)
}

// userVector is the normalized mean of a user's face vectors, computed
// apart from the engine.
func (m *crashModel) userVector(u string) []float32 {
	sum := make([]float64, crashDim)
	for f := range m.users[u] {
		for i, x := range m.faces[f].vec {
			sum[i] += float64(x)
		}
	}
	out := make([]float32, crashDim)
	for i, x := range sum {
		out[i] = float32(x)
	}
	return out
}

func cos64(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

type ranked struct {
	id  string
	sim float64
}

// requireRanking: got holds want's IDs, highest similarity first, each
// similarity as the model computes it (to float32 precision).
func requireRanking(t *testing.T, want, got []ranked, msgAndArgs ...any) {
	t.Helper()
	require.Len(t, got, len(want), msgAndArgs...)
	byID := map[string]float64{}
	for _, w := range want {
		byID[w.id] = w.sim
	}
	require.True(t, sort.SliceIsSorted(got, func(i, j int) bool { return got[i].sim > got[j].sim }), msgAndArgs...)
	for _, g := range got {
		w, ok := byID[g.id]
		require.True(t, ok, "unexpected hit %s", g.id)
		require.InDelta(t, w, g.sim, 1e-3, msgAndArgs...)
	}
}

// replayTokens sends again, with the same ClientRequestToken and
// parameters, up to three acknowledged operations of the cycle: each
// answer must be the first one, and nothing may change.
func (m *crashModel) replayTokens(t *testing.T, e *Engine, lines []crashLine, st *crashStats) {
	t.Helper()
	ctx := context.Background()
	intents := map[[2]int]crashLine{}
	before := observe(t, e)
	n := 0
	for _, l := range lines {
		if !l.Ack {
			intents[[2]int{l.W, l.N}] = l
			continue
		}
		in := intents[[2]int{l.W, l.N}]
		if in.Token == "" || n == 3 {
			continue
		}
		var out any
		var err error
		switch in.Op {
		case "CreateUser":
			out, err = e.CreateUser(ctx, &CreateUserInput{CollectionId: crashColl, UserId: in.User, ClientRequestToken: in.Token})
		case "DeleteUser":
			out, err = e.DeleteUser(ctx, &DeleteUserInput{CollectionId: crashColl, UserId: in.User, ClientRequestToken: in.Token})
		case "AssociateFaces":
			out, err = e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: crashColl, UserId: in.User, FaceIds: in.Faces,
				UserMatchThreshold: valuePtr[float32](0), ClientRequestToken: in.Token})
		case "DisassociateFaces":
			out, err = e.DisassociateFaces(ctx, &DisassociateFacesInput{CollectionId: crashColl, UserId: in.User, FaceIds: in.Faces,
				ClientRequestToken: in.Token})
		default:
			continue
		}
		require.NoError(t, err, "replay of %s with token %s", in.Op, in.Token)
		b, err := json.Marshal(out)
		require.NoError(t, err)
		require.JSONEq(t, string(l.Out), string(b), "replay of %s with token %s", in.Op, in.Token)
		n++
		st.replays++
	}
	after := observe(t, e)
	require.Equal(t, before, after, "replays changed the store")
}
