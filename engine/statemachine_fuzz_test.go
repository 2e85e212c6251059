package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzStateMachine runs random operation sequences against the engine and
// against smModel, a plain in-memory model of the contract, and compares
// every answer: results, error codes, unsuccessful-item reasons, search
// rankings, listings and counts, idempotent replays. After each sequence
// (and after each reopen within one) the engine's in-memory state must
// agree with itself and with its store.
//
// The input is a byte stream. The first byte picks the collection's
// similarity curve, whether its dimension is fixed at creation and its
// search tier (float32, int8 or float16: a compressed tier must answer
// exactly as float32). Then each operation takes an opcode byte and as many
// argument bytes as it needs (zeros once the input runs out).
// Vectors have 4 small-integer components, so equal, opposite and zero
// vectors, ties and cancelling user means are common.
func FuzzStateMachine(f *testing.F) {
	for _, seed := range smSeeds() {
		f.Add(seed)
	}
	dir := f.TempDir()
	var e *Engine
	f.Cleanup(func() {
		if e != nil {
			e.Close()
		}
	})
	runs := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		if e == nil {
			var err error
			e, err = Open(dir, nil)
			require.NoError(t, err)
		}
		runs++
		s := &smRun{t: t, e: &e, dir: dir, in: data, m: newSMModel(fmt.Sprintf("fz-%d", runs))}
		s.run()
	})
}

