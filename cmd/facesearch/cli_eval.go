package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/facesearch/facesearch/index"
)

// The arithmetic of eval: reading a labeled set, splitting it, scoring
// pairs and reading operating points off the score distributions.

// evalFARs are the false-accept rates eval reports, strictest last.
var evalFARs = []float64{1e-2, 1e-3, 1e-4}

// evalPercents are the similarities the suggested curve puts at the
// thresholds of evalFARs: 80, the default SearchUsers and SearchFaces
// threshold, lands on FAR 1e-4, as the arcface curve intends for
// ArcFace-family models; AssociateFaces' default 75 falls between 1e-3 and
// 1e-4.
var evalPercents = []float64{60, 70, 80}

// identity is one labeled person and its normalized embeddings in file order.
type identity struct {
	name    string
	samples [][]float32
}

// readLabels reads JSON Lines of {"identity": ..., "embedding": [...]}
// (the identity a string or a number; other fields ignored), normalizing
// every embedding.
func readLabels(name string, r io.Reader) ([]identity, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256<<10), maxLine)
	var ids []identity
	at := map[string]int{}
	dim := 0
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec struct {
			Identity  json.RawMessage `json:"identity"`
			Embedding []float64       `json:"embedding"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %v", name, line, jsonProblem(err))
		}
		label, err := identityLabel(rec.Identity)
		if err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if len(rec.Embedding) == 0 {
			return nil, 0, fmt.Errorf("%s:%d: no \"embedding\"", name, line)
		}
		if dim == 0 {
			dim = len(rec.Embedding)
		}
		if len(rec.Embedding) != dim {
			return nil, 0, fmt.Errorf("%s:%d: the embedding has %d dimensions, the first one had %d", name, line, len(rec.Embedding), dim)
		}
		v, err := unit(rec.Embedding)
		if err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		i, ok := at[label]
		if !ok {
			i = len(ids)
			at[label] = i
			ids = append(ids, identity{name: label})
		}
		ids[i].samples = append(ids[i].samples, v)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %v", name, err)
	}
	if len(ids) == 0 {
		return nil, 0, fmt.Errorf("%s: no labeled embeddings", name)
	}
	return ids, dim, nil
}

func identityLabel(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && s != "" {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && n != "" {
		return n.String(), nil
	}
	return "", errors.New(`no "identity": want a string or a number`)
}

// unit normalizes v as the engine does: norm in float64, float32 result.
func unit(v []float64) ([]float32, error) {
	var s float64
	for _, x := range v {
		s += x * x
	}
	if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, errors.New("the embedding is zero or not finite")
	}
	n := math.Sqrt(s)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x / n)
	}
	return out, nil
}

// evalSplit is who is enrolled, who probes, who is a stranger.
type evalSplit struct {
	gallery   []identity // enrolled identities; user i is gallery[i]
	enrolled  [][][]float32
	probes    []probe // genuine probes, then strangers' embeddings
	genuine   int     // probes[:genuine] have a mate
	strangers int     // identities held out
}

type probe struct {
	vec  []float32
	mate int // gallery index, -1 for a stranger
}

// splitLabels holds out round(impostors * n) identities as strangers,
// chosen with seed, and of every other identity enrolls the first k
// embeddings in file order and probes with the rest.
func splitLabels(ids []identity, k int, impostors float64, seed uint64) evalSplit {
	rng := rand.New(rand.NewPCG(seed, 0x6576616c))
	nStrangers := min(int(math.Round(impostors*float64(len(ids)))), len(ids)-1)
	held := map[int]bool{}
	for _, i := range rng.Perm(len(ids))[:max(nStrangers, 0)] {
		held[i] = true
	}
	var s evalSplit
	var strangers []probe
	for i, id := range ids {
		if held[i] {
			for _, v := range id.samples {
				strangers = append(strangers, probe{vec: v, mate: -1})
			}
			s.strangers++
			continue
		}
		g := len(s.gallery)
		s.gallery = append(s.gallery, id)
		n := min(k, len(id.samples))
		s.enrolled = append(s.enrolled, id.samples[:n])
		for _, v := range id.samples[n:] {
			s.probes = append(s.probes, probe{vec: v, mate: g})
		}
	}
	s.genuine = len(s.probes)
	s.probes = append(s.probes, strangers...)
	return s
}

// meanUnit is a user vector: the normalized mean of normalized faces.
func meanUnit(vecs [][]float32) []float32 {
	sum := make([]float64, len(vecs[0]))
	for _, v := range vecs {
		for i, x := range v {
			sum[i] += float64(x)
		}
	}
	out, err := unit(sum)
	if err != nil { // faces that cancel out: keep the first one's direction
		return slices.Clone(vecs[0])
	}
	return out
}

// histBins is the resolution of the score histograms, over cosine [-1, 1]:
// fine enough that the ROC drawn from them is smooth.
const histBins = 4000

func histBin(s float32) int {
	return min(max(int((float64(s)+1)/2*histBins), 0), histBins-1)
}

// pairScores is every (probe, user) cosine, summarized: genuine scores
// kept whole, impostor scores as a histogram plus their highest ones, which
// is all the FARs of interest need.
type pairScores struct {
	genuine   []float32 // one per genuine probe, in probe order
	impostors int64
	tail      []float32 // the highest impostor scores, descending
	genHist   []int64
	impHist   []int64
}

const (
	// pairProbes is how many probes an eval worker scores at a time (a
	// multiple of the three index.Dots scores per row read).
	pairProbes = 48
	// pairUsers is how many users it scores them against at a time: their
	// scores, pairProbes x pairUsers, stay in L2 until counted.
	pairUsers = 4096
)

// scorePairs scores every probe against every user vector. tailLen is how
// many of the highest impostor scores to keep.
//
// Workers take blocks of pairProbes probes and score them against the
// users pairUsers at a time with index.Dots, which reads each user vector
// once per block rather than once per probe; every score is index.Dot's.
func scorePairs(users [][]float32, probes []probe, genuine int, tailLen int) pairScores {
	blocks := (len(probes) + pairProbes - 1) / pairProbes
	workers := max(1, min(runtime.GOMAXPROCS(0), blocks))
	type part struct {
		tail             floatMinHeap
		genHist, impHist []int64
		impostors        int64
	}
	ps := pairScores{genuine: make([]float32, genuine)}
	if len(users) == 0 || len(probes) == 0 {
		ps.genHist, ps.impHist = make([]int64, histBins), make([]int64, histBins)
		return ps
	}
	dim := len(users[0])
	packed := make([]float32, 0, len(users)*dim)
	for _, u := range users {
		packed = append(packed, u...)
	}
	parts := make([]part, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range parts {
		p := &parts[w]
		p.tail.limit = tailLen
		p.genHist, p.impHist = make([]int64, histBins), make([]int64, histBins)
		wg.Go(func() {
			qs := make([]float32, 0, pairProbes*dim)
			out := make([]float32, pairProbes*pairUsers)
			for {
				b := int(next.Add(1) - 1)
				if b >= blocks {
					return
				}
				block := probes[b*pairProbes : min((b+1)*pairProbes, len(probes))]
				qs = qs[:0]
				for _, pr := range block {
					qs = append(qs, pr.vec...)
				}
				for lo := 0; lo < len(users); lo += pairUsers {
					n := min(pairUsers, len(users)-lo)
					index.Dots(qs, packed[lo*dim:(lo+n)*dim], dim, out)
					for j, pr := range block {
						for r, s := range out[j*n : (j+1)*n] {
							if lo+r == pr.mate {
								ps.genuine[b*pairProbes+j] = s
								p.genHist[histBin(s)]++
								continue
							}
							p.impostors++
							p.impHist[histBin(s)]++
							p.tail.offer(s)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	ps.genHist, ps.impHist = make([]int64, histBins), make([]int64, histBins)
	for _, p := range parts {
		ps.impostors += p.impostors
		ps.tail = append(ps.tail, p.tail.items...)
		for b := range histBins {
			ps.genHist[b] += p.genHist[b]
			ps.impHist[b] += p.impHist[b]
		}
	}
	slices.SortFunc(ps.tail, func(a, b float32) int { return cmp.Compare(b, a) })
	if len(ps.tail) > tailLen {
		ps.tail = ps.tail[:tailLen]
	}
	return ps
}

// floatMinHeap keeps the limit largest values offered.
type floatMinHeap struct {
	items []float32
	limit int
}

func (h *floatMinHeap) offer(x float32) {
	if len(h.items) < h.limit {
		h.items = append(h.items, x)
		for i := len(h.items) - 1; i > 0; {
			p := (i - 1) / 2
			if h.items[p] <= h.items[i] {
				break
			}
			h.items[p], h.items[i] = h.items[i], h.items[p]
			i = p
		}
		return
	}
	if h.limit == 0 || x <= h.items[0] {
		return
	}
	h.items[0] = x
	for i, n := 0, len(h.items); ; {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && h.items[c+1] < h.items[c] {
			c++
		}
		if h.items[i] <= h.items[c] {
			return
		}
		h.items[i], h.items[c] = h.items[c], h.items[i]
		i = c
	}
}

// tailLength is how many of the highest impostor scores the loosest FAR
// needs: its threshold is the score just past floor(FAR * n) of them.
func tailLength(impostors int64) int {
	return int(math.Floor(evalFARs[0]*float64(impostors))) + 1
}

// operatingPoint is one row of eval's table.
type operatingPoint struct {
	FAR float64 `json:"FAR"`
	// Cosine is the least cosine accepted at this FAR: accepting cosines
	// >= Cosine accepts at most FAR of the impostor pairs.
	Cosine float64 `json:"Cosine"`
	// TAR is the share of genuine pairs accepted.
	TAR float64 `json:"TAR"`
	// AchievedFAR is the share of impostor pairs accepted, at most FAR.
	AchievedFAR float64 `json:"AchievedFAR"`
	// ImpostorPairsAbove is how many impostor pairs the FAR allows:
	// below 10 the threshold is rough.
	ImpostorPairsAbove int64 `json:"ImpostorPairsAbove"`
	// StrangersMatched is the share of strangers' searches whose best
	// user reaches Cosine (the false-positive identification rate); null
	// without strangers.
	StrangersMatched *float64 `json:"StrangersMatched"`
}

// operatingPoints reads the threshold of every FAR off the impostor tail
// and the TAR off the genuine scores. strangerTop is each stranger
// search's best cosine.
func operatingPoints(ps pairScores, strangerTop []float32) []operatingPoint {
	out := make([]operatingPoint, len(evalFARs))
	for i, far := range evalFARs {
		k := int64(math.Floor(far * float64(ps.impostors)))
		var t float32
		switch {
		case ps.impostors == 0:
			t = -1
		case int(k) < len(ps.tail):
			// Just above the (k+1)-th highest impostor score, so at most
			// k impostor pairs reach it.
			t = math.Nextafter32(ps.tail[k], 2)
		default:
			t = math.Nextafter32(ps.tail[len(ps.tail)-1], 2)
		}
		p := operatingPoint{FAR: far, Cosine: float64(t), ImpostorPairsAbove: k}
		var acc int64
		for _, s := range ps.tail {
			if s >= t {
				acc++
			}
		}
		if ps.impostors > 0 {
			p.AchievedFAR = float64(acc) / float64(ps.impostors)
		}
		n := 0
		for _, s := range ps.genuine {
			if s >= t {
				n++
			}
		}
		if len(ps.genuine) > 0 {
			p.TAR = float64(n) / float64(len(ps.genuine))
		}
		if len(strangerTop) > 0 {
			m := 0
			for _, s := range strangerTop {
				if s >= t {
					m++
				}
			}
			f := float64(m) / float64(len(strangerTop))
			p.StrangersMatched = &f
		}
		out[i] = p
	}
	return out
}

// suggestCurve builds a similarity curve spec ("c:p,...") putting
// evalPercents at the thresholds of evalFARs, zero at and below cosine 0
// (unrelated faces), 100 at cosine 1. Thresholds are rounded up to 4
// decimals, so each FAR holds; one that does not rise above the point
// before it is left out (the stricter FAR keeps the spot).
func suggestCurve(points []operatingPoint) string {
	type pt struct{ c, p float64 }
	pts := []pt{{-1, 0}}
	for i, op := range points {
		c := math.Ceil(op.Cosine*1e4) / 1e4
		if c <= -1 || c >= 1 {
			continue
		}
		if c == 0 { // (0, 0) would clash with the zero knee below
			c = 0.0001
		}
		for len(pts) > 1 && pts[len(pts)-1].c >= c {
			pts = pts[:len(pts)-1]
		}
		if len(pts) == 1 && c > 0 {
			pts = append(pts, pt{0, 0})
		}
		pts = append(pts, pt{c, evalPercents[i]})
	}
	pts = append(pts, pt{1, 100})
	parts := make([]string, len(pts))
	for i, p := range pts {
		parts[i] = strconv.FormatFloat(p.c, 'f', -1, 64) + ":" + strconv.FormatFloat(p.p, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}
