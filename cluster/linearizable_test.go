package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// routeLink is a TCP proxy carrying one node's route connections to
// another. Cutting it closes them and refuses new ones, as a network
// partition would (at once, where a real one is noticed by missed pings);
// healing it lets the nodes' route retries through.
type routeLink struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newRouteLink(target string) (*routeLink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &routeLink{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// url is the route URL that reaches the target through the link.
func (p *routeLink) url() string { return "nats-route://" + p.ln.Addr().String() }

func (p *routeLink) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if p.track(in, out) {
			p.wg.Add(2)
			go p.pipe(in, out)
			go p.pipe(out, in)
		}
	}
}

// track records a proxied connection's two ends, or closes them if the
// link is cut.
func (p *routeLink) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		if p.cut {
			c.Close()
		} else {
			p.conns[c] = struct{}{}
		}
	}
	return !p.cut
}

func (p *routeLink) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	// A route does not live half-closed: one direction ending ends both.
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *routeLink) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *routeLink) close() {
	p.ln.Close()
	p.setCut(true)
	p.wg.Wait()
}

// linkedCluster is a cluster of embedded nodes whose every route
// connection passes through a routeLink, so that a test can cut a node off
// from the others without stopping it.
type linkedCluster struct {
	*testCluster
	links [][]*routeLink // links[i][j] carries node i's routes to node j
}

// startLinkedCluster starts n linked nodes that live as long as the test.
func startLinkedCluster(t *testing.T, n int) *linkedCluster {
	t.Helper()
	ports, err := freePorts(2 * n)
	require.NoError(t, err)
	lc := &linkedCluster{testCluster: &testCluster{}, links: make([][]*routeLink, n)}
	t.Cleanup(func() {
		lc.shutdown()
		for _, row := range lc.links {
			for _, l := range row {
				if l != nil {
					l.close()
				}
			}
		}
	})
	for i := range n {
		lc.links[i] = make([]*routeLink, n)
		for j := range n {
			if j != i {
				lc.links[i][j], err = newRouteLink(fmt.Sprintf("127.0.0.1:%d", ports[n+j]))
				require.NoError(t, err)
			}
		}
	}
	dir := t.TempDir()
	for i := range n {
		o := &NodeOptions{
			Name:          fmt.Sprintf("l%d", i+1),
			ClientListen:  fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			ClusterName:   "facesearch-linked",
			DataDir:       filepath.Join(dir, fmt.Sprintf("l%d", i+1)),
		}
		for j, l := range lc.links[i] {
			if j != i {
				o.Routes = append(o.Routes, l.url())
			}
		}
		o.ensureDefaults()
		require.NoError(t, o.Validate())
		so := o.serverOptions()
		// Nodes tell each other their route addresses, and one that hears
		// of a node it has no route to dials it: advertising an address
		// where nothing listens keeps every route on the links.
		so.Cluster.Advertise = "127.0.0.1:1"
		srv, err := server.NewServer(so)
		require.NoError(t, err)
		srv.Start()
		lc.nodes = append(lc.nodes, &Node{srv: srv})
		require.True(t, srv.ReadyForConnections(10*time.Second), "node %s", o.Name)
		nc, err := Connect([]string{srv.ClientURL()}, nil)
		require.NoError(t, err)
		lc.conns = append(lc.conns, nc)
	}
	return lc
}

// isolate cuts (or heals) every route between node i and the others.
func (lc *linkedCluster) isolate(i int, cut bool) {
	for j := range lc.links {
		if j != i {
			lc.links[i][j].setCut(cut)
			lc.links[j][i].setCut(cut)
		}
	}
}

