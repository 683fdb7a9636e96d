//go:build !noasm

package vec

import "golang.org/x/sys/cpu"

// useAVX512 selects the assembly loops (vec_amd64.s); tests turn it off to
// check the Go ones.
var useAVX512 = cpu.X86.HasAVX512F

// sqDist16 returns the sum of (a - b)^2 over n elements (n a positive
// multiple of 16), in 64 partial sums.
//
//go:noescape
func sqDist16(a, b *float32, n int) float32

// dot16 returns the sum of a*b over n elements (n a positive multiple of
// 16), in 32 partial sums.
//
//go:noescape
func dot16(a, b *float32, n int) float32

// min16 stores in acc the 16 lane minima of x's n elements (n a positive
// multiple of 16).
//
//go:noescape
func min16(x *float32, n int, acc *[16]float32)

// filterLE16 writes the indices j < n with x[j] <= limit to out, ascending,
// and returns how many; it stores whole vectors of 16, so out must have
// room for the count plus 16. lanes holds 0 .. 15 then sixteen 16s.
//
//go:noescape
func filterLE16(x *float32, n int, limit float32, out *int32, lanes *[32]int32) int

// minDist16 returns the smallest (a + c[j]) - 2 d[j] over n elements (n a
// positive multiple of 16).
//
//go:noescape
func minDist16(a float32, c, d *float32, n int) float32
