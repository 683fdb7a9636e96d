//go:build cuda

package cuda

import (
	"fmt"
	"slices"

	"github.com/org/anomnet/internal/tensor"
)

// The shape checks of the CPU Device (package tensor keeps its own
// unexported), so that both panic on the same programmer errors.

func checkShape(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("anomnet/cuda: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// expect panics unless t has dtype dt and the given shape.
func expect(op, name string, t *tensor.Tensor, dt tensor.DType, shape ...int) {
	if t == nil {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is nil", op, name))
	}
	if t.DType() != dt || !slices.Equal(t.Shape(), shape) {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is %v, want %s%v", op, name, t, dt, shape))
	}
}

// expectRank panics unless t is a float32 tensor of the given rank, and
// returns its shape.
func expectRank(op, name string, t *tensor.Tensor, rank int) []int {
	if t == nil {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is nil", op, name))
	}
	if t.DType() != tensor.Float32 || t.Rank() != rank {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is %v, want a rank-%d float32 tensor", op, name, t, rank))
	}
	return t.Shape()
}

// expectSize panics unless t is float32 with n elements (any shape).
func expectSize(op, name string, t *tensor.Tensor, n int) {
	if t == nil {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is nil", op, name))
	}
	if t.DType() != tensor.Float32 || t.Len() != n {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is %v, want %d float32 elements", op, name, t, n))
	}
}

// matrix checks that t is a float32 matrix and returns its rows and
// columns.
func matrix(op, name string, t *tensor.Tensor) (r, c int) {
	s := expectRank(op, name, t, 2)
	return s[0], s[1]
}

// planes checks that x and y are NCHW with the same N and C and returns the
// plane count N*C and both plane sizes.
func planes(op string, y, x *tensor.Tensor) (nc, h, w, oh, ow int) {
	xs := expectRank(op, "x", x, 4)
	ys := expectRank(op, "y", y, 4)
	if xs[0] != ys[0] || xs[1] != ys[1] {
		panic(fmt.Sprintf("anomnet/cuda: %s: y %v and x %v differ in N or C", op, y, x))
	}
	return xs[0] * xs[1], xs[2], xs[3], ys[2], ys[3]
}

func checkPool(op string, p tensor.Pool2DParams, h, w, oh, ow int) {
	if p.Kernel < 1 || p.Stride < 1 || p.Pad < 0 || 2*p.Pad > p.Kernel {
		panic(fmt.Sprintf("anomnet/cuda: %s: bad params %+v (padding at most half the kernel)", op, p))
	}
	if h+2*p.Pad < p.Kernel || w+2*p.Pad < p.Kernel {
		panic(fmt.Sprintf("anomnet/cuda: %s: window %d larger than padded %dx%d input", op, p.Kernel, h, w))
	}
	if eh, ew := p.Out(h, w); eh != oh || ew != ow {
		panic(fmt.Sprintf("anomnet/cuda: %s: output %dx%d, want %dx%d for %dx%d input and %+v", op, oh, ow, eh, ew, h, w, p))
	}
}

// adaptive checks an adaptive pooling of x to y.
func adaptive(op string, y, x *tensor.Tensor) (nc, h, w, oh, ow int) {
	nc, h, w, oh, ow = planes(op, y, x)
	if oh < 1 || ow < 1 || h < 1 || w < 1 {
		panic(fmt.Sprintf("anomnet/cuda: %s: empty map, input %v output %v", op, x, y))
	}
	return
}

// bilinear checks a bilinear resize of x to y.
func bilinear(op string, y, x *tensor.Tensor) (nc, h, w, oh, ow int) {
	nc, h, w, oh, ow = planes(op, y, x)
	if h < 1 || w < 1 {
		panic(fmt.Sprintf("anomnet/cuda: %s: empty input %v", op, x))
	}
	return
}
