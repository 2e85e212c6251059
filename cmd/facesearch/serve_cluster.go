package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/facesearch/facesearch/cluster"
	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// A cluster node serves what a single engine serves.
var _ server.Backend = (*cluster.Replica)(nil)

// clusterFlags are serve's cluster-mode flags. Without any of them serve
// runs the single-node server.
type clusterFlags struct {
	fs                                                                         *flag.FlagSet
	nats, natsListen, natsClusterListen, natsRoutes, nodeName, readConsistency *string
	checkpointEvery                                                            *uint64
	checkpointInterval                                                         *time.Duration
}

func addClusterFlags(fs *flag.FlagSet) *clusterFlags {
	return &clusterFlags{
		fs: fs,
		checkpointEvery: fs.Uint64("checkpoint-every", cluster.DefaultCheckpointEvery, "cluster: take a checkpoint of the store once it has applied `N` commands "+
			"beyond the newest checkpoint (one node at a time), then trim the log to the two newest; new nodes and nodes behind the trimmed log "+
			"start from the newest; 0 turns taking them off on this node"),
		checkpointInterval: fs.Duration("checkpoint-interval", cluster.DefaultCheckpointInterval, "cluster: how often this node looks whether a checkpoint is due "+
			"(each wait drawn between half and one and a half times it)"),
		nats: fs.String("nats", "", "join a cluster through an external NATS JetStream cluster at these client `URLs` (nats://host:port, comma-separated); "+
			"not with the embedded --nats-* flags"),
		natsListen: fs.String("nats-listen", "", "run an embedded NATS JetStream node with its client port on `host:port`; "+
			"needs --nats-cluster-listen and --nats-routes; its files go in --data's nats/ directory"),
		natsClusterListen: fs.String("nats-cluster-listen", "", "the embedded NATS node's route port, `host:port`, where the other nodes connect"),
		natsRoutes:        fs.String("nats-routes", "", "every embedded NATS node's route `URLs` (nats-route://host:port, comma-separated), this one's included"),
		nodeName: fs.String("node-name", "", "this cluster node's `name`: unique in the cluster and the same across restarts "+
			"(default: the host name and the port of --nats-cluster-listen, or of --listen with --nats)"),
		readConsistency: fs.String("read-consistency", "", "cluster reads: linearizable (see every write acknowledged before, on any node; "+
			"one shared log round trip) or local (what this node has applied; no round trip) (default linearizable)"),
	}
}

// clusterConfig is a validated cluster mode.
type clusterConfig struct {
	urls        []string             // external NATS client URLs
	node        *cluster.NodeOptions // the embedded node, or nil
	name        string
	consistency cluster.ReadConsistency
	// every and interval are the checkpointer's; every 0 runs none.
	every    uint64
	interval time.Duration
}

