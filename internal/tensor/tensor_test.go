package tensor_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// bounce returns the first count indices of the walk 0, 1, ..., n-1,
// n-2, ..., 0, 1, ...: reflection without repeating the edge, built by
// walking rather than by Reflect's modular arithmetic.
func bounce(n, count int) []int {
	seq := make([]int, count)
	pos, dir := 0, 1
	for k := range seq {
		seq[k] = pos
		if n == 1 {
			continue
		}
		if pos+dir < 0 || pos+dir >= n {
			dir = -dir
		}
		pos += dir
	}
	return seq
}

func TestReflect(t *testing.T) {
	// Spelled-out sequences for i = 0..8, which the walk must also give.
	for n, want := range map[int][]int{
		1: {0, 0, 0, 0, 0, 0, 0, 0, 0},
		2: {0, 1, 0, 1, 0, 1, 0, 1, 0},
		3: {0, 1, 2, 1, 0, 1, 2, 1, 0},
		5: {0, 1, 2, 3, 4, 3, 2, 1, 0},
	} {
		require.Equal(t, want, bounce(n, len(want)), "walk for n=%d", n)
	}
	for _, n := range []int{1, 2, 3, 5} {
		seq := bounce(n, 21)
		for i := -20; i <= 20; i++ {
			// Mirror symmetry about 0: index -i reflects to index i.
			want := seq[max(i, -i)]
			assert.Equal(t, want, tensor.Reflect(i, n), "Reflect(%d, %d)", i, n)
		}
	}
}

func TestGaussianKernel(t *testing.T) {
	assert.Equal(t, 16, tensor.GaussianRadius(4), "radius of sigma 4")
	assert.Len(t, tensor.GaussianKernel(4, tensor.GaussianRadius(4)), 33, "the method's kernel size for sigma 4")
	assert.Equal(t, 4, tensor.GaussianRadius(1))
	assert.Equal(t, 2, tensor.GaussianRadius(0.5))
	assert.Equal(t, 1, tensor.GaussianRadius(0.2)) // floor(0.8 + 0.5)
	assert.Equal(t, []float64{1}, tensor.GaussianKernel(2, 0))

	for _, c := range []struct {
		sigma float64
		r     int
	}{{0.5, 2}, {1, 4}, {4, 16}, {2.5, 3}} {
		k := tensor.GaussianKernel(c.sigma, c.r)
		require.Len(t, k, 2*c.r+1)
		var sum float64
		for i, v := range k {
			sum += v
			assert.Equal(t, v, k[len(k)-1-i], "symmetric, sigma %g tap %d", c.sigma, i)
			if i > 0 {
				// Consecutive taps t-1, t have the ratio exp(-(2t-1)/(2 sigma^2)).
				tt := float64(i - c.r)
				want := math.Exp(-(tt*tt - (tt-1)*(tt-1)) / (2 * c.sigma * c.sigma))
				assert.InDelta(t, want, v/k[i-1], 1e-12, "ratio of taps %d and %d, sigma %g", i, i-1, c.sigma)
			}
		}
		assert.InDelta(t, 1, sum, 1e-12, "sum, sigma %g", c.sigma)
	}
	assert.Panics(t, func() { tensor.GaussianKernel(0, 2) }, "sigma 0")
	assert.Panics(t, func() { tensor.GaussianKernel(-1, 2) }, "negative sigma")
	assert.Panics(t, func() { tensor.GaussianKernel(1, -1) }, "negative radius")
}

func TestConv2DParamsOut(t *testing.T) {
	for _, c := range []struct {
		p              tensor.Conv2DParams
		h, w, kh, kw   int
		wantOH, wantOW int
	}{
		{tensor.Conv2DParams{StrideH: 1, StrideW: 1}, 5, 5, 3, 3, 3, 3},
		{tensor.Conv2DParams{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}, 7, 5, 3, 3, 4, 3},
		{tensor.Conv2DParams{StrideH: 1, StrideW: 1}, 1, 1, 1, 1, 1, 1},
		{tensor.Conv2DParams{StrideH: 2, StrideW: 2}, 8, 7, 3, 3, 3, 3},
		{tensor.Conv2DParams{StrideH: 1, StrideW: 2, PadH: 0, PadW: 1}, 5, 9, 3, 1, 3, 6},
		{tensor.Conv2DParams{StrideH: 1, StrideW: 1, PadH: 3, PadW: 3}, 9, 8, 7, 7, 9, 8},
		{tensor.Conv2DParams{StrideH: 2, StrideW: 2, PadH: 3, PadW: 3}, 224, 224, 7, 7, 112, 112},
	} {
		oh, ow := c.p.Out(c.h, c.w, c.kh, c.kw)
		assert.Equal(t, [2]int{c.wantOH, c.wantOW}, [2]int{oh, ow}, "%+v over %dx%d, kernel %dx%d", c.p, c.h, c.w, c.kh, c.kw)
	}
}

