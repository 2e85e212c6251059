package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/vector"
)

// Config describes one benchmark run: a synthetic collection (see
// [GenConfig]) loaded into a fresh store and measured. The zero value of
// each field selects its default; the defaults finish in about a minute on
// a 2-core machine.
type Config struct {
	// Users is the number of users (identities). The default value is
	// 200000.
	Users int
	// FacesPerUser is the number of faces each user has. The default value
	// is 2.
	FacesPerUser int
	// Dim is the embedding dimension. The default value is 512.
	Dim int
	// Concurrency is the number of callers measuring qps_concurrent. The
	// default value is 32.
	Concurrency int
	// Tier is the compressed tier measured besides float32: "int8",
	// "float16", or "none" to skip it. The default value is "int8".
	Tier string
	// Dir is the store directory, which must be empty or absent; it is
	// left in place afterwards. The default value is "": a temporary
	// directory, removed at the end.
	Dir string
	// Queries is the number of single searches timed for the latency
	// percentiles. The default value is 100.
	Queries int
	// AgreementQueries is the number of searches whose top-10 the
	// compressed tier is compared on with float32. The default value is
	// 1000.
	AgreementQueries int
	// APIFaces is the number of faces indexed through IndexFaces, one per
	// call, for api_index_faces_per_s. The default value is 20000.
	APIFaces int
	// APICallers is the number of concurrent IndexFaces callers. The
	// default value is 16.
	APICallers int
	// QPSDuration is how long the concurrent callers run. The default
	// value is 5s.
	QPSDuration time.Duration
	// Seed selects the synthetic data set. The default value is 0.
	Seed int64

	// Batch is the larger of the two batch sizes the throughput figures
	// are measured at, as queries per SearchUsersBatch call and as
	// concurrent callers; the smaller is Concurrency. The default value
	// is 256.
	Batch int
	// EvalProbes is how many probes the eval timing scores against every
	// user; eval_10k_s scales its time to 10,000 probes. The default
	// value is 384 (eight of eval's blocks of probes, four per core here).
	EvalProbes int
	// Eval scores every probe against every user as `facesearch eval`
	// does; Run times it for eval_s. The command sets it; when nil the
	// eval figures are left out. The default value is nil.
	Eval func(ctx context.Context, users *index.Matrix, probes [][]float32) error
	// SkipThroughput leaves out the throughput phases: the FMA peak, the
	// batched and coalesced figures at both batch sizes, and eval. The
	// default value is false.
	SkipThroughput bool
	// DumpDir, when not empty, is a directory (created if absent) where
	// Run writes the user vectors and the probes as users.npy and
	// probes.npy, for bench/faiss_compare.py to search the same data. The
	// default value is "": no dump.
	DumpDir string
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Users, 200_000)
	def(&c.FacesPerUser, 2)
	def(&c.Dim, 512)
	def(&c.Concurrency, 32)
	def(&c.Queries, 100)
	def(&c.AgreementQueries, 1000)
	def(&c.APIFaces, 20_000)
	def(&c.APICallers, 16)
	def(&c.Batch, 256)
	def(&c.EvalProbes, 384)
	if c.Tier == "" {
		c.Tier = "int8"
	}
	if c.QPSDuration == 0 {
		c.QPSDuration = 5 * time.Second
	}
	return c
}

// Validate reports every problem with c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	pos := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("bench: %s is %d, want at least 1", name, v))
		}
	}
	pos("Users", c.Users)
	pos("FacesPerUser", c.FacesPerUser)
	pos("Concurrency", c.Concurrency)
	pos("Queries", c.Queries)
	pos("AgreementQueries", c.AgreementQueries)
	pos("APIFaces", c.APIFaces)
	pos("APICallers", c.APICallers)
	pos("Batch", c.Batch)
	pos("EvalProbes", c.EvalProbes)
	if c.Dim < 2 || c.Dim > vector.MaxDim {
		errs = append(errs, fmt.Errorf("bench: Dim is %d, want 2 to %d", c.Dim, vector.MaxDim))
	}
	if c.FacesPerUser > 100 {
		errs = append(errs, fmt.Errorf("bench: FacesPerUser is %d, a user holds at most 100", c.FacesPerUser))
	}
	if c.Tier != "none" {
		if t, err := index.ParseTier(c.Tier); err != nil || t == index.TierFloat32 {
			errs = append(errs, fmt.Errorf("bench: Tier is %q, want int8, float16 or none", c.Tier))
		}
	}
	if c.QPSDuration < 0 {
		errs = append(errs, fmt.Errorf("bench: QPSDuration %v is negative", c.QPSDuration))
	}
	if c.Batch > maxBatch {
		errs = append(errs, fmt.Errorf("bench: Batch is %d, want at most %d", c.Batch, maxBatch))
	}
	if c.EvalProbes > maxEvalProbes {
		errs = append(errs, fmt.Errorf("bench: EvalProbes is %d, want at most %d", c.EvalProbes, maxEvalProbes))
	}
	return errors.Join(errs...)
}

// The generated probes are all held in memory, as many as the largest of
// Queries, AgreementQueries, Batch and EvalProbes: these caps keep them
// (and a batch's results) within reason.
const (
	maxBatch      = 1 << 16
	maxEvalProbes = 100_000
)

// probeCount is how many probes a run generates: enough for every phase.
func (c Config) probeCount() int {
	n := max(c.Queries, c.AgreementQueries)
	if !c.SkipThroughput {
		n = max(n, c.Batch, c.Concurrency)
		if c.Eval != nil {
			n = max(n, c.EvalProbes)
		}
	}
	return n
}
