//go:build !purego

package index

import "golang.org/x/sys/cpu"

// haveVNNI reports whether the CPU runs AVX-512 VNNI and BW, which the
// batched int8 kernel needs besides AVX-512F.
var haveVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// batchI8MinVNNI is the least group of queries the int8 tier scores with
// the batched kernel rather than on the float32 rows (BenchmarkSearchBatch,
// int8 against float32 at the same batch size).
const batchI8MinVNNI = 2

// useVNNI puts the batched int8 kernel in k.
func useVNNI(k *kernelSet) {
	k.boundsI8Batch = boundsI8BatchAsm
	k.batchI8Min = batchI8MinVNNI
}

// boundsI8BatchAsm is boundsI8BatchGo with VPDPBUSD, which multiplies
// unsigned bytes by signed ones: the tile is transposed (each vector holds
// 4 values of each of its 16 rows) with the rows' values biased by +128,
// and each query's sum starts at -128 times its values' sum, which takes
// the bias back out; the sums stay exact. A short tile is padded with
// zero rows, whose bounds nobody reads.
func boundsI8BatchAsm(b *i8Batch, rows []int8, scale, resid []float32, t *i8Tile) {
	stride, n := b.stride, len(scale)
	if n == 0 {
		return
	}
	if n < tileRows {
		copy(t.pad, rows[:n*stride])
		clear(t.pad[n*stride:])
		copy(t.padScale[:], scale)
		clear(t.padScale[n:])
		copy(t.padResid[:], resid[:n])
		clear(t.padResid[n:])
		rows, scale, resid = t.pad, t.padScale[:], t.padResid[:]
	}
	rows, scale, resid = rows[:tileRows*stride], scale[:tileRows], resid[:tileRows]
	nq := len(b.params)
	trans, floor, out, mask := t.trans[:tileRows*stride], t.floor[:nq], t.out[:nq*tileRows], t.mask[:nq]
	q := b.interlvd[:nq*stride]
	transposeI8(&rows[0], stride, &trans[0])
	boundsTileI8(&trans[0], stride/4, &q[0], b.n16, b.n4, &b.params[0], &floor[0], &scale[0], &resid[0], &out[0], &mask[0])
}

//go:noescape
func transposeI8(rows *int8, stride int, trans *byte)

//go:noescape
func boundsTileI8(trans *byte, groups int, q *int8, n16 int, n4 int, params *i8Param, floor *float32, scale *float32, resid *float32, out *float32, mask *uint16)
