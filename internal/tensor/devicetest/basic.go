package devicetest

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// basics checks Name, Zeros, ZerosInt32, Free and Sync.
func (c *checker) basics(t *testing.T) {
	d := c.d
	assert.NotEmpty(t, d.Name(), "Name")

	z := d.Zeros(2, 3, 4)
	assert.Equal(t, []int{2, 3, 4}, z.Shape(), "Zeros shape")
	assert.Equal(t, tensor.Float32, z.DType(), "Zeros dtype")
	h := d.ToHost(z)
	assert.True(t, h.IsHost(), "ToHost returns a host tensor")
	assert.Equal(t, []int{2, 3, 4}, h.Shape(), "ToHost keeps the shape")
	assert.Equal(t, make([]float32, 24), h.Float32s(), "Zeros values")

	zi := d.ZerosInt32(5, 1)
	assert.Equal(t, []int{5, 1}, zi.Shape(), "ZerosInt32 shape")
	assert.Equal(t, tensor.Int32, zi.DType(), "ZerosInt32 dtype")
	assert.Equal(t, make([]int32, 5), d.ToHost(zi).Int32s(), "ZerosInt32 values")

	// Free is idempotent and Sync reports no error after good ops.
	d.Free(z)
	d.Free(z)
	d.Free(zi)
	require.NoError(t, d.Sync(), "Sync")
}

// transfer checks that FromHost and ToHost copy (not share) both dtypes
// and keep shapes.
func (c *checker) transfer(t *testing.T) {
	r := c.rng(t)
	d := c.d
	data := randn(r, 12)
	src := tensor.FromFloat32s(slices.Clone(data), 3, 4)
	dev := d.FromHost(src)
	assert.Equal(t, []int{3, 4}, dev.Shape(), "FromHost shape")
	assert.Equal(t, tensor.Float32, dev.DType(), "FromHost dtype")
	src.Float32s()[0] = 1e9 // must not reach the device copy
	back := d.ToHost(dev)
	assert.Equal(t, []int{3, 4}, back.Shape(), "ToHost shape")
	exact(t, "FromHost then ToHost", []int{3, 4}, back.Float32s(), data)
	back.Float32s()[1] = 1e9 // must not reach the device tensor
	exact(t, "second ToHost", []int{3, 4}, d.ToHost(dev).Float32s(), data)

	idata := []int32{3, -1, 0, 7, 2147483647, -2147483648}
	isrc := tensor.FromInt32s(slices.Clone(idata), 2, 3)
	idev := d.FromHost(isrc)
	assert.Equal(t, tensor.Int32, idev.DType(), "FromHost int32 dtype")
	isrc.Int32s()[0] = 99
	iback := d.ToHost(idev)
	assert.Equal(t, []int{2, 3}, iback.Shape(), "ToHost int32 shape")
	exact(t, "FromHost then ToHost int32", []int{2, 3}, iback.Int32s(), idata)

	// Views of device tensors transfer only their own elements.
	view := dev.Flat(5, 9)
	exact(t, "ToHost of a Flat view", []int{4}, d.ToHost(view).Float32s(), data[5:9])
	exact(t, "ToHost of a Batch view", []int{1, 4}, d.ToHost(dev.Batch(2, 3)).Float32s(), data[8:12])
}

