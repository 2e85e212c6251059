//go:build !purego

#include "textflag.h"

// REDUCE folds the four 8-lane accumulators A0..A3 (Y registers) into the
// low lane of A0, ((a0+a1)+a2)+a3 then 8 -> 4 -> 2 -> 1 lanes, using XT as
// scratch. XA0 is A0's X half.
#define REDUCE(A0, A1, A2, A3, XA0, XT) \
	VADDPS       A1, A0, A0; \
	VADDPS       A2, A0, A0; \
	VADDPS       A3, A0, A0; \
	VEXTRACTF128 $1, A0, XT; \
	VADDPS       XT, XA0, XA0; \
	VPERMILPD    $1, XA0, XT; \
	VADDPS       XT, XA0, XA0; \
	VMOVSHDUP    XA0, XT; \
	VADDSS       XT, XA0, XA0

// func sumFloats4(a *float32, n int) float32
// The sum of a[:4n], n a multiple of 16, its quarters read side by side as
// panelDots512 reads a chunk: the plain read the floor is measured with.
TEXT ·sumFloats4(SB), NOSPLIT, $0-20
	MOVQ   a+0(FP), DI
	MOVQ   n+8(FP), DX
	LEAQ   (DI)(DX*4), R10
	LEAQ   (R10)(DX*4), R11
	LEAQ   (R11)(DX*4), R12
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   CX, CX

sum4:
	VADDPS (DI)(CX*4), Y0, Y0
	VADDPS 32(DI)(CX*4), Y1, Y1
	VADDPS (R10)(CX*4), Y2, Y2
	VADDPS 32(R10)(CX*4), Y3, Y3
	VADDPS (R11)(CX*4), Y4, Y4
	VADDPS 32(R11)(CX*4), Y5, Y5
	VADDPS (R12)(CX*4), Y6, Y6
	VADDPS 32(R12)(CX*4), Y7, Y7
	ADDQ   $16, CX
	CMPQ   CX, DX
	JL     sum4
	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y0, Y0
	VADDPS Y7, Y1, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VPERMILPD    $1, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func boundsRowsI8(q *int16, rows *int8, stride int, n int, scale *float32, resid *float32, sq float32, qnorm float32, slack float32, out *float32) (top float32)
// out[r] = float32(q . rows[r*stride : (r+1)*stride])*(scale[r]*sq) +
// resid[r]*qnorm + slack for r < n, each operation rounded in turn as Go
// rounds it, and top = the highest out[r] (NaNs aside). stride is a
// positive multiple of 32. The dot products are summed in int32, exactly,
// so the order is free; the caller scales q so that no partial sum can
// overflow.
TEXT ·boundsRowsI8(SB), NOSPLIT, $0-76
	MOVQ   q+0(FP), SI
	MOVQ   rows+8(FP), DI
	MOVQ   stride+16(FP), DX
	MOVQ   n+24(FP), R8
	MOVQ   scale+32(FP), R11
	MOVQ   resid+40(FP), R12
	VMOVSS sq+48(FP), X12
	VMOVSS qnorm+52(FP), X13
	VMOVSS slack+56(FP), X14
	MOVQ   out+64(FP), R9
	MOVL   $0xff800000, AX // -Inf
	VMOVD  AX, X15

rowi8:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	XORQ  CX, CX

veci8:
	VPMOVSXBW (DI)(CX*1), Y2
	VPMOVSXBW 16(DI)(CX*1), Y3
	VPMADDWD  (SI)(CX*2), Y2, Y2
	VPMADDWD  32(SI)(CX*2), Y3, Y3
	VPADDD    Y2, Y0, Y0
	VPADDD    Y3, Y1, Y1
	ADDQ      $32, CX
	CMPQ      CX, DX
	JNE       veci8
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VCVTDQ2PS    X0, X0
	VMOVSS       (R11), X1
	VMULSS       X12, X1, X1
	VMULSS       X1, X0, X0
	VMOVSS       (R12), X2
	VMULSS       X13, X2, X2
	VADDSS       X2, X0, X0
	VADDSS       X14, X0, X0
	VMOVSS       X0, (R9)
	VMAXSS       X15, X0, X15 // out[r] > top ? out[r] : top, as Go's comparison
	ADDQ         $4, R9
	ADDQ         $4, R11
	ADDQ         $4, R12
	ADDQ         DX, DI
	DECQ         R8
	JNZ          rowi8
	VZEROUPPER
	VMOVSS       X15, top+72(FP)
	RET

// func boundsRowsF16(q *float32, rows *uint16, stride int, n int, resid *float32, qnorm float32, slack float32, out *float32) (top float32)
// out[r] = q . float32(rows[r*stride : (r+1)*stride]) + (resid[r]*qnorm +
// slack) for r < n, and top = the highest out[r] (NaNs aside); stride is a
// positive multiple of 32 and q is zero-padded to it. Needs F16C.
TEXT ·boundsRowsF16(SB), NOSPLIT, $0-60
	MOVQ   q+0(FP), SI
	MOVQ   rows+8(FP), DI
	MOVQ   stride+16(FP), DX
	MOVQ   n+24(FP), R8
	MOVQ   resid+32(FP), R12
	VMOVSS qnorm+40(FP), X13
	VMOVSS slack+44(FP), X14
	MOVQ   out+48(FP), R9
	MOVL   $0xff800000, AX // -Inf
	VMOVD  AX, X15

rowf16:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   CX, CX

vecf16:
	VCVTPH2PS   (DI)(CX*2), Y4
	VCVTPH2PS   16(DI)(CX*2), Y5
	VCVTPH2PS   32(DI)(CX*2), Y6
	VCVTPH2PS   48(DI)(CX*2), Y7
	VFMADD231PS (SI)(CX*4), Y4, Y0
	VFMADD231PS 32(SI)(CX*4), Y5, Y1
	VFMADD231PS 64(SI)(CX*4), Y6, Y2
	VFMADD231PS 96(SI)(CX*4), Y7, Y3
	ADDQ        $32, CX
	CMPQ        CX, DX
	JNE         vecf16
	REDUCE(Y0, Y1, Y2, Y3, X0, X4)
	VMOVSS      (R12), X2
	VMULSS      X13, X2, X2
	VADDSS      X14, X2, X2
	VADDSS      X2, X0, X0
	VMOVSS      X0, (R9)
	VMAXSS      X15, X0, X15 // out[r] > top ? out[r] : top, as Go's comparison
	ADDQ        $4, R9
	ADDQ        $4, R12
	LEAQ        (DI)(DX*2), DI
	DECQ        R8
	JNZ         rowf16
	VZEROUPPER
	VMOVSS      X15, top+56(FP)
	RET

// func cpuidECX1() uint32
// ECX of CPUID leaf 1: bit 29 is F16C.
TEXT ·cpuidECX1(SB), NOSPLIT, $0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, ret+0(FP)
	RET

