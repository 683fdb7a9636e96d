package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// reluGap keeps ReLU inputs away from the kink at 0, so that central
// differences do not straddle it.
const reluGap = 1e-3

func (c *checker) relu(t *testing.T) {
	for _, shape := range elementwiseSizes {
		run(t, fmt.Sprintf("shape=%v", shape), func(t *testing.T) {
			x := randn(c.rng(t), size(shape...))
			want := make([]float32, len(x))
			for i, v := range x {
				want[i] = max(v, 0)
			}
			o := c.out(shape...)
			xd := c.in(x, shape...)
			c.d.ReLU(o.T, xd)
			exact(t, "ReLU", shape, o.get(t), want)
			exact(t, "ReLU input (must be left alone)", shape, c.host(t, xd), x)

			o = c.acc(x, shape...)
			c.d.ReLU(o.T, o.T)
			exact(t, "ReLU in place", shape, o.get(t), want)
		})
	}
}

// reluBackward checks dx against central differences of
// L(x) = sum(dy .* relu(x)), given y = ReLU(x) from the device, and in
// place (dx == dy).
func (c *checker) reluBackward(t *testing.T) {
	for _, shape := range elementwiseSizes {
		run(t, fmt.Sprintf("shape=%v", shape), func(t *testing.T) {
			r := c.rng(t)
			n := size(shape...)
			x, dy := awayFrom(r, n, reluGap), randn(r, n)
			y := c.out(shape...)
			c.d.ReLU(y.T, c.in(x, shape...))
			want := make([]float32, n)
			sc := make([]float64, n)
			for i := range want {
				if x[i] > 0 {
					want[i] = dy[i]
					sc[i] = math.Abs(float64(dy[i]))
				}
			}
			dx := c.out(shape...)
			c.d.ReLUBackward(dx.T, c.in(dy, shape...), y.T)
			got := dx.get(t)
			exact(t, "ReLUBackward", shape, got, want)
			dy64 := f64(dy)
			c.grad(t, "ReLUBackward", shape, got, gradCheck{
				x: f64(x),
				L: func(x []float64) float64 {
					var sum float64
					for i, v := range x {
						sum += dy64[i] * max(v, 0)
					}
					return sum
				},
				scale: vecScale(sc),
			}, r)

			inPlace := c.acc(dy, shape...)
			c.d.ReLUBackward(inPlace.T, inPlace.T, y.T)
			exact(t, "ReLUBackward in place (dx == dy)", shape, inPlace.get(t), want)
		})
	}
}

func (c *checker) zeroPad2D(t *testing.T) {
	for _, s := range []struct{ n, c, h, w, h2, w2, top, left int }{
		{2, 3, 4, 5, 7, 9, 1, 2},
		{2, 16, 32, 32, 35, 36, 1, 2},
		{1, 1, 1, 1, 1, 1, 0, 0},
		{1, 1, 1, 1, 3, 2, 1, 1},
		{1, 2, 3, 3, 5, 4, 2, 0},
		{1, 1, 2, 2, 2, 5, 0, 3},
		{3, 1, 2, 3, 4, 3, 0, 0},
	} {
		name := mapName(s.n, s.c, s.h, s.w) + fmt.Sprintf(",H'=%d,W'=%d,top=%d,left=%d", s.h2, s.w2, s.top, s.left)
		run(t, name, func(t *testing.T) {
			x := randn(c.rng(t), s.n*s.c*s.h*s.w)
			want := make([]float32, s.n*s.c*s.h2*s.w2)
			for m := range s.n * s.c {
				for i := range s.h {
					for j := range s.w {
						want[(m*s.h2+i+s.top)*s.w2+j+s.left] = x[(m*s.h+i)*s.w+j]
					}
				}
			}
			yShape := []int{s.n, s.c, s.h2, s.w2}
			o := c.out(yShape...)
			c.d.ZeroPad2D(o.T, c.in(x, s.n, s.c, s.h, s.w), s.top, s.left)
			exact(t, "ZeroPad2D", yShape, o.get(t), want)
		})
	}
}

// pool builds a pooling case.
func pool(n, c, h, w, k, s, p int) poolGeom {
	return poolGeom{N: n, C: c, H: h, W: w, P: tensor.Pool2DParams{Kernel: k, Stride: s, Pad: p}}
}

func (g poolGeom) String() string {
	return mapName(g.N, g.C, g.H, g.W) + fmt.Sprintf(",K=%d,S=%d,P=%d", g.P.Kernel, g.P.Stride, g.P.Pad)
}

// poolCases cover 1x1 maps, kernels 1 to 7, strides that do not divide
// the map, maps smaller than the kernel, and windows over the padding
// (PyTorch allows padding up to half the kernel); the last is large enough
// for a device to split it among threads.
var poolCases = []poolGeom{
	pool(1, 1, 1, 1, 1, 1, 0),
	pool(2, 3, 7, 5, 3, 2, 1),
	pool(1, 2, 6, 6, 2, 2, 0),
	pool(2, 1, 9, 7, 3, 1, 1),
	pool(1, 2, 7, 8, 7, 1, 3),
	pool(1, 1, 8, 5, 3, 3, 1),
	pool(1, 2, 2, 3, 3, 1, 1),
	pool(2, 1, 4, 4, 3, 2, 0),
	pool(1, 1, 1, 4, 3, 2, 1),
	pool(1, 1, 5, 5, 5, 5, 2),
	pool(1, 2, 9, 11, 3, 2, 0),
	pool(2, 8, 32, 32, 3, 1, 1),
}

