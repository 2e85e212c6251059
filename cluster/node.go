package cluster

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NodeOptions configure an embedded NATS JetStream node. A nil *NodeOptions
// is not valid: DataDir is required.
type NodeOptions struct {
	// Name is the node's NATS server name; JetStream's Raft groups know their
	// peers by it, so it must be unique in the cluster and stable across
	// restarts. Required when ClusterListen is set. The default value is the
	// host name.
	Name string
	// ClientListen is HOST:PORT for NATS clients (the facesearch nodes). Port
	// 0 picks a free port. The default value is "127.0.0.1:4222".
	ClientListen string
	// ClusterListen is HOST:PORT for the routes of the other NATS nodes; port
	// 0 picks a free port. Empty runs a single, unclustered node. The default
	// value is "".
	ClusterListen string
	// Routes are every node's route URL (nats-route://host:port); the node's
	// own may be among them. Required with ClusterListen. The default value
	// is none.
	Routes []string
	// ClusterName names the NATS cluster; every node must give the same. The
	// default value is "facesearch".
	ClusterName string
	// DataDir is the facesearch data directory; JetStream keeps its files in
	// its "nats" subdirectory. Required.
	DataDir string
	// SyncInterval is how often JetStream fsyncs its files. Zero fsyncs every
	// write before it is acknowledged, so that a power cut on a minority of
	// machines (with replicas 3: two of them, for writes already on the
	// third) loses no acknowledged command. The default value is 0.
	SyncInterval time.Duration
	// MaxStore caps JetStream's file storage in bytes; 0 leaves it to NATS
	// (most of the disk). The default value is 0.
	MaxStore int64
	// ReadyTimeout bounds the wait for the node to accept connections. The
	// default value is 10s.
	ReadyTimeout time.Duration
}

// Node is a running embedded NATS JetStream server.
type Node struct {
	srv *server.Server
}

func (o *NodeOptions) clone() *NodeOptions {
	c := *o
	c.Routes = append([]string(nil), o.Routes...)
	return &c
}

func (o *NodeOptions) ensureDefaults() {
	if o.Name == "" && o.ClusterListen == "" {
		o.Name, _ = os.Hostname()
	}
	if o.ClientListen == "" {
		o.ClientListen = "127.0.0.1:4222"
	}
	if o.ClusterName == "" {
		o.ClusterName = "facesearch"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Second
	}
}

// Validate reports every problem of the options at once.
func (o *NodeOptions) Validate() error {
	var list []string
	if o.DataDir == "" {
		list = append(list, "DataDir is required")
	}
	if _, _, err := splitListen(o.ClientListen); err != nil {
		list = append(list, fmt.Sprintf("ClientListen: %v", err))
	}
	if o.ClusterListen != "" {
		if _, _, err := splitListen(o.ClusterListen); err != nil {
			list = append(list, fmt.Sprintf("ClusterListen: %v", err))
		}
		if o.Name == "" {
			list = append(list, "Name is required in a cluster")
		}
		// nats-server refuses (fatally) a JetStream cluster without routes.
		if len(o.Routes) == 0 {
			list = append(list, "Routes are required in a cluster")
		}
	} else if len(o.Routes) > 0 {
		list = append(list, "Routes need ClusterListen")
	}
	if o.Name != "" && !tokenPattern.MatchString(o.Name) {
		list = append(list, fmt.Sprintf("Name %q must match %s", o.Name, tokenPattern))
	}
	for _, r := range o.Routes {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "nats-route" && u.Scheme != "nats") || u.Port() == "" {
			list = append(list, fmt.Sprintf("route %q is not nats-route://host:port", r))
		}
	}
	if o.SyncInterval < 0 {
		list = append(list, "SyncInterval must not be negative")
	}
	if o.MaxStore < 0 {
		list = append(list, "MaxStore must not be negative")
	}
	if o.ReadyTimeout < 0 {
		list = append(list, "ReadyTimeout must not be negative")
	}
	return problems(ErrInvalidOptions, "embedded NATS node", list)
}

// splitListen parses HOST:PORT; port 0 becomes NATS's "any free port".
func splitListen(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q out of range", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// serverOptions translates validated options into nats-server's.
func (o *NodeOptions) serverOptions() *server.Options {
	host, port, _ := splitListen(o.ClientListen)
	so := &server.Options{
		ServerName: o.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(o.DataDir, "nats"),
		MaxPayload: MaxCommandSize,
		// The embedding process owns signals and its log.
		NoSigs: true,
		NoLog:  true,
	}
	// A sync interval of zero would be NATS's default (minutes), not
	// "always": SyncAlways is what fsyncs every write.
	if o.SyncInterval == 0 {
		so.SyncAlways = true
	} else {
		so.SyncInterval = o.SyncInterval
	}
	if o.MaxStore > 0 {
		so.JetStreamMaxStore = o.MaxStore
	}
	if o.ClusterListen != "" {
		chost, cport, _ := splitListen(o.ClusterListen)
		so.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: chost, Port: cport}
		for _, r := range o.Routes {
			u, _ := url.Parse(r)
			so.Routes = append(so.Routes, u)
		}
	}
	return so
}

// StartNode starts an embedded NATS JetStream node and returns once it
// accepts client and route connections. JetStream itself becomes usable once
// a majority of the cluster's nodes have met; [OpenLog] waits for that.
func StartNode(opts *NodeOptions) (*Node, error) {
	if opts == nil {
		opts = &NodeOptions{}
	}
	o := opts.clone()
	o.ensureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(o.serverOptions())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNodeStart, o.Name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(o.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("%w: %s: not listening on %s after %s", ErrNodeStart, o.Name, o.ClientListen, o.ReadyTimeout)
	}
	return &Node{srv: srv}, nil
}

// Name returns the node's server name.
func (n *Node) Name() string { return n.srv.Name() }

// ClientURL returns the URL clients connect to, with the port actually bound.
func (n *Node) ClientURL() string { return n.srv.ClientURL() }

// RouteURL returns the node's route URL (nats-route://host:port) with the
// port actually bound, or "" for an unclustered node.
func (n *Node) RouteURL() string {
	a := n.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats-route://" + a.String()
}

// Shutdown stops the node and waits until its listeners, connections and
// files are closed. It is safe to call more than once.
func (n *Node) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}
