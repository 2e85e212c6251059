package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/records"
)

// probeChunk is how many probes search --queries hands the engine at once:
// enough for its batched passes to run at full width, few enough that the
// probes and their results in memory stay small whatever the file's size.
const probeChunk = 1024

// probeID heads each line of search --queries' output: the probe's place
// in the input (from 0) and its external image ID, if it had one.
type probeID struct {
	Probe           int    `json:"Probe"`
	ExternalImageId string `json:"ExternalImageId,omitempty"`
}

// usersProbeResult and facesProbeResult are the lines of search --queries:
// the probe, then what SearchUsersByImage or SearchFacesByImage answers
// for it. (One type embedding both outputs would lose the field names
// they share.)
type usersProbeResult struct {
	probeID
	*engine.SearchUsersByImageOutput
}

type facesProbeResult struct {
	probeID
	*engine.SearchFacesByImageOutput
}

// searchQueries searches users or faces (what) with every probe of path,
// an (n, d) or (d,) .npy or JSON Lines of records with an "embedding", and
// writes one JSON line per probe, in input order.
func (m *Main) searchQueries(ctx context.Context, e *engine.Engine, what, coll, path string, threshold float32, maxResults int32, quiet bool) error {
	format := inputFormat(path)
	if format == "" {
		format = "jsonl"
	}
	rf, err := m.openRecords(path, format, "")
	if err != nil {
		return err
	}
	defer rf.close()
	prog := newProgress(m.Stderr, "probes", rf.size, quiet)
	defer prog.Done()
	enc := records.NewEncoder(m.Stdout)

	var chunk []records.Sourced
	done := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := searchChunk(ctx, e, enc, what, coll, chunk, done, threshold, maxResults); err != nil {
			return err
		}
		done += len(chunk)
		chunk = chunk[:0]
		prog.Tick(rf.read.n.Load(), done)
		return nil
	}
	for s, err := range rf.recs {
		if err != nil {
			return err
		}
		if s.Rec.Vector == nil {
			return fmt.Errorf("%s: a probe needs an embedding", s.Pos)
		}
		if chunk = append(chunk, s); len(chunk) == probeChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// searchChunk searches one chunk of probes, the first of which is probe
// first of the input, and writes their results.
func searchChunk(ctx context.Context, e *engine.Engine, enc *json.Encoder, what, coll string, chunk []records.Sourced, first int, threshold float32, maxResults int32) error {
	vecs := make([][]float32, len(chunk))
	for i, s := range chunk {
		vecs[i] = s.Rec.Vector
	}
	results := make([]any, len(chunk))
	var err error
	if what == "users" {
		var out *engine.SearchUsersBatchOutput
		out, err = e.SearchUsersBatch(ctx, &engine.SearchUsersBatchInput{CollectionId: coll, Vectors: vecs, UserMatchThreshold: &threshold, MaxUsers: &maxResults})
		if err == nil {
			for i, s := range chunk {
				results[i] = usersProbeResult{probeID{first + i, s.Rec.ExternalImageId}, &out.Results[i]}
			}
		}
	} else {
		var out *engine.SearchFacesBatchOutput
		out, err = e.SearchFacesBatch(ctx, &engine.SearchFacesBatchInput{CollectionId: coll, Vectors: vecs, FaceMatchThreshold: &threshold, MaxFaces: &maxResults})
		if err == nil {
			for i, s := range chunk {
				results[i] = facesProbeResult{probeID{first + i, s.Rec.ExternalImageId}, &out.Results[i]}
			}
		}
	}
	if err != nil {
		if errors.Is(err, engine.ErrInvalidParameter) {
			// The engine names the vector by its place in the chunk.
			return fmt.Errorf("probes %s to %s: %w", chunk[0].Pos, chunk[len(chunk)-1].Pos, err)
		}
		return err
	}
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
