//go:build !purego

#include "textflag.h"

// The batched int8 bounds kernel (see boundsI8BatchAsm): a tile of 16 rows
// transposed once, then every query of the batch against it with VPDPBUSD,
// 16 queries (then 4) at a time, each query's 16 sums in one register, so
// that no sum needs a horizontal reduction.

DATA bias8<>+0(SB)/4, $0x80808080
GLOBL bias8<>(SB), RODATA|NOPTR, $4

// LOADZ and LOADY load 64 (32) bytes of each of 16 rows into Z0..Z15 (Y0..Y15,
// the upper halves zeroed): row 4m+i at Rm + i*stride (DX = stride,
// BX = 3*stride).
#define LOADZ \
	VMOVDQU32 (R8), Z0; VMOVDQU32 (R8)(DX*1), Z1; VMOVDQU32 (R8)(DX*2), Z2; VMOVDQU32 (R8)(BX*1), Z3; \
	VMOVDQU32 (R9), Z4; VMOVDQU32 (R9)(DX*1), Z5; VMOVDQU32 (R9)(DX*2), Z6; VMOVDQU32 (R9)(BX*1), Z7; \
	VMOVDQU32 (R10), Z8; VMOVDQU32 (R10)(DX*1), Z9; VMOVDQU32 (R10)(DX*2), Z10; VMOVDQU32 (R10)(BX*1), Z11; \
	VMOVDQU32 (R11), Z12; VMOVDQU32 (R11)(DX*1), Z13; VMOVDQU32 (R11)(DX*2), Z14; VMOVDQU32 (R11)(BX*1), Z15

#define LOADY \
	VMOVDQU (R8), Y0; VMOVDQU (R8)(DX*1), Y1; VMOVDQU (R8)(DX*2), Y2; VMOVDQU (R8)(BX*1), Y3; \
	VMOVDQU (R9), Y4; VMOVDQU (R9)(DX*1), Y5; VMOVDQU (R9)(DX*2), Y6; VMOVDQU (R9)(BX*1), Y7; \
	VMOVDQU (R10), Y8; VMOVDQU (R10)(DX*1), Y9; VMOVDQU (R10)(DX*2), Y10; VMOVDQU (R10)(BX*1), Y11; \
	VMOVDQU (R11), Y12; VMOVDQU (R11)(DX*1), Y13; VMOVDQU (R11)(DX*2), Y14; VMOVDQU (R11)(BX*1), Y15

// BIAS adds 128 to every byte (as unsigned: flips the top bit).
#define BIAS \
	VPXORD.BCST bias8<>(SB), Z0, Z0; VPXORD.BCST bias8<>(SB), Z1, Z1; \
	VPXORD.BCST bias8<>(SB), Z2, Z2; VPXORD.BCST bias8<>(SB), Z3, Z3; \
	VPXORD.BCST bias8<>(SB), Z4, Z4; VPXORD.BCST bias8<>(SB), Z5, Z5; \
	VPXORD.BCST bias8<>(SB), Z6, Z6; VPXORD.BCST bias8<>(SB), Z7, Z7; \
	VPXORD.BCST bias8<>(SB), Z8, Z8; VPXORD.BCST bias8<>(SB), Z9, Z9; \
	VPXORD.BCST bias8<>(SB), Z10, Z10; VPXORD.BCST bias8<>(SB), Z11, Z11; \
	VPXORD.BCST bias8<>(SB), Z12, Z12; VPXORD.BCST bias8<>(SB), Z13, Z13; \
	VPXORD.BCST bias8<>(SB), Z14, Z14; VPXORD.BCST bias8<>(SB), Z15, Z15