func TestPool2DParamsOut(t *testing.T) {
	for _, c := range []struct {
		p              tensor.Pool2DParams
		h, w           int
		wantOH, wantOW int
	}{
		{tensor.Pool2DParams{Kernel: 3, Stride: 1, Pad: 1}, 28, 28, 28, 28},
		{tensor.Pool2DParams{Kernel: 3, Stride: 2, Pad: 1}, 7, 5, 4, 3},
		{tensor.Pool2DParams{Kernel: 2, Stride: 2}, 7, 6, 3, 3},
		{tensor.Pool2DParams{Kernel: 1, Stride: 1}, 1, 1, 1, 1},
		{tensor.Pool2DParams{Kernel: 3, Stride: 2, Pad: 1}, 112, 112, 56, 56},
	} {
		oh, ow := c.p.Out(c.h, c.w)
		assert.Equal(t, [2]int{c.wantOH, c.wantOW}, [2]int{oh, ow}, "%+v over %dx%d", c.p, c.h, c.w)
	}
}

func TestTensorConstructors(t *testing.T) {
	x := tensor.New(2, 3, 4)
	assert.Equal(t, []int{2, 3, 4}, x.Shape())
	assert.Equal(t, 3, x.Rank())
	assert.Equal(t, 3, x.Dim(1))
	assert.Equal(t, 24, x.Len())
	assert.Equal(t, tensor.Float32, x.DType())
	assert.True(t, x.IsHost())
	assert.Equal(t, make([]float32, 24), x.Float32s())
	assert.Equal(t, "Tensor(float32[2 3 4])", x.String())

	i := tensor.NewInt32(5)
	assert.Equal(t, tensor.Int32, i.DType())
	assert.Equal(t, make([]int32, 5), i.Int32s())
	assert.Equal(t, "int32", tensor.Int32.String())
	assert.Equal(t, "DType(9)", tensor.DType(9).String())

	// The shape is copied, the data is not.
	shape := []int{2, 2}
	data := []float32{1, 2, 3, 4}
	f := tensor.FromFloat32s(data, shape...)
	shape[0] = 7
	assert.Equal(t, []int{2, 2}, f.Shape())
	data[3] = 9
	assert.Equal(t, float32(9), f.Float32s()[3])

	s := tensor.New() // a scalar: rank 0, one element
	assert.Equal(t, 1, s.Len())
	assert.Equal(t, 0, s.Rank())
	assert.Equal(t, 0, tensor.New(3, 0).Len())

	assert.Panics(t, func() { tensor.FromFloat32s(make([]float32, 5), 2, 3) }, "5 elements for 2x3")
	assert.Panics(t, func() { tensor.FromInt32s(make([]int32, 7), 2, 3) }, "7 elements for 2x3")
	assert.Panics(t, func() { tensor.New(2, -1) }, "negative dimension")
	assert.Panics(t, func() { tensor.FromStorage(x.Storage(), tensor.Float32, 5) }, "storage of 24 for 5")
	assert.Panics(t, func() { x.Int32s() }, "Int32s of a float32 tensor")
	assert.Panics(t, func() { i.Float32s() }, "Float32s of an int32 tensor")

	y := tensor.FromStorage(x.Storage(), tensor.Float32, 4, 6)
	y.Float32s()[5] = 3
	assert.Equal(t, float32(3), x.Float32s()[5], "FromStorage shares memory")
	assert.True(t, tensor.SameShape(x, tensor.New(2, 3, 4)))
	assert.False(t, tensor.SameShape(x, y))
	assert.False(t, tensor.SameShape(x, tensor.New(2, 3)))
}

func TestTensorViews(t *testing.T) {
	data := make([]float32, 24)
	for i := range data {
		data[i] = float32(i)
	}
	x := tensor.FromFloat32s(data, 2, 3, 4)

	r := x.Reshape(6, 4)
	assert.Equal(t, []int{6, 4}, r.Shape())
	r.Float32s()[7] = -1
	assert.Equal(t, float32(-1), x.Float32s()[7], "Reshape shares memory")
	assert.Panics(t, func() { x.Reshape(5, 5) }, "Reshape to another size")
	assert.Equal(t, []int{24}, x.Reshape(24).Shape())

	f := x.Flat(5, 9)
	assert.Equal(t, []int{4}, f.Shape())
	assert.Equal(t, []float32{5, 6, -1, 8}, f.Float32s())
	f.Float32s()[0] = -5
	assert.Equal(t, float32(-5), x.Float32s()[5], "Flat shares memory")
	// A view's capacity ends at the view: appending to its elements must
	// not overwrite the element after it.
	_ = append(f.Float32s(), 99)
	assert.Equal(t, float32(9), x.Float32s()[9], "append to a Flat view")
	assert.Equal(t, 0, x.Flat(3, 3).Len())
	assert.Equal(t, []int{2, 12}, x.Flat(0, 24).Reshape(2, 12).Shape())
	for _, b := range [][2]int{{-1, 2}, {3, 2}, {0, 25}} {
		assert.Panics(t, func() { x.Flat(b[0], b[1]) }, "Flat(%d, %d)", b[0], b[1])
	}

	b := x.Batch(1, 2)
	assert.Equal(t, []int{1, 3, 4}, b.Shape())
	assert.Equal(t, float32(12), b.Float32s()[0])
	b.Float32s()[1] = -13
	assert.Equal(t, float32(-13), x.Float32s()[13], "Batch shares memory")
	_ = append(b.Float32s(), 99)
	assert.Len(t, x.Float32s(), 24)
	assert.Equal(t, []int{0, 3, 4}, x.Batch(2, 2).Shape())
	assert.Equal(t, 24, x.Batch(0, 2).Len())
	for _, bb := range [][2]int{{-1, 1}, {2, 1}, {0, 3}} {
		assert.Panics(t, func() { x.Batch(bb[0], bb[1]) }, "Batch(%d, %d)", bb[0], bb[1])
	}
	assert.Panics(t, func() { tensor.New().Batch(0, 1) }, "Batch of a rank-0 tensor")

	// Batch of an int32 tensor keeps the dtype.
	iv := tensor.NewInt32(4, 2).Batch(1, 3)
	assert.Equal(t, tensor.Int32, iv.DType())
	assert.Len(t, iv.Int32s(), 4)
	assert.Equal(t, []int{2, 2}, iv.Shape())
}

