package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/facesearch/facesearch/cluster"
	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/vector"
)

// ClusterConfig describes one cluster benchmark run ([RunCluster]): three
// facesearch nodes with embedded NATS JetStream on loopback, beside a
// single-node engine loaded with the same data, measured in the same run.
// The zero value of each field selects its default; the defaults finish in
// about a minute on a 2-core machine.
type ClusterConfig struct {
	// Users is the number of users. The default value is 2000.
	Users int
	// FacesPerUser is the number of faces each user has. The default value
	// is 2.
	FacesPerUser int
	// Dim is the embedding dimension. The default value is 128.
	Dim int
	// IndexCallers is the number of concurrent IndexFaces callers (one face
	// per call) loading the faces, and of the callers then making the users.
	// The default value is 16.
	IndexCallers int
	// Queries is the number of SearchUsers timed one at a time on each
	// side. The default value is 200.
	Queries int
	// Concurrency is the number of concurrent SearchUsers callers of the
	// second measurement. The default value is 64.
	Concurrency int
	// QPSDuration is how long the concurrent callers run on each side. The
	// default value is 3s.
	QPSDuration time.Duration
	// VisibleSamples is the number of writes timed until another node
	// shows them. The default value is 100.
	VisibleSamples int
	// Dir holds the nodes' NATS and store directories and the single
	// node's store; it must be empty or absent, and is left in place. The
	// default value is "": a temporary directory, removed at the end.
	Dir string
	// Seed selects the synthetic data set. The default value is 0.
	Seed int64
	// Progress receives progress lines. The default value is nil: none.
	Progress io.Writer
}

func (c ClusterConfig) withDefaults() ClusterConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Users, 2000)
	def(&c.FacesPerUser, 2)
	def(&c.Dim, 128)
	def(&c.IndexCallers, 16)
	def(&c.Queries, 200)
	def(&c.Concurrency, 64)
	def(&c.VisibleSamples, 100)
	if c.QPSDuration == 0 {
		c.QPSDuration = 3 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// Validate reports every problem with c (after defaults) at once.
func (c ClusterConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"Users", c.Users}, {"FacesPerUser", c.FacesPerUser}, {"IndexCallers", c.IndexCallers}, {"Queries", c.Queries},
		{"Concurrency", c.Concurrency}, {"VisibleSamples", c.VisibleSamples}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("bench: %s is %d, want at least 1", f.name, f.v))
		}
	}
	if c.Dim < 2 || c.Dim > vector.MaxDim {
		errs = append(errs, fmt.Errorf("bench: Dim is %d, want 2 to %d", c.Dim, vector.MaxDim))
	}
	if c.FacesPerUser > 100 {
		errs = append(errs, fmt.Errorf("bench: FacesPerUser is %d, a user holds at most 100", c.FacesPerUser))
	}
	if c.QPSDuration < 0 {
		errs = append(errs, fmt.Errorf("bench: QPSDuration %v is negative", c.QPSDuration))
	}
	return errors.Join(errs...)
}

// clusterAPI is what the benchmark calls, on a node or the single engine.
type clusterAPI interface {
	CreateCollection(context.Context, *engine.CreateCollectionInput) (*engine.CreateCollectionOutput, error)
	IndexFaces(context.Context, *engine.IndexFacesInput) (*engine.IndexFacesOutput, error)
	CreateUser(context.Context, *engine.CreateUserInput) (*engine.CreateUserOutput, error)
	AssociateFaces(context.Context, *engine.AssociateFacesInput) (*engine.AssociateFacesOutput, error)
	SearchUsers(context.Context, *engine.SearchUsersInput) (*engine.SearchUsersOutput, error)
	DescribeCollection(context.Context, *engine.DescribeCollectionInput) (*engine.DescribeCollectionOutput, error)
}

var (
	_ clusterAPI = (*engine.Engine)(nil)
	_ clusterAPI = (*cluster.Replica)(nil)
)

const (
	collCluster = "bench-cluster"
	collVisible = "bench-visible"
)