// smSeeds are a few hand-made sequences and some seeded random ones.
func smSeeds() [][]byte {
	seeds := [][]byte{
		{},
		// index 3 faces, create u0, associate, search users by face, list, describe.
		{0, 0, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 0, 9, 3, 0, 2, 0, 1, 1, 0, 6, 0, 0, 0, 1, 10, 1, 0, 11, 1, 12},
		// opposite faces on one user cancel out; then delete the user and the faces.
		{0, 0, 1, 0, 32, 32, 32, 32, 0, 0, 0, 0xe0, 0xe0, 0xe0, 0xe0, 0, 1, 1, 0, 3, 1, 0, 0, 1, 0, 1, 6, 1, 1, 1, 2, 1, 0, 5, 1, 0, 1},
		// tokens: create with a token, replay, replay with other parameters.
		{1, 0, 3, 0, 1, 0, 3, 0, 1, 1, 3, 0, 2, 0, 3, 0, 13},
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 8 {
		b := make([]byte, 96)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		seeds = append(seeds, b)
	}
	return seeds
}

const (
	smDim      = 4
	smMaxOps   = 48
	smUsers    = 4
	smTokens   = 3
	smSimSlack = 0.01 // percent: float32 scan versus float64 model
)

// smUnknownFaces are well-formed face IDs no collection has.
var smUnknownFaces = []string{"00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-ffffffffffff"}

type smFace struct {
	id, ext, owner string
	seq            int       // indexing order: the engine's face key order
	vec            []float32 // normalized, as stored
}

type smUser struct {
	id    string
	pk    int
	faces []string // sorted
}

type smToken struct {
	params string
	resp   []byte
}

type smModel struct {
	coll    string
	dim     int
	curve   string
	faces   map[string]*smFace
	users   map[string]*smUser
	tokens  map[string]smToken // op + "/" + token
	seq, pk int
}

func newSMModel(coll string) *smModel {
	return &smModel{coll: coll, faces: map[string]*smFace{}, users: map[string]*smUser{}, tokens: map[string]smToken{}}
}

type smRun struct {
	stats   map[string]int // operation/outcome -> count, when not nil
	t       *testing.T
	e       **Engine
	dir     string
	in      []byte
	pos     int
	m       *smModel
	reopens int
}

func (s *smRun) next() byte {
	if s.pos >= len(s.in) {
		s.pos++
		return 0
	}
	b := s.in[s.pos]
	s.pos++
	return b
}

func (s *smRun) eng() *Engine { return *s.e }

// count tallies an operation's outcome: "ok" or the error code.
func (s *smRun) count(op string, err error) {
	if s.stats == nil {
		return
	}
	if err == nil {
		s.stats[op+" ok"]++
	} else {
		s.stats[op+" "+codeOf(err)]++
	}
}

func (s *smRun) run() {
	t, m := s.t, s.m
	ctx := context.Background()
	opts := s.next()
	in := &CreateCollectionInput{CollectionId: m.coll, Similarity: SimilarityArcFace}
	if opts&1 == 1 {
		in.Similarity = SimilarityCosine
	}
	if opts&2 == 2 {
		in.Dimension = smDim
		m.dim = smDim
	}
	// Compressed tiers must answer exactly as float32 does.
	in.Tier = []string{"", "int8", "float16", "float32"}[(opts>>2)%4]
	m.curve = in.Similarity
	_, err := s.eng().CreateCollection(ctx, in)
	require.NoError(t, err)
	for op := 0; op < smMaxOps && s.pos < len(s.in); op++ {
		s.step(ctx)
	}
	s.compareState(ctx)
	requireConsistent(t, s.eng())
	_, err = s.eng().DeleteCollection(ctx, &DeleteCollectionInput{CollectionId: m.coll})
	require.NoError(t, err)
}

// --- argument decoding ---

func (s *smRun) user() string { return fmt.Sprintf("u%d", s.next()%smUsers) }

func (s *smRun) token() string {
	b := s.next()
	if b%2 == 0 {
		return ""
	}
	return fmt.Sprintf("tk%d", (b/2)%smTokens)
}

// faceRef names a face of the model by position in face ID order, or
// (for b%8 == 7, or with no faces) an unknown one.
func (s *smRun) faceRef() string {
	b := s.next()
	ids := s.m.faceIDs()
	if b%8 == 7 || len(ids) == 0 {
		return smUnknownFaces[int(b/8)%len(smUnknownFaces)]
	}
	return ids[int(b)%len(ids)]
}

func (s *smRun) faceRefs(maxN int) []string {
	n := 1 + int(s.next())%maxN
	out := make([]string, n)
	for i := range out {
		out[i] = s.faceRef()
	}
	return out
}

// vector is 4 components from -4 to 3 (byte%8 - 4); 1 in 8 has 3
// components.
func (s *smRun) vector() []float32 {
	n := smDim
	if s.next()%8 == 0 {
		n = 3
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(int(s.next()%8) - 4)
	}
	return v
}

func (s *smRun) threshold() *float32 {
	switch s.next() % 5 {
	case 0:
		return nil
	case 1:
		return valuePtr[float32](0)
	case 2:
		return valuePtr[float32](50)
	case 3:
		return valuePtr[float32](90)
	}
	return valuePtr[float32](100)
}

func (s *smRun) maxResults(n int) *int32 {
	b := s.next()
	if b%4 == 0 {
		return nil
	}
	return valuePtr(int32(1 + int(b)%n))
}

// --- the model ---

func (m *smModel) faceIDs() []string { return slices.Sorted(maps.Keys(m.faces)) }

// inIndexOrder is ids in the order their faces were indexed: ListFaces's.
func (m *smModel) inIndexOrder(ids []string) []string {
	return slices.SortedFunc(slices.Values(ids), func(a, b string) int { return cmp.Compare(m.faces[a].seq, m.faces[b].seq) })
}

func (m *smModel) similarity(cos float64) float64 {
	if m.curve == SimilarityCosine {
		return 100 * max(0, cos)
	}
	pts := [][2]float64{{-1, 0}, {0, 0}, {0.10, 10}, {0.25, 50}, {0.38, 80}, {0.60, 99}, {1, 100}}
	for i := 1; i < len(pts); i++ {
		if cos <= pts[i][0] {
			x0, y0, x1, y1 := pts[i-1][0], pts[i-1][1], pts[i][0], pts[i][1]
			return max(0, y0+(cos-x0)*(y1-y0)/(x1-x0))
		}
	}
	return 100
}

// smNormalize is the stored form of a vector, nil for the zero vector.
func smNormalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return nil
	}
	n := math.Sqrt(sum)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

// userVector is the normalized mean of the user's faces summed in face ID
// order; faces that cancel exactly leave the first face's direction.
func (m *smModel) userVector(u *smUser) []float32 {
	if len(u.faces) == 0 {
		return nil
	}
	sum := make([]float64, m.dim)
	for _, id := range u.faces {
		for i, x := range m.faces[id].vec {
			sum[i] += float64(x)
		}
	}
	var n float64
	for _, x := range sum {
		n += x * x
	}
	if n == 0 {
		return slices.Clone(m.faces[u.faces[0]].vec)
	}
	n = math.Sqrt(n)
	out := make([]float32, m.dim)
	for i, x := range sum {
		out[i] = float32(x / n)
	}
	return out
}

