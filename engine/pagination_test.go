package engine_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

func TestListUsersPaging(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	var want []string
	for i := range 250 {
		id := fmt.Sprintf("u%03d", 249-i) // key order differs from name order
		want = append(want, id)
		createUser(t, e, "c", id)
	}
	first, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c"})
	require.NoError(t, err)
	require.Len(t, first.Users, 100, "default page size")
	require.NotEmpty(t, first.NextToken)

	for _, size := range []int32{1, 7, 100, 249, 250, 500} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var got []string
			in := &engine.ListUsersInput{CollectionId: "c", MaxResults: &size}
			for pages := 0; ; pages++ {
				require.Less(t, pages, 300)
				out, err := e.ListUsers(ctx, in)
				require.NoError(t, err)
				require.LessOrEqual(t, len(out.Users), int(size))
				for _, u := range out.Users {
					got = append(got, u.UserId)
				}
				if out.NextToken == "" {
					break
				}
				require.LessOrEqual(t, len(out.NextToken), 255)
				in.NextToken = out.NextToken
			}
			require.Equal(t, want, got, "every user once, in primary-key order")
		})
	}

	// Users deleted and created mid-walk: the walk continues after the last
	// key it returned.
	page, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: ptr[int32](10)})
	require.NoError(t, err)
	_, err = e.DeleteUser(ctx, &engine.DeleteUserInput{CollectionId: "c", UserId: want[10]})
	require.NoError(t, err)
	createUser(t, e, "c", "late")
	rest, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", NextToken: page.NextToken, MaxResults: ptr[int32](500)})
	require.NoError(t, err)
	require.Equal(t, want[11], rest.Users[0].UserId)
	require.Equal(t, "late", rest.Users[len(rest.Users)-1].UserId)
}

func TestPageTokensAreBound(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "a", "")
	createCollection(t, e, "b", "")
	for _, c := range []string{"a", "b"} {
		for i := range 3 {
			createUser(t, e, c, fmt.Sprint("u", i))
		}
		indexFaces(t, e, c, []float32{1, 0}, []float32{0, 1}, []float32{1, 1})
	}
	usersTok := func(c string) string {
		out, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: c, MaxResults: ptr[int32](1)})
		require.NoError(t, err)
		return out.NextToken
	}
	facesOut, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "a", MaxResults: ptr[int32](1)})
	require.NoError(t, err)
	tok := usersTok("a")
	tampered := []byte(tok)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '_'^1 || tampered[len(tampered)/2] == '-'^1 {
		tampered[len(tampered)/2] = 'A'
	}

	tests := []struct {
		name string
		call func() error
	}{
		{"tampered", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "a", NextToken: string(tampered)})
			return err
		}},
		{"garbage", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "a", NextToken: "not-a-token!"})
			return err
		}},
		{"truncated", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "a", NextToken: tok[:len(tok)-4]})
			return err
		}},
		{"other collection", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "b", NextToken: tok})
			return err
		}},
		{"ListFaces token on ListUsers", func() error {
			_, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "a", NextToken: facesOut.NextToken})
			return err
		}},
		{"ListUsers token on ListFaces", func() error {
			_, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "a", NextToken: tok})
			return err
		}},
		{"ListFaces token with another filter", func() error {
			_, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "a", NextToken: facesOut.NextToken, UserId: "u0"})
			return err
		}},
		{"ListUsers token on ListCollections", func() error {
			_, err := e.ListCollections(ctx, &engine.ListCollectionsInput{NextToken: tok})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireCode(t, tt.call(), engine.ErrInvalidPaginationToken)
		})
	}

	t.Run("recreated collection", func(t *testing.T) {
		_, err := e.DeleteCollection(ctx, &engine.DeleteCollectionInput{CollectionId: "a"})
		require.NoError(t, err)
		createCollection(t, e, "a", "")
		createUser(t, e, "a", "x")
		_, err = e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "a", NextToken: tok})
		requireCode(t, err, engine.ErrInvalidPaginationToken)
	})
}

