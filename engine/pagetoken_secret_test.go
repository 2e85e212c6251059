package engine_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// Two stores holding the same data accept each other's page tokens when
// they share Options.PageTokenSecret, and not otherwise: each store's own
// secret is the default.
func TestPageTokenSecretIsShared(t *testing.T) {
	shared := bytes.Repeat([]byte{7}, 32)
	open := func(secret []byte) *engine.Engine {
		e, err := engine.Open(t.TempDir(), &engine.Options{PageTokenSecret: secret})
		require.NoError(t, err)
		t.Cleanup(func() { e.Close() })
		createCollection(t, e, "c", "")
		for _, id := range []string{"a", "b", "c"} {
			createUser(t, e, "c", id)
		}
		return e
	}
	one := int32(1)
	tests := []struct {
		name     string
		from, to *engine.Engine
		ok       bool
	}{
		{"same secret", open(shared), open(shared), true},
		{"each store's own", open(nil), open(nil), false},
		{"shared and own", open(shared), open(nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := tt.from.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: &one})
			require.NoError(t, err)
			next, err := tt.to.ListUsers(ctx, &engine.ListUsersInput{CollectionId: "c", MaxResults: &one, NextToken: page.NextToken})
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, "b", next.Users[0].UserId)
				return
			}
			require.True(t, errors.Is(err, &engine.Error{Code: engine.CodeInvalidPaginationToken}), "got %v", err)
		})
	}
}

func TestPageTokenSecretTooShort(t *testing.T) {
	_, err := engine.Open(t.TempDir(), &engine.Options{PageTokenSecret: []byte("short")})
	require.Error(t, err)
	require.NoError(t, (&engine.Options{PageTokenSecret: bytes.Repeat([]byte{1}, 16)}).Validate())
}