// maxPool2D also runs every case on negative inputs, where treating the
// padding as 0 instead of -Inf shows.
func (c *checker) maxPool2D(t *testing.T) {
	for _, g := range poolCases {
		for _, negative := range []bool{false, true} {
			name := g.String()
			if negative {
				name += ",negative"
			}
			run(t, name, func(t *testing.T) {
				x := randn(c.rng(t), g.N*g.C*g.H*g.W)
				if negative {
					for i := range x {
						x[i] = -1 - float32(math.Abs(float64(x[i])))
					}
				}
				oh, ow := g.out()
				yShape := []int{g.N, g.C, oh, ow}
				o := c.out(yShape...)
				c.d.MaxPool2D(o.T, c.in(x, g.N, g.C, g.H, g.W), g.P)
				want, _ := refPool2D(g, f64(x), true)
				exact(t, "MaxPool2D (a max is exact)", yShape, o.get(t), f32(want))
			})
		}
	}
}

func (c *checker) avgPool2D(t *testing.T) {
	for _, g := range poolCases {
		run(t, g.String(), func(t *testing.T) {
			x := randn(c.rng(t), g.N*g.C*g.H*g.W)
			oh, ow := g.out()
			yShape := []int{g.N, g.C, oh, ow}
			o := c.out(yShape...)
			c.d.AvgPool2D(o.T, c.in(x, g.N, g.C, g.H, g.W), g.P)
			want, sc := refPool2D(g, f64(x), false)
			c.near(t, "AvgPool2D", yShape, o.get(t), want, sc)
		})
	}
}

// avgPool2DBackward checks dx against central differences of
// L(x) = sum(dy .* avgpool(x)).
func (c *checker) avgPool2DBackward(t *testing.T) {
	for _, g := range poolCases {
		run(t, g.String(), func(t *testing.T) {
			r := c.rng(t)
			x := randn(r, g.N*g.C*g.H*g.W)
			oh, ow := g.out()
			dy := randn(r, g.N*g.C*oh*ow)
			xShape := []int{g.N, g.C, g.H, g.W}
			o := c.out(xShape...)
			c.d.AvgPool2DBackward(o.T, c.in(dy, g.N, g.C, oh, ow), g.P)
			dy64 := f64(dy)
			c.grad(t, "AvgPool2DBackward", xShape, o.get(t), gradCheck{
				x: f64(x),
				L: func(x []float64) float64 {
					y, _ := refPool2D(g, x, false)
					return dotG(dy64, y)
				},
				scale: linearScale(dy64, func(v []float64) []float64 {
					_, s := refPool2D(g, v, false)
					return s
				}),
			}, r)
		})
	}
}

// resample is a case of the adaptive pooling and resizing checks: N x C x
// H x W to N x C x OH x OW.
type resample struct{ N, C, H, W, OH, OW int }

func (s resample) String() string {
	return mapName(s.N, s.C, s.H, s.W) + fmt.Sprintf(",OH=%d,OW=%d", s.OH, s.OW)
}

// adaptiveCases include sizes that do not divide (7->3, whose windows
// overlap), the identity (5->5), outputs larger than the input (3->7,
// where windows repeat input rows), global pooling, and the adapter's
// 64 -> 28 on enough planes for threads.
var adaptiveCases = []resample{
	{1, 1, 7, 7, 3, 3},
	{2, 2, 5, 5, 5, 5},
	{1, 2, 3, 3, 7, 7},
	{1, 1, 1, 1, 1, 1},
	{2, 1, 1, 1, 3, 2},
	{1, 3, 9, 5, 2, 3},
	{2, 2, 6, 8, 1, 1},
	{1, 1, 7, 3, 4, 5},
	{1, 1, 10, 14, 4, 6},
	{2, 8, 64, 64, 28, 28},
}

func (c *checker) adaptiveAvgPool2D(t *testing.T) {
	for _, s := range adaptiveCases {
		run(t, s.String(), func(t *testing.T) {
			x := randn(c.rng(t), s.N*s.C*s.H*s.W)
			yShape := []int{s.N, s.C, s.OH, s.OW}
			o := c.out(yShape...)
			c.d.AdaptiveAvgPool2D(o.T, c.in(x, s.N, s.C, s.H, s.W))
			want, sc := refAdaptiveAvgPool2D(s.N*s.C, s.H, s.W, s.OH, s.OW, f64(x))
			c.near(t, "AdaptiveAvgPool2D", yShape, o.get(t), want, sc)
		})
	}
}

