package tensor

import (
	"fmt"
	"slices"
)

// Check holds the shape checks of the Device ops, shared by every Device so
// that all of them panic on the same programmer errors. Its value is the
// prefix of the panic messages, the package that checks: "anomnet/tensor"
// for the CPU, "anomnet/cuda" for the CUDA Device.
type Check string

// check is the prefix of this package's panics.
const check Check = "anomnet/tensor"

// Shape panics if a dimension is negative, and returns the shape's size.
func (ck Check) Shape(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("%s: negative dimension in shape %v", ck, shape))
		}
		n *= d
	}
	return n
}

// Expect panics unless t has dtype dt and exactly the given shape.
func (ck Check) Expect(op, name string, t *Tensor, dt DType, shape ...int) {
	if t == nil {
		panic(fmt.Sprintf("%s: %s: %s is nil", ck, op, name))
	}
	if t.dtype != dt || !slices.Equal(t.shape, shape) {
		panic(fmt.Sprintf("%s: %s: %s is %v, want %s%v", ck, op, name, t, dt, shape))
	}
}

// ExpectRank panics unless t is a float32 tensor of the given rank, and
// returns its shape.
func (ck Check) ExpectRank(op, name string, t *Tensor, rank int) []int {
	if t == nil {
		panic(fmt.Sprintf("%s: %s: %s is nil", ck, op, name))
	}
	if t.dtype != Float32 || len(t.shape) != rank {
		panic(fmt.Sprintf("%s: %s: %s is %v, want a rank-%d float32 tensor", ck, op, name, t, rank))
	}
	return t.shape
}

// ExpectSize panics unless t is float32 with n elements (any shape).
func (ck Check) ExpectSize(op, name string, t *Tensor, n int) {
	if t == nil {
		panic(fmt.Sprintf("%s: %s: %s is nil", ck, op, name))
	}
	if t.dtype != Float32 || t.Len() != n {
		panic(fmt.Sprintf("%s: %s: %s is %v, want %d float32 elements", ck, op, name, t, n))
	}
}

// Matrix checks that t is a float32 matrix and returns its rows and
// columns.
func (ck Check) Matrix(op, name string, t *Tensor) (r, c int) {
	s := ck.ExpectRank(op, name, t, 2)
	return s[0], s[1]
}

// Gemm checks the operands of Gemm and returns the product's m x n and
// its inner dimension k.
func (ck Check) Gemm(transA, transB bool, a, b, c *Tensor) (m, n, k int) {
	as, bs := ck.ExpectRank("Gemm", "a", a, 2), ck.ExpectRank("Gemm", "b", b, 2)
	m, k = as[0], as[1]
	if transA {
		m, k = k, m
	}
	kb, n := bs[0], bs[1]
	if transB {
		kb, n = n, kb
	}
	if kb != k {
		panic(fmt.Sprintf("%s: Gemm: op(a) is %dx%d but op(b) is %dx%d", ck, m, k, kb, n))
	}
	ck.Expect("Gemm", "c", c, Float32, m, n)
	return m, n, k
}

// ConvShape is a checked convolution's geometry.
type ConvShape struct {
	N, C, H, W int // input
	O, KH, KW  int // filters
	OH, OW     int // output
}

// Conv checks a convolution of x (N x C x H x W) with w (O x C x KH x KW)
// into y (N x O x OH x OW) and returns its geometry.
func (ck Check) Conv(op string, x, w, y *Tensor, p Conv2DParams) ConvShape {
	xs := ck.ExpectRank(op, "x", x, 4)
	ws := ck.ExpectRank(op, "w", w, 4)
	if p.StrideH < 1 || p.StrideW < 1 || p.PadH < 0 || p.PadW < 0 {
		panic(fmt.Sprintf("%s: %s: bad params %+v", ck, op, p))
	}
	if ws[1] != xs[1] {
		panic(fmt.Sprintf("%s: %s: w is %v for x %v (channels differ)", ck, op, w, x))
	}
	s := ConvShape{N: xs[0], C: xs[1], H: xs[2], W: xs[3], O: ws[0], KH: ws[2], KW: ws[3]}
	if s.H+2*p.PadH < s.KH || s.W+2*p.PadW < s.KW {
		panic(fmt.Sprintf("%s: %s: kernel %dx%d larger than padded input %v", ck, op, s.KH, s.KW, x))
	}
	s.OH, s.OW = p.Out(s.H, s.W, s.KH, s.KW)
	ck.Expect(op, "y", y, Float32, s.N, s.O, s.OH, s.OW)
	return s
}

// Planes checks that x and y are NCHW with the same N and C and returns the
// plane count N*C and both plane sizes.
func (ck Check) Planes(op string, y, x *Tensor) (nc, h, w, oh, ow int) {
	xs := ck.ExpectRank(op, "x", x, 4)
	ys := ck.ExpectRank(op, "y", y, 4)
	if xs[0] != ys[0] || xs[1] != ys[1] {
		panic(fmt.Sprintf("%s: %s: y %v and x %v differ in N or C", ck, op, y, x))
	}
	return xs[0] * xs[1], xs[2], xs[3], ys[2], ys[3]
}

