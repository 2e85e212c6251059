package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/roc"
)

const evalSynopsis = `--labels FILE [--enroll K] [--impostors F] [--seed S] [--plot PATH] [--quiet] [--output table|json]

Measures how well your embeddings tell people apart, and suggests the
similarity curve (the facesearch:similarity collection setting) that makes
the default thresholds mean what they should for your model.

FILE is JSON Lines with a label and an embedding per line (other fields are
ignored):
  {"identity": "alice", "embedding": [0.12, -0.03, ...]}

In a temporary store of its own (your --data store is not touched), eval
holds out --impostors of the identities (chosen with --seed) as strangers,
enrolls every other identity's first K embeddings (file order) as one user
and keeps the rest as genuine probes. It then
  - searches the users with every genuine probe: the identification rate is
    how often the best user is the probe's own (rank 1);
  - scores every (probe, user) pair: a probe with its own user is a genuine
    pair, with any other user (and every stranger's embedding with every
    user) an impostor pair;
  - reports, at a false-accept rate (FAR, impostor pairs accepted) of 1e-2,
    1e-3 and 1e-4, the cosine threshold that gives it, the true-accept rate
    (TAR, genuine pairs accepted) there and the share of strangers whose
    best match would pass;
  - suggests a curve putting similarity 60, 70 and 80 at those thresholds:
    80 is the SearchUsers and SearchFaces default, so with it the default
    threshold means FAR 1e-4 per comparison;
  - draws the ROC curve and the genuine and impostor score histograms.
FAR 1e-4 needs well over 10,000 impostor pairs to mean much; the table
says how many pairs each threshold rests on. Scoring every pair takes
longest: a progress line on standard error tells how far it is.`

// evalFARs are the false-accept rates eval reports, strictest last.
var evalFARs = []float64{1e-2, 1e-3, 1e-4}

// evalPercents are the similarities the suggested curve puts at the
// thresholds of evalFARs: 80, the default SearchUsers and SearchFaces
// threshold, lands on FAR 1e-4, as the arcface curve intends for
// ArcFace-family models; AssociateFaces' default 75 falls between 1e-3 and
// 1e-4.
var evalPercents = []float64{60, 70, 80}

// evalReport is eval's result, printed as a table or JSON.
type evalReport struct {
	Identities          int                  `json:"Identities"`
	Embeddings          int                  `json:"Embeddings"`
	Dimension           int                  `json:"Dimension"`
	Seed                uint64               `json:"Seed"`
	Enroll              int                  `json:"EnrollPerUser"`
	Users               int                  `json:"Users"`
	GenuineProbes       int                  `json:"GenuineProbes"`
	StrangerIdentities  int                  `json:"StrangerIdentities"`
	StrangerProbes      int                  `json:"StrangerProbes"`
	GenuinePairs        int                  `json:"GenuinePairs"`
	ImpostorPairs       int64                `json:"ImpostorPairs"`
	IdentificationRate  float64              `json:"IdentificationRate"`
	Identified          int                  `json:"Identified"`
	OperatingPoints     []roc.OperatingPoint `json:"OperatingPoints"`
	SuggestedSimilarity string               `json:"SuggestedSimilarity"`
	Plot                string               `json:"Plot,omitempty"`
}

// evalCurve maps cosine c to similarity 50(c+1), so a search's similarity
// gives its cosine back.
const evalCurve = "-1:0,1:100"

