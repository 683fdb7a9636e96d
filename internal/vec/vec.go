// Package vec holds the few float32 vector loops of the nearest-centroid
// search and the farthest-point seeding that the Go compiler leaves
// scalar: a squared distance, a dot product, a minimum, a filter by
// threshold and a minimum of distances from norms. On amd64 with AVX-512 they run as assembly
// sixteen lanes at a time (the noasm build tag keeps only Go); elsewhere
// as plain Go loops, which are also the reference the tests hold the
// assembly to.
package vec

import "math"

// SqDist returns the squared Euclidean distance of a and b (b at least as
// long as a), summed in float32: with AVX-512 in 64 partial sums, in Go in
// four; either way well within 1e-5 relative error at the lengths anomnet
// uses.
func SqDist(a, b []float32) float32 {
	b = b[:len(a)]
	n, bulk := len(a), 0
	var s float32
	if useAVX512 && n >= 16 {
		bulk = n &^ 15
		s = sqDist16(&a[0], &b[0], bulk)
	}
	return s + sqDistGo(a[bulk:], b[bulk:])
}

// Dot returns the dot product of a and b (b at least as long as a),
// summed in float32 like SqDist.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	n, bulk := len(a), 0
	var s float32
	if useAVX512 && n >= 16 {
		bulk = n &^ 15
		s = dot16(&a[0], &b[0], bulk)
	}
	for i := bulk; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

// MinDist returns the smallest (a + c[j]) - 2 d[j] over j (+Inf for an
// empty c), each rounded as that Go expression is: a squared distance
// |x|^2 + |p_j|^2 - 2 x.p_j from norms and dot products. d is at least as
// long as c.
func MinDist(a float32, c, d []float32) float32 {
	d = d[:len(c)]
	n, bulk := len(c), 0
	m := inf
	if useAVX512 && n >= 16 {
		bulk = n &^ 15
		m = minDist16(a, &c[0], &d[0], bulk)
	}
	for j := bulk; j < n; j++ {
		m = min(m, a+c[j]-2*d[j])
	}
	return m
}

// Min returns the smallest element of x (+Inf for an empty x). NaNs are
// not expected; where they occur the result is one of x's other elements
// or NaN.
func Min(x []float32) float32 {
	n, bulk := len(x), 0
	m := inf
	if useAVX512 && n >= 16 {
		bulk = n &^ 15
		var acc [16]float32
		min16(&x[0], bulk, &acc)
		for _, v := range acc {
			m = min(m, v)
		}
	}
	for _, v := range x[bulk:] {
		m = min(m, v)
	}
	return m
}

// FilterLE returns the indices j of x, ascending, with x[j] <= limit,
// appended to out[:0] (reused when its capacity is at least len(x) + 16,
// which the assembly's whole-vector stores need).
func FilterLE(x []float32, limit float32, out []int32) []int32 {
	out = out[:0]
	n, bulk := len(x), 0
	if useAVX512 && n >= 16 {
		bulk = n &^ 15
		if cap(out) < n+16 {
			out = make([]int32, 0, n+16)
		}
		m := filterLE16(&x[0], bulk, limit, &out[:1][0], &lanes)
		out = out[:m]
	}
	for j := bulk; j < n; j++ {
		if x[j] <= limit {
			out = append(out, int32(j))
		}
	}
	return out
}

var inf = float32(math.Inf(1))

// lanes is the assembly's index vector (0 .. 15) and its step (16s).
var lanes = [32]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16}

func sqDistGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		d0, d1, d2, d3 := a[i]-b[i], a[i+1]-b[i+1], a[i+2]-b[i+2], a[i+3]-b[i+3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}