// Pool checks a pooling's params against its input (h x w) and output
// (oh x ow) planes.
func (ck Check) Pool(op string, p Pool2DParams, h, w, oh, ow int) {
	if p.Kernel < 1 || p.Stride < 1 || p.Pad < 0 || 2*p.Pad > p.Kernel {
		panic(fmt.Sprintf("%s: %s: bad params %+v (padding at most half the kernel)", ck, op, p))
	}
	if h+2*p.Pad < p.Kernel || w+2*p.Pad < p.Kernel {
		panic(fmt.Sprintf("%s: %s: window %d larger than padded %dx%d input", ck, op, p.Kernel, h, w))
	}
	if eh, ew := p.Out(h, w); eh != oh || ew != ow {
		panic(fmt.Sprintf("%s: %s: output %dx%d, want %dx%d for %dx%d input and %+v", ck, op, oh, ow, eh, ew, h, w, p))
	}
}

// Adaptive checks an adaptive pooling of x (N x C x H x W) to y and returns
// the planes and their sizes.
func (ck Check) Adaptive(op string, y, x *Tensor) (nc, h, w, oh, ow int) {
	nc, h, w, oh, ow = ck.Planes(op, y, x)
	if oh < 1 || ow < 1 || h < 1 || w < 1 {
		panic(fmt.Sprintf("%s: %s: empty map, input %v output %v", ck, op, x, y))
	}
	return
}

// Bilinear checks a bilinear resize of x (N x C x H x W) to y and returns
// the planes and their sizes.
func (ck Check) Bilinear(op string, y, x *Tensor) (nc, h, w, oh, ow int) {
	nc, h, w, oh, ow = ck.Planes(op, y, x)
	if h < 1 || w < 1 {
		panic(fmt.Sprintf("%s: %s: empty input %v", ck, op, x))
	}
	return
}

// Concat checks, part by part, a concatenation of xs along the channel
// axis into y, of shape ys (N x C x H x W): once xs[i] is checked,
// each(i, off, c) copies its c channels to y's channels from off. It
// panics unless the parts fill y's channels.
func (ck Check) Concat(y *Tensor, ys []int, xs []*Tensor, each func(i, off, c int)) {
	if off := ck.channels(false, y, ys, xs, nil, each); off != ys[1] {
		panic(fmt.Sprintf("%s: Concat: inputs have %d channels, y has %d", ck, off, ys[1]))
	}
}

// Split checks, part by part, a split of x, of shape xs (N x C x H x W),
// along the channel axis into ys, a nil ys[i] skipping skip[i] channels:
// once ys[i] is checked, each(i, off, c) copies x's c channels from off to
// it. It panics unless the parts take all of x's channels.
func (ck Check) Split(x *Tensor, xs []int, ys []*Tensor, skip []int, each func(i, off, c int)) {
	if off := ck.channels(true, x, xs, ys, skip, each); off != xs[1] {
		panic(fmt.Sprintf("%s: Split: outputs take %d channels, x has %d", ck, off, xs[1]))
	}
}

// channels runs the loop of Concat (parts xs into whole y) or Split (parts
// ys of whole x) and returns the channels the parts cover.
func (ck Check) channels(split bool, whole *Tensor, ws []int, parts []*Tensor, skip []int, each func(i, off, c int)) int {
	op, name, wholeName := "Concat", "xs", "y"
	if split {
		op, name, wholeName = "Split", "ys", "x"
	}
	off := 0
	for i, t := range parts {
		if split && t == nil {
			if i >= len(skip) || skip[i] < 0 {
				panic(fmt.Sprintf("%s: Split: ys[%d] is nil without a skip count", ck, i))
			}
			off += skip[i]
			continue
		}
		s := ck.ExpectRank(op, fmt.Sprintf("%s[%d]", name, i), t, 4)
		if s[0] != ws[0] || s[2] != ws[2] || s[3] != ws[3] || off+s[1] > ws[1] {
			panic(fmt.Sprintf("%s: %s: %s[%d] %v does not fit %s %v at channel %d", ck, op, name, i, t, wholeName, whole, off))
		}
		each(i, off, s[1])
		off += s[1]
	}
	return off
}

// Channels checks ChannelsLast (op "ChannelsLast": NCHW maps x to rows y
// of (N*H*W) x C) or ChannelsFirst (op "ChannelsFirst": rows x to maps y)
// and returns the maps' N, C and H*W.
func (ck Check) Channels(op string, y, x *Tensor) (n, c, hw int) {
	maps, mapsName, rows, rowsName := x, "x", y, "y"
	if op == "ChannelsFirst" {
		maps, mapsName, rows, rowsName = y, "y", x, "x"
	}
	s := ck.ExpectRank(op, mapsName, maps, 4)
	n, c, hw = s[0], s[1], s[2]*s[3]
	ck.Expect(op, rowsName, rows, Float32, n*hw, c)
	return n, c, hw
}