func dot64(a, b []float32) float64 {
	var d float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
	}
	return d
}

func (m *smModel) usersByPK() []*smUser {
	us := slices.Collect(maps.Values(m.users))
	slices.SortFunc(us, func(a, b *smUser) int { return a.pk - b.pk })
	return us
}

// --- checking answers ---

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "non-engine error: " + err.Error()
}

func (s *smRun) requireCode(want string, err error, what string, args ...any) {
	s.t.Helper()
	require.Equal(s.t, want, codeOf(err), "%s: %v", fmt.Sprintf(what, args...), err)
}

// checkToken applies the idempotency rule of the model: ok is false when
// the call must not run as new (it is a replay, or a mismatch).
func (s *smRun) checkToken(op, token, params string, err error, out any) (fresh bool) {
	s.t.Helper()
	if token == "" {
		return true
	}
	rec, seen := s.m.tokens[op+"/"+token]
	switch {
	case !seen:
		return true
	case rec.params != params:
		s.requireCode(CodeIdempotentParameterMismatch, err, "%s replayed with token %s and other parameters", op, token)
	default:
		require.NoError(s.t, err, "%s replayed with token %s", op, token)
		b, merr := json.Marshal(out)
		require.NoError(s.t, merr)
		require.JSONEq(s.t, string(rec.resp), string(b), "%s replayed with token %s answers the first response", op, token)
	}
	return false
}

func (s *smRun) recordToken(op, token, params string, out any) {
	if token == "" {
		return
	}
	b, err := json.Marshal(out)
	require.NoError(s.t, err)
	s.m.tokens[op+"/"+token] = smToken{params: params, resp: b}
}

// smHit is one search result or model candidate.
type smHit struct {
	id  string
	key int
	sim float64
	vec []float32 // the vector scored: equal vectors tie exactly
}

// requireSearch checks an engine ranking against the model's candidates:
// every hit is a candidate at its similarity and the threshold, hits come
// highest first with ties by key, at most k of them, and no candidate
// clearly above the threshold is missing unless k hits better it.
func (s *smRun) requireSearch(cands []smHit, got []smHit, threshold float64, k int, what string) {
	t := s.t
	t.Helper()
	byID := map[string]smHit{}
	for _, c := range cands {
		byID[c.id] = c
	}
	require.LessOrEqual(t, len(got), k, what)
	seen := map[string]bool{}
	for i, g := range got {
		c, ok := byID[g.id]
		require.True(t, ok, "%s: hit %s is not a candidate", what, g.id)
		require.False(t, seen[g.id], "%s: hit %s twice", what, g.id)
		seen[g.id] = true
		require.InDelta(t, c.sim, g.sim, smSimSlack, "%s: similarity of %s", what, g.id)
		require.GreaterOrEqual(t, g.sim, threshold, "%s: hit %s below the threshold", what, g.id)
		if i > 0 {
			p := got[i-1]
			require.GreaterOrEqual(t, p.sim, g.sim, "%s: hits out of order", what)
			if pc := byID[p.id]; slices.Equal(pc.vec, c.vec) {
				require.Less(t, pc.key, c.key, "%s: ties go by key ascending", what)
			}
		}
	}
	minGot := math.Inf(1)
	if len(got) > 0 {
		minGot = got[len(got)-1].sim
	}
	for _, c := range cands {
		if seen[c.id] || c.sim < threshold+smSimSlack {
			continue
		}
		require.True(t, len(got) == k && c.sim <= minGot+smSimSlack, "%s: %s (similarity %g) is missing from %v", what, c.id, c.sim, got)
	}
}

func (s *smRun) faceCands(q []float32, skip string) []smHit {
	var out []smHit
	for _, f := range s.m.faces {
		if f.id != skip {
			out = append(out, smHit{f.id, f.seq, s.m.similarity(dot64(q, f.vec)), f.vec})
		}
	}
	return out
}

func (s *smRun) userCands(q []float32, skip string) []smHit {
	var out []smHit
	for _, u := range s.m.users {
		if v := s.m.userVector(u); v != nil && u.id != skip {
			out = append(out, smHit{u.id, u.pk, s.m.similarity(dot64(q, v)), v})
		}
	}
	return out
}

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// --- operations ---

