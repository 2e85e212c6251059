package roc

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkImpostors times counting rows of impostor scores spread as a
// 512-dimension model's are (cosines of about N(0, 1/512)), keeping the
// highest 1%.
func BenchmarkImpostors(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	row := make([]float32, 1024)
	for i := range row {
		row[i] = float32(r.NormFloat64() / 22.6)
	}
	const rows = 10_000
	c := NewCounter(rows * len(row) / 100)
	b.SetBytes(int64(4 * len(row)))
	for b.Loop() {
		c.Impostors(row)
	}
}
