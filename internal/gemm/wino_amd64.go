//go:build !noasm

package gemm

import "golang.org/x/sys/cpu"

// The AVX-512 transform loops and the panel copy (wino_amd64.s) replace
// the Go ones where the CPU has AVX-512.
func init() {
	if cpu.X86.HasAVX512F {
		winoRows, winoCols4, winoOut = winoRowsAsm, winoCols4Asm, winoOutAsm
		packRows = packRows32
		packA12 = packA12Asm
	}
}

//go:noescape
func winoRowsAVX512(c0, c1, c2, c3, d0, d1, d2, d3 *float32, n int)

//go:noescape
func winoCols4AVX512(v *float32, plane int, b *float32, lb, n int)

//go:noescape
func winoOutAVX512(out0, out1, m *float32, stride, n int, bias float32, flags uint8)

func winoRowsAsm(c0, c1, c2, c3, d0, d1, d2, d3 []float32) {
	n := len(c0)
	if n == 0 {
		return
	}
	_, _, _ = c1[n-1], c2[n-1], c3[n-1]
	_, _, _, _ = d0[n-1], d1[n-1], d2[n-1], d3[n-1]
	winoRowsAVX512(&c0[0], &c1[0], &c2[0], &c3[0], &d0[0], &d1[0], &d2[0], &d3[0], n)
}

// winoCols4Asm needs the rows of b readable up to 2*roundUp(n, 16)+1 (the
// last row within cap(b): callers pad) to run in assembly; otherwise it is
// Go's.
func winoCols4Asm(v []float32, plane int, b []float32, lb, n int) {
	if n == 0 {
		return
	}
	_ = v[15*plane+n-1] // every value written
	_ = b[3*lb+2*n+1]   // every value read
	if cap(b) < 3*lb+2*roundUp(n, 16)+2 || lb < 2*n+2 {
		winoCols4Go(v, plane, b, lb, n)
		return
	}
	winoCols4AVX512(&v[0], plane, &b[0], lb, n)
}

// winoOutAsm needs m readable up to 15*stride+roundUp(n, 16)-1 for the
// whole run in assembly: within cap(m) (callers pad), otherwise the tail
// is Go's.
func winoOutAsm(out0, out1, m []float32, stride int, bias float32, flags uint8) {
	n := len(out0) / 2
	if n == 0 {
		return
	}
	out1 = out1[:2*n]
	_ = m[15*stride+n-1] // every value the tiles read
	vec := n &^ 15
	if cap(m) >= 15*stride+roundUp(n, 16) {
		vec = n
	}
	if vec > 0 {
		winoOutAVX512(&out0[0], &out1[0], &m[0], stride, vec, bias, flags)
	}
	winoOutGo(out0[2*vec:2*n], out1[2*vec:], m[vec:], stride, bias, flags)
}

//go:noescape
func packRows32AVX512(dst, src *float32, ld, rows int)

// packRows32 is packRows for panels of 32 values (the AVX-512 kernel's
// NR): two vector loads and stores per row, where copy would call memmove.
func packRows32(dst, src []float32, ld, nr int) {
	rows := len(dst) / nr
	if nr != 32 || rows == 0 {
		for p := range rows {
			copy(dst[p*nr:(p+1)*nr], src[p*ld:p*ld+nr])
		}
		return
	}
	_ = src[(rows-1)*ld+nr-1]
	packRows32AVX512(&dst[0], &src[0], ld, rows)
}

//go:noescape
func packA12AVX(dst, src *float32, ld, k4 int)

// packA12Asm packs a whole 12-row strip of row-major A (row i at
// src[i*ld:], kc values each) for the AVX-512 kernel, four k at a time in
// assembly, the rest in Go.
func packA12Asm(dst, src []float32, ld, kc int) {
	if kc == 0 {
		return
	}
	_ = dst[12*kc-1]
	_ = src[11*ld+kc-1]
	k4 := kc / 4
	if k4 > 0 {
		packA12AVX(&dst[0], &src[0], ld, k4)
	}
	for p := 4 * k4; p < kc; p++ {
		for i := range 12 {
			dst[p*12+i] = src[i*ld+p]
		}
	}
}
