package main

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/facesearch/facesearch/internal/records"

	"github.com/facesearch/facesearch/index"
	"github.com/facesearch/facesearch/internal/roc"
	"github.com/facesearch/facesearch/internal/vector"
)

// The data of eval: reading a labeled set, splitting it and scoring
// pairs; internal/roc reads the operating points off the scores.

// identity is one labeled person and its normalized embeddings in file order.
type identity struct {
	name    string
	samples [][]float32
}

// readLabels reads JSON Lines of {"identity": ..., "embedding": [...]}
// (the identity a string or a number; other fields ignored), normalizing
// every embedding. Lines are decoded in batches on every core (decoding
// is most of the time eval takes besides scoring) and taken in file order,
// so identities, samples and the first bad line come out as one pass
// would give them.
func readLabels(name string, r io.Reader) ([]identity, int, error) {
	workers := runtime.GOMAXPROCS(0)
	inOrder := make(chan *labelBatch, 2*workers)
	work := make(chan *labelBatch, 2*workers)
	stop := make(chan struct{})
	// On an error the reader is not waited for: it stops once its batch
	// is full, and the workers once it has.
	defer close(stop)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				b.decode(name)
				close(b.done)
			}
		})
	}
	var scanErr error
	wg.Go(func() {
		defer close(work)
		defer close(inOrder)
		send := func(b *labelBatch) bool {
			select {
			case <-stop: // before a send that could also go ahead
				return false
			default:
			}
			for _, ch := range []chan *labelBatch{inOrder, work} {
				select {
				case ch <- b:
				case <-stop:
					return false
				}
			}
			return true
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 256<<10), records.MaxLine)
		b := &labelBatch{first: 1, done: make(chan struct{})}
		for line := 1; sc.Scan(); line++ {
			b.data = append(b.data, sc.Bytes()...)
			b.ends = append(b.ends, len(b.data))
			if len(b.data) >= labelBatchBytes {
				if !send(b) {
					return
				}
				b = &labelBatch{first: line + 1, done: make(chan struct{})}
			}
		}
		scanErr = sc.Err()
		if len(b.ends) > 0 {
			send(b)
		}
	})

	var ids []identity
	at := map[string]int{}
	dim := 0
	for b := range inOrder {
		<-b.done
		for _, rec := range b.recs {
			if dim == 0 {
				dim = rec.dim
			}
			if rec.dim != dim {
				return nil, 0, fmt.Errorf("%s:%d: the embedding has %d dimensions, the first one had %d", name, rec.line, rec.dim, dim)
			}
			if rec.err != nil {
				return nil, 0, rec.err
			}
			i, ok := at[rec.label]
			if !ok {
				i = len(ids)
				at[rec.label] = i
				ids = append(ids, identity{name: rec.label})
			}
			ids[i].samples = append(ids[i].samples, rec.vec)
		}
		if b.err != nil {
			return nil, 0, b.err
		}
	}
	wg.Wait()
	if scanErr != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, scanErr)
	}
	if len(ids) == 0 {
		return nil, 0, fmt.Errorf("%s: no labeled embeddings", name)
	}
	return ids, dim, nil
}

// labelBatchBytes is about how many bytes of lines a batch of readLabels
// holds: enough to make a batch's hand-offs cheap beside its decoding.
const labelBatchBytes = 1 << 20

// labelBatch is a run of lines of a labeled set, decoded by one worker.
type labelBatch struct {
	first int // the first line's number
	data  []byte
	ends  []int // where each line ends in data
	// Set by decode: the lines' samples up to the first bad line, and
	// that line's error (in its sample if the line decoded, as its
	// dimension is checked first).
	recs []labeledSample
	err  error
	done chan struct{}
}

type labeledSample struct {
	line  int
	label string
	dim   int
	vec   []float32
	err   error // the embedding could not be normalized
}

