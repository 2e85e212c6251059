package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/facesearch/facesearch/bench"
	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/roc"
)

const benchSynopsis = `[--users N] [--faces-per-user F] [--dim D] [--concurrency C] [--batch B] [--eval-probes P] [--tier int8|float16|none] [--no-throughput] [--dump DIR] [--json] [--data DIR]
       facesearch bench --cluster [--users N] [--faces-per-user F] [--dim D] [--concurrency C] [--queries Q] [--index-callers N] [--visible-samples N] [--json]

bench loads a synthetic collection (users whose faces scatter around random
identities) into a fresh store and measures, in one run: the memory-bandwidth
floor of a scan, a naive scan, SearchUsers latency and concurrent throughput,
bulk import and IndexFaces rates, reopen time, memory per user, and the
compressed tier's latency and agreement with exact search. Its throughput
phases (--no-throughput skips them) measure the machine's float32 FMA peak,
batched searches of C and B queries, B concurrent callers, and eval's
scoring of probes against every user. Progress goes to standard error; the
report to standard output, as a table or (--json) one JSON object. The
defaults finish in under two minutes on a 2-core machine; the data set needs
about 4*N*F*D bytes of memory besides the engine's. --dump writes the user
vectors and probes as .npy files for bench/faiss_compare.py. --cluster
measures a three-node cluster beside a single node instead (bench/README.md,
"Cluster mode").`

func (m *Main) bench(ctx context.Context, args []string) error {
	fs := m.newFlagSet("bench", benchSynopsis, examples(
		"facesearch bench",
		"facesearch bench --users 1000000 --faces-per-user 1 --dim 512 --json > report.json",
		"facesearch bench --users 100000 --dim 128 --tier float16",
		"facesearch bench --json --dump /tmp/fsdump > report.json && bench/faiss_compare.py /tmp/fsdump --report report.json",
		"facesearch bench --cluster --users 20000 --json > cluster.json",
	))
	var cfg bench.Config
	fs.IntVar(&cfg.Users, "users", 200_000, "`N` users")
	fs.IntVar(&cfg.FacesPerUser, "faces-per-user", 2, "`F` faces per user (1-100)")
	fs.IntVar(&cfg.Dim, "dim", 512, "embedding dimension `D`")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "`C` concurrent callers for qps_concurrent")
	fs.StringVar(&cfg.Tier, "tier", "int8", "compressed `tier` measured besides float32: int8, float16 or none")
	fs.StringVar(&cfg.Dir, "data", "", "store `DIR`, empty or absent (default: a temporary directory, removed afterwards)")
	fs.IntVar(&cfg.Queries, "queries", 100, "`Q` searches timed one at a time for p50/p99")
	fs.IntVar(&cfg.AgreementQueries, "agreement-queries", 1000, "searches compared between the compressed tier and float32")
	fs.IntVar(&cfg.APIFaces, "api-faces", 20_000, "faces indexed through IndexFaces, one per call")
	fs.DurationVar(&cfg.QPSDuration, "qps-duration", 5*time.Second, "how long the concurrent callers run")
	fs.Int64Var(&cfg.Seed, "seed", 0, "data set `seed`")
	fs.IntVar(&cfg.Batch, "batch", 256, "the larger batch size `B` of the throughput figures (queries per call, and callers)")
	fs.IntVar(&cfg.EvalProbes, "eval-probes", 384, "probes eval scores against every user for eval_s (scaled to 10,000 for eval_10k_s)")
	fs.BoolVar(&cfg.SkipThroughput, "no-throughput", false, "skip the throughput phases (FMA peak, batched, coalesced, eval)")
	fs.StringVar(&cfg.DumpDir, "dump", "", "write users.npy and probes.npy to `DIR` (for bench/faiss_compare.py)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	cf := addBenchClusterFlags(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if cc, err := cf.clusterConfig(fs, &cfg); err != nil {
		return usageErrorf(fs, "%v", err)
	} else if cc != nil {
		return m.benchCluster(ctx, cc, *asJSON)
	}
	if err := cfg.Validate(); err != nil {
		return usageErrorf(fs, "%v", err)
	}
	cfg.Eval = benchEval
	limitMemory()
	rep, err := bench.Run(ctx, cfg, m.Stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(m.Stdout, rep)
	}
	return printBenchReport(m.Stdout, rep)
}

// benchEval scores every probe against every user with eval's own scorer,
// the probes as strangers: eval's cost does not depend on which are mates.
func benchEval(ctx context.Context, users *index.Matrix, probes [][]float32) error {
	ps := make([]probe, len(probes))
	for i, v := range probes {
		ps[i] = probe{vec: v, mate: -1}
	}
	scorePairs(users, ps, 0, roc.TailLength(evalFARs[0], int64(users.Len())*int64(len(probes))), nil)
	return ctx.Err()
}

// limitMemory sets a soft memory limit of 90% of the machine's memory,
// unless GOMEMLIMIT set one: the benchmark holds several copies of a large
// data set, and at the default GOGC the heap may otherwise grow to twice
// what is live before a collection.
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil && kb > 0 {
			debug.SetMemoryLimit(kb * 1024 / 10 * 9)
			return
		}
	}
}