// shapeChecks checks that some representative shape mismatches panic, as
// the Device doc requires.
func (c *checker) shapeChecks(t *testing.T) {
	d := c.d
	a, b := d.Zeros(2, 3), d.Zeros(3, 2)
	assert.Panics(t, func() { d.Add(d.Zeros(2, 3), a, d.Zeros(2, 4)) }, "Add of different sizes")
	assert.Panics(t, func() { d.Axpy(1, a, d.Zeros(7)) }, "Axpy of different sizes")
	assert.Panics(t, func() { d.Copy(d.Zeros(5), a) }, "Copy of different sizes")
	assert.Panics(t, func() { d.Copy(d.ZerosInt32(6), a) }, "Copy of different dtypes")
	assert.Panics(t, func() { d.Dot(a, d.Zeros(5)) }, "Dot of different sizes")
	assert.Panics(t, func() { d.Gemm(false, false, 1, a, a, 0, d.Zeros(2, 3)) }, "Gemm with inner dimensions 3 and 2")
	assert.Panics(t, func() { d.Gemm(false, false, 1, a, b, 0, d.Zeros(3, 3)) }, "Gemm into a wrong c")
	assert.Panics(t, func() {
		d.Conv2D(d.Zeros(1, 2, 4, 4), d.Zeros(1, 3, 5, 5), d.Zeros(2, 3, 3, 3), nil, tensor.Conv2DParams{StrideH: 1, StrideW: 1})
	}, "Conv2D into a wrong output size")
	assert.Panics(t, func() {
		d.Conv2D(d.Zeros(1, 2, 3, 3), d.Zeros(1, 4, 5, 5), d.Zeros(2, 3, 3, 3), nil, tensor.Conv2DParams{StrideH: 1, StrideW: 1})
	}, "Conv2D with input channels 4 and weight channels 3")
	assert.Panics(t, func() {
		d.MaxPool2D(d.Zeros(1, 1, 3, 3), d.Zeros(1, 1, 4, 4), tensor.Pool2DParams{Kernel: 2, Stride: 2})
	}, "MaxPool2D into a wrong output size")
	assert.Panics(t, func() { d.Concat(d.Zeros(1, 4, 2, 2), d.Zeros(1, 1, 2, 2), d.Zeros(1, 2, 2, 2)) }, "Concat of 3 channels into 4")
	assert.Panics(t, func() { d.ChannelsLast(d.Zeros(4, 3), d.Zeros(1, 3, 2, 3)) }, "ChannelsLast into too few rows")
	assert.Panics(t, func() { d.Nearest(d.ZerosInt32(4), nil, d.Zeros(4, 3), d.Zeros(2, 5)) }, "Nearest with dimensions 3 and 5")
	assert.Panics(t, func() { d.ReLU(d.Zeros(5), d.Zeros(6)) }, "ReLU of different sizes")
}

// copyOp checks Copy between shapes of one size, for both dtypes.
func (c *checker) copyOp(t *testing.T) {
	for _, s := range []struct{ dst, src []int }{
		{[]int{1}, []int{1}},
		{[]int{3, 4}, []int{12}},
		{[]int{2, 3, 2, 5}, []int{6, 10}},
	} {
		run(t, fmt.Sprintf("dst=%v,src=%v", s.dst, s.src), func(t *testing.T) {
			r := c.rng(t)
			x := randn(r, size(s.src...))
			o := c.out(s.dst...)
			c.d.Copy(o.T, c.in(x, s.src...))
			exact(t, "Copy", s.dst, o.get(t), x)

			xi := make([]int32, len(x))
			for i := range xi {
				xi[i] = int32(r.IntN(1000)) - 500
				if xi[i] == guardInt32 {
					xi[i] = 0 // the sentinel would read as "not written"
				}
			}
			oi := c.outInt32(s.dst...)
			c.d.Copy(oi.T, c.inInt32(xi, s.src...))
			exact(t, "Copy int32", s.dst, oi.get(t), xi)
		})
	}
}

// fill checks Fill, including 0 and a negative value.
func (c *checker) fill(t *testing.T) {
	for _, n := range []int{1, 5, 1000, 100_003} {
		for _, v := range []float32{0, -2.5, 3e7} {
			run(t, fmt.Sprintf("n=%d,v=%g", n, v), func(t *testing.T) {
				o := c.out(n)
				c.d.Fill(o.T, v)
				want := make([]float32, n)
				for i := range want {
					want[i] = v
				}
				exact(t, "Fill", []int{n}, o.get(t), want)
			})
		}
	}
}

