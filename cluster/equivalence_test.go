package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/viterin/vek"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// eqGen makes a seeded random workload of all 16 operations over three
// collections, fed back with the single node's answers: the faces it
// indexed and the page tokens it gave. Collections, users and faces are
// deleted and re-created; tokens are reused, with the same parameters and
// with others, across collections too; lists are paged.
type eqGen struct {
	r       *rand.Rand
	centres [][]float32
	faces   map[string][]string // by collection, the single node's IDs
	gone    []string            // IDs of deleted faces
	tokens  map[string][]string // by operation
	pages   map[string]string   // op/collection -> the last NextToken
	step    int
}

func newEqGen(seed uint64) *eqGen {
	g := &eqGen{r: rand.New(rand.NewPCG(seed, 2)), faces: map[string][]string{}, tokens: map[string][]string{}, pages: map[string]string{}}
	for range 6 {
		g.centres = append(g.centres, randVec(g.r, nil, 0))
	}
	return g
}

func (g *eqGen) image(t *testing.T, n int) *engine.Image {
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = randVec(g.r, g.centres[g.r.IntN(len(g.centres))], 0.3)
		if g.r.IntN(40) == 0 {
			rows[i] = rows[i][:applyDim-1] // the wrong dimension
		}
	}
	var b bytes.Buffer
	if err := npy.Encode(&b, rows, n == 1 && g.r.IntN(2) == 0); err != nil {
		// Rows of two lengths: one row alone then.
		require.NoError(t, npy.Encode(&b, rows[:1], false))
	}
	return &engine.Image{Bytes: b.Bytes()}
}

func (g *eqGen) token(op string) string {
	ts := g.tokens[op]
	switch {
	case g.r.IntN(2) == 0:
		return ""
	case len(ts) > 0 && g.r.IntN(3) > 0:
		return ts[g.r.IntN(len(ts))]
	}
	g.tokens[op] = append(ts, fmt.Sprintf("tok-%d", len(ts)))
	return g.tokens[op][len(ts)]
}

func (g *eqGen) face(coll string) string {
	fs := g.faces[coll]
	switch k := g.r.IntN(10); {
	case k < 8 && len(fs) > 0:
		return fs[g.r.IntN(len(fs))]
	case k < 9 && len(g.gone) > 0:
		return g.gone[g.r.IntN(len(g.gone))]
	}
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", g.r.IntN(1000))
}

func (g *eqGen) faceList(coll string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = g.face(coll)
	}
	return ids
}

func (g *eqGen) threshold() *float32 {
	if g.r.IntN(2) == 0 {
		return nil
	}
	return ptr(float32(g.r.IntN(6) * 20))
}

func (g *eqGen) page(key string, max int32) (*int32, string) {
	tok := g.pages[key]
	if g.r.IntN(3) == 0 {
		tok = ""
	}
	return ptr(1 + g.r.Int32N(max)), tok
}

