//go:build !purego

#include "textflag.h"

// The batched pass's AVX-512 kernel. It sums every dot product in
// vek32.Dot's order, as the kernels of kernel_amd64.s do (see there); callers
// guarantee dim >= 32 and n >= 1.

// REDUCE16 folds a product's two 16-lane accumulators ZA (values 32i..32i+15)
// and ZB (32i+16..32i+31), that is Dot's four 8-lane ones (the low and high
// halves of each), into the low lane of XA, in Dot's order; Y24, Y25 and
// X26 are scratch. EVEX forms throughout, as the scratch is past Y15.
#define REDUCE16(ZA, ZB, YA, YB, XA) \
	VEXTRACTF64X4 $1, ZA, Y24; \
	VEXTRACTF64X4 $1, ZB, Y25; \
	VADDPS        Y24, YA, YA; \
	VADDPS        YB, YA, YA; \
	VADDPS        Y25, YA, YA; \
	VEXTRACTF32X4 $1, YA, X26; \
	VADDPS        X26, XA, XA; \
	VPERMILPD     $1, XA, X26; \
	VADDPS        X26, XA, XA; \
	VMOVSHDUP     XA, X26; \
	VADDSS        X26, XA, XA

// PAIR16 folds two products' accumulators, AP and BP (as REDUCE16's ZA
// and ZB) and AQ and BQ, into S: its low half holds the first product's
// four 8-lane sums added in Dot's order, ((a0+a1)+a2)+a3, its high half
// the second's. The first sum takes the blend of AP's low and AQ's high
// half plus the halves crossed, a1+a0 for the second product, the same
// bits as a0+a1, for one shuffle less than crossing both. K2 selects the
// high half; Z24..Z27 are scratch.
#define PAIR16(AP, AQ, BP, BQ, S) \
	VBLENDMPS  AQ, AP, K2, Z24; \
	VSHUFF64X2 $0x4e, AQ, AP, Z25; \
	VSHUFF64X2 $0x44, BQ, BP, Z26; \
	VSHUFF64X2 $0xee, BQ, BP, Z27; \
	VADDPS     Z25, Z24, Z24; \
	VADDPS     Z26, Z24, Z24; \
	VADDPS     Z27, Z24, S

// STORE4 packs one row's four scores, the low lanes of XA..XD, into XA,
// stores it at OFF(R9) and folds it into the running maxima in X31:
// max(XA, X31) keeps X31 where a score is NaN, as Go's comparison does.
#define STORE4(XA, XB, XC, XD, OFF) \
	VINSERTPS $0x10, XB, XA, XA; \
	VINSERTPS $0x20, XC, XA, XA; \
	VINSERTPS $0x30, XD, XA, XA; \
	VMOVUPS   XA, OFF(R9); \
	VMAXPS    X31, XA, X31

// func dotRowsQ4(q *float32, rows *float32, dim int, n int, groups int, out *float32, tops *float32) (top float32)
// q holds groups groups of four queries back to back; for each group g,
// out[4n*g + 4r+j] = q_4g+j . row r for r < n, and tops[4g+j] = the
// highest of those (NaNs aside; -Inf if none), with AVX-512; top is the
// highest of tops. The rows are read once per group, from L1 when they
// fit. Rows are scored three at a time: twelve products of two 16-lane
// accumulators each (see dotRows3x2) take 24 of the 32 registers, the
// three rows' and four queries' values the rest, so each value loaded
// serves three or four FMAs and the FMA pipes, not the loads, set the pace.
// The rows left over are scored one at a time.
TEXT ·dotRowsQ4(SB), NOSPLIT, $0-60
	MOVL $0xff800000, top+56(FP) // -Inf
	MOVQ q+0(FP), SI
	MOVQ dim+16(FP), DX
	MOVQ groups+32(FP), BX
	MOVQ out+40(FP), R9
	MOVQ DX, AX
	ANDQ $-32, AX
	MOVL $0x0fff, R8       // the twelve scores of a triple
	KMOVW R8, K1
	MOVL $0xff00, R8       // a zmm's high half
	KMOVW R8, K2

groupQ4:
	MOVQ rows+8(FP), DI
	MOVQ n+24(FP), R8
	// Bring 512 bytes of the rows after these, the next call's as the
	// pass reads them, into the caches, a different 512 bytes for each
	// group, so that the next call's first group does not wait on memory
	// (past the matrix the hints are harmless).
	MOVQ R8, R13
	IMULQ DX, R13
	LEAQ -1(BX), R14
	SHLQ $7, R14
	ADDQ R14, R13
	LEAQ (DI)(R13*4), R13
	PREFETCHT1 (R13)
	PREFETCHT1 64(R13)
	PREFETCHT1 128(R13)
	PREFETCHT1 192(R13)
	PREFETCHT1 256(R13)
	PREFETCHT1 320(R13)
	PREFETCHT1 384(R13)
	PREFETCHT1 448(R13)
	LEAQ (SI)(DX*4), R10   // query 1
	LEAQ (R10)(DX*4), R11  // query 2
	LEAQ (R11)(DX*4), R12  // query 3
	LEAQ (R12)(DX*4), R15  // the next group's queries
	MOVL $0xff800000, R13  // -Inf
	VMOVD R13, X31
	VBROADCASTSS X31, Z31
	CMPQ R8, $3
	JLT  oneQ4

