package engine

import (
	"math"
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

// TestNormalizeNonFinite: a NaN or an infinity anywhere is refused, named
// by its first position, whichever of normalize's sums it falls in.
func TestNormalizeNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		v    []float32
		want string
	}{
		{[]float32{nan}, "position 0"},
		{[]float32{1, 2, 3, 4, 5, 6, nan}, "position 6"},
		{[]float32{1, 2, -inf, 4, 5, inf, 7}, "position 2"},
		{[]float32{1, 2, 3, 4, inf, 6, 7, -inf}, "position 4"},
		{[]float32{math.MaxFloat32, math.MaxFloat32, 1, nan}, "position 3"},
	} {
		_, err := normalize(tc.v, "v")
		require.ErrorIs(t, err, ErrInvalidParameter, "%v", tc.v)
		require.ErrorContains(t, err, "non-finite value at "+tc.want)
	}
	// The largest finite values are no overflow.
	got, err := normalize([]float32{math.MaxFloat32, -math.MaxFloat32, math.MaxFloat32, 0, math.MaxFloat32}, "v")
	require.NoError(t, err)
	require.InDeltaSlice(t, []float32{0.5, -0.5, 0.5, 0, 0.5}, got, 1e-7)
}
