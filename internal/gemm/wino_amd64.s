//go:build !noasm

#include "textflag.h"

// Hand-written AVX-512 loops of the Winograd F(2x2, 3x3) transforms; Go
// versions with the same arithmetic, in the same order, are in
// winograd.go. Each processes a multiple of 16 elements.

// Permutation indexes: the even and odd elements of two registers
// (deinterleave), and the interleaving of two registers' low and high
// halves.
DATA winoEven<>+0(SB)/4, $0
DATA winoEven<>+4(SB)/4, $2
DATA winoEven<>+8(SB)/4, $4
DATA winoEven<>+12(SB)/4, $6
DATA winoEven<>+16(SB)/4, $8
DATA winoEven<>+20(SB)/4, $10
DATA winoEven<>+24(SB)/4, $12
DATA winoEven<>+28(SB)/4, $14
DATA winoEven<>+32(SB)/4, $16
DATA winoEven<>+36(SB)/4, $18
DATA winoEven<>+40(SB)/4, $20
DATA winoEven<>+44(SB)/4, $22
DATA winoEven<>+48(SB)/4, $24
DATA winoEven<>+52(SB)/4, $26
DATA winoEven<>+56(SB)/4, $28
DATA winoEven<>+60(SB)/4, $30
GLOBL winoEven<>(SB), RODATA|NOPTR, $64

DATA winoOdd<>+0(SB)/4, $1
DATA winoOdd<>+4(SB)/4, $3
DATA winoOdd<>+8(SB)/4, $5
DATA winoOdd<>+12(SB)/4, $7
DATA winoOdd<>+16(SB)/4, $9
DATA winoOdd<>+20(SB)/4, $11
DATA winoOdd<>+24(SB)/4, $13
DATA winoOdd<>+28(SB)/4, $15
DATA winoOdd<>+32(SB)/4, $17
DATA winoOdd<>+36(SB)/4, $19
DATA winoOdd<>+40(SB)/4, $21
DATA winoOdd<>+44(SB)/4, $23
DATA winoOdd<>+48(SB)/4, $25
DATA winoOdd<>+52(SB)/4, $27
DATA winoOdd<>+56(SB)/4, $29
DATA winoOdd<>+60(SB)/4, $31
GLOBL winoOdd<>(SB), RODATA|NOPTR, $64

DATA winoLo<>+0(SB)/4, $0
DATA winoLo<>+4(SB)/4, $16
DATA winoLo<>+8(SB)/4, $1
DATA winoLo<>+12(SB)/4, $17
DATA winoLo<>+16(SB)/4, $2
DATA winoLo<>+20(SB)/4, $18
DATA winoLo<>+24(SB)/4, $3
DATA winoLo<>+28(SB)/4, $19
DATA winoLo<>+32(SB)/4, $4
DATA winoLo<>+36(SB)/4, $20
DATA winoLo<>+40(SB)/4, $5
DATA winoLo<>+44(SB)/4, $21
DATA winoLo<>+48(SB)/4, $6
DATA winoLo<>+52(SB)/4, $22
DATA winoLo<>+56(SB)/4, $7
DATA winoLo<>+60(SB)/4, $23
GLOBL winoLo<>(SB), RODATA|NOPTR, $64

DATA winoHi<>+0(SB)/4, $8
DATA winoHi<>+4(SB)/4, $24
DATA winoHi<>+8(SB)/4, $9
DATA winoHi<>+12(SB)/4, $25
DATA winoHi<>+16(SB)/4, $10
DATA winoHi<>+20(SB)/4, $26
DATA winoHi<>+24(SB)/4, $11
DATA winoHi<>+28(SB)/4, $27
DATA winoHi<>+32(SB)/4, $12
DATA winoHi<>+36(SB)/4, $28
DATA winoHi<>+40(SB)/4, $13
DATA winoHi<>+44(SB)/4, $29
DATA winoHi<>+48(SB)/4, $14
DATA winoHi<>+52(SB)/4, $30
DATA winoHi<>+56(SB)/4, $15
DATA winoHi<>+60(SB)/4, $31
GLOBL winoHi<>(SB), RODATA|NOPTR, $64

