package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/facesearch/facesearch/bench"
)

// benchClusterFlags are the flags of bench's cluster mode besides the
// ones it shares with the single-node bench.
type benchClusterFlags struct {
	on                           *bool
	indexCallers, visibleSamples *int
}

func addBenchClusterFlags(fs *flag.FlagSet) *benchClusterFlags {
	return &benchClusterFlags{
		on: fs.Bool("cluster", false, "measure a three-node cluster (embedded NATS JetStream on loopback) beside a single node loaded with the same data, "+
			"in the same run: IndexFaces rate, SearchUsers latency and rate with linearizable and local reads, and write-to-visible time; "+
			"takes --users, --faces-per-user, --dim, --concurrency, --queries, --qps-duration, --seed, --data and --json, "+
			"with defaults of its own (2000 users x 2 faces, 128 dims, 64 callers, 200 queries, 3s)"),
		indexCallers:   fs.Int("index-callers", 16, "with --cluster: concurrent IndexFaces callers (one face per call) loading the faces"),
		visibleSamples: fs.Int("visible-samples", 100, "with --cluster: writes timed until another node shows them"),
	}
}

// The single-node bench's flags that cluster mode takes, and the cluster
// flags that only it takes.
var (
	benchSharedFlags = []string{"users", "faces-per-user", "dim", "concurrency", "queries", "qps-duration", "seed", "data", "json", "cluster"}
	benchClusterOnly = []string{"index-callers", "visible-samples"}
)

// clusterConfig returns the cluster benchmark's configuration from the
// flags set on the command line (the others keep bench.ClusterConfig's
// defaults), or nil without --cluster.
func (f *benchClusterFlags) clusterConfig(fs *flag.FlagSet, single *bench.Config) (*bench.ClusterConfig, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if !*f.on {
		for _, name := range benchClusterOnly {
			if set[name] {
				return nil, fmt.Errorf("--%s is for --cluster", name)
			}
		}
		return nil, nil
	}
	for name := range set {
		if !slices.Contains(benchSharedFlags, name) && !slices.Contains(benchClusterOnly, name) {
			return nil, fmt.Errorf("--%s is not for --cluster", name)
		}
	}
	pick := func(name string, v int) int {
		if set[name] {
			return v
		}
		return 0
	}
	c := &bench.ClusterConfig{Users: pick("users", single.Users), FacesPerUser: pick("faces-per-user", single.FacesPerUser),
		Dim: pick("dim", single.Dim), Concurrency: pick("concurrency", single.Concurrency), Queries: pick("queries", single.Queries),
		IndexCallers: pick("index-callers", *f.indexCallers), VisibleSamples: pick("visible-samples", *f.visibleSamples),
		Seed: single.Seed, Dir: single.Dir}
	if set["qps-duration"] {
		c.QPSDuration = single.QPSDuration
	}
	return c, c.Validate()
}

// benchCluster runs the cluster benchmark and prints its report.
func (m *Main) benchCluster(ctx context.Context, cfg *bench.ClusterConfig, asJSON bool) error {
	cfg.Progress = m.Stderr
	rep, err := bench.RunCluster(ctx, *cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(m.Stdout, rep)
	}
	return printClusterReport(m.Stdout, rep)
}

func printClusterReport(w io.Writer, r *bench.ClusterReport) error {
	fmt.Fprintf(w, "facesearch bench --cluster: %d users x %s, %d dims; three nodes with embedded NATS JetStream on loopback, beside a single node\n",
		r.Users, plural(r.FacesPerUser, "face"), r.Dim)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	fmt.Fprintf(w, "load average: %.2f at the start, %.2f at the end; %.0f s in all\n\n", r.LoadAvg[0], r.LoadAvg[1], r.ElapsedS)
	tw := newTable(w)
	fmt.Fprintln(tw, "figure\tsingle node\tcluster node\tratio (cluster / single)")
	row := func(name string, single, clustered float64, prec int, ratio float64) {
		fmt.Fprintf(tw, "%s\t%.*f\t%.*f\t%.3f\n", name, prec, single, prec, clustered, ratio)
	}
	row("index_faces_per_s (whole cluster)", r.IndexFacesPerS.Single, r.IndexFacesPerS.Cluster, 0, r.IndexFacesPerS.Ratio)
	for _, s := range r.Search {
		p := fmt.Sprintf("search c=%d ", s.Concurrency)
		row(p+"p50_ms linearizable", s.Single.P50Ms, s.Linearizable.P50Ms, 3, s.LinearizableP50Ratio)
		row(p+"p50_ms local", s.Single.P50Ms, s.Local.P50Ms, 3, s.LocalP50Ratio)
		row(p+"p99_ms linearizable", s.Single.P99Ms, s.Linearizable.P99Ms, 3, ratioOf(s.Linearizable.P99Ms, s.Single.P99Ms))
		row(p+"p99_ms local", s.Single.P99Ms, s.Local.P99Ms, 3, ratioOf(s.Local.P99Ms, s.Single.P99Ms))
		row(p+"qps linearizable", s.Single.QPS, s.Linearizable.QPS, 1, ratioOf(s.Linearizable.QPS, s.Single.QPS))
		row(p+"qps local", s.Single.QPS, s.Local.QPS, 1, ratioOf(s.Local.QPS, s.Single.QPS))
		fmt.Fprintf(tw, "%sbarriers_per_read\t\t%.3f\t\n", p, s.BarriersPerRead)
	}
	v := r.WriteToVisible
	row("write_p50_ms", v.SingleWriteP50Ms, v.WriteP50Ms, 3, ratioOf(v.WriteP50Ms, v.SingleWriteP50Ms))
	row("visible_p50_ms (on another node)", v.SingleWriteP50Ms, v.VisibleP50Ms, 3, v.VisibleRatio)
	fmt.Fprintf(tw, "visible_p99_ms (on another node)\t\t%.3f\t\n", v.VisibleP99Ms)
	return tw.Flush()
}

// ratioOf is a / b, 0 when b is.
func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