// elementwiseSizes are the sizes of the elementwise checks: odd ones, so
// that vectorised or blocked loops run their remainders, and one large
// enough for a device to split it among threads.
var elementwiseSizes = [][]int{{1}, {7}, {3, 5, 2}, {1031}, {100_003}}

// add checks Add out of place and with dst aliasing a, b or both.
func (c *checker) add(t *testing.T) {
	for _, shape := range elementwiseSizes {
		n := size(shape...)
		run(t, fmt.Sprintf("shape=%v", shape), func(t *testing.T) {
			r := c.rng(t)
			a, b := randn(r, n), randn(r, n)
			a64, b64 := f64(a), f64(b)
			sum := make([]float64, n)
			sc := make([]float64, n)
			for i := range sum {
				sum[i] = a64[i] + b64[i]
				sc[i] = math.Abs(a64[i]) + math.Abs(b64[i])
			}
			o := c.out(shape...)
			c.d.Add(o.T, c.in(a, shape...), c.in(b, shape...))
			c.near(t, "Add", shape, o.get(t), sum, sc)

			o = c.acc(a, shape...)
			c.d.Add(o.T, o.T, c.in(b, shape...))
			c.near(t, "Add with dst == a", shape, o.get(t), sum, sc)

			o = c.acc(b, shape...)
			c.d.Add(o.T, c.in(a, shape...), o.T)
			c.near(t, "Add with dst == b", shape, o.get(t), sum, sc)

			o = c.acc(a, shape...)
			c.d.Add(o.T, o.T, o.T)
			twice := make([]float64, n)
			for i := range twice {
				twice[i] = 2 * a64[i]
			}
			c.near(t, "Add with dst == a == b", shape, o.get(t), twice, nil)
		})
	}
}

// axpy checks y += alpha*x, which accumulates into y.
func (c *checker) axpy(t *testing.T) {
	for _, shape := range elementwiseSizes {
		for _, alpha := range []float32{1, -0.75, 0} {
			n := size(shape...)
			run(t, fmt.Sprintf("shape=%v,alpha=%g", shape, alpha), func(t *testing.T) {
				r := c.rng(t)
				x, y := randn(r, n), randn(r, n)
				want := make([]float64, n)
				sc := make([]float64, n)
				for i := range want {
					ax := float64(alpha) * float64(x[i])
					want[i] = float64(y[i]) + ax
					sc[i] = math.Abs(float64(y[i])) + math.Abs(ax)
				}
				o := c.acc(y, shape...)
				c.d.Axpy(alpha, c.in(x, shape...), o.T)
				c.near(t, "Axpy", shape, o.get(t), want, sc)
			})
		}
	}
}

// scale checks x *= alpha in place.
func (c *checker) scale(t *testing.T) {
	for _, shape := range elementwiseSizes {
		for _, alpha := range []float32{-1.5, 0, 1} {
			n := size(shape...)
			run(t, fmt.Sprintf("shape=%v,alpha=%g", shape, alpha), func(t *testing.T) {
				r := c.rng(t)
				x := randn(r, n)
				want := make([]float64, n)
				for i := range want {
					want[i] = float64(alpha) * float64(x[i])
				}
				o := c.acc(x, shape...)
				c.d.Scale(alpha, o.T)
				c.near(t, "Scale", shape, o.get(t), want, nil)
			})
		}
	}
}

// reductionSizes are the sizes of the Sum and Dot checks; the largest
// makes float32 accumulation fail the Sum tolerance.
var reductionSizes = []int{1, 2, 33, 1000, 100_003}