triQ4:
	LEAQ (DI)(DX*4), R13   // row 1
	LEAQ (R13)(DX*4), R14  // row 2
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
	XORQ   CX, CX

vecQ4:
	// Bring the next group's queries into L1, one per triple, while this
	// group's rows are scored, so that its first triples do not wait for
	// them (past the last group the hints are harmless).
	PREFETCHT0  (R15)(CX*4)
	PREFETCHT0  64(R15)(CX*4)
	VMOVUPS     (DI)(CX*4), Z24
	VMOVUPS     (R13)(CX*4), Z25
	VMOVUPS     (R14)(CX*4), Z26
	VMOVUPS     (SI)(CX*4), Z27
	VMOVUPS     (R10)(CX*4), Z28
	VMOVUPS     (R11)(CX*4), Z29
	VMOVUPS     (R12)(CX*4), Z30
	VFMADD231PS Z27, Z24, Z0
	VFMADD231PS Z28, Z24, Z1
	VFMADD231PS Z29, Z24, Z2
	VFMADD231PS Z30, Z24, Z3
	VFMADD231PS Z27, Z25, Z4
	VFMADD231PS Z28, Z25, Z5
	VFMADD231PS Z29, Z25, Z6
	VFMADD231PS Z30, Z25, Z7
	VFMADD231PS Z27, Z26, Z8
	VFMADD231PS Z28, Z26, Z9
	VFMADD231PS Z29, Z26, Z10
	VFMADD231PS Z30, Z26, Z11
	VMOVUPS     64(DI)(CX*4), Z24
	VMOVUPS     64(R13)(CX*4), Z25
	VMOVUPS     64(R14)(CX*4), Z26
	VMOVUPS     64(SI)(CX*4), Z27
	VMOVUPS     64(R10)(CX*4), Z28
	VMOVUPS     64(R11)(CX*4), Z29
	VMOVUPS     64(R12)(CX*4), Z30
	VFMADD231PS Z27, Z24, Z12
	VFMADD231PS Z28, Z24, Z13
	VFMADD231PS Z29, Z24, Z14
	VFMADD231PS Z30, Z24, Z15
	VFMADD231PS Z27, Z25, Z16
	VFMADD231PS Z28, Z25, Z17
	VFMADD231PS Z29, Z25, Z18
	VFMADD231PS Z30, Z25, Z19
	VFMADD231PS Z27, Z26, Z20
	VFMADD231PS Z28, Z26, Z21
	VFMADD231PS Z29, Z26, Z22
	VFMADD231PS Z30, Z26, Z23
	ADDQ        $32, CX
	CMPQ        CX, AX
	JNE         vecQ4
	PAIR16(Z0, Z4, Z12, Z16, Z0)
	PAIR16(Z1, Z5, Z13, Z17, Z1)
	PAIR16(Z2, Z6, Z14, Z18, Z2)
	PAIR16(Z3, Z7, Z15, Z19, Z3)
	// Row 2's products pair across queries: Z4 holds queries 0 and 1,
	// Z5 queries 2 and 3. Each query's 8 -> 4 fold takes rows 0 and 1
	// from its own pair and row 2 from the half of Z4 or Z5 that is its
	// own, twice (lanes 8..15 repeat row 2).
	PAIR16(Z8, Z9, Z20, Z21, Z4)
	PAIR16(Z10, Z11, Z22, Z23, Z5)
	VSHUFF32X4 $0x08, Z4, Z0, Z24
	VSHUFF32X4 $0x5d, Z4, Z0, Z25
	VADDPS     Z25, Z24, Z0
	VSHUFF32X4 $0xa8, Z4, Z1, Z24
	VSHUFF32X4 $0xfd, Z4, Z1, Z25
	VADDPS     Z25, Z24, Z1
	VSHUFF32X4 $0x08, Z5, Z2, Z24
	VSHUFF32X4 $0x5d, Z5, Z2, Z25
	VADDPS     Z25, Z24, Z2
	VSHUFF32X4 $0xa8, Z5, Z3, Z24
	VSHUFF32X4 $0xfd, Z5, Z3, Z25
	VADDPS     Z25, Z24, Z3
	// Lane r of Zj holds row r's four partial sums with query j (lane 3
	// repeats row 2). Dot's 4 -> 2 -> 1 folds, of two queries at a time,
	// turn them into lane r = row r's scores with queries 0..3.
	VSHUFPS     $0x44, Z1, Z0, Z24
	VSHUFPS     $0xee, Z1, Z0, Z25
	VADDPS      Z25, Z24, Z0
	VSHUFPS     $0x44, Z3, Z2, Z24
	VSHUFPS     $0xee, Z3, Z2, Z25
	VADDPS      Z25, Z24, Z2
	VSHUFPS     $0x88, Z2, Z0, Z24
	VSHUFPS     $0xdd, Z2, Z0, Z25
	VADDPS      Z25, Z24, Z0
	CMPQ        CX, DX
	JE          storeQ4

