//go:build !purego

#include "textflag.h"

// The float32 kernels over rows in panels (see panel.go): panelRows rows
// side by side, value k of every row of a panel in one line of panelRows
// floats, one line per k. Every score is one FMA chain over k in order
// (s = fma(q_k, x_k, s) from s = +0), the order of dotChain, so whichever
// kernel computes a score it has the same bits: each lane of a register
// holds one row's chain. Callers guarantee the counts are at least 1.

// SCORES512 stores one query's scores, the chains A..D (rows 0-15, ..,
// 48-63), at (R10), and raises its top at OFF(R12) to their highest; R10
// then steps to the next query's scores (R11 bytes on). Z30 holds -Inf; Z24
// and Z25 are scratch. max(score, top) keeps top where the score is NaN,
// as Go's comparison does.
#define SCORES512(A, B, C, D, OFF) \
	VMOVUPS       A, (R10); \
	VMOVUPS       B, 64(R10); \
	VMOVUPS       C, 128(R10); \
	VMOVUPS       D, 192(R10); \
	VMOVAPS       Z30, Z24; \
	VMAXPS        Z24, A, Z24; \
	VMAXPS        Z24, B, Z24; \
	VMAXPS        Z24, C, Z24; \
	VMAXPS        Z24, D, Z24; \
	VEXTRACTF64X4 $1, Z24, Y25; \
	VMAXPS        Y25, Y24, Y24; \
	VEXTRACTF32X4 $1, Y24, X25; \
	VMAXPS        X25, X24, X24; \
	VPERMILPD     $1, X24, X25; \
	VMAXPS        X25, X24, X24; \
	VMOVSHDUP     X24, X25; \
	VMAXSS        X25, X24, X24; \
	VMAXSS        OFF(R12), X24, X24; \
	VMOVSS        X24, OFF(R12); \
	ADDQ          R11, R10

// SCORES256 is SCORES512 for AVX2's quarter of a panel: the chains A and B
// (16 rows) at (DX)(BX*1), the quarter's place, DX then stepping R11 bytes
// on. Y15 holds -Inf; Y12 and Y13 are scratch.
#define SCORES256(A, B, OFF) \
	VMOVUPS      A, (DX)(BX*1); \
	VMOVUPS      B, 32(DX)(BX*1); \
	VMAXPS       Y15, A, Y12; \
	VMAXPS       Y12, B, Y12; \
	VEXTRACTF128 $1, Y12, X13; \
	VMAXPS       X13, X12, X12; \
	VPERMILPD    $1, X12, X13; \
	VMAXPS       X13, X12, X12; \
	VMOVSHDUP    X12, X13; \
	VMAXSS       X13, X12, X12; \
	VMAXSS       OFF(R12), X12, X12; \
	VMOVSS       X12, OFF(R12); \
	ADDQ         R11, DX