// func winoRowsAVX512(c0, c1, c2, c3, d0, d1, d2, d3 *float32, n int)
// c0 = d0 - d2, c1 = d1 + d2, c2 = d2 - d1, c3 = d1 - d3 for n values;
// the last block's loads and stores are masked, so nothing past n is read
// or written.
TEXT ·winoRowsAVX512(SB), NOSPLIT, $0-72
	MOVQ c0+0(FP), R8
	MOVQ c1+8(FP), R9
	MOVQ c2+16(FP), R10
	MOVQ c3+24(FP), R11
	MOVQ d0+32(FP), R12
	MOVQ d1+40(FP), R13
	MOVQ d2+48(FP), R14
	MOVQ d3+56(FP), BX
	MOVQ n+64(FP), CX // values left
	XORQ AX, AX

rowsLoop:
	CMPQ      CX, $0
	JLE       rowsDone
	MOVL      $0xffff, DX
	CMPQ      CX, $16
	JGE       rowsMask
	MOVL      $1, DX
	SHLL      CX, DX
	DECL      DX

rowsMask:
	KMOVW     DX, K1
	VMOVUPS.Z (R12)(AX*1), K1, Z0
	VMOVUPS.Z (R13)(AX*1), K1, Z1
	VMOVUPS.Z (R14)(AX*1), K1, Z2
	VMOVUPS.Z (BX)(AX*1), K1, Z3
	VSUBPS    Z2, Z0, Z4
	VADDPS    Z2, Z1, Z5
	VSUBPS    Z1, Z2, Z6
	VSUBPS    Z3, Z1, Z7
	VMOVUPS   Z4, K1, (R8)(AX*1)
	VMOVUPS   Z5, K1, (R9)(AX*1)
	VMOVUPS   Z6, K1, (R10)(AX*1)
	VMOVUPS   Z7, K1, (R11)(AX*1)
	ADDQ      $64, AX
	SUBQ      $16, CX
	JMP       rowsLoop

rowsDone:
	VZEROUPPER
	RET

// WINO_COLS_ROW transforms the columns of one row of Bᵀ d (at R8, offset
// BX) for 16 tiles into four of the 16 streams (at R9, R9+plane,
// R9+2*plane, R9+3*plane), stores masked by K1, then moves R8 to the next
// row of Bᵀ d and R9 four streams on. For tile k: o0 = b[2k] - b[2k+2],
// o1 = b[2k+1] + b[2k+2], o2 = b[2k+2] - b[2k+1], o3 = b[2k+1] - b[2k+3].
#define WINO_COLS_ROW \
	VMOVUPS   (R8)(BX*1), Z0 \
	VMOVUPS   64(R8)(BX*1), Z1 \
	VMOVUPS   8(R8)(BX*1), Z2 \
	VMOVUPS   72(R8)(BX*1), Z3 \
	VMOVAPS   Z30, Z4 \
	VPERMI2PS Z1, Z0, Z4 \
	VMOVAPS   Z31, Z5 \
	VPERMI2PS Z1, Z0, Z5 \
	VMOVAPS   Z30, Z6 \
	VPERMI2PS Z3, Z2, Z6 \
	VMOVAPS   Z31, Z7 \
	VPERMI2PS Z3, Z2, Z7 \
	VSUBPS    Z6, Z4, Z8 \
	VADDPS    Z6, Z5, Z9 \
	VSUBPS    Z5, Z6, Z10 \
	VSUBPS    Z7, Z5, Z11 \
	VMOVUPS   Z8, K1, (R9) \
	VMOVUPS   Z9, K1, (R9)(R12*1) \
	VMOVUPS   Z10, K1, (R9)(R12*2) \
	VMOVUPS   Z11, K1, (R9)(R13*1) \
	ADDQ      R14, R8 \
	LEAQ      (R9)(R12*4), R9