func (m *Main) eval(ctx context.Context, args []string) error {
	fs := m.newFlagSet("eval", evalSynopsis, examples(
		"facesearch eval --labels labeled.jsonl",
		"facesearch eval --labels labeled.jsonl --enroll 3 --impostors 0.3 --plot roc.png --output json",
		"facesearch import --collection staff --create --similarity \"$(facesearch eval --labels labeled.jsonl --output json | jq -r .SuggestedSimilarity)\" embeddings/",
	))
	labels := fs.String("labels", "", "the labeled embeddings, JSON Lines `FILE` (required; - is standard input)")
	enroll := fs.Int("enroll", 2, "embeddings per identity enrolled as its user, `K` (1-100)")
	impostors := fs.Float64("impostors", 0.2, "`fraction` of the identities held out as strangers (0 to <1)")
	seed := fs.Uint64("seed", 1, "`seed` choosing the strangers")
	plotPath := fs.String("plot", "eval.png", "write the ROC and score histograms to this PNG `PATH` (\"\" for none)")
	quiet := fs.Bool("quiet", false, "no progress output")
	output := addOutputFlag(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *labels == "":
		return usageErrorf(fs, "--labels is required")
	case *enroll < 1 || *enroll > 100:
		return usageErrorf(fs, "--enroll is %d; want 1 to 100 (a user holds at most 100 faces)", *enroll)
	case !(*impostors >= 0 && *impostors < 1):
		return usageErrorf(fs, "--impostors is %g; want at least 0 and below 1", *impostors)
	}
	if err := checkOutput(fs, *output); err != nil {
		return err
	}

	in := m.Stdin
	if *labels != "-" {
		f, err := os.Open(*labels)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	ids, dim, err := readLabels(*labels, in)
	if err != nil {
		return err
	}
	split := splitLabels(ids, *enroll, *impostors, *seed)
	if split.genuine == 0 {
		return fmt.Errorf("no enrolled identity has more than %d embeddings, so nothing is left to probe with: lower --enroll", *enroll)
	}
	rep := evalReport{Identities: len(ids), Dimension: dim, Seed: *seed, Enroll: *enroll, Users: len(split.gallery),
		GenuineProbes: split.genuine, StrangerIdentities: split.strangers, StrangerProbes: len(split.probes) - split.genuine,
		GenuinePairs: split.genuine}
	for _, id := range ids {
		rep.Embeddings += len(id.samples)
	}

	// The engine, in a store of its own, does the searching.
	tmp, err := os.MkdirTemp("", "facesearch-eval")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	e, err := engine.Open(tmp, nil)
	if err != nil {
		return err
	}
	defer e.Close()
	const coll = "eval"
	if _, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: coll, Similarity: evalCurve, Dimension: dim}); err != nil {
		return err
	}
	enrolled := 0
	for _, faces := range split.enrolled {
		enrolled += len(faces)
	}
	im, err := e.NewImporter(ctx, coll, &engine.ImportOptions{ExpectedFaces: min(enrolled, math.MaxInt32), ExpectedUsers: min(len(split.enrolled), math.MaxInt32)})
	if err != nil {
		return err
	}
	// The users' mean faces, laid out for scorePairs: user g in row g.
	keys := make([]uint64, len(split.enrolled))
	for g := range keys {
		keys[g] = uint64(g)
	}
	gallery := index.NewMatrix(dim)
	fill := gallery.AddRows(keys)
	mean := make([]float32, dim)
	for g, faces := range split.enrolled {
		for _, v := range faces {
			if err := im.Add(engine.ImportRecord{Vector: v, UserId: fmt.Sprintf("id-%d", g)}); err != nil {
				fill.Done()
				return err
			}
		}
		meanUnit(mean, faces)
		fill.Set(g, mean)
	}
	fill.Done()
	if err := im.Close(); err != nil {
		return err
	}
	top, err := topMatches(ctx, e, coll, split.probes)
	if err != nil {
		return err
	}
	for i := range split.genuine {
		if top[i].user == fmt.Sprintf("id-%d", split.probes[i].mate) {
			rep.Identified++
		}
	}
	rep.IdentificationRate = float64(rep.Identified) / float64(split.genuine)
	strangerTop := make([]float32, 0, len(split.probes)-split.genuine)
	for _, t := range top[split.genuine:] {
		strangerTop = append(strangerTop, t.cosine)
	}

	users := gallery.Len()
	impostorPairs := int64(split.genuine)*int64(users-1) + int64(len(split.probes)-split.genuine)*int64(users)
	prog := newProgress(m.Stderr, "pairs", impostorPairs+int64(split.genuine), *quiet)
	ps := scorePairs(gallery, split.probes, split.genuine, roc.TailLength(evalFARs[0], impostorPairs), func(pairs int64) {
		prog.Tick(pairs, int(pairs))
	})
	prog.Done()
	rep.ImpostorPairs = ps.Impostors
	rep.OperatingPoints = roc.OperatingPoints(ps, evalFARs, strangerTop)
	rep.SuggestedSimilarity = roc.SuggestCurve(rep.OperatingPoints, evalPercents)
	// The engine is the judge of a curve spec.
	if _, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "check", Similarity: rep.SuggestedSimilarity}); err != nil {
		return fmt.Errorf("the suggested curve %s is not one the engine accepts: %v", rep.SuggestedSimilarity, err)
	}
	if *plotPath != "" {
		if err := writeEvalPlot(*plotPath, ps, rep.OperatingPoints); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		rep.Plot = *plotPath
	}
	if *output == "json" {
		return writeJSON(m.Stdout, rep)
	}
	return m.printEval(rep)
}