// next is the next request: its operation and input.
func (g *eqGen) next(t *testing.T) (string, any) {
	g.step++
	r := g.r
	colls := []string{"alpha", "beta", "gamma"}
	coll := colls[r.IntN(3)]
	user := fmt.Sprintf("user-%d", r.IntN(4))
	k := r.IntN(200)
	if g.step <= len(colls) {
		coll, k = colls[g.step-1], 0
	}
	switch {
	case k < 10:
		tags := map[string]string{"team": "x"}
		switch r.IntN(3) {
		case 0:
			tags["facesearch:similarity"] = "cosine"
		case 1:
			tags["facesearch:dimension"] = strconv.Itoa(applyDim)
		}
		return "CreateCollection", &engine.CreateCollectionInput{CollectionId: coll, Tags: tags}
	case k < 13:
		return "DeleteCollection", &engine.DeleteCollectionInput{CollectionId: coll}
	case k < 20:
		return "DescribeCollection", &engine.DescribeCollectionInput{CollectionId: coll}
	case k < 25:
		max, tok := g.page("ListCollections", 2)
		return "ListCollections", &engine.ListCollectionsInput{MaxResults: max, NextToken: tok}
	case k < 68:
		return "IndexFaces", &engine.IndexFacesInput{CollectionId: coll, Image: g.image(t, 1+r.IntN(4)), ExternalImageId: fmt.Sprintf("img-%d", g.step)}
	case k < 76:
		max, tok := g.page("ListFaces/"+coll, 5)
		in := &engine.ListFacesInput{CollectionId: coll, MaxResults: max, NextToken: tok}
		if r.IntN(4) == 0 {
			in.UserId = user // a token of the unfiltered listing is refused
		}
		return "ListFaces", in
	case k < 86:
		return "DeleteFaces", &engine.DeleteFacesInput{CollectionId: coll, FaceIds: g.faceList(coll, 1+r.IntN(3))}
	case k < 94:
		return "SearchFaces", &engine.SearchFacesInput{CollectionId: coll, FaceId: g.face(coll), FaceMatchThreshold: g.threshold(), MaxFaces: ptr(1 + r.Int32N(6))}
	case k < 100:
		return "SearchFacesByImage", &engine.SearchFacesByImageInput{CollectionId: coll, Image: g.image(t, 1), FaceMatchThreshold: g.threshold()}
	case k < 120:
		return "CreateUser", &engine.CreateUserInput{CollectionId: coll, UserId: user, ClientRequestToken: g.token("CreateUser")}
	case k < 127:
		return "DeleteUser", &engine.DeleteUserInput{CollectionId: coll, UserId: user, ClientRequestToken: g.token("DeleteUser")}
	case k < 135:
		max, tok := g.page("ListUsers/"+coll, 3)
		return "ListUsers", &engine.ListUsersInput{CollectionId: coll, MaxResults: max, NextToken: tok}
	case k < 160:
		return "AssociateFaces", &engine.AssociateFacesInput{CollectionId: coll, UserId: user, FaceIds: g.faceList(coll, 1+r.IntN(4)),
			UserMatchThreshold: g.threshold(), ClientRequestToken: g.token("AssociateFaces")}
	case k < 168:
		return "DisassociateFaces", &engine.DisassociateFacesInput{CollectionId: coll, UserId: user, FaceIds: g.faceList(coll, 1+r.IntN(3)),
			ClientRequestToken: g.token("DisassociateFaces")}
	case k < 190:
		in := &engine.SearchUsersInput{CollectionId: coll, UserMatchThreshold: g.threshold(), MaxUsers: ptr(1 + r.Int32N(5))}
		if r.IntN(2) == 0 {
			in.FaceId = g.face(coll)
		} else {
			in.UserId = user
		}
		return "SearchUsers", in
	default:
		return "SearchUsersByImage", &engine.SearchUsersByImageInput{CollectionId: coll, Image: g.image(t, 1), UserMatchThreshold: g.threshold()}
	}
}

// observe feeds the single node's successful answer back.
func (g *eqGen) observe(t *testing.T, op string, in any, out []byte) {
	var o struct {
		FaceRecords  []engine.FaceRecord
		DeletedFaces []string
		NextToken    string
	}
	require.NoError(t, json.Unmarshal(out, &o))
	switch in := in.(type) {
	case *engine.IndexFacesInput:
		for _, f := range o.FaceRecords {
			g.faces[in.CollectionId] = append(g.faces[in.CollectionId], f.Face.FaceId)
		}
	case *engine.DeleteFacesInput:
		for _, id := range o.DeletedFaces {
			g.faces[in.CollectionId] = slices.DeleteFunc(g.faces[in.CollectionId], func(f string) bool { return f == id })
			g.gone = append(g.gone, id)
		}
	case *engine.DeleteCollectionInput:
		g.gone = append(g.gone, g.faces[in.CollectionId]...)
		g.faces[in.CollectionId] = nil
	case *engine.ListCollectionsInput:
		g.pages[op] = o.NextToken
	case *engine.ListFacesInput:
		g.pages[op+"/"+in.CollectionId] = o.NextToken
	case *engine.ListUsersInput:
		g.pages[op+"/"+in.CollectionId] = o.NextToken
	}
}

// eqChildEnv, set to a JSON eqChildSpec, makes TestClusterEquivalence a
// replica following the log in a child process (other GOMAXPROCS, or the
// pure-Go kernels), answering digest requests until its stdin closes.
const eqChildEnv = "FACESEARCH_EQ_CHILD"

type eqChildSpec struct {
	Name, URL, Dir, Stream, Subject, DigestSubject string
}