// func winoCols4AVX512(v *float32, plane int, b *float32, lb, n int)
// The column transforms of the four rows of Bᵀ d of n tiles (row i at
// b[i*lb:]) into value ξ of tile k at v[ξ*plane+k]. Reads each row of b up
// to 2*roundUp(n, 16)+1; writes only the n tiles (the last block masked).
TEXT ·winoCols4AVX512(SB), NOSPLIT, $0-40
	MOVQ    v+0(FP), DI
	MOVQ    plane+8(FP), R12
	SHLQ    $2, R12
	LEAQ    (R12)(R12*2), R13
	MOVQ    b+16(FP), SI
	MOVQ    lb+24(FP), R14
	SHLQ    $2, R14
	MOVQ    n+32(FP), CX // tiles left
	XORQ    AX, AX       // output offset, bytes
	XORQ    BX, BX       // input offset, bytes (twice AX)
	VMOVUPS winoEven<>(SB), Z30
	VMOVUPS winoOdd<>(SB), Z31

cols4Loop:
	CMPQ  CX, $0
	JLE   cols4Done
	MOVL  $0xffff, DX
	CMPQ  CX, $16
	JGE   cols4Mask
	MOVL  $1, DX
	SHLL  CX, DX
	DECL  DX

cols4Mask:
	KMOVW DX, K1
	MOVQ  SI, R8
	LEAQ  (DI)(AX*1), R9
	WINO_COLS_ROW
	WINO_COLS_ROW
	WINO_COLS_ROW
	WINO_COLS_ROW
	ADDQ  $64, AX
	ADDQ  $128, BX
	SUBQ  $16, CX
	JMP   cols4Loop

cols4Done:
	VZEROUPPER
	RET

// func winoOutAVX512(out0, out1, m *float32, stride, n int, bias float32, flags uint8)
// For n whole tiles (value ξ of tile j at m[ξ*stride+j]): the 2x2 output
// Aᵀ M A + bias, plus the old values (flags&1), clamped at 0 (flags&2),
// interleaved into out0 (top row) and out1. Reads m up to
// 15*stride+roundUp(n, 16)-1; reads (with flags&1) and writes only the 2n
// values of each output row (the last block masked).
TEXT ·winoOutAVX512(SB), NOSPLIT, $0-45
	MOVQ         out0+0(FP), DI
	MOVQ         out1+8(FP), SI
	MOVQ         m+16(FP), R8
	MOVQ         stride+24(FP), R12
	SHLQ         $2, R12                 // stride in bytes
	LEAQ         (R12)(R12*2), R13       // 3 strides
	LEAQ         (R8)(R12*4), R9         // row 1 of the 4x4: values 4-7
	LEAQ         (R9)(R12*4), R10        // values 8-11
	LEAQ         (R10)(R12*4), R11       // values 12-15
	MOVQ         n+32(FP), CX
	VBROADCASTSS bias+40(FP), Z29
	VPXORD       Z28, Z28, Z28
	VMOVUPS      winoLo<>(SB), Z30
	VMOVUPS      winoHi<>(SB), Z31
	XORQ         AX, AX                  // output offset, bytes

outLoop:
	CMPQ  CX, $0
	JLE   outDone
	// Masks of the block's two output halves (tiles 0-7 and 8-15): lo and
	// hi values of 16, with lo + hi = 2*min(tiles left, 16).
	MOVQ  CX, BX
	CMPQ  BX, $16
	JLE   outCount
	MOVQ  $16, BX

outCount:
	SHLQ  $1, BX
	MOVQ  BX, R14
	SUBQ  $16, R14
	JGE   outHigh
	XORQ  R14, R14

outHigh:
	SUBQ  R14, BX
	MOVQ  $-1, DX
	BZHIQ BX, DX, BX   // (1 << lo) - 1
	BZHIQ R14, DX, R14 // (1 << hi) - 1

