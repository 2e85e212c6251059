package engine_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

func TestCollectionTier(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	for _, tt := range []struct {
		id   string
		in   engine.CreateCollectionInput
		want string
	}{
		{"plain", engine.CreateCollectionInput{}, "float32"},
		{"field", engine.CreateCollectionInput{Tier: "int8"}, "int8"},
		{"tag", engine.CreateCollectionInput{Tags: map[string]string{engine.TagTier: "float16"}}, "float16"},
		{"both", engine.CreateCollectionInput{Tier: "int8", Tags: map[string]string{engine.TagTier: "int8"}}, "int8"},
		{"explicit", engine.CreateCollectionInput{Tier: "float32"}, "float32"},
	} {
		in := tt.in
		in.CollectionId = tt.id
		_, err := e.CreateCollection(ctx, &in)
		require.NoError(t, err, tt.id)
		out, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: tt.id})
		require.NoError(t, err)
		assert.Equal(t, tt.want, out.Tier, tt.id)
	}
	for name, in := range map[string]engine.CreateCollectionInput{
		"unknown":  {Tier: "int4"},
		"tag":      {Tags: map[string]string{engine.TagTier: "bf16"}},
		"disagree": {Tier: "int8", Tags: map[string]string{engine.TagTier: "float16"}},
	} {
		in.CollectionId = "bad"
		_, err := e.CreateCollection(ctx, &in)
		requireCode(t, err, engine.ErrInvalidParameter)
		t.Logf("%s: %v", name, err)
	}

	// The tier is persisted: a reopened engine describes and scans the same.
	require.NoError(t, e.Close())
	e = openEngine(t, dir)
	for id, want := range map[string]string{"plain": "float32", "field": "int8", "tag": "float16"} {
		out, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: id})
		require.NoError(t, err)
		assert.Equal(t, want, out.Tier, id)
	}
}

// loadUsers imports users with faces near random identities into coll.
func loadUsers(t testing.TB, e *engine.Engine, coll string, rng *rand.Rand, dim, users, facesPerUser int) [][]float32 {
	t.Helper()
	im, err := e.NewImporter(ctx, coll, nil)
	require.NoError(t, err)
	centres := make([][]float32, users)
	for u := range users {
		centres[u] = randomUnit(rng, dim)
		for range facesPerUser {
			require.NoError(t, im.Add(engine.ImportRecord{Vector: near(rng, centres[u], 0.7), UserId: fmt.Sprintf("u%05d", u)}))
		}
	}
	require.NoError(t, im.Close())
	return centres
}

// TestTierSearchIsExact: collections of each tier holding the same faces
// answer every search identically (users, similarities, order), before and
// after a reopen. The compressed tiers' candidates are re-scored with the
// float32 vectors, so their similarities are the float32 ones exactly.
func TestTierSearchIsExact(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	tiers := []string{"float32", "int8", "float16"}
	const dim, users = 64, 1500
	for _, tier := range tiers {
		_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: tier, Tier: tier, Dimension: dim})
		require.NoError(t, err)
		loadUsers(t, e, tier, rand.New(rand.NewPCG(7, 8)), dim, users, 2) // the same data in each
	}
	rng := rand.New(rand.NewPCG(9, 10))
	check := func(e *engine.Engine) {
		for i := range 30 {
			in := engine.SearchUsersByImageInput{Vector: randomUnit(rng, dim), MaxUsers: ptr(int32(1 + rng.IntN(20)))}
			if i%2 == 0 {
				in.UserMatchThreshold = ptr[float32](0)
			}
			uid := fmt.Sprintf("u%05d", rng.IntN(users))
			var want []engine.UserMatch
			var wantByUser []engine.UserMatch
			for _, tier := range tiers {
				in.CollectionId = tier
				out, err := e.SearchUsersByImage(ctx, &in)
				require.NoError(t, err)
				byUser, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: tier, UserId: uid, UserMatchThreshold: ptr[float32](0), MaxUsers: ptr(int32(10))})
				require.NoError(t, err)
				if tier == "float32" {
					want, wantByUser = out.UserMatches, byUser.UserMatches
					if i%2 == 0 {
						require.NotEmpty(t, want)
					}
					continue
				}
				require.Equal(t, want, out.UserMatches, "tier %s, query %d", tier, i)
				require.Equal(t, wantByUser, byUser.UserMatches, "tier %s, user %s", tier, uid)
			}
		}
	}
	check(e)
	require.NoError(t, e.Close())
	check(openEngine(t, dir))
}

// TestSearchUsersCoalesced runs many concurrent SearchUsersByImage calls on
// a collection large enough for searches to share passes, with writers
// taking the collection's lock in between, and checks every answer against
// the one the same search gets alone.
func TestSearchUsersCoalesced(t *testing.T) {
	e := openEngine(t, "")
	const dim, users = 128, 2500 // 320k floats: past the size SearchShared coalesces
	for _, tier := range []string{"float32", "int8"} {
		_, err := e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: tier, Tier: tier, Dimension: dim})
		require.NoError(t, err)
		loadUsers(t, e, tier, rand.New(rand.NewPCG(11, 12)), dim, users, 1)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	type search struct {
		in   engine.SearchUsersByImageInput
		want []engine.UserMatch
	}
	searches := make([]search, 24)
	for i := range searches {
		s := &searches[i]
		s.in = engine.SearchUsersByImageInput{CollectionId: "float32", Vector: randomUnit(rng, dim),
			UserMatchThreshold: ptr[float32](0), MaxUsers: ptr(int32(1 + i%12))}
		out, err := e.SearchUsersByImage(ctx, &s.in)
		require.NoError(t, err)
		s.want = out.UserMatches
		require.NotEmpty(t, s.want)
	}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Go(func() { // faces of no user: they take the write lock, change no answer
		rng := rand.New(rand.NewPCG(15, 16))
		for {
			select {
			case <-stop:
				return
			default:
			}
			indexFaces(t, e, "float32", randomUnit(rng, dim))
			indexFaces(t, e, "int8", randomUnit(rng, dim))
			time.Sleep(time.Millisecond)
		}
	})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 17))
			for range 20 {
				s := searches[rng.IntN(len(searches))]
				in := s.in
				in.CollectionId = []string{"float32", "int8"}[rng.IntN(2)]
				out, err := e.SearchUsersByImage(ctx, &in)
				if assert.NoError(t, err) {
					assert.Equal(t, s.want, out.UserMatches, "%s", in.CollectionId)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	writers.Wait()
}