func (c *checker) adaptiveAvgPool2DBackward(t *testing.T) {
	for _, s := range adaptiveCases {
		run(t, s.String(), func(t *testing.T) {
			r := c.rng(t)
			x, dy := randn(r, s.N*s.C*s.H*s.W), randn(r, s.N*s.C*s.OH*s.OW)
			xShape := []int{s.N, s.C, s.H, s.W}
			o := c.out(xShape...)
			c.d.AdaptiveAvgPool2DBackward(o.T, c.in(dy, s.N, s.C, s.OH, s.OW))
			dy64 := f64(dy)
			c.grad(t, "AdaptiveAvgPool2DBackward", xShape, o.get(t), gradCheck{
				x: f64(x),
				L: func(x []float64) float64 {
					y, _ := refAdaptiveAvgPool2D(s.N*s.C, s.H, s.W, s.OH, s.OW, x)
					return dotG(dy64, y)
				},
				scale: linearScale(dy64, func(v []float64) []float64 {
					_, sc := refAdaptiveAvgPool2D(s.N*s.C, s.H, s.W, s.OH, s.OW, v)
					return sc
				}),
			}, r)
		})
	}
}

// resizeCases upsample (3->24 is the 28->224 factor of 8), downsample by
// non-integer factors, keep the size, start from 1x1 maps, and double on
// enough planes for threads.
var resizeCases = []resample{
	{1, 1, 1, 1, 1, 1},
	{2, 1, 1, 1, 3, 4},
	{1, 2, 4, 4, 7, 7},
	{2, 1, 7, 5, 4, 3},
	{1, 2, 5, 3, 2, 9},
	{1, 1, 6, 6, 6, 6},
	{1, 1, 3, 3, 24, 24},
	{1, 2, 13, 9, 5, 4},
	{1, 1, 2, 2, 1, 1},
	{2, 2, 1, 6, 4, 1},
	{2, 8, 14, 14, 28, 28},
}

func (c *checker) resizeBilinear(t *testing.T) {
	for _, s := range resizeCases {
		run(t, s.String(), func(t *testing.T) {
			x := randn(c.rng(t), s.N*s.C*s.H*s.W)
			yShape := []int{s.N, s.C, s.OH, s.OW}
			o := c.out(yShape...)
			c.d.ResizeBilinear(o.T, c.in(x, s.N, s.C, s.H, s.W))
			want, sc := refResizeBilinear(s.N*s.C, s.H, s.W, s.OH, s.OW, f64(x))
			c.near(t, "ResizeBilinear", yShape, o.get(t), want, sc)
		})
	}
}

func (c *checker) resizeBilinearBackward(t *testing.T) {
	for _, s := range resizeCases {
		run(t, s.String(), func(t *testing.T) {
			r := c.rng(t)
			x, dy := randn(r, s.N*s.C*s.H*s.W), randn(r, s.N*s.C*s.OH*s.OW)
			xShape := []int{s.N, s.C, s.H, s.W}
			o := c.out(xShape...)
			c.d.ResizeBilinearBackward(o.T, c.in(dy, s.N, s.C, s.OH, s.OW))
			dy64 := f64(dy)
			c.grad(t, "ResizeBilinearBackward", xShape, o.get(t), gradCheck{
				x: f64(x),
				L: func(x []float64) float64 {
					y, _ := refResizeBilinear(s.N*s.C, s.H, s.W, s.OH, s.OW, x)
					return dotG(dy64, y)
				},
				scale: linearScale(dy64, func(v []float64) []float64 {
					_, sc := refResizeBilinear(s.N*s.C, s.H, s.W, s.OH, s.OW, v)
					return sc
				}),
			}, r)
		})
	}
}

// gaussianBlur checks the blur against a direct 2-D convolution, with the
// method's sigma = 4 (radius 16) on maps larger and smaller than the
// radius, where the reflection repeats.
func (c *checker) gaussianBlur(t *testing.T) {
	for _, s := range []struct {
		n, c, h, w int
		sigma      float64
		r          int
	}{
		{1, 1, 1, 1, 1, 4},
		{1, 2, 3, 5, 1, 4},
		{2, 1, 2, 2, 0.5, 2},
		{1, 3, 40, 37, 4, tensor.GaussianRadius(4)},
		{1, 1, 9, 6, 4, tensor.GaussianRadius(4)},
		{1, 2, 7, 1, 1.5, 6},
		{1, 1, 5, 5, 1, 0},
		{2, 3, 6, 11, 0.8, 3},
	} {
		name := mapName(s.n, s.c, s.h, s.w) + fmt.Sprintf(",sigma=%g,r=%d", s.sigma, s.r)
		run(t, name, func(t *testing.T) {
			x := randn(c.rng(t), s.n*s.c*s.h*s.w)
			shape := []int{s.n, s.c, s.h, s.w}
			o := c.out(shape...)
			c.d.GaussianBlur(o.T, c.in(x, shape...), s.sigma, s.r)
			want, sc := refGaussianBlur(s.n*s.c, s.h, s.w, f64(x), s.sigma, s.r)
			c.near(t, "GaussianBlur", shape, o.get(t), want, sc)
		})
	}
}