func runEqChild(t *testing.T, spec string) {
	var s eqChildSpec
	require.NoError(t, json.Unmarshal([]byte(spec), &s))
	nc, err := Connect([]string{s.URL}, nil)
	require.NoError(t, err)
	defer nc.Close()
	ctx := context.Background()
	r, err := OpenReplica(ctx, s.Dir, &ReplicaOptions{Name: s.Name, Conn: nc, Log: &LogOptions{Stream: s.Stream, Subject: s.Subject},
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	work := t.TempDir()
	sub, err := nc.Subscribe(s.DigestSubject, func(m *nats.Msg) {
		seq, _ := strconv.ParseUint(string(m.Data), 10, 64)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := r.state.Load().applier.Progress().Wait(wctx, seq); err != nil {
			_ = m.Respond([]byte("error " + err.Error()))
			return
		}
		_ = m.Respond([]byte(storeDigest(t, r.LocalEngine(), work)))
	})
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.Flush())
	fmt.Printf("ready %d %v\n", runtime.GOMAXPROCS(0), vek.Info().Acceleration)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// eqChild is a replica in a child process.
type eqChild struct {
	spec  eqChildSpec
	cmd   *exec.Cmd
	stdin io.Closer
}

func startEqChild(t *testing.T, spec eqChildSpec, procs int, pureGo bool) *eqChild {
	t.Helper()
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterEquivalence$", "-test.count=1")
	cmd.Env = append(os.Environ(), eqChildEnv+"="+string(b), fmt.Sprintf("GOMAXPROCS=%d", procs))
	if pureGo {
		cmd.Env = append(cmd.Env, "GODEBUG=cpu.avx2=off,cpu.fma=off")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &eqChild{spec: spec, cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		if c.cmd != nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		require.Equal(t, fmt.Sprintf("ready %d %v", procs, !pureGo && vek.Info().Acceleration), l, "child %s", spec.Name)
	case <-time.After(60 * time.Second):
		t.Fatalf("child %s did not start", spec.Name)
	}
	return c
}

// stop ends the child, which closes its replica, and waits for it.
func (c *eqChild) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, c.stdin.Close())
	err := c.cmd.Wait()
	c.cmd = nil
	require.NoError(t, err, "child %s", c.spec.Name)
}

// TestClusterEquivalence runs one seeded random workload of the 16
// operations against a single-node engine and, request by request spread
// over them, against three Replicas of a 3-node cluster, with two more
// replicas following the log in child processes (GOMAXPROCS 1 with the
// pure-Go kernels, GOMAXPROCS 3 with SIMD). Every answer is the single
// node's once generated IDs and page tokens are paired; at checkpoints
// the five stores hold the same records and the same logical state as the
// single node's.
func TestClusterEquivalence(t *testing.T) {
	if spec := os.Getenv(eqChildEnv); spec != "" {
		runEqChild(t, spec)
		return
	}
	if testing.Short() {
		t.Skip("runs two child processes")
	}
	const steps, checkpoints = 500, 5
	c := sharedCluster(t)
	noLeaks(t)
	lo := testLogOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	single, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer single.Close()
	base := t.TempDir()
	replicas, dirs := openReplicas(ctx, t, c, lo, base, nil)
	var children []*eqChild
	for i, k := range []struct {
		procs  int
		pureGo bool
	}{{1, true}, {3, false}} {
		name := fmt.Sprintf("child%d", i+1)
		dirs = append(dirs, filepath.Join(base, name))
		children = append(children, startEqChild(t, eqChildSpec{Name: name, URL: c.nodes[i].ClientURL(), Dir: dirs[len(dirs)-1],
			Stream: lo.Stream, Subject: lo.Subject, DigestSubject: "eqdigest." + name}, k.procs, k.pureGo))
	}

	run := newEqRun(ctx, t, single, replicas, 11)
	for range checkpoints {
		run.steps(steps/checkpoints, 0, 1, 2)
		run.requireSameState(children, base)
	}
	codes := run.codes
	t.Logf("outcomes: %v", codes)
	for _, want := range []string{"IndexFaces ok", "AssociateFaces ok", "CreateUser " + engine.CodeConflict, "CreateUser " + engine.CodeIdempotentParameterMismatch,
		"DeleteCollection ok", "CreateCollection " + engine.CodeResourceAlreadyExists, "SearchUsers ok", "ListUsers ok", "ListFaces " + engine.CodeInvalidPaginationToken,
		"LOW_MATCH_CONFIDENCE", "ASSOCIATED_TO_A_DIFFERENT_USER", "ASSOCIATED_TO_AN_EXISTING_USER"} {
		require.Positive(t, codes[want], "%s in %v", want, codes)
	}

	for _, r := range replicas {
		require.NoError(t, r.Close())
	}
	for _, ch := range children {
		ch.stop(t)
	}
	requireSameStore(t, dirs...)
}

// openReplicas opens a Replica in base/rN on each node of c, with its own
// connection, closed at cleanup (after the Replica, which may have been
// closed before). edit, if not nil, adjusts node i's options.
func openReplicas(ctx context.Context, t *testing.T, c *testCluster, lo *LogOptions, base string, edit func(i int, o *ReplicaOptions)) ([]*Replica, []string) {
	t.Helper()
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.ClientURL())
	}
	var replicas []*Replica
	var dirs []string
	for i := range c.nodes {
		nc, err := Connect(failover(urls, i), nil)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		o := &ReplicaOptions{Name: fmt.Sprintf("r%d", i+1), Conn: nc, Log: lo, Logger: slog.New(slog.DiscardHandler)}
		if edit != nil {
			edit(i, o)
		}
		dirs = append(dirs, filepath.Join(base, o.Name))
		r, err := OpenReplica(ctx, dirs[i], o)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		replicas = append(replicas, r)
	}
	return replicas, dirs
}

