package cluster

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzDecodeCommand feeds the decoder what another node (or anyone allowed
// on the subject) could publish: it never panics, every failure is one of
// the two sentinels, and whatever it accepts encodes back to a command that
// decodes the same.
func FuzzDecodeCommand(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"id":"x","op":"Barrier","node":"n1","time":1}`,
		`{"v":1,"id":"a-b_c.d:e","op":"IndexFaces","node":"n2","time":1700000000000000000,"payload":{"CollectionId":"c","Faces":[{"Vector":[0.5,1e-3]}]}}`,
		`{"v":1,"id":"x","op":"CreateUser","node":"n","time":1,"payload":{ "a" : [1, {"b":null}] }}`,
		`{"v":2,"id":"x"}`,
		`{"v":1,"id":"x","op":"Barrier","node":"n1","time":1}}`,
		`{"v":1,"v":1,"id":"x","op":"Barrier","node":"n1","time":1,"payload":null}`,
		`[]`, `null`, ``, `{"v":-1}`, `{"v":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("error %v is neither sentinel", err)
			}
			return
		}
		enc, err := c.MarshalBinary()
		require.NoError(t, err, "an accepted command encodes")
		again, err := DecodeCommand(enc)
		require.NoError(t, err, "an encoded command decodes")
		assert.Equal(t, c, again)
	})
}