// RunCluster starts three nodes on loopback and a single-node engine,
// loads the same synthetic users into each side through the API, and
// measures every figure of [ClusterReport].
func RunCluster(ctx context.Context, cfg ClusterConfig) (*ClusterReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	start := time.Now()
	dir, cleanup, err := storeDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rep := &ClusterReport{Users: cfg.Users, FacesPerUser: cfg.FacesPerUser, Dim: cfg.Dim, Machine: Machine()}
	rep.LoadAvg[0] = loadAvg()
	h := &harness{cfg: Config{Seed: cfg.Seed}, log: cfg.Progress}
	c, err := startBenchCluster(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer c.close()
	single, err := engine.Open(filepath.Join(dir, "single"), nil)
	if err != nil {
		return nil, err
	}
	defer single.Close()
	b := &clusterBench{cfg: cfg, h: h, gen: NewGenerator(GenConfig{Identities: cfg.Users, FacesPerIdentity: cfg.FacesPerUser, Dim: cfg.Dim, Seed: cfg.Seed}),
		single: single, c: c}
	if err := b.run(ctx, rep); err != nil {
		return nil, err
	}
	rep.LoadAvg[1] = loadAvg()
	rep.ElapsedS = time.Since(start).Seconds()
	rep.fill()
	return rep, nil
}

// benchCluster is three embedded NATS nodes and a Replica on each.
type benchCluster struct {
	nodes    []*cluster.Node
	conns    []*nats.Conn
	replicas []*cluster.Replica
	log      *cluster.Log
}

// startBenchCluster starts the nodes on free loopback ports, with their
// data under dir.
func startBenchCluster(ctx context.Context, dir string) (c *benchCluster, err error) {
	const n = 3
	ports := make([]int, 2*n)
	var ls []net.Listener
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close() // the nodes bind them next
	}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i]))
	}
	c = &benchCluster{}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	for i := range n {
		name := fmt.Sprintf("fs%d", i+1)
		node, err := cluster.StartNode(&cluster.NodeOptions{Name: name, ClientListen: fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[n+i]), Routes: routes, DataDir: filepath.Join(dir, name)})
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		nc, err := cluster.Connect([]string{node.ClientURL()}, nil)
		if err != nil {
			return nil, err
		}
		c.conns = append(c.conns, nc)
	}
	for i, nc := range c.conns {
		r, err := cluster.OpenReplica(ctx, filepath.Join(dir, fmt.Sprintf("fs%d", i+1), "store"),
			&cluster.ReplicaOptions{Name: fmt.Sprintf("fs%d", i+1), Conn: nc, Logger: quiet})
		if err != nil {
			return nil, err
		}
		c.replicas = append(c.replicas, r)
	}
	c.log, err = cluster.OpenLog(ctx, c.conns[0], nil)
	return c, err
}

func (c *benchCluster) close() {
	for _, r := range c.replicas {
		r.Close()
	}
	for _, nc := range c.conns {
		nc.Close()
	}
	for _, n := range c.nodes {
		n.Shutdown()
	}
}

// clusterBench holds one cluster run's state.
type clusterBench struct {
	cfg    ClusterConfig
	h      *harness // for its progress lines
	gen    *Generator
	single *engine.Engine
	c      *benchCluster
}

func (b *clusterBench) run(ctx context.Context, rep *ClusterReport) error {
	nodes := make([]clusterAPI, len(b.c.replicas))
	for i, r := range b.c.replicas {
		nodes[i] = r
	}
	var err error
	if rep.IndexFacesPerS.Single, err = b.load(ctx, "single node", []clusterAPI{b.single}); err != nil {
		return err
	}
	if rep.IndexFacesPerS.Cluster, err = b.load(ctx, "cluster", nodes); err != nil {
		return err
	}
	local := cluster.WithReadConsistency(ctx, cluster.Local)
	for _, callers := range []int{1, b.cfg.Concurrency} {
		s := SearchComparison{Concurrency: callers}
		if s.Single, err = b.searches(ctx, "single node", b.single, callers); err != nil {
			return err
		}
		before, err := b.c.log.State(ctx)
		if err != nil {
			return err
		}
		if s.Linearizable, err = b.searches(ctx, "node 1, linearizable", b.c.replicas[0], callers); err != nil {
			return err
		}
		after, err := b.c.log.State(ctx)
		if err != nil {
			return err
		}
		s.BarriersPerRead = float64(after.Last-before.Last) / float64(s.Linearizable.Searches)
		if s.Local, err = b.searches(local, "node 1, local", b.c.replicas[0], callers); err != nil {
			return err
		}
		rep.Search = append(rep.Search, s)
	}
	return b.visible(ctx, rep)
}