var (
	nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,128}$`)
	nonNameRE  = regexp.MustCompile(`[^A-Za-z0-9_.\-]+`)
)

// config checks the cluster flags, naming the one at fault, and returns nil
// when none is set (single-node mode). listen is --listen.
func (f *clusterFlags) config(listen string) (*clusterConfig, error) {
	embedded := *f.natsListen != "" || *f.natsClusterListen != "" || *f.natsRoutes != ""
	if *f.nats == "" && !embedded {
		var err error
		f.fs.Visit(func(fl *flag.Flag) {
			if err == nil && slices.Contains([]string{"node-name", "read-consistency", "checkpoint-every", "checkpoint-interval"}, fl.Name) {
				err = fmt.Errorf("--%s is for cluster mode: give --nats, or the embedded --nats-listen, --nats-cluster-listen and --nats-routes", fl.Name)
			}
		})
		return nil, err
	}
	c := &clusterConfig{consistency: cluster.Linearizable, every: *f.checkpointEvery, interval: *f.checkpointInterval}
	if c.interval <= 0 {
		return nil, fmt.Errorf("--checkpoint-interval must be positive, not %v (--checkpoint-every 0 turns checkpoints off)", c.interval)
	}
	switch *f.readConsistency {
	case "", string(cluster.Linearizable):
	case string(cluster.Local):
		c.consistency = cluster.Local
	default:
		return nil, fmt.Errorf("--read-consistency must be linearizable or local, not %q", *f.readConsistency)
	}
	var namePort string
	if *f.nats != "" {
		if embedded {
			return nil, errors.New("--nats joins an external NATS cluster, --nats-listen, --nats-cluster-listen and --nats-routes run an embedded one: give one or the other")
		}
		for _, u := range splitList(*f.nats) {
			p, err := url.Parse(u)
			if err != nil || p.Hostname() == "" || p.Port() == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) {
				return nil, fmt.Errorf("--nats: %q is not a NATS client URL (nats://host:port)", u)
			}
			c.urls = append(c.urls, u)
		}
		_, namePort, _ = net.SplitHostPort(listen)
	} else {
		var err error
		if c.node, err = f.embedded(); err != nil {
			return nil, err
		}
		_, namePort, _ = net.SplitHostPort(c.node.ClusterListen)
	}
	c.name = *f.nodeName
	if c.name == "" {
		c.name = defaultNodeName(namePort)
	}
	if !nodeNameRE.MatchString(c.name) {
		return nil, fmt.Errorf("--node-name %q must be 1 to 128 letters, digits, '_', '.', ':' or '-'", c.name)
	}
	if c.node != nil {
		c.node.Name = c.name
	}
	return c, nil
}

// embedded checks the embedded NATS node's flags.
func (f *clusterFlags) embedded() (*cluster.NodeOptions, error) {
	for _, fl := range []struct{ name, v string }{
		{"--nats-listen", *f.natsListen}, {"--nats-cluster-listen", *f.natsClusterListen}, {"--nats-routes", *f.natsRoutes},
	} {
		if fl.v == "" {
			return nil, fmt.Errorf("%s is missing: an embedded NATS node needs --nats-listen, --nats-cluster-listen and --nats-routes", fl.name)
		}
	}
	for _, fl := range []struct{ name, v string }{{"--nats-listen", *f.natsListen}, {"--nats-cluster-listen", *f.natsClusterListen}} {
		if _, _, err := net.SplitHostPort(fl.v); err != nil {
			return nil, fmt.Errorf("%s %q is not host:port", fl.name, fl.v)
		}
	}
	o := &cluster.NodeOptions{ClientListen: *f.natsListen, ClusterListen: *f.natsClusterListen}
	for _, r := range splitList(*f.natsRoutes) {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats-route" || u.Hostname() == "" || u.Port() == "" {
			return nil, fmt.Errorf("--nats-routes: %q is not nats-route://host:port", r)
		}
		o.Routes = append(o.Routes, r)
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// defaultNodeName is the host name and port: stable across restarts with
// the same flags, and unique among nodes sharing a machine.
func defaultNodeName(port string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "facesearch"
	}
	host = nonNameRE.ReplaceAllString(host, "-")
	return fmt.Sprintf("%.100s-%s", host, port)
}

// clusterStoreDir is where a cluster node keeps its store: beside
// JetStream's nats/ directory, so that a checkpoint can replace it whole.
func clusterStoreDir(data string) string { return filepath.Join(data, "store") }

// openCluster starts the embedded NATS node (if any), connects to NATS,
// opens the checkpoint bucket, and opens the node's replica over the store
// in data's store/ directory (from the newest checkpoint for a new node on
// a trimmed log), waiting until ctx for the cluster to form; then it starts
// the checkpointer. closeAll stops the checkpointer, the follower, closes
// the store, then NATS.
func openCluster(ctx context.Context, c *clusterConfig, data string, eopts *engine.Options, requestTimeout time.Duration, log *slog.Logger) (rep *cluster.Replica, closeAll func(), err error) {
	var node *cluster.Node
	urls := c.urls
	if c.node != nil {
		c.node.DataDir = data
		if node, err = cluster.StartNode(c.node); err != nil {
			return nil, nil, fmt.Errorf("--nats-listen: %w", err)
		}
		urls = []string{node.ClientURL()}
		log.Info("embedded NATS node started", "name", c.name, "client", node.ClientURL(), "routes", node.RouteURL())
	}
	stopNATS := func() {
		if node != nil {
			node.Shutdown()
		}
	}
	nc, err := cluster.Connect(urls, &cluster.ConnectOptions{Name: "facesearch " + c.name})
	if err != nil {
		stopNATS()
		if errors.Is(err, cluster.ErrUnreachable) {
			return nil, nil, fmt.Errorf("--nats: %w", err)
		}
		return nil, nil, err
	}
	closeNATS := func() {
		nc.Close()
		stopNATS()
	}
	log.Info("joining the cluster: waiting for the NATS cluster and its command log", "node", c.name, "nats", strings.Join(urls, ","))
	store := clusterStoreDir(data)
	cps, err := openCheckpoints(ctx, nc, store, log)
	if err != nil {
		closeNATS()
		return nil, nil, fmt.Errorf("join the cluster: %w", err)
	}
	// A write or read the cluster cannot serve fails with its own message
	// before the request's deadline does.
	bound := func(d time.Duration) time.Duration { return min(d, max(requestTimeout*3/4, time.Second)) }
	rep, err = cluster.OpenReplica(ctx, store, &cluster.ReplicaOptions{
		Name: c.name, Conn: nc, Engine: eopts, ReadConsistency: c.consistency, Logger: log,
		WriteTimeout: bound(cluster.DefaultWriteTimeout), ReadTimeout: bound(cluster.DefaultReadTimeout),
		Rebootstrap: cps.Rebootstrap,
	})
	if err != nil {
		closeNATS()
		if d := (*engine.LogDamage)(nil); errors.Is(err, engine.ErrLocked) || errors.As(err, &d) {
			return nil, nil, storeOpenError(store, err)
		}
		return nil, nil, fmt.Errorf("join the cluster: %w", err)
	}
	closeReplica := func() {
		if err := rep.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			log.Error("closing the store", "err", err)
		}
		closeNATS()
	}
	logSalvaged(log, rep.LocalEngine(), "; the log gives them back")
	stopCheckpointer, err := startCheckpointer(cps, rep, c, data, log)
	if err != nil {
		closeReplica()
		return nil, nil, err
	}
	log.Info("cluster node ready", "node", c.name, "applied", rep.Applied(), "read_consistency", string(c.consistency), "store", store)
	return rep, func() {
		stopCheckpointer()
		closeReplica()
	}, nil
}

// openCheckpoints opens the checkpoint bucket and, for a new node (no
// store yet) on a log that no longer starts at its first command, puts the
// newest checkpoint's store in store; a new node on a complete log replays
// it from the start instead.
func openCheckpoints(ctx context.Context, nc *nats.Conn, store string, log *slog.Logger) (*cluster.Checkpoints, error) {
	l, err := cluster.OpenLog(ctx, nc, nil)
	if err != nil {
		return nil, err
	}
	cps, err := cluster.OpenCheckpoints(ctx, l, nil)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(store); !errors.Is(err, fs.ErrNotExist) {
		return cps, nil // the engine reports any other failure
	}
	st, err := l.State(ctx)
	if err != nil {
		return nil, err
	}
	if st.First <= 1 {
		return cps, nil
	}
	log.Info("new node on a trimmed log: bootstrapping from the newest checkpoint", "log_first", st.First)
	cp, err := cps.Bootstrap(ctx, store)
	if err != nil {
		return nil, err
	}
	log.Info("bootstrapped from a checkpoint", "checkpoint", cp.Name, "seq", cp.Seq, "bytes", cp.Size, "taken_by", cp.Node)
	return cps, nil
}

// startCheckpointer runs the node's checkpointer in the background, unless
// c.every is 0, and returns what stops it and waits for it.
func startCheckpointer(cps *cluster.Checkpoints, rep *cluster.Replica, c *clusterConfig, data string, log *slog.Logger) (stop func(), err error) {
	if c.every == 0 {
		log.Info("this node takes no checkpoints (--checkpoint-every 0)")
		return func() {}, nil
	}
	// On the store's file system, so that a checkpoint hard-links its
	// tables; what an interrupted one left there is only such a copy.
	scratch := filepath.Join(data, "checkpoint-scratch")
	if err := os.RemoveAll(scratch); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	k, err := cps.NewCheckpointer(rep, &cluster.CheckpointerOptions{Node: c.name, Scratch: scratch, Every: c.every, Interval: c.interval})
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = k.Run(ctx, func(err error) { log.Warn("checkpoint round failed; the next one tries again", "err", err) })
	}()
	log.Info("checkpointer running", "every", c.every, "interval", c.interval)
	return func() {
		cancel()
		<-done
	}, nil
}