// TRANSPOSE transposes the 16x16 dwords in Z0..Z15 (Zr = row r) so that
// Zk holds dword k of each row, row r in lane r, using Z16..Z31.
#define TRANSPOSE \
	VPUNPCKLDQ Z1, Z0, Z16; VPUNPCKHDQ Z1, Z0, Z17; \
	VPUNPCKLDQ Z3, Z2, Z18; VPUNPCKHDQ Z3, Z2, Z19; \
	VPUNPCKLDQ Z5, Z4, Z20; VPUNPCKHDQ Z5, Z4, Z21; \
	VPUNPCKLDQ Z7, Z6, Z22; VPUNPCKHDQ Z7, Z6, Z23; \
	VPUNPCKLDQ Z9, Z8, Z24; VPUNPCKHDQ Z9, Z8, Z25; \
	VPUNPCKLDQ Z11, Z10, Z26; VPUNPCKHDQ Z11, Z10, Z27; \
	VPUNPCKLDQ Z13, Z12, Z28; VPUNPCKHDQ Z13, Z12, Z29; \
	VPUNPCKLDQ Z15, Z14, Z30; VPUNPCKHDQ Z15, Z14, Z31; \
	VPUNPCKLQDQ Z18, Z16, Z0; VPUNPCKHQDQ Z18, Z16, Z1; VPUNPCKLQDQ Z19, Z17, Z2; VPUNPCKHQDQ Z19, Z17, Z3; \
	VPUNPCKLQDQ Z22, Z20, Z4; VPUNPCKHQDQ Z22, Z20, Z5; VPUNPCKLQDQ Z23, Z21, Z6; VPUNPCKHQDQ Z23, Z21, Z7; \
	VPUNPCKLQDQ Z26, Z24, Z8; VPUNPCKHQDQ Z26, Z24, Z9; VPUNPCKLQDQ Z27, Z25, Z10; VPUNPCKHQDQ Z27, Z25, Z11; \
	VPUNPCKLQDQ Z30, Z28, Z12; VPUNPCKHQDQ Z30, Z28, Z13; VPUNPCKLQDQ Z31, Z29, Z14; VPUNPCKHQDQ Z31, Z29, Z15; \
	VSHUFI32X4 $0x88, Z4, Z0, Z16; VSHUFI32X4 $0xdd, Z4, Z0, Z17; VSHUFI32X4 $0x88, Z12, Z8, Z18; VSHUFI32X4 $0xdd, Z12, Z8, Z19; \
	VSHUFI32X4 $0x88, Z5, Z1, Z20; VSHUFI32X4 $0xdd, Z5, Z1, Z21; VSHUFI32X4 $0x88, Z13, Z9, Z22; VSHUFI32X4 $0xdd, Z13, Z9, Z23; \
	VSHUFI32X4 $0x88, Z6, Z2, Z24; VSHUFI32X4 $0xdd, Z6, Z2, Z25; VSHUFI32X4 $0x88, Z14, Z10, Z26; VSHUFI32X4 $0xdd, Z14, Z10, Z27; \
	VSHUFI32X4 $0x88, Z7, Z3, Z28; VSHUFI32X4 $0xdd, Z7, Z3, Z29; VSHUFI32X4 $0x88, Z15, Z11, Z30; VSHUFI32X4 $0xdd, Z15, Z11, Z31; \
	VSHUFI32X4 $0x88, Z18, Z16, Z0; VSHUFI32X4 $0xdd, Z18, Z16, Z8; VSHUFI32X4 $0x88, Z19, Z17, Z4; VSHUFI32X4 $0xdd, Z19, Z17, Z12; \
	VSHUFI32X4 $0x88, Z22, Z20, Z1; VSHUFI32X4 $0xdd, Z22, Z20, Z9; VSHUFI32X4 $0x88, Z23, Z21, Z5; VSHUFI32X4 $0xdd, Z23, Z21, Z13; \
	VSHUFI32X4 $0x88, Z26, Z24, Z2; VSHUFI32X4 $0xdd, Z26, Z24, Z10; VSHUFI32X4 $0x88, Z27, Z25, Z6; VSHUFI32X4 $0xdd, Z27, Z25, Z14; \
	VSHUFI32X4 $0x88, Z30, Z28, Z3; VSHUFI32X4 $0xdd, Z30, Z28, Z11; VSHUFI32X4 $0x88, Z31, Z29, Z7; VSHUFI32X4 $0xdd, Z31, Z29, Z15

// PREFETCH16 asks for the next 1024 bytes of the next tile: a kernel
// call's loads of a block are 16 streams, which the hardware prefetchers
// follow worse than one.
#define PREFETCH16 \
	PREFETCHT0 (R12); PREFETCHT0 64(R12); PREFETCHT0 128(R12); PREFETCHT0 192(R12); \
	PREFETCHT0 256(R12); PREFETCHT0 320(R12); PREFETCHT0 384(R12); PREFETCHT0 448(R12); \
	PREFETCHT0 512(R12); PREFETCHT0 576(R12); PREFETCHT0 640(R12); PREFETCHT0 704(R12); \
	PREFETCHT0 768(R12); PREFETCHT0 832(R12); PREFETCHT0 896(R12); PREFETCHT0 960(R12); \
	ADDQ       $1024, R12

#define STORE8 \
	VMOVDQU32 Z0, (DI); VMOVDQU32 Z1, 64(DI); VMOVDQU32 Z2, 128(DI); VMOVDQU32 Z3, 192(DI); \
	VMOVDQU32 Z4, 256(DI); VMOVDQU32 Z5, 320(DI); VMOVDQU32 Z6, 384(DI); VMOVDQU32 Z7, 448(DI)