// match is the best user of one search.
type match struct {
	user   string
	cosine float32
}

// evalChunk is how many probes one SearchUsersBatch call of eval takes.
// Chunks run side by side, so that all cores search even where the
// collection is too small for one search to spread over them.
const evalChunk = 256

// topMatches searches the users with every probe through the engine, in
// batches, and returns each search's best user and its cosine.
func topMatches(ctx context.Context, e *engine.Engine, coll string, probes []probe) ([]match, error) {
	out := make([]match, len(probes))
	chunks := (len(probes) + evalChunk - 1) / evalChunk
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	zero, one := float32(0), int32(1)
	for range max(1, min(runtime.GOMAXPROCS(0), chunks)) {
		wg.Go(func() {
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				lo, hi := c*evalChunk, min((c+1)*evalChunk, len(probes))
				vecs := make([][]float32, hi-lo)
				for i := range vecs {
					vecs[i] = probes[lo+i].vec
				}
				res, err := e.SearchUsersBatch(ctx, &engine.SearchUsersBatchInput{CollectionId: coll, Vectors: vecs, UserMatchThreshold: &zero, MaxUsers: &one})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					next.Store(int64(chunks))
					return
				}
				for i, r := range res.Results {
					if len(r.UserMatches) > 0 {
						u := r.UserMatches[0]
						out[lo+i] = match{user: u.User.UserId, cosine: u.Similarity/50 - 1}
					} else {
						out[lo+i] = match{cosine: -1}
					}
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return out, nil
}

func (m *Main) printEval(r evalReport) error {
	w := m.Stdout
	fmt.Fprintf(w, "labeled set      %s, %s of dimension %d\n", plural(r.Identities, "identity"), plural(r.Embeddings, "embedding"), r.Dimension)
	fmt.Fprintf(w, "split (seed %d)   %s enrolled as users (first %d embeddings each), %s\n", r.Seed, plural(r.Users, "identity"), r.Enroll, plural(r.GenuineProbes, "genuine probe"))
	if r.StrangerIdentities > 0 {
		fmt.Fprintf(w, "                 %s held out as strangers, %s\n", plural(r.StrangerIdentities, "identity"), plural(r.StrangerProbes, "stranger probe"))
	}
	fmt.Fprintf(w, "pairs            %d genuine, %d impostor\n", r.GenuinePairs, r.ImpostorPairs)
	fmt.Fprintf(w, "identification   %.2f%% rank-1 (%d of %d genuine probes find their own user first)\n\n", 100*r.IdentificationRate, r.Identified, r.GenuineProbes)
	tw := newTable(w)
	fmt.Fprintln(tw, "FAR\tCOSINE\tTAR\tSTRANGERS MATCHED\tIMPOSTOR PAIRS ALLOWED")
	for _, p := range r.OperatingPoints {
		strangers := "-"
		if p.StrangersMatched != nil {
			strangers = fmt.Sprintf("%.2f%%", 100**p.StrangersMatched)
		}
		allowed := fmt.Sprint(p.ImpostorPairsAbove)
		if p.ImpostorPairsAbove < 10 {
			allowed += " (too few: rough)"
		}
		fmt.Fprintf(tw, "%.0e\t%.4f\t%.2f%%\t%s\t%s\n", p.FAR, p.Cosine, 100*p.TAR, strangers, allowed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nsuggested similarity curve (similarity 60/70/80 at FAR 1e-2/1e-3/1e-4):\n  %s\n", r.SuggestedSimilarity)
	fmt.Fprintf(w, "use it when creating a collection:\n  facesearch import --create --similarity '%s' ...\n  aws rekognition create-collection --collection-id C --tags '{\"facesearch:similarity\":\"%s\"}'\n", r.SuggestedSimilarity, r.SuggestedSimilarity)
	if r.Plot != "" {
		fmt.Fprintf(w, "plot             %s\n", r.Plot)
	}
	return nil
}
