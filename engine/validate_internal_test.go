package engine

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestFaceBytes: a face ID and its 16 bytes stand for each other, so Open
// may compare the bytes; any other spelling of a UUID is no face ID.
func TestFaceBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		var want [16]byte
		for i := range want {
			want[i] = byte(r.Uint32())
		}
		id := uuid.UUID(want).String()
		got, ok := faceBytes(id)
		require.True(t, ok, id)
		require.Equal(t, want, got, id)
		got, ok = faceBytes([]byte(id))
		require.True(t, ok, id)
		require.Equal(t, want, got, id)
	}
	const id = "0f0e0d0c-0b0a-0908-0706-050403020100"
	for _, bad := range []string{
		"",
		strings.ToUpper(id),
		"0f0e0d0c-0b0a-0908-0706-05040302010G",
		"0f0e0d0c-0b0a-0908-0706-05040302010",
		"0f0e0d0c-0b0a-0908-0706-0504030201000",
		"0f0e0d0c00b0a-0908-0706-050403020100",
		"0f0e0d0c-0b0a-0908-0706+050403020100",
		"{0f0e0d0c-0b0a-0908-0706-05040302010}",
		"urn:uuid:0f0e0d0c-0b0a-0908-0706-0504",
		"0f0e0d0c0b0a090807060504030201000000",
		"0f0e0d0c-0b0a-0908-0706-05040302010\x00",
	} {
		_, ok := faceBytes(bad)
		require.False(t, ok, "%q", bad)
		require.False(t, isFaceID(bad), "%q", bad)
	}
	require.Zero(t, testing.AllocsPerRun(100, func() { faceBytes([]byte(id)) }), "Open calls it per vector")
}