func TestListFaces(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	var ids []string
	for range 3 {
		var vecs [][]float32
		for i := range 100 {
			vecs = append(vecs, []float32{1, float32(len(ids) + i)})
		}
		ids = append(ids, indexFaces(t, e, "c", vecs...)...)
	}
	createUser(t, e, "c", "u", ids[:40]...)
	// Random face IDs, listed in the order they were indexed.
	require.False(t, slices.IsSorted(ids))

	walk := func(in engine.ListFacesInput) []string {
		var got []string
		for {
			out, err := e.ListFaces(ctx, &in)
			require.NoError(t, err)
			for _, f := range out.Faces {
				got = append(got, f.FaceId)
			}
			if out.NextToken == "" {
				return got
			}
			in.NextToken = out.NextToken
		}
	}
	out, err := e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c"})
	require.NoError(t, err)
	require.Len(t, out.Faces, 300, "the default page (1000) holds them all")
	require.Empty(t, out.NextToken)
	require.Equal(t, ids, walk(engine.ListFacesInput{CollectionId: "c", MaxResults: ptr[int32](7)}), "indexing order")
	require.Equal(t, ids, walk(engine.ListFacesInput{CollectionId: "c", MaxResults: ptr[int32](0)}), "0 means the default")

	require.Equal(t, ids[:40], walk(engine.ListFacesInput{CollectionId: "c", UserId: "u", MaxResults: ptr[int32](3)}))

	pick := []string{ids[299], ids[50], "11111111-2222-4333-8444-555555555555", ids[0]}
	require.Equal(t, []string{ids[0], ids[50], ids[299]}, walk(engine.ListFacesInput{CollectionId: "c", FaceIds: pick, MaxResults: ptr[int32](1)}), "unknown ids are left out")
	require.Equal(t, []string{ids[0]}, walk(engine.ListFacesInput{CollectionId: "c", FaceIds: pick, UserId: "u"}), "both filters intersect")

	for _, f := range out.Faces {
		if slices.Contains(ids[:40], f.FaceId) {
			require.Equal(t, "u", f.UserId)
		} else {
			require.Empty(t, f.UserId)
		}
	}
	_, err = e.ListFaces(ctx, &engine.ListFacesInput{CollectionId: "c", UserId: "ghost"})
	requireCode(t, err, engine.ErrResourceNotFound)
}

func TestListCollections(t *testing.T) {
	e := openEngine(t, "")
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("c%02d", 24-i)
		want = append(want, id)
		createCollection(t, e, id, "")
	}
	out, err := e.ListCollections(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, want, out.CollectionIds, "creation order")
	require.Len(t, out.FaceModelVersions, 25)

	var got []string
	in := &engine.ListCollectionsInput{MaxResults: ptr[int32](4)}
	for {
		out, err := e.ListCollections(ctx, in)
		require.NoError(t, err)
		got = append(got, out.CollectionIds...)
		if out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	require.Equal(t, want, got)
}

// TestListUsersPaginator: the paginator with the AWS CLI options (MaxItems,
// PageSize, StartingToken) walks every user exactly once in key order.
func TestListUsersPaginator(t *testing.T) {
	e := openEngine(t, "")
	createCollection(t, e, "c", "")
	var want []string
	for i := range 23 {
		id := fmt.Sprint("user", i)
		want = append(want, id)
		createUser(t, e, "c", id)
	}
	for _, pageSize := range []int32{0, 1, 5, 23, 100} {
		for _, maxItems := range []int{0, 1, 4, 10, 23, 50} {
			t.Run(fmt.Sprintf("page%d/max%d", pageSize, maxItems), func(t *testing.T) {
				var got []string
				token := ""
				for round := 0; ; round++ {
					require.Less(t, round, 30)
					p := engine.NewListUsersPaginator(e, &engine.ListUsersInput{CollectionId: "c"}, func(o *engine.ListUsersPaginatorOptions) {
						o.PageSize, o.MaxItems, o.StartingToken = pageSize, maxItems, token
					})
					n := 0
					for u, err := range p.All(ctx) {
						require.NoError(t, err)
						got = append(got, u.UserId)
						n++
					}
					if maxItems > 0 {
						require.LessOrEqual(t, n, maxItems)
					}
					token = p.NextToken()
					if token == "" {
						break
					}
				}
				require.Equal(t, want, got)
			})
		}
	}
}