// func dotChain(a *float32, b *float32, n int) float32
TEXT ·dotChain(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS X0, X0, X0

chain:
	VMOVSS      (SI), X1
	VFMADD231SS (DI), X1, X0
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         chain
	VMOVSS      X0, ret+24(FP)
	RET

// func panelDots256(q *float32, p *float32, dim int, np int, out *float32)
// out[64i+l] = the score of q and row l of panel i, for i < np, with
// AVX2: eight 8-lane chains a panel.
TEXT ·panelDots256(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ p+8(FP), DI
	MOVQ np+24(FP), BX
	MOVQ out+32(FP), R9

panel256:
	MOVQ dim+16(FP), CX
	MOVQ SI, R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

k256:
	VBROADCASTSS (R10), Y8
	VFMADD231PS 0(DI), Y8, Y0
	VFMADD231PS 32(DI), Y8, Y1
	VFMADD231PS 64(DI), Y8, Y2
	VFMADD231PS 96(DI), Y8, Y3
	VFMADD231PS 128(DI), Y8, Y4
	VFMADD231PS 160(DI), Y8, Y5
	VFMADD231PS 192(DI), Y8, Y6
	VFMADD231PS 224(DI), Y8, Y7
	ADDQ $4, R10
	ADDQ $256, DI
	DECQ CX
	JNZ  k256
	VMOVUPS Y0, 0(R9)
	VMOVUPS Y1, 32(R9)
	VMOVUPS Y2, 64(R9)
	VMOVUPS Y3, 96(R9)
	VMOVUPS Y4, 128(R9)
	VMOVUPS Y5, 160(R9)
	VMOVUPS Y6, 192(R9)
	VMOVUPS Y7, 224(R9)
	ADDQ $256, R9
	DECQ BX
	JNZ  panel256
	VZEROUPPER
	RET

// func panelDots512(q *float32, p *float32, dim int, np int, out *float32)
// panelDots256 with AVX-512 over four runs of np panels side by side, the
// quarters of 4*np panels from p, into the quarters of out: sixteen
// 16-lane chains, and four streams read faster than one or two.
TEXT ·panelDots512(SB), NOSPLIT, $0-40
	MOVQ  q+0(FP), SI
	MOVQ  p+8(FP), DI
	MOVQ  dim+16(FP), DX
	MOVQ  np+24(FP), BX
	MOVQ  out+32(FP), R9
	MOVQ  BX, AX
	IMULQ DX, AX
	SHLQ  $8, AX             // a quarter's bytes: np panels of 64 rows of dim floats
	LEAQ  (DI)(AX*1), R11
	LEAQ  (R11)(AX*1), R12
	LEAQ  (R12)(AX*1), R13
	MOVQ  BX, R14
	SHLQ  $8, R14            // a quarter's scores' bytes
	LEAQ  (R9)(R14*1), R15

panel512:
	MOVQ DX, CX
	MOVQ SI, R10
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

k512:
	VBROADCASTSS (R10), Z16
	VFMADD231PS 0(DI), Z16, Z0
	VFMADD231PS 64(DI), Z16, Z1
	VFMADD231PS 128(DI), Z16, Z2
	VFMADD231PS 192(DI), Z16, Z3
	VFMADD231PS 0(R11), Z16, Z4
	VFMADD231PS 64(R11), Z16, Z5
	VFMADD231PS 128(R11), Z16, Z6
	VFMADD231PS 192(R11), Z16, Z7
	VFMADD231PS 0(R12), Z16, Z8
	VFMADD231PS 64(R12), Z16, Z9
	VFMADD231PS 128(R12), Z16, Z10
	VFMADD231PS 192(R12), Z16, Z11
	VFMADD231PS 0(R13), Z16, Z12
	VFMADD231PS 64(R13), Z16, Z13
	VFMADD231PS 128(R13), Z16, Z14
	VFMADD231PS 192(R13), Z16, Z15
	ADDQ $4, R10
	ADDQ $256, DI
	ADDQ $256, R11
	ADDQ $256, R12
	ADDQ $256, R13
	DECQ CX
	JNZ  k512
	VMOVUPS Z0, 0(R9)
	VMOVUPS Z1, 64(R9)
	VMOVUPS Z2, 128(R9)
	VMOVUPS Z3, 192(R9)
	VMOVUPS Z4, 0(R15)
	VMOVUPS Z5, 64(R15)
	VMOVUPS Z6, 128(R15)
	VMOVUPS Z7, 192(R15)
	VMOVUPS Z8, 0(R15)(R14*1)
	VMOVUPS Z9, 64(R15)(R14*1)
	VMOVUPS Z10, 128(R15)(R14*1)
	VMOVUPS Z11, 192(R15)(R14*1)
	LEAQ (R15)(R14*2), R8
	VMOVUPS Z12, 0(R8)
	VMOVUPS Z13, 64(R8)
	VMOVUPS Z14, 128(R8)
	VMOVUPS Z15, 192(R8)
	ADDQ $256, R9
	ADDQ $256, R15
	DECQ BX
	JNZ  panel512
	VZEROUPPER
	RET

// func panelTile512(q *float32, p *float32, kc int, c *float32, mode int, out *float32, stride int, tops *float32, ahead int, lines int)
// One tile of the batched pass with AVX-512: the 64 rows of a panel
// against six queries, over kc values of k. q holds the six queries' values
// side by side (q[6k+j]), p the panel's lines from the same k. The 24
// chains (query j, rows 16h..16h+15 in Z(4j+h)) start from c's (mode&1) or
// from zero, and end in c (mode&2 == 0) or, for the last values of k, as
// scores: query j's of row l at out[j*stride+l], and tops[j] the highest
// of them and of its own value, NaNs aside. Each row line loaded serves six
// FMAs, each query value four, so the FMA pipes set the pace; kc values
// of 64 rows (32 KiB at kc = 128) stay in L1 while the pass's query groups
// read them.
TEXT ·panelTile512(SB), NOSPLIT, $0-80
	MOVQ  q+0(FP), SI
	MOVQ  p+8(FP), DI
	MOVQ  kc+16(FP), CX
	MOVQ  c+24(FP), R9
	MOVQ  mode+32(FP), AX
	MOVQ  ahead+64(FP), R8
	ADDQ  DI, R8
	MOVQ  lines+72(FP), R10
	TESTQ R10, R10
	JZ    go512

ahead512:
	PREFETCHT0 (R8)
	ADDQ       $64, R8
	DECQ       R10
	JNZ        ahead512

go512:
	TESTQ $1, AX
	JZ    zero512
	VMOVUPS 0(R9), Z0
	VMOVUPS 64(R9), Z1
	VMOVUPS 128(R9), Z2
	VMOVUPS 192(R9), Z3
	VMOVUPS 256(R9), Z4
	VMOVUPS 320(R9), Z5
	VMOVUPS 384(R9), Z6
	VMOVUPS 448(R9), Z7
	VMOVUPS 512(R9), Z8
	VMOVUPS 576(R9), Z9
	VMOVUPS 640(R9), Z10
	VMOVUPS 704(R9), Z11
	VMOVUPS 768(R9), Z12
	VMOVUPS 832(R9), Z13
	VMOVUPS 896(R9), Z14
	VMOVUPS 960(R9), Z15
	VMOVUPS 1024(R9), Z16
	VMOVUPS 1088(R9), Z17
	VMOVUPS 1152(R9), Z18
	VMOVUPS 1216(R9), Z19
	VMOVUPS 1280(R9), Z20
	VMOVUPS 1344(R9), Z21
	VMOVUPS 1408(R9), Z22
	VMOVUPS 1472(R9), Z23
	JMP   tk512

zero512:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23

tk512:
	VMOVUPS 0(DI), Z24
	VMOVUPS 64(DI), Z25
	VMOVUPS 128(DI), Z26
	VMOVUPS 192(DI), Z27
	VBROADCASTSS 0(SI), Z28
	VFMADD231PS Z28, Z24, Z0
	VFMADD231PS Z28, Z25, Z1
	VFMADD231PS Z28, Z26, Z2
	VFMADD231PS Z28, Z27, Z3
	VBROADCASTSS 4(SI), Z29
	VFMADD231PS Z29, Z24, Z4
	VFMADD231PS Z29, Z25, Z5
	VFMADD231PS Z29, Z26, Z6
	VFMADD231PS Z29, Z27, Z7
	VBROADCASTSS 8(SI), Z30
	VFMADD231PS Z30, Z24, Z8
	VFMADD231PS Z30, Z25, Z9
	VFMADD231PS Z30, Z26, Z10
	VFMADD231PS Z30, Z27, Z11
	VBROADCASTSS 12(SI), Z31
	VFMADD231PS Z31, Z24, Z12
	VFMADD231PS Z31, Z25, Z13
	VFMADD231PS Z31, Z26, Z14
	VFMADD231PS Z31, Z27, Z15
	VBROADCASTSS 16(SI), Z28
	VFMADD231PS Z28, Z24, Z16
	VFMADD231PS Z28, Z25, Z17
	VFMADD231PS Z28, Z26, Z18
	VFMADD231PS Z28, Z27, Z19
	VBROADCASTSS 20(SI), Z29
	VFMADD231PS Z29, Z24, Z20
	VFMADD231PS Z29, Z25, Z21
	VFMADD231PS Z29, Z26, Z22
	VFMADD231PS Z29, Z27, Z23
	ADDQ  $24, SI
	ADDQ  $256, DI
	DECQ  CX
	JNZ   tk512
	TESTQ $2, AX
	JNZ   final512
	VMOVUPS Z0, 0(R9)
	VMOVUPS Z1, 64(R9)
	VMOVUPS Z2, 128(R9)
	VMOVUPS Z3, 192(R9)
	VMOVUPS Z4, 256(R9)
	VMOVUPS Z5, 320(R9)
	VMOVUPS Z6, 384(R9)
	VMOVUPS Z7, 448(R9)
	VMOVUPS Z8, 512(R9)
	VMOVUPS Z9, 576(R9)
	VMOVUPS Z10, 640(R9)
	VMOVUPS Z11, 704(R9)
	VMOVUPS Z12, 768(R9)
	VMOVUPS Z13, 832(R9)
	VMOVUPS Z14, 896(R9)
	VMOVUPS Z15, 960(R9)
	VMOVUPS Z16, 1024(R9)
	VMOVUPS Z17, 1088(R9)
	VMOVUPS Z18, 1152(R9)
	VMOVUPS Z19, 1216(R9)
	VMOVUPS Z20, 1280(R9)
	VMOVUPS Z21, 1344(R9)
	VMOVUPS Z22, 1408(R9)
	VMOVUPS Z23, 1472(R9)
	VZEROUPPER
	RET

final512:
	MOVQ         out+40(FP), R10
	MOVQ         stride+48(FP), R11
	SHLQ         $2, R11
	MOVQ         tops+56(FP), R12
	MOVL         $0xff800000, R13 // -Inf
	VPBROADCASTD R13, Z30
	SCORES512(Z0, Z1, Z2, Z3, 0)
	SCORES512(Z4, Z5, Z6, Z7, 4)
	SCORES512(Z8, Z9, Z10, Z11, 8)
	SCORES512(Z12, Z13, Z14, Z15, 12)
	SCORES512(Z16, Z17, Z18, Z19, 16)
	SCORES512(Z20, Z21, Z22, Z23, 20)
	VZEROUPPER
	RET

// func panelTile256(q *float32, p *float32, kc int, c *float32, mode int, out *float32, stride int, tops *float32, ahead int, lines int)
// panelTile512 with AVX2, which has registers for twelve 8-lane chains: the
// panel's rows sixteen at a time (quarter s at c[96s:]), each quarter
// over all kc values of k before the next.
TEXT ·panelTile256(SB), NOSPLIT, $0-80
	MOVQ  ahead+64(FP), R8
	ADDQ  p+8(FP), R8
	MOVQ  lines+72(FP), R10
	TESTQ R10, R10
	JZ    go256

ahead256:
	PREFETCHT0 (R8)
	ADDQ       $64, R8
	DECQ       R10
	JNZ        ahead256

go256:
	MOVQ  mode+32(FP), AX
	MOVQ  c+24(FP), R9
	MOVQ  out+40(FP), R10
	MOVQ  stride+48(FP), R11
	SHLQ  $2, R11
	MOVQ  p+8(FP), R8
	XORQ  BX, BX // quarter

quarter256:
	MOVQ  q+0(FP), SI
	LEAQ  (R8)(BX*1), DI
	MOVQ  kc+16(FP), CX
	TESTQ $1, AX
	JZ    zero256
	VMOVUPS 0(R9), Y0
	VMOVUPS 32(R9), Y1
	VMOVUPS 64(R9), Y2
	VMOVUPS 96(R9), Y3
	VMOVUPS 128(R9), Y4
	VMOVUPS 160(R9), Y5
	VMOVUPS 192(R9), Y6
	VMOVUPS 224(R9), Y7
	VMOVUPS 256(R9), Y8
	VMOVUPS 288(R9), Y9
	VMOVUPS 320(R9), Y10
	VMOVUPS 352(R9), Y11
	JMP   tk256

zero256:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

tk256:
	VMOVUPS (DI), Y12
	VMOVUPS 32(DI), Y13
	VBROADCASTSS 0(SI), Y14
	VFMADD231PS Y14, Y12, Y0
	VFMADD231PS Y14, Y13, Y1
	VBROADCASTSS 4(SI), Y15
	VFMADD231PS Y15, Y12, Y2
	VFMADD231PS Y15, Y13, Y3
	VBROADCASTSS 8(SI), Y14
	VFMADD231PS Y14, Y12, Y4
	VFMADD231PS Y14, Y13, Y5
	VBROADCASTSS 12(SI), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VBROADCASTSS 16(SI), Y14
	VFMADD231PS Y14, Y12, Y8
	VFMADD231PS Y14, Y13, Y9
	VBROADCASTSS 20(SI), Y15
	VFMADD231PS Y15, Y12, Y10
	VFMADD231PS Y15, Y13, Y11
	ADDQ  $24, SI
	ADDQ  $256, DI
	DECQ  CX
	JNZ   tk256
	TESTQ $2, AX
	JNZ   final256
	VMOVUPS Y0, 0(R9)
	VMOVUPS Y1, 32(R9)
	VMOVUPS Y2, 64(R9)
	VMOVUPS Y3, 96(R9)
	VMOVUPS Y4, 128(R9)
	VMOVUPS Y5, 160(R9)
	VMOVUPS Y6, 192(R9)
	VMOVUPS Y7, 224(R9)
	VMOVUPS Y8, 256(R9)
	VMOVUPS Y9, 288(R9)
	VMOVUPS Y10, 320(R9)
	VMOVUPS Y11, 352(R9)
	JMP   next256

final256:
	MOVQ  R10, DX
	MOVQ  tops+56(FP), R12
	MOVL  $0xff800000, R13 // -Inf
	VMOVD R13, X15
	VBROADCASTSS X15, Y15
	SCORES256(Y0, Y1, 0)
	SCORES256(Y2, Y3, 4)
	SCORES256(Y4, Y5, 8)
	SCORES256(Y6, Y7, 12)
	SCORES256(Y8, Y9, 16)
	SCORES256(Y10, Y11, 20)

next256:
	ADDQ $384, R9
	ADDQ $64, BX
	CMPQ BX, $256
	JNE  quarter256
	VZEROUPPER
	RET