func printBenchReport(w io.Writer, r *bench.Report) error {
	fmt.Fprintf(w, "facesearch bench: %d users x %s, %d dims, %d concurrent callers\n",
		r.Users, plural(r.FacesPerUser, "face"), r.Dim, r.Concurrency)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	fmt.Fprintf(w, "load average: %.2f at the start, %.2f at the end; %.0f s in all\n\n", r.LoadAvg[0], r.LoadAvg[1], r.ElapsedS)
	tw := newTable(w)
	fmt.Fprintln(tw, "figure\tvalue\tratio (same run)")
	row := func(name string, v float64, prec int, ratio string) {
		fmt.Fprintf(tw, "%s\t%.*f\t%s\n", name, prec, v, ratio)
	}
	x := func(v float64) string { return fmt.Sprintf("%.2f x floor", v) }
	row("floor_ms", r.FloorMs, 2, x(1))
	row("naive_ms", r.NaiveMs, 1, x(r.Ratios.NaiveMs))
	row("search_p50_ms", r.SearchP50Ms, 2, x(r.Ratios.SearchP50Ms))
	row("search_p99_ms", r.SearchP99Ms, 2, x(r.Ratios.SearchP99Ms))
	row("qps_concurrent", r.QPSConcurrent, 1, fmt.Sprintf("%.2f per floor_ms", r.Ratios.QPSConcurrent))
	row("ingest_faces_per_s", r.IngestFacesPerS, 0, "")
	row("api_index_faces_per_s", r.APIIndexFacesPerS, 0, "")
	openRead := ""
	if r.OpenReadBytes != nil {
		openRead = fmt.Sprintf("%.0f MB read from storage", float64(*r.OpenReadBytes)/1e6)
	}
	row("open_s", r.OpenS, 2, openRead)
	row("bytes_per_user", r.BytesPerUser, 0, fmt.Sprintf("%.3f x 4*dim", r.Ratios.BytesPerUser))
	if r.FMAPeakGFLOPS > 0 {
		row("fma_peak_gflops", r.FMAPeakGFLOPS, 1, fmt.Sprintf("%s, %d workers", r.FMAPeakKernel, r.FMAPeakWorkers))
	}
	throughputRows(tw, "", r.Throughput)
	if r.EvalS > 0 {
		row("eval_s", r.EvalS, 2, fmt.Sprintf("%d probes x %d users", r.EvalProbes, r.Users))
		row("eval_10k_s", r.Eval10kS, 1, fmt.Sprintf("scaled from %d probes", r.EvalProbes))
	}
	if c := r.Compressed; c != nil {
		t := c.Tier + " "
		row(t+"floor_ms", c.FloorMs, 2, "its searches' floor")
		row(t+"search_p50_ms", c.SearchP50Ms, 2, x(r.Ratios.CompressedSearchP50Ms))
		row(t+"search_p99_ms", c.SearchP99Ms, 2, x(c.SearchP99Ms/c.FloorMs))
		row(t+"qps_concurrent", c.QPSConcurrent, 1, fmt.Sprintf("%.2f per floor_ms", r.Ratios.CompressedQPS))
		row(t+"top10_agreement", c.Top10Agreement, 4, fmt.Sprintf("of %d queries", c.AgreementQueries))
		row(t+"fallback_rate", c.FallbackRate, 4, "")
		row(t+"bytes_per_user", c.BytesPerUser, 0, fmt.Sprintf("%.3f x 4*dim", c.BytesPerUser/float64(4*r.Dim)))
		row(t+"ingest_faces_per_s", c.IngestFacesPerS, 0, "")
		throughputRows(tw, t, c.Throughput)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\ntargets (the issue states them for 1M users x 512 dims):")
	tw = newTable(w)
	for _, t := range r.Targets {
		verdict := "met"
		if !t.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(tw, "  %s\t%s %s\tmeasured %s\n", verdict, t.Name, t.Goal, strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", t.Measured), "0"), "."))
	}
	return tw.Flush()
}

// throughputRows prints one collection's batched and coalesced rows, each
// size's batched row beside the peak and its coalesced row beside it.
func throughputRows(w io.Writer, prefix string, ts []bench.Throughput) {
	for _, x := range ts {
		best := ""
		if x.BestPassVsPeak > 0 {
			best = fmt.Sprintf("; best pass %.1f GFLOP/s, %.2f x its peak reads", x.BestPassGFLOPS, x.BestPassVsPeak)
		}
		fmt.Fprintf(w, "%sbatched_%d_qps\t%.1f\t%.1f GFLOP/s, %.2f x peak%s\n", prefix, x.Batch, x.BatchedQPS, x.BatchedGFLOPS, x.BatchedVsPeak, best)
	}
	for _, x := range ts {
		fmt.Fprintf(w, "%scoalesced_%d_qps\t%.1f\t%.2f x batched_%d\n", prefix, x.Batch, x.CoalescedQPS, x.CoalescedVsBatched, x.Batch)
	}
}