// func transposeI8(rows *int8, stride int, trans *byte)
// trans[64g + 4r + b] = rows[r*stride + 4g + b] + 128 (as a byte) for the
// 16 rows r and the stride/4 groups g; stride is a positive multiple of 32.
TEXT ·transposeI8(SB), NOSPLIT, $0-24
	MOVQ rows+0(FP), R8
	MOVQ stride+8(FP), DX
	MOVQ trans+16(FP), DI
	LEAQ (DX)(DX*2), BX
	LEAQ (R8)(DX*4), R9
	LEAQ (R9)(DX*4), R10
	LEAQ (R10)(DX*4), R11
	MOVQ DX, R12
	SHLQ $4, R12
	ADDQ R8, R12 // the next tile, if its rows follow
	MOVQ DX, CX
	SHRQ $6, CX
	JZ   half

block:
	PREFETCH16
	LOADZ
	BIAS
	TRANSPOSE
	STORE8
	VMOVDQU32 Z8, 512(DI)
	VMOVDQU32 Z9, 576(DI)
	VMOVDQU32 Z10, 640(DI)
	VMOVDQU32 Z11, 704(DI)
	VMOVDQU32 Z12, 768(DI)
	VMOVDQU32 Z13, 832(DI)
	VMOVDQU32 Z14, 896(DI)
	VMOVDQU32 Z15, 960(DI)
	ADDQ      $64, R8
	ADDQ      $64, R9
	ADDQ      $64, R10
	ADDQ      $64, R11
	ADDQ      $1024, DI
	DECQ      CX
	JNZ       block

half:
	TESTQ $32, DX
	JZ    transposed
	LOADY
	BIAS
	TRANSPOSE
	STORE8

transposed:
	VZEROUPPER
	RET

// EPI turns accumulator A, query i's 16 sums, into its bounds at out and
// its mask, as boundsI8BatchGo rounds them: Z30 holds the rows' scales,
// Z31 their residuals, R10 the group's params (16 bytes a query: corr, sq,
// qnorm, slack), R11 its floors, R12 its bounds, R13 its masks.
#define EPI(A, P, F, O, M) \
	VCVTDQ2PS   A, A; \
	VMULPS.BCST (P+4)(R10), Z30, Z28; \
	VMULPS      Z28, A, A; \
	VMULPS.BCST (P+8)(R10), Z31, Z29; \
	VADDPS      Z29, A, A; \
	VADDPS.BCST (P+12)(R10), A, A; \
	VMOVUPS     A, O(R12); \
	VCMPPS.BCST $0x1d, F(R11), A, K1; \
	KMOVW       K1, AX; \
	MOVW        AX, M(R13)

// func boundsTileI8(trans *byte, groups int, q *int8, n16 int, n4 int, params *i8Param, floor *float32, scale *float32, resid *float32, out *float32, mask *uint16)
// For a tile transposeI8 made of groups 4-value groups, and the queries
// packed by i8Batch.pack (n16 groups of 16, then n4 groups of 4): out[16j
// + r] = the bound of row r for query j and mask[j] the rows whose bound
// is at least floor[j] (GE, ordered). groups is a positive multiple of 8.
TEXT ·boundsTileI8(SB), NOSPLIT, $0-88
	MOVQ    trans+0(FP), R14
	MOVQ    groups+8(FP), DX
	MOVQ    q+16(FP), DI
	MOVQ    n16+24(FP), R8
	MOVQ    n4+32(FP), R9
	MOVQ    params+40(FP), R10
	MOVQ    floor+48(FP), R11
	MOVQ    scale+56(FP), AX
	VMOVUPS (AX), Z30
	MOVQ    resid+64(FP), AX
	VMOVUPS (AX), Z31
	MOVQ    out+72(FP), R12
	MOVQ    mask+80(FP), R13
	TESTQ   R8, R8
	JZ      four

sixteen:
	VPBROADCASTD 0(R10), Z0
	VPBROADCASTD 16(R10), Z1
	VPBROADCASTD 32(R10), Z2
	VPBROADCASTD 48(R10), Z3
	VPBROADCASTD 64(R10), Z4
	VPBROADCASTD 80(R10), Z5
	VPBROADCASTD 96(R10), Z6
	VPBROADCASTD 112(R10), Z7
	VPBROADCASTD 128(R10), Z8
	VPBROADCASTD 144(R10), Z9
	VPBROADCASTD 160(R10), Z10
	VPBROADCASTD 176(R10), Z11
	VPBROADCASTD 192(R10), Z12
	VPBROADCASTD 208(R10), Z13
	VPBROADCASTD 224(R10), Z14
	VPBROADCASTD 240(R10), Z15
	MOVQ         R14, SI
	MOVQ         DX, CX