outMasks:
	KMOVW   BX, K1
	KMOVW   R14, K2
	VMOVUPS (R8), Z0
	VMOVUPS (R8)(R12*1), Z1
	VMOVUPS (R8)(R12*2), Z2
	VMOVUPS (R8)(R13*1), Z3
	VMOVUPS (R9), Z4
	VMOVUPS (R9)(R12*1), Z5
	VMOVUPS (R9)(R12*2), Z6
	VMOVUPS (R9)(R13*1), Z7
	VMOVUPS (R10), Z8
	VMOVUPS (R10)(R12*1), Z9
	VMOVUPS (R10)(R12*2), Z10
	VMOVUPS (R10)(R13*1), Z11
	VMOVUPS (R11), Z12
	VMOVUPS (R11)(R12*1), Z13
	VMOVUPS (R11)(R12*2), Z14
	VMOVUPS (R11)(R13*1), Z15

	// a = rows 0+1+2, c = rows 1-2-3 of M, column by column.
	VADDPS Z4, Z0, Z16
	VADDPS Z8, Z16, Z16
	VADDPS Z5, Z1, Z17
	VADDPS Z9, Z17, Z17
	VADDPS Z6, Z2, Z18
	VADDPS Z10, Z18, Z18
	VADDPS Z7, Z3, Z19
	VADDPS Z11, Z19, Z19
	VSUBPS Z8, Z4, Z20
	VSUBPS Z12, Z20, Z20
	VSUBPS Z9, Z5, Z21
	VSUBPS Z13, Z21, Z21
	VSUBPS Z10, Z6, Z22
	VSUBPS Z14, Z22, Z22
	VSUBPS Z11, Z7, Z23
	VSUBPS Z15, Z23, Z23

	// v00 = a0+a1+a2+bias, v01 = a1-a2-a3+bias, likewise v10, v11 from c.
	VADDPS Z17, Z16, Z24
	VADDPS Z18, Z24, Z24
	VADDPS Z29, Z24, Z24
	VSUBPS Z18, Z17, Z25
	VSUBPS Z19, Z25, Z25
	VADDPS Z29, Z25, Z25
	VADDPS Z21, Z20, Z26
	VADDPS Z22, Z26, Z26
	VADDPS Z29, Z26, Z26
	VSUBPS Z22, Z21, Z27
	VSUBPS Z23, Z27, Z27
	VADDPS Z29, Z27, Z27

	// Interleave into the two output rows.
	VMOVAPS   Z30, Z0
	VPERMI2PS Z25, Z24, Z0
	VMOVAPS   Z31, Z1
	VPERMI2PS Z25, Z24, Z1
	VMOVAPS   Z30, Z2
	VPERMI2PS Z27, Z26, Z2
	VMOVAPS   Z31, Z3
	VPERMI2PS Z27, Z26, Z3

	TESTB     $1, flags+44(FP)
	JZ        outNoAdd
	VMOVUPS.Z (DI)(AX*1), K1, Z4
	VMOVUPS.Z 64(DI)(AX*1), K2, Z5
	VMOVUPS.Z (SI)(AX*1), K1, Z6
	VMOVUPS.Z 64(SI)(AX*1), K2, Z7
	VADDPS    Z4, Z0, Z0
	VADDPS    Z5, Z1, Z1
	VADDPS    Z6, Z2, Z2
	VADDPS    Z7, Z3, Z3

outNoAdd:
	TESTB  $2, flags+44(FP)
	JZ     outStore
	VMAXPS Z0, Z28, Z0 // max(0, v), v if v is NaN
	VMAXPS Z1, Z28, Z1
	VMAXPS Z2, Z28, Z2
	VMAXPS Z3, Z28, Z3

