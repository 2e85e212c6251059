//go:build !purego

package index

import "testing"

// TestAVX512For: the AVX-512 kernels run only where both the foundation
// and the 128- and 256-bit EVEX forms (VL) do.
func TestAVX512For(t *testing.T) {
	for _, tc := range []struct{ f, vl, want bool }{
		{true, true, true},
		{true, false, false}, // Xeon Phi: dotRowsQ4's folds would fault
		{false, true, false},
		{false, false, false},
	} {
		if got := avx512For(tc.f, tc.vl); got != tc.want {
			t.Errorf("avx512For(F=%v, VL=%v) = %v, want %v", tc.f, tc.vl, got, tc.want)
		}
	}
}