g16:
	VMOVDQU32     (SI), Z16
	VPDPBUSD.BCST (DI), Z16, Z0
	VPDPBUSD.BCST 4(DI), Z16, Z1
	VPDPBUSD.BCST 8(DI), Z16, Z2
	VPDPBUSD.BCST 12(DI), Z16, Z3
	VPDPBUSD.BCST 16(DI), Z16, Z4
	VPDPBUSD.BCST 20(DI), Z16, Z5
	VPDPBUSD.BCST 24(DI), Z16, Z6
	VPDPBUSD.BCST 28(DI), Z16, Z7
	VPDPBUSD.BCST 32(DI), Z16, Z8
	VPDPBUSD.BCST 36(DI), Z16, Z9
	VPDPBUSD.BCST 40(DI), Z16, Z10
	VPDPBUSD.BCST 44(DI), Z16, Z11
	VPDPBUSD.BCST 48(DI), Z16, Z12
	VPDPBUSD.BCST 52(DI), Z16, Z13
	VPDPBUSD.BCST 56(DI), Z16, Z14
	VPDPBUSD.BCST 60(DI), Z16, Z15
	ADDQ          $64, SI
	ADDQ          $64, DI
	DECQ          CX
	JNZ           g16
	EPI(Z0, 0, 0, 0, 0)
	EPI(Z1, 16, 4, 64, 2)
	EPI(Z2, 32, 8, 128, 4)
	EPI(Z3, 48, 12, 192, 6)
	EPI(Z4, 64, 16, 256, 8)
	EPI(Z5, 80, 20, 320, 10)
	EPI(Z6, 96, 24, 384, 12)
	EPI(Z7, 112, 28, 448, 14)
	EPI(Z8, 128, 32, 512, 16)
	EPI(Z9, 144, 36, 576, 18)
	EPI(Z10, 160, 40, 640, 20)
	EPI(Z11, 176, 44, 704, 22)
	EPI(Z12, 192, 48, 768, 24)
	EPI(Z13, 208, 52, 832, 26)
	EPI(Z14, 224, 56, 896, 28)
	EPI(Z15, 240, 60, 960, 30)
	ADDQ $256, R10
	ADDQ $64, R11
	ADDQ $1024, R12
	ADDQ $32, R13
	DECQ R8
	JNZ  sixteen

four:
	TESTQ R9, R9
	JZ    bounded

fourloop:
	// Two sets of accumulators, for even and odd groups, keep eight
	// chains in flight.
	VPBROADCASTD 0(R10), Z0
	VPBROADCASTD 16(R10), Z1
	VPBROADCASTD 32(R10), Z2
	VPBROADCASTD 48(R10), Z3
	VPXORD       Z4, Z4, Z4
	VPXORD       Z5, Z5, Z5
	VPXORD       Z6, Z6, Z6
	VPXORD       Z7, Z7, Z7
	MOVQ         R14, SI
	MOVQ         DX, CX

g4:
	VMOVDQU32     (SI), Z16
	VMOVDQU32     64(SI), Z17
	VPDPBUSD.BCST (DI), Z16, Z0
	VPDPBUSD.BCST 4(DI), Z16, Z1
	VPDPBUSD.BCST 8(DI), Z16, Z2
	VPDPBUSD.BCST 12(DI), Z16, Z3
	VPDPBUSD.BCST 16(DI), Z17, Z4
	VPDPBUSD.BCST 20(DI), Z17, Z5
	VPDPBUSD.BCST 24(DI), Z17, Z6
	VPDPBUSD.BCST 28(DI), Z17, Z7
	ADDQ          $128, SI
	ADDQ          $32, DI
	SUBQ          $2, CX
	JNZ           g4
	VPADDD        Z4, Z0, Z0
	VPADDD        Z5, Z1, Z1
	VPADDD        Z6, Z2, Z2
	VPADDD        Z7, Z3, Z3
	EPI(Z0, 0, 0, 0, 0)
	EPI(Z1, 16, 4, 64, 2)
	EPI(Z2, 32, 8, 128, 4)
	EPI(Z3, 48, 12, 192, 6)
	ADDQ $64, R10
	ADDQ $16, R11
	ADDQ $256, R12
	ADDQ $8, R13
	DECQ R9
	JNZ  fourloop

bounded:
	VZEROUPPER
	RET