outStore:
	VMOVUPS Z0, K1, (DI)(AX*1)
	VMOVUPS Z1, K2, 64(DI)(AX*1)
	VMOVUPS Z2, K1, (SI)(AX*1)
	VMOVUPS Z3, K2, 64(SI)(AX*1)
	ADDQ    $128, AX
	ADDQ    $64, R8
	ADDQ    $64, R9
	ADDQ    $64, R10
	ADDQ    $64, R11
	SUBQ    $16, CX
	JMP     outLoop

outDone:
	VZEROUPPER
	RET

// func packRows32AVX512(dst, src *float32, ld, rows int)
// Copies rows rows of 32 floats, ld floats apart in src, into dst one
// after another (a B panel of a 1x1 convolution).
TEXT ·packRows32AVX512(SB), NOSPLIT, $0-32
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    ld+16(FP), DX
	SHLQ    $2, DX
	MOVQ    rows+24(FP), CX

packLoop:
	CMPQ    CX, $0
	JLE     packDone
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ    DX, SI
	ADDQ    $128, DI
	DECQ    CX
	JMP     packLoop

packDone:
	VZEROUPPER
	RET

// PACK_A4 transposes the four rows held in X(a)..X(a+3) (four values of k
// each) into four k-major groups of four and stores them at off(DI),
// off+48(DI), off+96(DI), off+144(DI); X12..X15 are scratch.
#define PACK_A4(r0, r1, r2, r3, off) \
	VUNPCKLPS r1, r0, X12 \
	VUNPCKLPS r3, r2, X13 \
	VUNPCKHPS r1, r0, X14 \
	VUNPCKHPS r3, r2, X15 \
	VMOVLHPS  X13, X12, r0 \
	VMOVHLPS  X12, X13, r1 \
	VMOVLHPS  X15, X14, r2 \
	VMOVHLPS  X14, X15, r3 \
	VMOVUPS   r0, off(DI) \
	VMOVUPS   r1, off+48(DI) \
	VMOVUPS   r2, off+96(DI) \
	VMOVUPS   r3, off+144(DI)

// func packA12AVX(dst, src *float32, ld, k4 int)
// Packs a 12-row strip of a row-major matrix (row i at src[i*ld:]) for the
// AVX-512 kernel: dst[k*12+i] = src[i*ld+k] for k < 4*k4, four k at a time.
TEXT ·packA12AVX(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), R8
	MOVQ ld+16(FP), AX
	SHLQ $2, AX
	LEAQ (R8)(AX*1), R9
	LEAQ (R9)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	LEAQ (R11)(AX*1), R12
	LEAQ (R12)(AX*1), R13
	LEAQ (R13)(AX*1), R14
	LEAQ (R14)(AX*1), R15
	LEAQ (R15)(AX*1), BX
	LEAQ (BX)(AX*1), CX
	LEAQ (CX)(AX*1), DX
	LEAQ (DX)(AX*1), SI
	XORQ AX, AX
	CMPQ k4+24(FP), $0
	JLE  packADone

packALoop:
	VMOVUPS (R8)(AX*1), X0
	VMOVUPS (R9)(AX*1), X1
	VMOVUPS (R10)(AX*1), X2
	VMOVUPS (R11)(AX*1), X3
	VMOVUPS (R12)(AX*1), X4
	VMOVUPS (R13)(AX*1), X5
	VMOVUPS (R14)(AX*1), X6
	VMOVUPS (R15)(AX*1), X7
	VMOVUPS (BX)(AX*1), X8
	VMOVUPS (CX)(AX*1), X9
	VMOVUPS (DX)(AX*1), X10
	VMOVUPS (SI)(AX*1), X11
	PACK_A4(X0, X1, X2, X3, 0)
	PACK_A4(X4, X5, X6, X7, 16)
	PACK_A4(X8, X9, X10, X11, 32)
	ADDQ    $16, AX
	ADDQ    $192, DI
	DECQ    k4+24(FP)
	JNZ     packALoop

packADone:
	VZEROUPPER
	RET