func (s *smRun) step(ctx context.Context) {
	t, m, e := s.t, s.m, s.eng()
	switch op := s.next() % 14; op {
	case 0: // IndexFaces
		n := 1 + int(s.next())%3
		in := &IndexFacesInput{CollectionId: m.coll, ExternalImageId: []string{"", "a", "b:1", "c.d"}[s.next()%4]}
		for range n {
			in.Faces = append(in.Faces, FaceEmbedding{Vector: s.vector()})
		}
		if s.next()%8 == 0 {
			in.MaxFaces = valuePtr[int32](1)
		}
		out, err := e.IndexFaces(ctx, in)
		s.count("IndexFaces", err)
		kept := in.Faces[:min(n, int(orDefault(in.MaxFaces, 100)))]
		bad := false
		for i, f := range kept {
			bad = bad || smNormalize(f.Vector) == nil || len(f.Vector) != len(kept[0].Vector) && i > 0
		}
		bad = bad || m.dim != 0 && len(kept[0].Vector) != m.dim
		if bad {
			s.requireCode(CodeInvalidParameter, err, "IndexFaces %+v", in.Faces)
			return
		}
		require.NoError(t, err, "IndexFaces %+v", in.Faces)
		require.Len(t, out.FaceRecords, len(kept))
		require.Len(t, out.UnindexedFaces, n-len(kept))
		m.dim = len(kept[0].Vector)
		for i, r := range out.FaceRecords {
			require.True(t, isFaceID(r.Face.FaceId))
			require.NotContains(t, m.faces, r.Face.FaceId)
			require.Equal(t, in.ExternalImageId, r.Face.ExternalImageId)
			m.seq++
			m.faces[r.Face.FaceId] = &smFace{id: r.Face.FaceId, ext: in.ExternalImageId, seq: m.seq, vec: smNormalize(kept[i].Vector)}
		}

	case 1: // CreateUser
		in := &CreateUserInput{CollectionId: m.coll, UserId: s.user(), ClientRequestToken: s.token()}
		out, err := e.CreateUser(ctx, in)
		s.count("CreateUser", err)
		params := in.UserId
		if !s.checkToken("CreateUser", in.ClientRequestToken, params, err, out) {
			return
		}
		if m.users[in.UserId] != nil {
			s.requireCode(CodeConflict, err, "CreateUser %s again", in.UserId)
			return
		}
		require.NoError(t, err)
		m.pk++
		m.users[in.UserId] = &smUser{id: in.UserId, pk: m.pk}
		s.recordToken("CreateUser", in.ClientRequestToken, params, out)

	case 2: // DeleteUser
		in := &DeleteUserInput{CollectionId: m.coll, UserId: s.user(), ClientRequestToken: s.token()}
		out, err := e.DeleteUser(ctx, in)
		s.count("DeleteUser", err)
		params := in.UserId
		if !s.checkToken("DeleteUser", in.ClientRequestToken, params, err, out) {
			return
		}
		u := m.users[in.UserId]
		if u == nil {
			s.requireCode(CodeResourceNotFound, err, "DeleteUser %s", in.UserId)
			return
		}
		require.NoError(t, err)
		for _, id := range u.faces {
			m.faces[id].owner = ""
		}
		delete(m.users, u.id)
		s.recordToken("DeleteUser", in.ClientRequestToken, params, out)

	case 3: // AssociateFaces
		in := &AssociateFacesInput{CollectionId: m.coll, UserId: s.user(), FaceIds: s.faceRefs(3), UserMatchThreshold: s.threshold(), ClientRequestToken: s.token()}
		out, err := e.AssociateFaces(ctx, in)
		s.count("AssociateFaces", err)
		params := fmt.Sprint(in.UserId, in.FaceIds, orDefault(in.UserMatchThreshold, -1))
		if !s.checkToken("AssociateFaces", in.ClientRequestToken, params, err, out) {
			return
		}
		u := m.users[in.UserId]
		if u == nil {
			s.requireCode(CodeResourceNotFound, err, "AssociateFaces to missing user %s", in.UserId)
			return
		}
		threshold := float64(orDefault(in.UserMatchThreshold, DefaultAssociateFacesThreshold))
		uv := m.userVector(u)
		var added []string
		var bad []UnsuccessfulFaceAssociation
		var borderline []string
		seen := map[string]bool{}
		for _, id := range in.FaceIds {
			if seen[id] {
				continue
			}
			seen[id] = true
			f := m.faces[id]
			switch {
			case f == nil:
				bad = append(bad, UnsuccessfulFaceAssociation{FaceId: id, Reasons: []string{ReasonFaceNotFound}})
				continue
			case f.owner == u.id:
				continue
			case f.owner != "":
				bad = append(bad, UnsuccessfulFaceAssociation{FaceId: id, UserId: f.owner, Reasons: []string{ReasonAssociatedToADifferentUser}})
				continue
			}
			if uv != nil {
				sim := m.similarity(dot64(f.vec, uv))
				if math.Abs(sim-threshold) < smSimSlack {
					borderline = append(borderline, id) // the engine decides
				} else if sim < threshold {
					bad = append(bad, UnsuccessfulFaceAssociation{FaceId: id, UserId: u.id, Reasons: []string{ReasonLowMatchConfidence}, Confidence: valuePtr(float32(sim))})
					continue
				}
			}
			added = append(added, id)
		}
		if err == nil {
			// Borderline faces go whichever way the engine's float32
			// similarity put them.
			for _, b := range out.UnsuccessfulFaceAssociations {
				if slices.Contains(borderline, b.FaceId) {
					added = slices.DeleteFunc(added, func(id string) bool { return id == b.FaceId })
					bad = append(bad, b)
				}
			}
		}
		if len(u.faces)+len(added) > maxFacesPerUser {
			s.requireCode(CodeServiceQuotaExceeded, err, "AssociateFaces past 100 faces")
			return
		}
		require.NoError(t, err)
		var gotAdded []string
		for _, a := range out.AssociatedFaces {
			gotAdded = append(gotAdded, a.FaceId)
		}
		require.Equal(t, fmt.Sprint(added), fmt.Sprint(gotAdded), "AssociateFaces %+v: associated", in)
		require.Len(t, out.UnsuccessfulFaceAssociations, len(bad), "AssociateFaces %+v: %+v", in, out.UnsuccessfulFaceAssociations)
		for _, want := range bad {
			i := slices.IndexFunc(out.UnsuccessfulFaceAssociations, func(g UnsuccessfulFaceAssociation) bool { return g.FaceId == want.FaceId })
			require.GreaterOrEqual(t, i, 0, "AssociateFaces: %s not reported", want.FaceId)
			got := out.UnsuccessfulFaceAssociations[i]
			require.Equal(t, want.Reasons, got.Reasons, "AssociateFaces: reasons of %s", want.FaceId)
			require.Equal(t, want.UserId, got.UserId)
			if want.Confidence != nil && !slices.Contains(borderline, want.FaceId) {
				require.NotNil(t, got.Confidence)
				require.InDelta(t, *want.Confidence, *got.Confidence, smSimSlack)
			}
		}
		for _, id := range added {
			m.faces[id].owner = u.id
			u.faces = append(u.faces, id)
		}
		slices.Sort(u.faces)
		require.Equal(t, map[bool]string{true: UserStatusActive, false: UserStatusCreated}[len(u.faces) > 0], out.UserStatus)
		s.recordToken("AssociateFaces", in.ClientRequestToken, params, out)

	case 4: // DisassociateFaces
		in := &DisassociateFacesInput{CollectionId: m.coll, UserId: s.user(), FaceIds: s.faceRefs(3), ClientRequestToken: s.token()}
		out, err := e.DisassociateFaces(ctx, in)
		s.count("DisassociateFaces", err)
		params := fmt.Sprint(in.UserId, in.FaceIds)
		if !s.checkToken("DisassociateFaces", in.ClientRequestToken, params, err, out) {
			return
		}
		u := m.users[in.UserId]
		if u == nil {
			s.requireCode(CodeResourceNotFound, err, "DisassociateFaces from missing user %s", in.UserId)
			return
		}
		require.NoError(t, err)
		var removed []string
		var bad []UnsuccessfulFaceDisassociation
		seen := map[string]bool{}
		for _, id := range in.FaceIds {
			if seen[id] {
				continue
			}
			seen[id] = true
			switch f := m.faces[id]; {
			case f == nil:
				bad = append(bad, UnsuccessfulFaceDisassociation{FaceId: id, Reasons: []string{ReasonFaceNotFound}})
			case f.owner == u.id:
				removed = append(removed, id)
			case f.owner != "":
				bad = append(bad, UnsuccessfulFaceDisassociation{FaceId: id, UserId: f.owner, Reasons: []string{ReasonAssociatedToADifferentUser}})
			}
		}
		var gotRemoved []string
		for _, d := range out.DisassociatedFaces {
			gotRemoved = append(gotRemoved, d.FaceId)
		}
		require.Equal(t, fmt.Sprint(removed), fmt.Sprint(gotRemoved), "DisassociateFaces %+v", in)
		require.ElementsMatch(t, bad, out.UnsuccessfulFaceDisassociations, "DisassociateFaces %+v", in)
		for _, id := range removed {
			m.faces[id].owner = ""
			u.faces = slices.DeleteFunc(u.faces, func(f string) bool { return f == id })
		}
		require.Equal(t, map[bool]string{true: UserStatusActive, false: UserStatusCreated}[len(u.faces) > 0], out.UserStatus)
		s.recordToken("DisassociateFaces", in.ClientRequestToken, params, out)

	case 5: // DeleteFaces
		in := &DeleteFacesInput{CollectionId: m.coll, FaceIds: s.faceRefs(4)}
		out, err := e.DeleteFaces(ctx, in)
		s.count("DeleteFaces", err)
		require.NoError(t, err)
		var deleted []string
		var bad []UnsuccessfulFaceDeletion
		seen := map[string]bool{}
		for _, id := range in.FaceIds {
			if seen[id] {
				continue
			}
			seen[id] = true
			switch f := m.faces[id]; {
			case f == nil:
				bad = append(bad, UnsuccessfulFaceDeletion{FaceId: id, Reasons: []string{ReasonFaceNotFound}})
			case f.owner != "":
				bad = append(bad, UnsuccessfulFaceDeletion{FaceId: id, UserId: f.owner, Reasons: []string{ReasonAssociatedToAnExistingUser}})
			default:
				deleted = append(deleted, id)
			}
		}
		require.Equal(t, fmt.Sprint(deleted), fmt.Sprint(out.DeletedFaces), "DeleteFaces %v", in.FaceIds)
		require.ElementsMatch(t, bad, out.UnsuccessfulFaceDeletions, "DeleteFaces %v", in.FaceIds)
		for _, id := range deleted {
			delete(m.faces, id)
		}

	case 6: // SearchUsers by face or by user
		in := &SearchUsersInput{CollectionId: m.coll, UserMatchThreshold: s.threshold(), MaxUsers: s.maxResults(5)}
		if s.next()%2 == 0 {
			in.FaceId = s.faceRef()
		} else {
			in.UserId = s.user()
		}
		out, err := e.SearchUsers(ctx, in)
		s.count("SearchUsers", err)
		var q []float32
		skip := ""
		if in.FaceId != "" {
			f := m.faces[in.FaceId]
			if f == nil {
				s.requireCode(CodeResourceNotFound, err, "SearchUsers by missing face")
				return
			}
			q = f.vec
		} else {
			u := m.users[in.UserId]
			if u == nil {
				s.requireCode(CodeResourceNotFound, err, "SearchUsers by missing user")
				return
			}
			q, skip = m.userVector(u), u.id
		}
		require.NoError(t, err)
		var got []smHit
		for _, h := range out.UserMatches {
			got = append(got, smHit{id: h.User.UserId, sim: float64(h.Similarity)})
			require.Equal(t, map[bool]string{true: UserStatusActive, false: UserStatusCreated}[len(m.users[h.User.UserId].faces) > 0], h.User.UserStatus)
		}
		if q == nil {
			require.Empty(t, got, "a user without faces matches nothing")
			return
		}
		s.requireSearch(s.userCands(q, skip), got, float64(orDefault(in.UserMatchThreshold, DefaultSearchUsersThreshold)),
			int(orDefault(in.MaxUsers, DefaultMaxUsers)), fmt.Sprintf("SearchUsers %+v", in))

	case 7: // SearchFaces
		in := &SearchFacesInput{CollectionId: m.coll, FaceId: s.faceRef(), FaceMatchThreshold: s.threshold(), MaxFaces: s.maxResults(6)}
		out, err := e.SearchFaces(ctx, in)
		s.count("SearchFaces", err)
		f := m.faces[in.FaceId]
		if f == nil {
			s.requireCode(CodeResourceNotFound, err, "SearchFaces by missing face")
			return
		}
		require.NoError(t, err)
		var got []smHit
		for _, h := range out.FaceMatches {
			got = append(got, smHit{id: h.Face.FaceId, sim: float64(h.Similarity)})
			require.Equal(t, m.faces[h.Face.FaceId].owner, h.Face.UserId)
		}
		s.requireSearch(s.faceCands(f.vec, f.id), got, float64(orDefault(in.FaceMatchThreshold, DefaultSearchFacesThreshold)),
			int(orDefault(in.MaxFaces, DefaultMaxFaces)), fmt.Sprintf("SearchFaces %+v", in))

	case 8, 9: // SearchUsersByImage, SearchFacesByImage
		v := s.vector()
		threshold, k := s.threshold(), s.maxResults(6)
		q := smNormalize(v)
		var got []smHit
		var err error
		if op == 8 {
			var out *SearchUsersByImageOutput
			out, err = e.SearchUsersByImage(ctx, &SearchUsersByImageInput{CollectionId: m.coll, Vector: v, UserMatchThreshold: threshold, MaxUsers: k})
			if err == nil {
				for _, h := range out.UserMatches {
					got = append(got, smHit{id: h.User.UserId, sim: float64(h.Similarity)})
				}
			}
		} else {
			var out *SearchFacesByImageOutput
			out, err = e.SearchFacesByImage(ctx, &SearchFacesByImageInput{CollectionId: m.coll, Vector: v, FaceMatchThreshold: threshold, MaxFaces: k})
			if err == nil {
				for _, h := range out.FaceMatches {
					got = append(got, smHit{id: h.Face.FaceId, sim: float64(h.Similarity)})
				}
			}
		}
		s.count(map[bool]string{true: "SearchUsersByImage", false: "SearchFacesByImage"}[op == 8], err)
		if q == nil || m.dim != 0 && len(v) != m.dim {
			s.requireCode(CodeInvalidParameter, err, "search by vector %v", v)
			return
		}
		require.NoError(t, err)
		if op == 8 {
			s.requireSearch(s.userCands(q, ""), got, float64(orDefault(threshold, DefaultSearchUsersThreshold)), int(orDefault(k, DefaultMaxUsers)), "SearchUsersByImage")
		} else {
			s.requireSearch(s.faceCands(q, ""), got, float64(orDefault(threshold, DefaultSearchFacesThreshold)), int(orDefault(k, DefaultMaxFaces)), "SearchFacesByImage")
		}

	case 10: // ListFaces, paged, perhaps of one user
		in := &ListFacesInput{CollectionId: m.coll, MaxResults: valuePtr(int32(1 + s.next()%4))}
		var want []string
		if s.next()%2 == 0 {
			in.UserId = s.user()
			if u := m.users[in.UserId]; u != nil {
				want = m.inIndexOrder(u.faces)
			} else {
				_, err := e.ListFaces(ctx, in)
				s.requireCode(CodeResourceNotFound, err, "ListFaces of missing user")
				return
			}
		} else {
			want = m.inIndexOrder(m.faceIDs())
		}
		var got []string
		for {
			out, err := e.ListFaces(ctx, in)
			require.NoError(t, err)
			for _, f := range out.Faces {
				got = append(got, f.FaceId)
				mf := m.faces[f.FaceId]
				require.NotNil(t, mf, "ListFaces: unknown face %s", f.FaceId)
				require.Equal(t, mf.owner, f.UserId)
				require.Equal(t, mf.ext, f.ExternalImageId)
			}
			if out.NextToken == "" {
				break
			}
			in.NextToken = out.NextToken
		}
		require.Equal(t, fmt.Sprint(want), fmt.Sprint(got), "ListFaces %s", in.UserId)
		s.count("ListFaces", nil)

	case 11: // ListUsers, paged
		in := &ListUsersInput{CollectionId: m.coll, MaxResults: valuePtr(int32(1 + s.next()%3))}
		var got []User
		for {
			out, err := e.ListUsers(ctx, in)
			require.NoError(t, err)
			got = append(got, out.Users...)
			if out.NextToken == "" {
				break
			}
			in.NextToken = out.NextToken
		}
		var want []User
		for _, u := range m.usersByPK() {
			want = append(want, User{UserId: u.id, UserStatus: map[bool]string{true: UserStatusActive, false: UserStatusCreated}[len(u.faces) > 0]})
		}
		require.Equal(t, want, got)
		s.count("ListUsers", nil)

	case 12: // DescribeCollection
		out, err := e.DescribeCollection(ctx, &DescribeCollectionInput{CollectionId: m.coll})
		s.count("DescribeCollection", err)
		require.NoError(t, err)
		require.Equal(t, int64(len(m.faces)), out.FaceCount)
		require.Equal(t, int64(len(m.users)), out.UserCount)
		require.Equal(t, m.dim, out.Dimension)

	case 13: // reopen: what was acknowledged is what comes back
		if s.reopens == 1 {
			return
		}
		s.reopens++
		s.count("Reopen", nil)
		s.compareState(ctx)
		require.NoError(t, e.Close())
		ne, err := Open(s.dir, nil)
		require.NoError(t, err)
		*s.e = ne
		requireConsistent(t, ne)
		s.compareState(ctx)
	}
}

