package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKeys: each key has the layout the package documents, built in
// one allocation of its exact size.
func TestKeys(t *testing.T) {
	const pk = 0x0102030405060708
	for _, tc := range []struct {
		name string
		key  func() []byte
		want string
	}{
		{"collection", func() []byte { return collKey("collection-1") }, "col/collection-1"},
		{"root", func() []byte { return collRoot("c1") }, "c/c1/"},
		{"prefix", func() []byte { return collPrefix("c1", 's') }, "c/c1/s/"},
		{"user", func() []byte { return userKey("c1", "bob") }, "c/c1/u/bob"},
		{"primary key", func() []byte { return pkKey("c1", pk) }, "c/c1/k/\x01\x02\x03\x04\x05\x06\x07\x08"},
		{"face", func() []byte { return faceKey("c1", 0x0102) }, "c/c1/s/\x00\x00\x00\x00\x00\x00\x01\x02"},
		{"legacy face", func() []byte { return legacyFaceKey("c1", "0f0e") }, "c/c1/f/0f0e"},
		{"vector prefix", func() []byte { return vectorPrefix("c1") }, "v/c1/"},
		{"vector", func() []byte { return vectorKey("c1", pk) }, "v/c1/\x01\x02\x03\x04\x05\x06\x07\x08"},
		{"token", func() []byte { return tokenKey("c1", "IndexFaces", "tok") }, "c/c1/t/IndexFaces/tok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.key()
			require.Equal(t, tc.want, string(k))
			require.Equal(t, len(k), cap(k), "room to spare")
			require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { tc.key() }))
		})
	}
}