// TestPartitionedLeaderStaysLinearizable cuts the command log's stream
// leader off from the other two nodes, without stopping it, while clients
// of every node keep writing and reading (linearizable reads) three
// collections, each a small register: its one user, its face count. The
// recorded history, each write of unknown fate (unconfirmed, timed out)
// taken as possibly applied, must be linearizable up to the heal and after
// it. A read with local consistency on the cut-off leader, after the
// majority acknowledged a write, makes the history illegal: the check can
// fail.
func TestPartitionedLeaderStaysLinearizable(t *testing.T) {
	t.Parallel()
	lc := startLinkedCluster(t, 3)
	ctx := context.Background()
	logOpts := testLogOptions(t)
	logOpts.PublishTimeout = 3 * time.Second
	logOpts.RequestTimeout = time.Second
	quiet := slog.New(slog.DiscardHandler)
	reps := make([]*Replica, 3)
	dirs := make([]string, 3)
	for i := range reps {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		dirs[i] = filepath.Join(t.TempDir(), "store")
		r, err := OpenReplica(octx, dirs[i], &ReplicaOptions{
			Name: fmt.Sprintf("r%d", i+1), Conn: lc.conns[i], Log: logOpts,
			WriteTimeout: 5 * time.Second, ReadTimeout: 4 * time.Second, Logger: quiet,
		})
		cancel()
		require.NoError(t, err)
		reps[i] = r
		t.Cleanup(func() { r.Close() })
	}
	colls := []string{"c1", "c2", "c3", "probe"}
	for _, c := range colls {
		_, err := reps[0].CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: c, Tags: map[string]string{engine.TagDimension: regDim}})
		require.NoError(t, err)
	}

	h := newHistory()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clientsPerNode = 2
	for k := range 3 * clientsPerNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(7, uint64(k)))
			ops := []string{regCreate, regCreate, regDelete, regIndex, regList, regList, regDescribe, regDescribe}
			c := regClient{r: reps[k%3], ctx: ctx}
			for {
				select {
				case <-stop:
					return
				// Paced below what a node applies, so that the node cut off
				// catches up after the heal.
				case <-time.After(time.Duration(10+rng.IntN(20)) * time.Millisecond):
				}
				op := regOp{coll: colls[rng.IntN(3)], op: ops[rng.IntN(len(ops))]}
				call := h.now()
				if res, ok := c.do(op); ok {
					h.add(k, op, call, res)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	const probe = 3 * clientsPerNode // the probe's client ID
	time.Sleep(1500 * time.Millisecond)

	st, err := reps[0].log.State(ctx)
	require.NoError(t, err)
	leader := slices.IndexFunc(lc.nodes, func(n *Node) bool { return n.Name() == st.Leader })
	require.GreaterOrEqual(t, leader, 0, "leader %q", st.Leader)
	lc.isolate(leader, true)
	cut := time.Now()
	t.Logf("cut off the stream leader %s", st.Leader)
	// No route went around the links.
	for lc.nodes[leader].srv.NumRoutes() > 0 {
		require.Less(t, time.Since(cut), 10*time.Second, "the cut-off node keeps %d routes", lc.nodes[leader].srv.NumRoutes())
		time.Sleep(10 * time.Millisecond)
	}

	// The other two elect a leader and take writes again: a create through
	// one of them, retried with its token until acknowledged.
	majority := reps[(leader+1)%3]
	call := h.now()
	for {
		_, err := majority.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "probe", UserId: regUser, ClientRequestToken: "probe"})
		if err == nil {
			break
		}
		var e *engine.Error
		require.True(t, errors.As(err, &e) && e.Code == engine.CodeThrottling, "%v", err)
		require.Less(t, time.Since(cut), 30*time.Second, "the majority took no write 30s after the cut: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	h.add(probe, regOp{"probe", regCreate}, call, regResult{})
	t.Logf("the majority acknowledged a write %s after the cut", time.Since(cut).Round(time.Millisecond))

	// The cut-off leader's node cannot serve that state: its linearizable
	// read fails (or, if it succeeds, is checked), its local read is stale.
	cutOff := regClient{r: reps[leader], ctx: ctx}
	call = h.now()
	out, err := reps[leader].ListUsers(ctx, &engine.ListUsersInput{CollectionId: "probe"})
	if err == nil {
		h.add(probe, regOp{"probe", regList}, call, regResult{user: len(out.Users) > 0})
	} else {
		var e *engine.Error
		require.True(t, errors.As(err, &e) && e.Code == engine.CodeThrottling, "%v", err)
	}
	call = h.now()
	stale, ok := regClient{r: reps[leader], ctx: WithReadConsistency(ctx, Local)}.do(regOp{"probe", regList})
	require.True(t, ok, "a local read serves without quorum")
	require.False(t, stale.user, "the cut-off node applied a write committed after the cut")
	staleRead := porcupine.Operation{ClientId: probe, Input: regOp{"probe", regList}, Call: call, Output: stale, Return: h.now()}
	time.Sleep(time.Second)

	heal := h.now()
	lc.isolate(leader, false)
	healed := time.Now()
	// The node back in the cluster serves linearizable reads again.
	for {
		call := h.now()
		res, ok := cutOff.do(regOp{"probe", regList})
		if ok {
			h.add(probe, regOp{"probe", regList}, call, res)
			break
		}
		require.Less(t, time.Since(healed), time.Minute, "no linearizable read on the healed node a minute after the heal")
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the healed node served a linearizable read %s after the heal", time.Since(healed).Round(time.Millisecond))
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	ops := h.snapshot(0)
	var writes, unknown, reads int
	for _, op := range ops {
		switch {
		case op.Return == math.MaxInt64:
			unknown++
		case op.Input.(regOp).read():
			reads++
		default:
			writes++
		}
	}
	t.Logf("history: %d writes, %d writes of unknown fate, %d reads", writes, unknown, reads)
	require.Equal(t, porcupine.Ok, checkHistory(t, "until the heal", h.snapshot(heal)))
	require.Equal(t, porcupine.Ok, checkHistory(t, "whole run", ops))
	require.Equal(t, porcupine.Illegal, checkHistory(t, "with a local read", append(ops, staleRead)))

	// Every node applies the whole log, to the same store.
	st, err = reps[0].log.State(ctx)
	require.NoError(t, err)
	for i, r := range reps {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		require.NoError(t, r.state.Load().applier.Progress().Wait(wctx, st.Last), "node %d", i+1)
		cancel()
		require.NoError(t, r.Close())
	}
	requireSameStore(t, dirs...)
}