// sum checks Sum on positive values, where a float32 accumulator drifts
// most, and on values of both signs.
func (c *checker) sum(t *testing.T) {
	for _, n := range reductionSizes {
		for _, positive := range []bool{true, false} {
			run(t, fmt.Sprintf("n=%d,positive=%t", n, positive), func(t *testing.T) {
				r := c.rng(t)
				x := randn(r, n)
				if positive {
					x = uniform(r, n, 0.5, 1)
				}
				var want, sc float64
				for _, v := range x {
					want += float64(v)
					sc += math.Abs(float64(v))
				}
				got := c.d.Sum(c.in(x, n))
				nearTol(t, "Sum", []int{1}, []float32{float32(got)}, []float64{want}, []float64{sc}, c.tol.Sum, c.tol.Abs)
				// The result is a float64: compare it unrounded too.
				if err := math.Abs(got - want); !(err <= c.tol.Abs+c.tol.Sum*sc) {
					t.Errorf("Sum = %.17g, want %.17g (error %.3g, bound %.3g)", got, want, err, c.tol.Abs+c.tol.Sum*sc)
				}
			})
		}
	}
}

// dot checks Dot likewise, including a vector with itself.
func (c *checker) dot(t *testing.T) {
	for _, n := range reductionSizes {
		for _, positive := range []bool{true, false} {
			run(t, fmt.Sprintf("n=%d,positive=%t", n, positive), func(t *testing.T) {
				r := c.rng(t)
				x, y := randn(r, n), randn(r, n)
				if positive {
					x, y = uniform(r, n, 0.5, 1), uniform(r, n, 0.5, 1)
				}
				var want, sc, self float64
				for i := range x {
					want += float64(x[i]) * float64(y[i])
					sc += math.Abs(float64(x[i]) * float64(y[i]))
					self += float64(x[i]) * float64(x[i])
				}
				xd := c.in(x, n)
				check := func(what string, got, want, sc float64) {
					if err := math.Abs(got - want); !(err <= c.tol.Abs+c.tol.Sum*sc) {
						t.Errorf("%s = %.17g, want %.17g (error %.3g, bound %.3g)", what, got, want, err, c.tol.Abs+c.tol.Sum*sc)
					}
				}
				check("Dot", c.d.Dot(xd, c.in(y, n)), want, sc)
				check("Dot(x, x)", c.d.Dot(xd, xd), self, self)
			})
		}
	}
}

// gemm checks every transpose combination, with beta = 0 over a NaN c and
// with beta != 0 over a finite one.
func (c *checker) gemm(t *testing.T) {
	type shape struct{ m, n, k int }
	for _, s := range []shape{{1, 1, 1}, {3, 5, 7}, {8, 1, 4}, {1, 9, 2}, {17, 13, 37}, {130, 70, 150}} {
		for _, transA := range []bool{false, true} {
			for _, transB := range []bool{false, true} {
				for _, ab := range [][2]float32{{1, 0}, {-0.5, 0}, {1.25, 1}, {0.5, -2}, {0, 0}, {0, 1.5}} {
					alpha, beta := ab[0], ab[1]
					c.gemmCase(t, s.m, s.n, s.k, transA, transB, alpha, beta)
				}
			}
		}
	}
}

// gemmCase checks one Gemm, with beta = 0 over a NaN c and with beta != 0
// over a finite one.
func (c *checker) gemmCase(t *testing.T, m, n, k int, transA, transB bool, alpha, beta float32) {
	name := fmt.Sprintf("M=%d,N=%d,K=%d,tA=%t,tB=%t,alpha=%g,beta=%g", m, n, k, transA, transB, alpha, beta)
	run(t, name, func(t *testing.T) {
		r := c.rng(t)
		aShape, bShape := []int{m, k}, []int{k, n}
		if transA {
			aShape = []int{k, m}
		}
		if transB {
			bShape = []int{n, k}
		}
		a, b := randn(r, m*k), randn(r, k*n)
		var cInit []float32 // NaN: beta = 0 must ignore c
		if beta != 0 {
			cInit = randn(r, m*n)
		}
		o := c.acc(cInit, m, n)
		c.d.Gemm(transA, transB, alpha, c.in(a, aShape...), c.in(b, bShape...), beta, o.T)
		want, sc := refGemm(transA, transB, m, n, k, float64(alpha), f64(a), f64(b), float64(beta), f64(cInit))
		c.near(t, "Gemm", []int{m, n}, o.get(t), want, sc)
	})
}
