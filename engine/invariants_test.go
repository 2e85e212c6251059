package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireConsistent fails t unless every collection of e agrees with itself
// (collection.verify: maps, matrices, counters, user vectors recomputed)
// and with its store: loading the store afresh builds the same faces,
// users, vectors and counters. Nothing may mutate e meanwhile.
// indexed indexes vecs into coll and returns the new faces' IDs, in order.
func indexed(t testing.TB, e *Engine, coll string, vecs ...[]float32) []string {
	t.Helper()
	in := &IndexFacesInput{CollectionId: coll}
	for _, v := range vecs {
		in.Faces = append(in.Faces, FaceEmbedding{Vector: v})
	}
	out, err := e.IndexFaces(context.Background(), in)
	require.NoError(t, err)
	ids := make([]string, len(out.FaceRecords))
	for i, r := range out.FaceRecords {
		ids[i] = r.Face.FaceId
	}
	return ids
}

func requireConsistent(t testing.TB, e *Engine) {
	t.Helper()
	require.Empty(t, inconsistencies(e))
}

func inconsistencies(e *Engine) []string {
	var problems []string
	addf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	e.mu.RLock()
	colls := maps.Clone(e.colls)
	e.mu.RUnlock()
	metas, err := e.store.Collections()
	if err != nil {
		return []string{err.Error()}
	}
	stored := map[string]bool{}
	for _, m := range metas {
		stored[m.ID] = true
		c := colls[m.ID]
		if c == nil {
			addf("collection %q is in the store, not in memory", m.ID)
			continue
		}
		c.verify(func(format string, args ...any) { addf("collection %q: "+format, append([]any{m.ID}, args...)...) }, true)
		fresh, err := e.loadCollection(m)
		if err != nil {
			addf("collection %q: reload: %v", m.ID, err)
			continue
		}
		fresh.verify(func(format string, args ...any) {
			addf("collection %q, reloaded: "+format, append([]any{m.ID}, args...)...)
		}, true)
		for _, p := range diffCollections(c, fresh) {
			addf("collection %q: %s", m.ID, p)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(colls)) {
		if !stored[id] {
			addf("collection %q is in memory, not in the store", id)
		}
	}
	return problems
}

// diffCollections lists how live (the engine's) differs from fresh (loaded
// from the store just now).
func diffCollections(live, fresh *collection) []string {
	var out []string
	addf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	live.writeMu.Lock()
	defer live.writeMu.Unlock()
	live.mu.RLock()
	defer live.mu.RUnlock()
	lm, fm := live.meta, fresh.meta
	if !lm.Created.Equal(fm.Created) {
		addf("created %v in memory, %v stored", lm.Created, fm.Created)
	}
	lm.Created = fm.Created
	if lm != fm {
		addf("metadata %+v in memory, %+v stored", lm, fm)
	}
	if live.dim != fresh.dim || live.seq != fresh.seq || live.curve.name != fresh.curve.name {
		addf("settings (dim %d, seq %d, %s) in memory, (dim %d, seq %d, %s) stored",
			live.dim, live.seq, live.curve.name, fresh.dim, fresh.seq, fresh.curve.name)
	}
	// A failed commit may have used up face sequences; none may be reused.
	if live.faceSeq.Load() < fresh.faceSeq.Load() {
		addf("face sequence counter %d in memory is behind %d stored", live.faceSeq.Load(), fresh.faceSeq.Load())
	}
	for _, id := range slices.Sorted(maps.Keys(live.faces)) {
		if fresh.faces[id] == nil {
			addf("face %s is in memory, not in the store", id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(fresh.faces)) {
		lf, ff := live.faces[id], fresh.faces[id]
		if lf == nil {
			addf("face %s is in the store, not in memory", id)
			continue
		}
		if *lf != *ff {
			addf("face %s is %+v in memory, %+v stored", id, *lf, *ff)
			continue
		}
		lv, _ := live.faceVector(lf.seq)
		fv, _ := fresh.faceVector(ff.seq)
		if !slices.Equal(lv, fv) {
			addf("face %s has another vector in memory than stored", id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(live.users)) {
		if fresh.users[id] == nil {
			addf("user %q is in memory, not in the store", id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(fresh.users)) {
		lu, fu := live.users[id], fresh.users[id]
		switch {
		case lu == nil:
			addf("user %q is in the store, not in memory", id)
			continue
		case lu.pk != fu.pk || !lu.created.Equal(fu.created) || !slices.Equal(lu.faces, fu.faces):
			addf("user %q is (pk %d, faces %v) in memory, (pk %d, faces %v) stored", id, lu.pk, lu.faces, fu.pk, fu.faces)
			continue
		}
		if live.userIdx == nil || fresh.userIdx == nil {
			continue // no dimension yet, so no vectors
		}
		if !slices.Equal(live.vectorOf(lu), fresh.vectorOf(fu)) {
			addf("user %q has another vector in memory than recomputed from the store", id)
		}
	}
	return out
}
