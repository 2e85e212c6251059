package engine

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tokenFixture is a store with something to page through: collection "a"
// with six faces and six users (three faces belong to u1), and an empty
// collection "b".
type tokenFixture struct {
	e      *Engine
	faces  []string // a's faces in the order indexed
	users  []string // a's users in primary-key order
	tokens []string // one NextToken of each listing
}

func newTokenFixture(t testing.TB, dir string) *tokenFixture {
	t.Helper()
	ctx := context.Background()
	e, err := Open(dir, nil)
	require.NoError(t, err)
	fx := &tokenFixture{e: e}
	for _, id := range []string{"a", "b"} {
		_, err := e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: id})
		require.NoError(t, err)
	}
	in := &IndexFacesInput{CollectionId: "a"}
	for i := range 6 {
		in.Faces = append(in.Faces, FaceEmbedding{Vector: []float32{1, float32(i) / 10}})
	}
	out, err := e.IndexFaces(ctx, in)
	require.NoError(t, err)
	for _, r := range out.FaceRecords {
		fx.faces = append(fx.faces, r.Face.FaceId)
	}
	for i := range 6 {
		id := fmt.Sprintf("u%d", 5-i) // primary-key order is not ID order
		_, err := e.CreateUser(ctx, &CreateUserInput{CollectionId: "a", UserId: id})
		require.NoError(t, err)
		fx.users = append(fx.users, id)
	}
	_, err = e.AssociateFaces(ctx, &AssociateFacesInput{CollectionId: "a", UserId: "u1", FaceIds: fx.faces[:3], UserMatchThreshold: valuePtr[float32](0)})
	require.NoError(t, err)
	for _, l := range fx.listings() {
		_, next, err := l.call("")
		require.NoError(t, err)
		require.NotEmpty(t, next, l.name)
		fx.tokens = append(fx.tokens, next)
	}
	return fx
}

// tokenListing is one listing that takes a NextToken.
type tokenListing struct {
	name  string
	kind  tokenKind
	scope uint64 // what a token of this listing is bound to
	hash  uint64
	// call lists one page from token and returns the IDs and NextToken.
	call func(token string) (ids []string, next string, err error)
	// all is every ID of the listing in order, for checking resumed pages.
	all []string
	// page is the page size call asks for.
	page int
}

func (fx *tokenFixture) listings() []tokenListing {
	ctx := context.Background()
	e := fx.e
	seq := func(id string) uint64 {
		c, release, err := e.acquire(id)
		if err != nil {
			panic(err)
		}
		defer release()
		return c.seq
	}
	var u1Faces []string
	for _, f := range fx.faces {
		if c := e.colls["a"]; c.faces[f].userID == "u1" {
			u1Faces = append(u1Faces, f)
		}
	}
	listUsers := func(coll string) func(string) ([]string, string, error) {
		return func(tok string) ([]string, string, error) {
			out, err := e.ListUsers(ctx, &ListUsersInput{CollectionId: coll, MaxResults: valuePtr[int32](2), NextToken: tok})
			if err != nil {
				return nil, "", err
			}
			var ids []string
			for _, u := range out.Users {
				ids = append(ids, u.UserId)
			}
			return ids, out.NextToken, nil
		}
	}
	listFaces := func(user string) func(string) ([]string, string, error) {
		return func(tok string) ([]string, string, error) {
			out, err := e.ListFaces(ctx, &ListFacesInput{CollectionId: "a", UserId: user, MaxResults: valuePtr[int32](2), NextToken: tok})
			if err != nil {
				return nil, "", err
			}
			var ids []string
			for _, f := range out.Faces {
				ids = append(ids, f.FaceId)
			}
			return ids, out.NextToken, nil
		}
	}
	return []tokenListing{
		{name: "ListUsers a", kind: tokenListUsers, scope: seq("a"), call: listUsers("a"), all: fx.users, page: 2},
		{name: "ListFaces a", kind: tokenListFaces, scope: seq("a"), hash: filterHash("", ""), call: listFaces(""), all: fx.faces, page: 2},
		{name: "ListFaces a u1", kind: tokenListFaces, scope: seq("a"), hash: filterHash("u1", ""), call: listFaces("u1"), all: u1Faces, page: 2},
		{name: "ListCollections", kind: tokenListCollections, call: func(tok string) ([]string, string, error) {
			out, err := e.ListCollections(ctx, &ListCollectionsInput{MaxResults: valuePtr[int32](1), NextToken: tok})
			if err != nil {
				return nil, "", err
			}
			return out.CollectionIds, out.NextToken, nil
		}, all: []string{"a", "b"}, page: 1},
	}
}

