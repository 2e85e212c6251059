package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/facesearch/facesearch/internal/records"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

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
// every embedding.
func readLabels(name string, r io.Reader) ([]identity, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256<<10), records.MaxLine)
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
			return nil, 0, fmt.Errorf("%s:%d: %v", name, line, records.Explain(err))
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

// meanUnit sets dst to a user vector, as the engine computes it.
func meanUnit(dst []float32, vecs [][]float32) {
	vector.Mean(dst, nil, len(vecs), func(i int) []float32 { return vecs[i] })
}

const (
	// pairProbes is how many probes an eval worker scores at a time (a
	// multiple of the three index.Dots scores per row read).
	pairProbes = 96
	// pairUsers is how many users it scores them against at a time: their
	// scores, pairProbes x pairUsers, stay in L2 until counted.
	pairUsers = 1024
)

// scorePairs scores every probe against every user vector. tailLen is how
// many of the highest impostor scores to keep. tick, if not nil, is told
// how many pairs are scored so far after every block of probes, one call
// at a time, the last with them all.
//
// Workers take blocks of pairProbes probes and score them against the
// users pairUsers at a time with index.Dots, which reads each user vector
// once per block rather than once per probe; every score is index.Dot's.
// A row of scores is counted in one pass, the genuine pair's score taken
// out of it by position.
func scorePairs(users [][]float32, probes []probe, genuine int, tailLen int, tick func(pairs int64)) roc.Scores {
	blocks := (len(probes) + pairProbes - 1) / pairProbes
	workers := max(1, min(runtime.GOMAXPROCS(0), blocks))
	parts := make([]*roc.Counter, workers)
	scores := make([]float32, genuine)
	if len(users) == 0 || len(probes) == 0 {
		return roc.Merge(scores, tailLen)
	}
	dim := len(users[0])
	slab := contiguous(users, dim)
	var next, done atomic.Int64
	var ticking sync.Mutex
	var wg sync.WaitGroup
	for w := range parts {
		p := roc.NewCounter(tailLen)
		parts[w] = p
		wg.Go(func() {
			qs := make([]float32, 0, pairProbes*dim)
			out := make([]float32, pairProbes*pairUsers)
			var packed []float32 // users lo to lo+n, when they are not in one slice
			if slab == nil {
				packed = make([]float32, 0, pairUsers*dim)
			}
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
					var rows []float32
					if slab != nil {
						rows = slab[lo*dim : (lo+n)*dim]
					} else {
						packed = packed[:0]
						for _, u := range users[lo : lo+n] {
							packed = append(packed, u...)
						}
						rows = packed
					}
					index.Dots(qs, rows, dim, out)
					for j, pr := range block {
						row := out[j*n : (j+1)*n]
						if m := pr.mate - lo; m >= 0 && m < n {
							scores[b*pairProbes+j] = row[m]
							p.Genuine(row[m])
							p.Impostors(row[:m])
							row = row[m+1:]
						}
						p.Impostors(row)
					}
				}
				done.Add(int64(len(block)) * int64(len(users)))
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

// contiguous returns rows, each of dim values, as the one slice they lie
// in one after another (eval's users), or nil if they do not. scorePairs
// then packs users a block at a time rather than copying them all: a
// fresh copy of a large matrix costs more in page faults than a block
// copy per probe block does in memory reads, which Dots would do anyway.
func contiguous(rows [][]float32, dim int) []float32 {
	n := len(rows) * dim
	if cap(rows[0]) < n {
		return nil
	}
	all := rows[0][:n]
	for i, r := range rows {
		if len(r) != dim || &r[0] != &all[i*dim] {
			return nil
		}
	}
	return all
}