// load indexes every face through IndexFaces, one face per call, from
// IndexCallers callers spread over targets, then makes the users; it
// returns the faces indexed per second.
func (b *clusterBench) load(ctx context.Context, side string, targets []clusterAPI) (float64, error) {
	cfg := b.cfg
	if _, err := targets[0].CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: collCluster}); err != nil {
		return 0, err
	}
	n := cfg.Users * cfg.FacesPerUser
	b.h.logf("%s: indexing %d faces through IndexFaces from %d callers", side, n, cfg.IndexCallers)
	ids := make([]string, n)
	t0 := time.Now()
	err := each(ctx, cfg.IndexCallers, n, func(i int) error {
		out, err := targets[i%len(targets)].IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: collCluster,
			Image: &engine.Image{Bytes: npy.EncodeVector(b.gen.Face(i/cfg.FacesPerUser, i%cfg.FacesPerUser))}})
		if err == nil {
			ids[i] = out.FaceRecords[0].Face.FaceId
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	rate := float64(n) / time.Since(t0).Seconds()
	b.h.logf("%s: %.0f faces/s; making %d users", side, rate, cfg.Users)
	err = each(ctx, cfg.IndexCallers, cfg.Users, func(u int) error {
		t := targets[u%len(targets)]
		if _, err := t.CreateUser(ctx, &engine.CreateUserInput{CollectionId: collCluster, UserId: userID(u)}); err != nil {
			return err
		}
		_, err := t.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: collCluster, UserId: userID(u),
			FaceIds: ids[u*cfg.FacesPerUser : (u+1)*cfg.FacesPerUser], UserMatchThreshold: ptr[float32](0)})
		return err
	})
	return rate, err
}

// searches times SearchUsers by random users' IDs on t: Queries calls one
// after another, or Concurrency callers for QPSDuration.
func (b *clusterBench) searches(ctx context.Context, side string, t clusterAPI, callers int) (SearchTiming, error) {
	cfg := b.cfg
	b.h.logf("%s: SearchUsers from %d caller(s)", side, callers)
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	deadline := time.Now().Add(cfg.QPSDuration)
	t0 := time.Now()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(c)))
			var ds []time.Duration
			var err error
			for i := 0; err == nil && ctx.Err() == nil; i++ {
				if callers == 1 && i == cfg.Queries || callers > 1 && time.Now().After(deadline) {
					break
				}
				s := time.Now()
				_, err = t.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: collCluster, UserId: userID(r.IntN(cfg.Users)),
					MaxUsers: ptr(int32(searchK)), UserMatchThreshold: ptr[float32](0)})
				ds = append(ds, time.Since(s))
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, ds...)
			if firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return SearchTiming{}, firstErr
	}
	slices.Sort(all)
	return SearchTiming{P50Ms: ms(percentile(all, 0.5)), P99Ms: ms(percentile(all, 0.99)), Searches: len(all),
		QPS: float64(len(all)) / time.Since(t0).Seconds()}, nil
}

// visible times writes on one node until another shows them: a
// CreateUser on node i%3 while node (i+1)%3 polls its local state for the
// user count, from the moment the write starts; and the same write on the
// single node.
func (b *clusterBench) visible(ctx context.Context, rep *ClusterReport) error {
	n := b.cfg.VisibleSamples
	b.h.logf("write on one node, read on another: %d samples", n)
	rs := b.c.replicas
	if _, err := rs[0].CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: collVisible}); err != nil {
		return err
	}
	if _, err := b.single.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: collVisible}); err != nil {
		return err
	}
	for _, r := range rs { // each has applied the creation
		if _, err := r.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: collVisible}); err != nil {
			return err
		}
	}
	local := cluster.WithReadConsistency(ctx, cluster.Local)
	acks, seen, singles := make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		in := &engine.CreateUserInput{CollectionId: collVisible, UserId: userID(i)}
		t0 := time.Now()
		if _, err := b.single.CreateUser(ctx, in); err != nil {
			return err
		}
		singles[i] = time.Since(t0)

		a, reader := rs[i%len(rs)], rs[(i+1)%len(rs)]
		polled := make(chan error, 1)
		t0 = time.Now()
		go func() {
			for {
				d, err := reader.DescribeCollection(local, &engine.DescribeCollectionInput{CollectionId: collVisible})
				if err != nil || d.UserCount > int64(i) {
					seen[i] = time.Since(t0)
					polled <- err
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
		}()
		_, err := a.CreateUser(ctx, in)
		acks[i] = time.Since(t0)
		if perr := <-polled; err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
	}
	slices.Sort(acks)
	slices.Sort(seen)
	slices.Sort(singles)
	rep.WriteToVisible = VisibleTiming{WriteP50Ms: ms(percentile(acks, 0.5)), VisibleP50Ms: ms(percentile(seen, 0.5)),
		VisibleP99Ms: ms(percentile(seen, 0.99)), SingleWriteP50Ms: ms(percentile(singles, 0.5))}
	return nil
}