// requireTokenAnswer: a listing given a token either pages on (a page of
// its own IDs, in order) or refuses it with InvalidPaginationToken
// (InvalidParameter for a string past 255 bytes).
func requireTokenAnswer(t *testing.T, l tokenListing, tok string, ids []string, err error) bool {
	t.Helper()
	if err != nil {
		if len(tok) > maxPageTokenLen {
			require.ErrorIs(t, err, ErrInvalidParameter, "%s: token of %d bytes", l.name, len(tok))
		} else {
			require.ErrorIs(t, err, ErrInvalidPaginationToken, "%s: token %q", l.name, tok)
		}
		return false
	}
	// Whatever page came back is a run of the listing, in order.
	if len(ids) > 0 {
		i := slices.Index(l.all, ids[0])
		require.GreaterOrEqual(t, i, 0, "%s: unknown ID %s", l.name, ids[0])
		require.Equal(t, l.all[i:min(len(l.all), i+len(ids))], ids, "%s: page", l.name)
	}
	return true
}

// FuzzPageToken: any string given as NextToken to any listing is a token
// that listing issued (and the listing pages on) or is refused with
// InvalidPaginationTokenException; never a panic, never another error.
// Then, signed with the store's key around a fuzzed position, the position
// itself is checked the same way: the signature keeps foreign bytes out,
// and the listings still must not trust what is inside.
func FuzzPageToken(f *testing.F) {
	fx := newTokenFixture(f, f.TempDir())
	f.Cleanup(func() { fx.e.Close() })
	listings := fx.listings()
	f.Add("", []byte(nil))
	f.Add("AAAA", []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // past every sequence
	f.Add("", []byte{0, 0, 0, 0, 0, 0, 0, 3, 0})
	f.Add(strings.Repeat("A", 300), []byte(fx.faces[0]))
	f.Add("not base64!", []byte(fx.faces[2][:35]))
	for _, tok := range fx.tokens {
		f.Add(tok, []byte(nil))
		f.Add(tok[:len(tok)-1], []byte{1, 2, 3})
		f.Add(tok+"A", []byte(strings.ToUpper(fx.faces[1])))
		b, _ := base64.RawURLEncoding.DecodeString(tok)
		for _, i := range []int{0, 1, 2, 10, len(b) - 1} {
			c := slices.Clone(b)
			c[i] ^= 1
			f.Add(base64.RawURLEncoding.EncodeToString(c), c)
		}
	}
	f.Fuzz(func(t *testing.T, tok string, position []byte) {
		for _, l := range listings {
			ids, _, err := l.call(tok)
			if requireTokenAnswer(t, l, tok, ids, err) && tok != "" {
				// Only a token the engine signed for this listing gets through.
				_, err := fx.e.openToken(tok, l.kind, l.scope, l.hash)
				require.NoError(t, err, "%s accepted token %q it did not issue", l.name, tok)
			}
			signed := fx.e.signToken(pageToken{kind: l.kind, scope: l.scope, filter: l.hash, position: position})
			ids, _, err = l.call(signed)
			requireTokenAnswer(t, l, signed, ids, err)
		}
	})
}

// TestPageTokensOfOtherListings: each listing's token is refused by every
// other listing, and by its own listing once the collection is deleted and
// created again.
func TestPageTokensOfOtherListings(t *testing.T) {
	fx := newTokenFixture(t, t.TempDir())
	defer fx.e.Close()
	listings := fx.listings()
	for i, l := range listings {
		for j, tok := range fx.tokens {
			t.Run(fmt.Sprintf("%s with a token of %s", l.name, listings[j].name), func(t *testing.T) {
				ids, _, err := l.call(tok)
				if i == j {
					require.NoError(t, err)
					require.Equal(t, l.all[l.page:min(2*l.page, len(l.all))], ids)
					return
				}
				require.ErrorIs(t, err, ErrInvalidPaginationToken)
			})
		}
	}
	ctx := context.Background()
	_, err := fx.e.DeleteCollection(ctx, &DeleteCollectionInput{CollectionId: "a"})
	require.NoError(t, err)
	_, err = fx.e.CreateCollection(ctx, &CreateCollectionInput{CollectionId: "a"})
	require.NoError(t, err)
	for _, tok := range fx.tokens[:3] {
		_, err := fx.e.ListUsers(ctx, &ListUsersInput{CollectionId: "a", NextToken: tok})
		require.ErrorIs(t, err, ErrInvalidPaginationToken)
		_, err = fx.e.ListFaces(ctx, &ListFacesInput{CollectionId: "a", NextToken: tok})
		require.ErrorIs(t, err, ErrInvalidPaginationToken)
	}
}