tailQ4:
	// Dot's scalar FMAs, twelve lanes at a time: each lane rounds as
	// VFMADD231SS would.
	VBROADCASTSS  (DI)(CX*4), X24
	VBROADCASTSS  (R13)(CX*4), X25
	VBROADCASTSS  (R14)(CX*4), X26
	VINSERTF32X4  $1, X25, Z24, Z24
	VINSERTF32X4  $2, X26, Z24, Z24
	VINSERTF32X4  $3, X26, Z24, Z24
	VMOVSS        (SI)(CX*4), X27
	VINSERTPS     $0x10, (R10)(CX*4), X27, X27
	VINSERTPS     $0x20, (R11)(CX*4), X27, X27
	VINSERTPS     $0x30, (R12)(CX*4), X27, X27
	VSHUFF32X4    $0, Z27, Z27, Z27
	VFMADD231PS   Z27, Z24, Z0
	INCQ          CX
	CMPQ          CX, DX
	JNE           tailQ4

storeQ4:
	VMOVUPS Z0, K1, (R9)
	VMAXPS  Z31, Z0, Z31 // max(score, top): top where the score is NaN, as Go's comparison
	ADDQ    $48, R9
	LEAQ    (R14)(DX*4), DI
	LEAQ    (R15)(DX*4), R15 // the next query to bring in
	SUBQ    $3, R8
	CMPQ    R8, $3
	JGE     triQ4

	// Fold the maxima of the lanes (row 2 repeated in lane 3 changes none).
	VEXTRACTF64X4 $1, Z31, Y24
	VMAXPS        Y24, Y31, Y31
	VEXTRACTF32X4 $1, Y31, X24
	VMAXPS        X24, X31, X31

oneQ4:
	TESTQ R8, R8
	JZ    doneQ4

rowQ4:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	XORQ   CX, CX

vec1Q4:
	VMOVUPS     (DI)(CX*4), Z24
	VMOVUPS     (SI)(CX*4), Z27
	VMOVUPS     (R10)(CX*4), Z28
	VMOVUPS     (R11)(CX*4), Z29
	VMOVUPS     (R12)(CX*4), Z30
	VFMADD231PS Z27, Z24, Z0
	VFMADD231PS Z28, Z24, Z1
	VFMADD231PS Z29, Z24, Z2
	VFMADD231PS Z30, Z24, Z3
	VMOVUPS     64(DI)(CX*4), Z24
	VMOVUPS     64(SI)(CX*4), Z27
	VMOVUPS     64(R10)(CX*4), Z28
	VMOVUPS     64(R11)(CX*4), Z29
	VMOVUPS     64(R12)(CX*4), Z30
	VFMADD231PS Z27, Z24, Z12
	VFMADD231PS Z28, Z24, Z13
	VFMADD231PS Z29, Z24, Z14
	VFMADD231PS Z30, Z24, Z15
	ADDQ        $32, CX
	CMPQ        CX, AX
	JNE         vec1Q4
	REDUCE16(Z0, Z12, Y0, Y12, X0)
	REDUCE16(Z1, Z13, Y1, Y13, X1)
	REDUCE16(Z2, Z14, Y2, Y14, X2)
	REDUCE16(Z3, Z15, Y3, Y15, X3)
	CMPQ        CX, DX
	JE          store1Q4

tail1Q4:
	VMOVSS      (DI)(CX*4), X24
	VMOVSS      (SI)(CX*4), X27
	VMOVSS      (R10)(CX*4), X28
	VMOVSS      (R11)(CX*4), X29
	VMOVSS      (R12)(CX*4), X30
	VFMADD231SS X27, X24, X0
	VFMADD231SS X28, X24, X1
	VFMADD231SS X29, X24, X2
	VFMADD231SS X30, X24, X3
	INCQ        CX
	CMPQ        CX, DX
	JNE         tail1Q4

store1Q4:
	STORE4(X0, X1, X2, X3, 0)
	ADDQ $16, R9
	LEAQ (DI)(DX*4), DI
	DECQ R8
	JNZ  rowQ4

doneQ4:
	MOVQ    tops+48(FP), R13
	VMOVUPS X31, (R13)
	ADDQ    $16, R13
	MOVQ    R13, tops+48(FP)
	// The group's highest into top (the maxima hold no NaN).
	VPERMILPD $1, X31, X24
	VMAXPS  X24, X31, X31
	VMOVSHDUP X31, X24
	VMAXSS  X24, X31, X31
	VMAXSS  top+56(FP), X31, X31
	VMOVSS  X31, top+56(FP)
	LEAQ    (R12)(DX*4), SI // the next group's queries
	DECQ    BX
	JNZ     groupQ4
	VZEROUPPER
	RET