// decode decodes and normalizes b's lines, skipping blank ones, up to the
// first bad one.
func (b *labelBatch) decode(name string) {
	start := 0
	var rec records.Labeled // its embedding's array reused line to line
	for k, end := range b.ends {
		line, text := b.first+k, bytes.TrimSpace(b.data[start:end])
		start = end
		if len(text) == 0 {
			continue
		}
		if err := records.DecodeLabeled(text, &rec); err != nil {
			b.err = fmt.Errorf("%s:%d: %v", name, line, err)
			break
		}
		v, err := unit(rec.Embedding)
		if err != nil {
			err = fmt.Errorf("%s:%d: %v", name, line, err)
		}
		b.recs = append(b.recs, labeledSample{line: line, label: rec.Identity, dim: len(rec.Embedding), vec: v, err: err})
		if err != nil {
			break
		}
	}
	b.data, b.ends = nil, nil
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

// meanUnit sets dst to a user vector, as the engine computes it.
func meanUnit(dst []float32, vecs [][]float32) {
	vector.Mean(dst, nil, len(vecs), func(i int) []float32 { return vecs[i] })
}

// pairProbes is how many probes an eval worker scores at a time: each
// panel of users read from memory serves them all.
const pairProbes = 96

// scorePairs scores every probe against every user of the gallery (user
// u in row u: a probe's mate is its row). tailLen is how many of the
// highest impostor scores to keep. tick, if not nil, is told how many
// pairs are scored so far after every block of probes, one call at a
// time, the last with them all.
//
// Workers take blocks of pairProbes probes and score them against the
// users with [index.Matrix.DotsRuns], which reads each user vector once per
// block rather than once per probe; every score is index.Dot's. The
// scores are counted where the kernel leaves them (see pairCounter).
func scorePairs(gallery *index.Matrix, probes []probe, genuine int, tailLen int, tick func(pairs int64)) roc.Scores {
	blocks := (len(probes) + pairProbes - 1) / pairProbes
	workers := max(1, min(runtime.GOMAXPROCS(0), blocks))
	parts := make([]*roc.Counter, workers)
	scores := make([]float32, genuine)
	users := gallery.Len()
	if users == 0 || len(probes) == 0 {
		return roc.Merge(scores, tailLen)
	}
	dim := gallery.Dim()
	var next, done atomic.Int64
	var ticking sync.Mutex
	var wg sync.WaitGroup
	for w := range parts {
		p := roc.NewCounter(tailLen)
		parts[w] = p
		wg.Go(func() {
			pc := pairCounter{c: p, genuine: scores}
			qs := make([]float32, 0, pairProbes*dim)
			for {
				b := int(next.Add(1) - 1)
				if b >= blocks {
					return
				}
				block := probes[b*pairProbes : min((b+1)*pairProbes, len(probes))]
				pc.start(block, b*pairProbes)
				qs = qs[:0]
				for _, pr := range block {
					qs = append(qs, pr.vec...)
				}
				gallery.DotsRuns(qs, pc.count)
				done.Add(int64(len(block)) * int64(users))
				if tick != nil {
					ticking.Lock()
					tick(done.Load())
					ticking.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return roc.Merge(scores, tailLen, parts...)
}

// pairCounter counts a worker's scores, a block of probes against a run
// of users at a time, in the kernel's layout: each probe's scores of the
// run in one pass, its genuine score, if the run holds its mate, taken out.
type pairCounter struct {
	c       *roc.Counter
	genuine []float32 // every genuine probe's score, by probe
	block   []probe
	first   int        // block[j] is probe first+j
	mates   []pairMate // the block's genuine pairs, by user
	next    int        // mates[next:] are in runs not counted yet
	row     []int      // per probe of the block, the run's row of its mate or -1
}

type pairMate struct{ user, j int }

// start sets the counter to a block of probes, block[0] being probe first.
func (pc *pairCounter) start(block []probe, first int) {
	pc.block, pc.first, pc.next = block, first, 0
	pc.mates = pc.mates[:0]
	pc.row = pc.row[:0]
	for j, pr := range block {
		if pr.mate >= 0 {
			pc.mates = append(pc.mates, pairMate{pr.mate, j})
		}
		pc.row = append(pc.row, -1)
	}
	slices.SortFunc(pc.mates, func(a, b pairMate) int { return cmp.Compare(a.user, b.user) })
}

// count counts a run of users against the block.
func (pc *pairCounter) count(d index.DotsRun) {
	from := pc.next
	for end := d.Lo + d.N; pc.next < len(pc.mates) && pc.mates[pc.next].user < end; pc.next++ {
		m := pc.mates[pc.next]
		r := m.user - d.Lo
		s := d.Scores[m.j*d.Stride+r]
		pc.genuine[pc.first+m.j] = s
		pc.c.Genuine(s)
		pc.row[m.j] = r
	}
	for j := range pc.block {
		sc := d.Scores[j*d.Stride : j*d.Stride+d.N]
		if r := pc.row[j]; r >= 0 {
			pc.c.Impostors(sc[:r])
			sc = sc[r+1:]
		}
		pc.c.Impostors(sc)
	}
	for _, m := range pc.mates[from:pc.next] {
		pc.row[m.j] = -1
	}
}