// TestChannelsLastFirst checks both layout turns against the index formula
// on shapes that fill the transpose's tiles and shapes that leave ragged
// edges on either side, and that one undoes the other.
func TestChannelsLastFirst(t *testing.T) {
	cpu := tensor.CPU{}
	for _, s := range [][3]int{{2, 37, 45}, {1, 64, 32}, {3, 1, 5}, {1, 33, 1}, {2, 96, 70}} {
		n, c, hw := s[0], s[1], s[2]
		x := tensor.New(n, c, hw, 1)
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(i)
		}
		rows := tensor.New(n*hw, c)
		cpu.ChannelsLast(rows, x)
		for i := range n {
			for ch := range c {
				for p := range hw {
					require.Equal(t, x.Float32s()[(i*c+ch)*hw+p], rows.Float32s()[(i*hw+p)*c+ch], "%v: image %d channel %d location %d", s, i, ch, p)
				}
			}
		}
		back := tensor.New(n, c, hw, 1)
		cpu.ChannelsFirst(back, rows)
		require.Equal(t, x.Float32s(), back.Float32s(), "%v", s)
	}
}

// TestAvgPoolStride1 checks AvgPool2D at stride 1 (the adapter's 3 x 3
// window padded by 1 among them) against the two-pass sums it promises,
// window rows left to right then row sums top to bottom, value for value,
// and AvgPool2DBackward against the gradient's definition (each output's
// gradient spread evenly over its window), on planes down to 2 x 2.
func TestAvgPoolStride1(t *testing.T) {
	cpu := tensor.CPU{}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][2]int{{2, 2}, {2, 7}, {5, 3}, {28, 28}, {14, 9}} {
		for _, p := range []tensor.Pool2DParams{{Kernel: 3, Stride: 1, Pad: 1}, {Kernel: 5, Stride: 1, Pad: 2}, {Kernel: 3, Stride: 1, Pad: 0}} {
			h, w := s[0], s[1]
			oh, ow := h+2*p.Pad-p.Kernel+1, w+2*p.Pad-p.Kernel+1
			if oh < 1 || ow < 1 {
				continue
			}
			x := tensor.New(2, 3, h, w)
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(rng.NormFloat64())
			}
			y := tensor.New(2, 3, oh, ow)
			cpu.AvgPool2D(y, x, p)
			dy := tensor.New(2, 3, oh, ow)
			for i := range dy.Float32s() {
				dy.Float32s()[i] = float32(rng.NormFloat64())
			}
			dx := tensor.New(2, 3, h, w)
			cpu.AvgPool2DBackward(dx, dy, p)
			inv := 1 / float32(p.Kernel*p.Kernel)
			want := make([]float64, h*w)
			for pl := range 6 {
				xs, ys := x.Float32s()[pl*h*w:], y.Float32s()[pl*oh*ow:]
				clear(want)
				for oi := range oh {
					for oj := range ow {
						var col float32
						for i := max(oi-p.Pad, 0); i < min(oi-p.Pad+p.Kernel, h); i++ {
							var row float32
							for j := max(oj-p.Pad, 0); j < min(oj-p.Pad+p.Kernel, w); j++ {
								row += xs[i*w+j]
								want[i*w+j] += float64(dy.Float32s()[pl*oh*ow+oi*ow+oj]) / float64(p.Kernel*p.Kernel)
							}
							col += row
						}
						require.Equal(t, col*inv, ys[oi*ow+oj], "%v %+v: plane %d output (%d, %d)", s, p, pl, oi, oj)
					}
				}
				for i, v := range want {
					require.InDelta(t, v, dx.Float32s()[pl*h*w+i], 1e-6, "%v %+v: plane %d gradient %d", s, p, pl, i)
				}
			}
		}
	}
}
