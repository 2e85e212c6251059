package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/facesearch/facesearch/engine"
)

// The phases that write: generating the faces, the bulk import, and
// IndexFaces through the API.

// generate makes every face, and the probes, on all cores.
func (h *harness) generate(ctx context.Context) error {
	cfg := h.cfg
	per := cfg.FacesPerUser * cfg.Dim
	h.faces = make([]float32, cfg.Users*per)
	p := h.ticker("generated", "users", cfg.Users)
	defer p.stop()
	err := each(ctx, runtime.GOMAXPROCS(0), cfg.Users, func(i int) error {
		for j, f := range h.gen.Faces(i) {
			copy(h.faces[i*per+j*cfg.Dim:], f)
		}
		p.add(1)
		return nil
	})
	if err != nil {
		return err
	}
	h.probes = make([][]float32, cfg.probeCount())
	for i := range h.probes {
		h.probes[i] = probe(h.gen, cfg, i)
	}
	return nil
}

// probe is a run's i-th probe: a fresh face of a user that i and the
// seed choose.
func probe(g *Generator, cfg Config, i int) []float32 {
	return g.Probe(int(genMix(uint64(i)^uint64(cfg.Seed))%uint64(cfg.Users)), i)
}

func (h *harness) face(user, j int) []float32 {
	per := h.cfg.FacesPerUser * h.cfg.Dim
	off := user*per + j*h.cfg.Dim
	return h.faces[off : off+h.cfg.Dim : off+h.cfg.Dim]
}

func userID(i int) string { return fmt.Sprintf("user-%08d", i) }

// ingest creates coll in tier and bulk-imports every face into it,
// returning faces per second from NewImporter to a durable Close.
func (h *harness) ingest(ctx context.Context, coll, tier string) (float64, error) {
	cfg := h.cfg
	if _, err := h.e.CreateCollection(ctx, &engine.CreateCollectionInput{
		CollectionId: coll, Dimension: cfg.Dim, Tier: tier}); err != nil {
		return 0, err
	}
	total := cfg.Users * cfg.FacesPerUser
	h.logf("importing %d faces into %s (%s)", total, coll, tier)
	p := h.ticker("imported", "faces", total)
	defer p.stop()
	t0 := time.Now()
	im, err := h.e.NewImporter(ctx, coll, &engine.ImportOptions{ExpectedFaces: min(total, math.MaxInt32), ExpectedUsers: min(cfg.Users, math.MaxInt32)})
	if err != nil {
		return 0, err
	}
	for i := range cfg.Users {
		id := userID(i)
		for j := range cfg.FacesPerUser {
			if err := im.Add(engine.ImportRecord{Vector: h.face(i, j), UserId: id}); err != nil {
				im.Close()
				return 0, err
			}
		}
		p.add(cfg.FacesPerUser)
	}
	if err := im.Close(); err != nil {
		return 0, err
	}
	el := time.Since(t0)
	rate := float64(total) / el.Seconds()
	h.logf("imported %d faces in %.1f s: %.0f faces/s", total, el.Seconds(), rate)
	return rate, nil
}

// apiIndex indexes APIFaces fresh faces into a new collection through
// IndexFaces, one face per call, from APICallers goroutines.
func (h *harness) apiIndex(ctx context.Context) (float64, error) {
	cfg := h.cfg
	if _, err := h.e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: collAPI, Dimension: cfg.Dim}); err != nil {
		return 0, err
	}
	// Impostors: fresh vectors, none of them a user's, made before the
	// timing, which is IndexFaces's alone: on a machine of few cores the
	// generator's work would crowd the callers' between commits.
	h.logf("making %d vectors for IndexFaces", cfg.APIFaces)
	vecs := make([][]float32, cfg.APIFaces)
	if err := each(ctx, runtime.GOMAXPROCS(0), len(vecs), func(i int) error {
		vecs[i] = h.gen.Impostor(i)
		return nil
	}); err != nil {
		return 0, err
	}
	h.logf("indexing %d faces through IndexFaces from %d callers", cfg.APIFaces, cfg.APICallers)
	p := h.ticker("indexed", "faces", cfg.APIFaces)
	defer p.stop()
	t0 := time.Now()
	err := each(ctx, cfg.APICallers, cfg.APIFaces, func(i int) error {
		_, err := h.e.IndexFaces(ctx, &engine.IndexFacesInput{CollectionId: collAPI,
			Faces: []engine.FaceEmbedding{{Vector: vecs[i]}}})
		if err == nil {
			p.add(1)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return float64(cfg.APIFaces) / time.Since(t0).Seconds(), nil
}
