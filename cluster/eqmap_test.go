package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// api is the 16 operations, as the single-node engine and a cluster
// Replica both serve them.
type api = server.Backend

var _ api = (*Replica)(nil)

// apiCall runs one operation with its input as JSON and returns its
// output as JSON, so that one request can go to both sides.
type apiCall func(ctx context.Context, a api, in []byte) ([]byte, error)

func callOf[I, O any](f func(api, context.Context, *I) (*O, error)) apiCall {
	return func(ctx context.Context, a api, in []byte) ([]byte, error) {
		v := new(I)
		if err := json.Unmarshal(in, v); err != nil {
			return nil, err
		}
		out, err := f(a, ctx, v)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
}

var apiCalls = map[string]apiCall{
	"CreateCollection":   callOf(api.CreateCollection),
	"DeleteCollection":   callOf(api.DeleteCollection),
	"DescribeCollection": callOf(api.DescribeCollection),
	"ListCollections":    callOf(api.ListCollections),
	"IndexFaces":         callOf(api.IndexFaces),
	"ListFaces":          callOf(api.ListFaces),
	"DeleteFaces":        callOf(api.DeleteFaces),
	"SearchFaces":        callOf(api.SearchFaces),
	"SearchFacesByImage": callOf(api.SearchFacesByImage),
	"CreateUser":         callOf(api.CreateUser),
	"DeleteUser":         callOf(api.DeleteUser),
	"ListUsers":          callOf(api.ListUsers),
	"AssociateFaces":     callOf(api.AssociateFaces),
	"DisassociateFaces":  callOf(api.DisassociateFaces),
	"SearchUsers":        callOf(api.SearchUsers),
	"SearchUsersByImage": callOf(api.SearchUsersByImage),
}

// idMap pairs what each side generated for itself: face and image IDs,
// page tokens. Both directions stay one-to-one.
type idMap struct {
	c2s, s2c map[string]string
}

func newIDMap() *idMap { return &idMap{c2s: map[string]string{}, s2c: map[string]string{}} }

// generated are the members whose values each side makes for itself.
var generated = map[string]bool{"FaceId": true, "ImageId": true, "NextToken": true}

// learn pairs the generated values of a single-node output s with the
// cluster's c at the same places, failing on a value paired twice.
func (m *idMap) learn(t *testing.T, s, c any) {
	t.Helper()
	switch sv := s.(type) {
	case map[string]any:
		cv, ok := c.(map[string]any)
		if !ok {
			return
		}
		for k, x := range sv {
			ss, sok := x.(string)
			cs, cok := cv[k].(string)
			if !generated[k] || !sok || !cok {
				m.learn(t, x, cv[k])
				continue
			}
			if got, seen := m.c2s[cs]; seen {
				require.Equal(t, ss, got, "%s %s paired with two single-node values", k, cs)
				continue
			}
			if _, seen := m.s2c[ss]; seen {
				require.Failf(t, "generated value paired twice", "single-node %s %s has two cluster values", k, ss)
			}
			m.c2s[cs], m.s2c[ss] = ss, cs
		}
	case []any:
		if cv, ok := c.([]any); ok {
			for i := range min(len(sv), len(cv)) {
				m.learn(t, sv[i], cv[i])
			}
		}
	}
}

// rewrite replaces every string of v found in to, and zeroes the creation
// times (each side reads its own clock).
func rewrite(v any, to map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "CreationTimestamp" {
				x[k] = 0
				continue
			}
			x[k] = rewrite(e, to)
		}
	case []any:
		for i, e := range x {
			x[i] = rewrite(e, to)
		}
	case string:
		if y, ok := to[x]; ok {
			return y
		}
	}
	return v
}

// translate rewrites JSON b through to.
func translate(t *testing.T, b []byte, to map[string]string) []byte {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	out, err := json.Marshal(rewrite(v, to))
	require.NoError(t, err)
	return out
}

// requireSameAnswer compares a cluster answer with the single node's
// once generated values are paired: the same output, or the same error
// code and message.
func (m *idMap) requireSameAnswer(t *testing.T, what string, sOut []byte, sErr error, cOut []byte, cErr error) {
	t.Helper()
	if sErr != nil || cErr != nil {
		var se, ce *engine.Error
		require.Truef(t, errors.As(sErr, &se), "%s: single node: %v", what, sErr)
		require.Truef(t, errors.As(cErr, &ce), "%s: cluster: %v (single node: %v)", what, cErr, sErr)
		require.Equal(t, se.Code, ce.Code, "%s: %v / %v", what, sErr, cErr)
		require.Equal(t, se.Message, m.replaceAll(ce.Message), what)
		return
	}
	var s, c any
	require.NoError(t, json.Unmarshal(sOut, &s))
	require.NoError(t, json.Unmarshal(cOut, &c))
	m.learn(t, s, c)
	require.Equal(t, rewrite(s, nil), rewrite(c, m.c2s), "%s", what)
}

// replaceAll puts the single node's values in place of the cluster's in a
// message.
func (m *idMap) replaceAll(s string) string {
	for c, v := range m.c2s {
		s = strings.ReplaceAll(s, c, v)
	}
	return s
}

// logicalState is an engine's state through its API and exports: every
// collection's description, users with their statuses and every face with
// its vector bits and user, with the cluster's generated IDs rewritten
// through to (nil for the single node) and creation times left out.
func logicalState(t *testing.T, e *engine.Engine, to map[string]string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for in := (&engine.ListCollectionsInput{}); ; {
		page, err := e.ListCollections(ctx, in)
		require.NoError(t, err)
		for _, id := range page.CollectionIds {
			d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: id})
			require.NoError(t, err)
			d.CreationTimestamp = engine.Timestamp{}
			fmt.Fprintf(&b, "collection %s %+v\n", id, *d)
			users, err := e.ListUsers(ctx, &engine.ListUsersInput{CollectionId: id, MaxResults: ptr[int32](500)})
			require.NoError(t, err)
			fmt.Fprintf(&b, "users %+v\n", users.Users)
			for rec, err := range e.Export(ctx, id) {
				require.NoError(t, err)
				j, err := json.Marshal(rec)
				require.NoError(t, err)
				fmt.Fprintf(&b, "%s\n", translate(t, j, to))
			}
		}
		if page.NextToken == "" {
			return b.String()
		}
		in.NextToken = page.NextToken
	}
}

func ptr[T any](v T) *T { return &v }

// digestCount names the backups storeDigest takes.
var digestCount atomic.Int64

// storeDigest is a hash of every record of e's store but its own
// page-token secret, read from a backup taken under dir.
func storeDigest(t *testing.T, e *engine.Engine, dir string) string {
	t.Helper()
	copyDir := filepath.Join(dir, fmt.Sprintf("digest-%d", digestCount.Add(1)))
	require.NoError(t, e.Backup(copyDir))
	d := dump(t, copyDir)
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(d)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(d[k]), d[k])
	}
	return fmt.Sprintf("%d records %s", len(d), hex.EncodeToString(h.Sum(nil)[:12]))
}
