package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Report is what one [Run] measured. Times are wall-clock medians unless
// named as percentiles; every figure comes from the same run, so the ratios
// to the floor compare like with like.
type Report struct {
	Users        int    `json:"users"`
	FacesPerUser int    `json:"faces_per_user"`
	Dim          int    `json:"dim"`
	Concurrency  int    `json:"concurrency"`
	Machine      string `json:"machine"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start and the end:
	// other work on the machine shows up in every timing.
	LoadAvg [2]float64 `json:"load_avg"`

	// FloorMs is one read of the user matrix: the sum of all its floats,
	// with the workers and chunks a search uses ([index.Matrix.Sum]); the
	// median of reads interleaved with the timed float32 searches.
	FloorMs float64 `json:"floor_ms"`
	// NaiveMs is a straightforward Go loop over the same rows, one
	// goroutine, scalar dot products, keeping the top 10.
	NaiveMs float64 `json:"naive_ms"`
	// SearchP50Ms and SearchP99Ms time Engine.SearchUsersByImage, one query
	// at a time (MaxUsers 10, UserMatchThreshold 0).
	SearchP50Ms float64 `json:"search_p50_ms"`
	SearchP99Ms float64 `json:"search_p99_ms"`
	// QPSConcurrent is SearchUsersByImage throughput with Concurrency
	// callers (coalesced passes).
	QPSConcurrent float64 `json:"qps_concurrent"`
	// IngestFacesPerS is Engine.NewImporter over every face, into a fresh
	// collection, durable at the end (Close syncs).
	IngestFacesPerS float64 `json:"ingest_faces_per_s"`
	// APIIndexFacesPerS is IndexFaces through the engine, one face and one
	// synced commit per call, from APICallers callers sharing fsyncs.
	APIIndexFacesPerS float64 `json:"api_index_faces_per_s"`
	// OpenS is Engine.Open of the store until the first search is served.
	OpenS float64 `json:"open_s"`
	// OpenReadBytes is what the process had read from storage during that
	// reopen (/proc/self/io's read_bytes): near 0 when the import's tables
	// were still in the page cache, up to their size when the kernel had
	// dropped them, which makes the reopen several times slower. Absent
	// where the system does not report it.
	OpenReadBytes *int64 `json:"open_read_bytes,omitempty"`
	// BytesPerUser is the resident memory of the user index per user:
	// runtime.MemStats.HeapAlloc after GC, before and after building an
	// index.Matrix of the users' vectors as the engine builds its own.
	BytesPerUser float64 `json:"bytes_per_user"`

	// FMAPeakGFLOPS is the machine's float32 multiply-add ceiling,
	// [index.FMAPeak] on GOMAXPROCS workers (the search's): the best of
	// reads taken just before each batched measurement. FMAPeakKernel
	// names the loop it ran, FMAPeakWorkers on how many goroutines. All
	// three are absent with SkipThroughput, as are the throughput and eval
	// figures.
	FMAPeakGFLOPS  float64 `json:"fma_peak_gflops,omitempty"`
	FMAPeakKernel  string  `json:"fma_peak_kernel,omitempty"`
	FMAPeakWorkers int     `json:"fma_peak_workers,omitempty"`
	// Throughput is the float32 collection's many-query figures at
	// Concurrency and at Batch queries.
	Throughput []Throughput `json:"throughput,omitempty"`
	// EvalS is the eval scorer (`facesearch eval`'s) over EvalProbes
	// probes and every user; Eval10kS scales it to 10,000 probes. Absent
	// when Config.Eval is nil.
	EvalProbes int     `json:"eval_probes,omitempty"`
	EvalS      float64 `json:"eval_s,omitempty"`
	Eval10kS   float64 `json:"eval_10k_s,omitempty"`

	// The compressed tier: empty when Tier is "none".
	Compressed *CompressedReport `json:"compressed,omitempty"`

	// Ratios puts each figure beside the floor: times as multiples of
	// floor_ms, qps as queries served per floor_ms, bytes per user as a
	// multiple of the raw 4·dim.
	Ratios Ratios `json:"ratios"`
	// Targets are the performance goals (stated for 1M users x 512 dims),
	// checked against this run.
	Targets []Target `json:"targets"`
	// ElapsedS is the whole run.
	ElapsedS float64 `json:"elapsed_s"`
}

// CompressedReport is the compressed tier's figures.
type CompressedReport struct {
	Tier string `json:"tier"`
	// FloorMs is the floor read interleaved with this tier's timed
	// searches (the same float32 matrix as the report's floor_ms, minutes
	// later): its search ratios are to this one.
	FloorMs     float64 `json:"floor_ms"`
	SearchP50Ms float64 `json:"search_p50_ms"`
	SearchP99Ms float64 `json:"search_p99_ms"`
	// QPSConcurrent is as for float32.
	QPSConcurrent float64 `json:"qps_concurrent"`
	// Top10Agreement is the fraction of AgreementQueries whose top-10
	// (users, similarities and order) equals the float32 collection's.
	Top10Agreement float64 `json:"top10_agreement"`
	// AgreementQueries is how many queries that fraction is of.
	AgreementQueries int `json:"agreement_queries"`
	// FallbackRate is the fraction of searches, on an index.Matrix of the
	// same users, that could not prove their candidates complete and
	// scanned the float32 rows too.
	FallbackRate float64 `json:"fallback_rate"`
	// BytesPerUser is as for float32, with the compressed copy included.
	BytesPerUser float64 `json:"bytes_per_user"`
	// IngestFacesPerS is the bulk import into the compressed collection.
	IngestFacesPerS float64 `json:"ingest_faces_per_s"`
	// Throughput is as for float32, on this tier's collection.
	Throughput []Throughput `json:"throughput,omitempty"`
}

// Throughput is one collection's many-query figures at one batch size.
type Throughput struct {
	// Batch is the queries per call, and the concurrent callers.
	Batch int `json:"batch"`
	// BatchedQPS is Engine.SearchUsersBatch of Batch queries a call, one
	// call after another: queries answered per second.
	BatchedQPS float64 `json:"batched_qps"`
	// BatchedGFLOPS is the float32 arithmetic those answers stand for,
	// 2·users·dim·BatchedQPS, in GFLOP/s (a compressed tier does other
	// work, but answers the same questions); BatchedVsPeak divides it by
	// the report's fma_peak_gflops.
	BatchedGFLOPS float64 `json:"batched_gflops"`
	BatchedVsPeak float64 `json:"batched_vs_peak"`
	// BestPassGFLOPS is the float32 collection's fastest single batched
	// call among a few, each timed right after a short read of the FMA
	// peak, and BestPassVsPeak its ratio to the best of those reads (see
	// harness.bestPass): best against best, where BatchedVsPeak is a mean
	// against a best. Absent for a compressed tier.
	BestPassGFLOPS float64 `json:"best_pass_gflops,omitempty"`
	BestPassVsPeak float64 `json:"best_pass_vs_peak,omitempty"`
	// CoalescedQPS is SearchUsersByImage from Batch concurrent callers,
	// whose searches share passes; CoalescedVsBatched divides it by
	// BatchedQPS. At Concurrency callers it is qps_concurrent itself.
	CoalescedQPS       float64 `json:"coalesced_qps"`
	CoalescedVsBatched float64 `json:"coalesced_vs_batched"`
}

// Ratios are the report's figures relative to the floor.
type Ratios struct {
	NaiveMs               float64 `json:"naive_ms"`
	SearchP50Ms           float64 `json:"search_p50_ms"`
	SearchP99Ms           float64 `json:"search_p99_ms"`
	QPSConcurrent         float64 `json:"qps_concurrent"`
	CompressedSearchP50Ms float64 `json:"compressed_search_p50_ms,omitempty"`
	CompressedQPS         float64 `json:"compressed_qps_concurrent,omitempty"`
	BytesPerUser          float64 `json:"bytes_per_user"`
}

// Target is one goal and whether this run met it.
type Target struct {
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Measured float64 `json:"measured"`
	Met      bool    `json:"met"`
}

// fill derives the ratios and checks the targets.
func (r *Report) fill() {
	f := r.FloorMs
	r.Ratios = Ratios{
		NaiveMs:       r.NaiveMs / f,
		SearchP50Ms:   r.SearchP50Ms / f,
		SearchP99Ms:   r.SearchP99Ms / f,
		QPSConcurrent: r.QPSConcurrent * f / 1000,
		BytesPerUser:  r.BytesPerUser / float64(4*r.Dim),
	}
	t := func(name, goal string, measured float64, met bool) {
		r.Targets = append(r.Targets, Target{Name: name, Goal: goal, Measured: measured, Met: met})
	}
	t("search_p50_ms", "<= 1.10 x floor_ms", r.Ratios.SearchP50Ms, r.Ratios.SearchP50Ms <= 1.10)
	t("naive_ms", ">= 8 x search_p50_ms", r.NaiveMs/r.SearchP50Ms, r.NaiveMs >= 8*r.SearchP50Ms)
	t("qps_concurrent", ">= 4 / floor_ms", r.Ratios.QPSConcurrent, r.Ratios.QPSConcurrent >= 4)
	if c := r.Compressed; c != nil {
		r.Ratios.CompressedSearchP50Ms = c.SearchP50Ms / c.FloorMs
		r.Ratios.CompressedQPS = c.QPSConcurrent * c.FloorMs / 1000
		t("compressed search_p50_ms", "<= 0.4 x floor_ms", r.Ratios.CompressedSearchP50Ms, r.Ratios.CompressedSearchP50Ms <= 0.4)
		t("compressed top10_agreement", ">= 0.999", c.Top10Agreement, c.Top10Agreement >= 0.999)
	}
	t("ingest_faces_per_s", ">= 100000", r.IngestFacesPerS, r.IngestFacesPerS >= 100_000)
	t("api_index_faces_per_s", ">= 10000", r.APIIndexFacesPerS, r.APIIndexFacesPerS >= 10_000)
	t("open_s", "<= 3", r.OpenS, r.OpenS <= 3)
	t("bytes_per_user", "<= 1.15 x 4·dim", r.Ratios.BytesPerUser, r.Ratios.BytesPerUser <= 1.15)
	r.fillThroughput("", r.Throughput, true, t)
	if c := r.Compressed; c != nil {
		r.fillThroughput("compressed ", c.Throughput, false, t)
	}
	if r.EvalS > 0 {
		at1M := r.Eval10kS * 1e6 / float64(r.Users)
		t("eval_10k_s", "<= 60 at 1M users (scaled)", at1M, at1M <= 60)
	}
}

// fillThroughput derives one collection's throughput ratios and checks
// their targets: with peak (float32: a compressed tier's arithmetic is
// another), the largest batch near the FMA peak; at every size, coalesced
// callers near the batched rate.
func (r *Report) fillThroughput(prefix string, ts []Throughput, peak bool, t func(name, goal string, measured float64, met bool)) {
	for i := range ts {
		x := &ts[i]
		x.BatchedVsPeak = x.BatchedGFLOPS / r.FMAPeakGFLOPS
		x.CoalescedVsBatched = x.CoalescedQPS / x.BatchedQPS
	}
	if len(ts) > 0 && peak {
		x := ts[len(ts)-1]
		t(fmt.Sprintf("batched_%d_gflops", x.Batch), ">= 0.85 x fma_peak_gflops", x.BatchedVsPeak, x.BatchedVsPeak >= 0.85)
	}
	for _, x := range ts {
		t(fmt.Sprintf("%scoalesced_%d_qps", prefix, x.Batch), fmt.Sprintf(">= 0.8 x batched_%d_qps", x.Batch),
			x.CoalescedVsBatched, x.CoalescedVsBatched >= 0.8)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentile(s, 0.5)
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
