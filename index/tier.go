package index

import (
	"fmt"
	"slices"
)

// Tier is the form of the rows a search scans.
//
// Every tier keeps the float32 rows: they are what [Matrix.Vector] returns
// and what every reported score is computed from. A compressed tier adds a
// smaller copy of the rows. A search scans the copy for an upper bound of
// each row's score, keeps the rows with the highest bounds as candidates
// (more than k, see candidateSlack), and scores only those exactly. The bound
// is rigorous (quantization residual, query rounding and float32 rounding
// included), so when every row left out has a bound below the k-th exact
// score the answer is provably the float32 scan's; when that proof fails
// (rare on real embeddings) the search scans the float32 rows too
// ([Stats].Fallbacks). Either way a compressed search returns exactly what
// a [TierFloat32] search returns, and reads a quarter of the bytes when the
// proof holds.
type Tier uint8

const (
	// TierFloat32 scans the float32 rows: 4 bytes per value.
	TierFloat32 Tier = iota
	// TierInt8 scans an int8 copy with one scale per row: 1 byte per value
	// plus 8 bytes per row, on top of the float32 rows.
	TierInt8
	// TierFloat16 scans an IEEE half-precision copy: 2 bytes per value
	// plus 4 bytes per row, on top of the float32 rows.
	TierFloat16
)

var tierNames = []string{TierFloat32: "float32", TierInt8: "int8", TierFloat16: "float16"}

// String returns the tier's name: "float32", "int8" or "float16".
func (t Tier) String() string {
	if int(t) < len(tierNames) {
		return tierNames[t]
	}
	return fmt.Sprintf("Tier(%d)", uint8(t))
}

// ParseTier returns the tier named s, as [Tier.String] names it. The empty
// string is [TierFloat32].
func ParseTier(s string) (Tier, error) {
	if s == "" {
		return TierFloat32, nil
	}
	if i := slices.Index(tierNames, s); i >= 0 {
		return Tier(i), nil
	}
	return 0, fmt.Errorf("%w: %q (want float32, int8 or float16)", ErrTier, s)
}