// codeOf is an error's Rekognition code, "ok" for none.
func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	if e := (*engine.Error)(nil); errors.As(err, &e) {
		return e.Code
	}
	return err.Error()
}

// eqRun sends one workload to a single node and to a cluster's replicas.
type eqRun struct {
	t        *testing.T
	ctx      context.Context
	single   *engine.Engine // nil: the cluster alone
	replicas []*Replica
	ids      *idMap
	g        *eqGen
	codes    map[string]int // operation and outcome -> count
	step     int
	// mutations counts the writes sent.
	mutations int
}

func newEqRun(ctx context.Context, t *testing.T, single *engine.Engine, replicas []*Replica, seed uint64) *eqRun {
	return &eqRun{t: t, ctx: ctx, single: single, replicas: replicas, ids: newIDMap(), g: newEqGen(seed), codes: map[string]int{}}
}

// steps sends n requests, each to one of the replicas at the given
// indexes, and to the single node, and compares their answers.
func (e *eqRun) steps(n int, nodes ...int) {
	t := e.t
	t.Helper()
	for range n {
		e.step++
		op, in := e.g.next(t)
		req, err := json.Marshal(in)
		require.NoError(t, err)
		node := nodes[e.g.r.IntN(len(nodes))]
		cOut, cErr := apiCalls[op](e.ctx, e.replicas[node], translate(t, req, e.ids.s2c))
		out, outErr := cOut, cErr
		if e.single != nil {
			out, outErr = apiCalls[op](e.ctx, e.single, req)
			what := fmt.Sprintf("step %d, %s on r%d: %s", e.step, op, node+1, req)
			e.ids.requireSameAnswer(t, what, out, outErr, cOut, cErr)
		}
		e.codes[op+" "+codeOf(outErr)]++
		if engine.IsMutation(op) {
			e.mutations++
		}
		for _, reason := range []string{"LOW_MATCH_CONFIDENCE", "ASSOCIATED_TO_A_DIFFERENT_USER", "ASSOCIATED_TO_AN_EXISTING_USER"} {
			if bytes.Contains(out, []byte(reason)) {
				e.codes[reason]++
			}
		}
		if outErr == nil {
			e.g.observe(t, op, in, out)
		}
	}
}

// requireSameState brings every replica to the same applied sequence,
// compares their store digests with each other and their logical state
// with the single node's, and returns the digest.
func (e *eqRun) requireSameState(children []*eqChild, dir string) string {
	t, ctx, replicas := e.t, e.ctx, e.replicas
	t.Helper()
	var last uint64
	for _, r := range replicas {
		_, err := r.ListCollections(ctx, &engine.ListCollectionsInput{}) // a barrier each
		require.NoError(t, err)
		last = max(last, r.Applied())
	}
	var digests []string
	for _, r := range replicas {
		require.NoError(t, r.state.Load().applier.Progress().Wait(ctx, last))
		require.Equal(t, last, r.Applied())
		digests = append(digests, storeDigest(t, r.LocalEngine(), dir))
	}
	for _, ch := range children {
		m, err := replicas[0].opts.Conn.Request(ch.spec.DigestSubject, []byte(strconv.FormatUint(last, 10)), 60*time.Second)
		require.NoError(t, err, "child %s", ch.spec.Name)
		digests = append(digests, string(m.Data))
	}
	for i, d := range digests {
		require.Equal(t, digests[0], d, "store digest of replica %d at sequence %d", i+1, last)
	}
	if e.single != nil {
		require.Equal(t, logicalState(t, e.single, nil), logicalState(t, replicas[0].LocalEngine(), e.ids.c2s), "at sequence %d", last)
	}
	t.Logf("sequence %d: %s", last, digests[0])
	return digests[0]
}