// compareState compares the whole collection with the model, user vectors
// included.
func (s *smRun) compareState(ctx context.Context) {
	t, m := s.t, s.m
	c, release, err := s.eng().acquire(m.coll)
	require.NoError(t, err)
	defer release()
	c.mu.RLock()
	defer c.mu.RUnlock()
	require.Equal(t, m.dim, c.dim)
	require.ElementsMatch(t, m.faceIDs(), slices.Collect(maps.Keys(c.faces)))
	for id, f := range m.faces {
		cf := c.faces[id]
		require.Equal(t, f.owner, cf.userID, "owner of %s", id)
		require.Equal(t, f.ext, cf.externalImageID)
		v, _ := c.faceVector(cf.seq)
		require.Equal(t, f.vec, v, "vector of %s", id)
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(m.users)), slices.Collect(maps.Keys(c.users)))
	var order []string
	for _, u := range m.usersByPK() {
		order = append(order, u.id)
		cu := c.users[u.id]
		require.Equal(t, fmt.Sprint(u.faces), fmt.Sprint(cu.faces), "faces of %s", u.id)
		v := c.vectorOf(cu)
		ok := v != nil
		want := m.userVector(u)
		require.Equal(t, want != nil, ok, "user %s has a vector iff it has faces", u.id)
		if ok {
			require.InDeltaSlice(t, want, v, 1e-6, "vector of user %s", u.id)
		}
	}
	pks := slices.Collect(maps.Values(c.users))
	slices.SortFunc(pks, func(a, b *user) int { return cmp.Compare(a.pk, b.pk) })
	var got []string
	for _, u := range pks {
		got = append(got, u.id)
	}
	require.Equal(t, strings.Join(order, ","), strings.Join(got, ","), "users in primary-key order")
}

// TestStateMachine runs the state-machine fuzzer's harness on seeded random
// sequences (2000 with FACESEARCH_STRESS) and logs how often each operation
// met each outcome, to show that the sequences reach the interesting cases.
func TestStateMachine(t *testing.T) {
	n := 200
	if os.Getenv("FACESEARCH_STRESS") != "" {
		n = 2000
	}
	dir := t.TempDir()
	e, err := Open(dir, nil)
	require.NoError(t, err)
	defer func() { e.Close() }()
	r := rand.New(rand.NewPCG(20260601, 2))
	stats := map[string]int{}
	for i := range n {
		in := make([]byte, 64+r.IntN(256))
		for j := range in {
			in[j] = byte(r.UintN(256))
		}
		s := &smRun{stats: stats, t: t, e: &e, dir: dir, in: in, m: newSMModel(fmt.Sprintf("sm-%d", i))}
		s.run()
		if t.Failed() {
			t.Fatalf("sequence %d: %x", i, in)
		}
	}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(stats)) {
		lines = append(lines, fmt.Sprintf("%s %d", k, stats[k]))
	}
	t.Logf("state machine: %d sequences; outcomes: %s", n, strings.Join(lines, ", "))
}
