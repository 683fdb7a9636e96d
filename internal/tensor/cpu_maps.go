package tensor

import (
	"fmt"
	"math"
)

// ReLU sets y = max(x, 0).
func (CPU) ReLU(y, x *Tensor) {
	check.ExpectSize("ReLU", "x", x, y.Len())
	ys, xs := y.Float32s(), x.Float32s()
	parallelFor(len(ys), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ys[i] = max(xs[i], 0)
		}
	})
}

// ReLUBackward sets dx = dy where y > 0, else 0.
func (CPU) ReLUBackward(dx, dy, y *Tensor) {
	check.ExpectSize("ReLUBackward", "dy", dy, dx.Len())
	check.ExpectSize("ReLUBackward", "y", y, dx.Len())
	dxs, dys, ys := dx.Float32s(), dy.Float32s(), y.Float32s()
	parallelFor(len(dxs), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if ys[i] > 0 {
				dxs[i] = dys[i]
			} else {
				dxs[i] = 0
			}
		}
	})
}

// ZeroPad2D copies x into y at (top, left) with zeros around it.
func (CPU) ZeroPad2D(y, x *Tensor, top, left int) {
	nc, h, w, oh, ow := check.Planes("ZeroPad2D", y, x)
	if top < 0 || left < 0 || top+h > oh || left+w > ow {
		panic(fmt.Sprintf("anomnet/tensor: ZeroPad2D: x %v at (%d, %d) does not fit y %v", x, top, left, y))
	}
	xs, ys := x.Float32s(), y.Float32s()
	parallelFor(nc, oh*ow, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dst := ys[pl*oh*ow : (pl+1)*oh*ow]
			clear(dst)
			for i := range h {
				copy(dst[(top+i)*ow+left:], xs[(pl*h+i)*w:(pl*h+i+1)*w])
			}
		}
	})
}

// MaxPool2D takes the maximum over each window, padding counting as -Inf.
func (CPU) MaxPool2D(y, x *Tensor, p Pool2DParams) {
	nc, h, w, oh, ow := check.Planes("MaxPool2D", y, x)
	check.Pool("MaxPool2D", p, h, w, oh, ow)
	xs, ys := x.Float32s(), y.Float32s()
	parallelFor(nc, oh*ow*p.Kernel*p.Kernel, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			src, dst := xs[pl*h*w:(pl+1)*h*w], ys[pl*oh*ow:(pl+1)*oh*ow]
			for oi := range oh {
				i0 := oi*p.Stride - p.Pad
				a, b := 0, 0 // output columns done by the fast path
				if p.Kernel == 3 && i0 >= 0 && i0+3 <= h {
					a, b = maxPool3Row(dst[oi*ow:(oi+1)*ow], src[i0*w:(i0+3)*w], w, p.Stride, p.Pad)
				}
				for oj := range ow {
					if oj >= a && oj < b {
						continue
					}
					j0 := oj*p.Stride - p.Pad
					m := float32(math.Inf(-1))
					for i := max(i0, 0); i < min(i0+p.Kernel, h); i++ {
						for j := max(j0, 0); j < min(j0+p.Kernel, w); j++ {
							m = maxNaN(m, src[i*w+j])
						}
					}
					dst[oi*ow+oj] = m
				}
			}
		}
	})
}

// maxPool3Row computes one row of a 3x3 max pooling whose three window
// rows (rows, each w wide) lie inside the input, for the output columns
// [a, b) whose windows lie inside too; the caller does the others. NaN
// propagates as in MaxPool2D's general loop.
func maxPool3Row(dst, rows []float32, w, stride, pad int) (a, b int) {
	a = (pad + stride - 1) / stride // the first oj with oj*stride - pad >= 0
	r0, r1, r2 := rows[:w], rows[w:2*w], rows[2*w:3*w]
	b = a
	for ; b < len(dst); b++ {
		j0 := b*stride - pad
		if j0+3 > w {
			break
		}
		c0, c1, c2 := r0[j0:j0+3:j0+3], r1[j0:j0+3:j0+3], r2[j0:j0+3:j0+3]
		m := c0[0]
		m = maxNaN(m, c0[1])
		m = maxNaN(m, c0[2])
		m = maxNaN(m, c1[0])
		m = maxNaN(m, c1[1])
		m = maxNaN(m, c1[2])
		m = maxNaN(m, c2[0])
		m = maxNaN(m, c2[1])
		m = maxNaN(m, c2[2])
		dst[b] = m
	}
	return a, b
}

// maxNaN is max(m, v) where a NaN v wins and a NaN m stays: NaN
// propagates through a max pooling, as in PyTorch.
func maxNaN(m, v float32) float32 {
	if v > m || v != v {
		return v
	}
	return m
}

// AvgPool2D averages each window, dividing by the full window size.
func (CPU) AvgPool2D(y, x *Tensor, p Pool2DParams) {
	nc, h, w, oh, ow := check.Planes("AvgPool2D", y, x)
	check.Pool("AvgPool2D", p, h, w, oh, ow)
	xs, ys := x.Float32s(), y.Float32s()
	inv := 1 / float32(p.Kernel*p.Kernel)
	if p.Stride == 1 {
		avgPoolStride1(ys, xs, nc, h, w, oh, ow, p.Kernel, p.Pad, inv)
		return
	}
	parallelFor(nc, oh*ow*p.Kernel*p.Kernel, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			src, dst := xs[pl*h*w:(pl+1)*h*w], ys[pl*oh*ow:(pl+1)*oh*ow]
			for oi := range oh {
				i0 := oi*p.Stride - p.Pad
				for oj := range ow {
					j0 := oj*p.Stride - p.Pad
					var s float32
					for i := max(i0, 0); i < min(i0+p.Kernel, h); i++ {
						for _, v := range src[i*w+max(j0, 0) : i*w+min(j0+p.Kernel, w)] {
							s += v
						}
					}
					dst[oi*ow+oj] = s * inv
				}
			}
		}
	})
}

// avgPoolStride1 is AvgPool2D with stride 1 as two passes of window sums:
// along each row into a scratch plane (h x ow), then down the columns. Each
// output costs 2k additions instead of k*k, and the inner loops run over
// whole rows.
func avgPoolStride1(ys, xs []float32, nc, h, w, oh, ow, k, pad int, inv float32) {
	if k == 3 && pad == 1 && oh == h && ow == w && h > 1 && w > 1 {
		avgPool3x3(ys, xs, nc, h, w, inv)
		return
	}
	parallelFor(nc, oh*ow*2*k, func(lo, hi int) {
		rows := make([]float32, h*ow)
		for pl := lo; pl < hi; pl++ {
			src, dst := xs[pl*h*w:(pl+1)*h*w], ys[pl*oh*ow:(pl+1)*oh*ow]
			for i := range h {
				in, out := src[i*w:(i+1)*w], rows[i*ow:(i+1)*ow]
				for oj := range out {
					var s float32
					for _, v := range in[max(oj-pad, 0):min(oj-pad+k, w)] {
						s += v
					}
					out[oj] = s
				}
			}
			for oi := range oh {
				out := dst[oi*ow : (oi+1)*ow]
				clear(out)
				for i := max(oi-pad, 0); i < min(oi-pad+k, h); i++ {
					for oj, v := range rows[i*ow : (i+1)*ow] {
						out[oj] += v
					}
				}
				for oj := range out {
					out[oj] *= inv
				}
			}
		}
	})
}

// avgPool3x3 is avgPoolStride1 for the 3 x 3 window padded by 1 on planes
// of at least 2 x 2, the adapter's aggregation: the same sums in the same
// order (the window's values left to right, then the row sums top to
// bottom, then the scale), bit for bit, with the window's edges taken out
// of the inner loops.
func avgPool3x3(ys, xs []float32, nc, h, w int, inv float32) {
	parallelFor(nc, h*w*6, func(lo, hi int) {
		rows := make([]float32, h*w)
		for pl := lo; pl < hi; pl++ {
			src, dst := xs[pl*h*w:(pl+1)*h*w], ys[pl*h*w:(pl+1)*h*w]
			for i := range h {
				in, out := src[i*w:(i+1)*w], rows[i*w:(i+1)*w]
				out[0] = in[0] + in[1]
				for j := 1; j < w-1; j++ {
					out[j] = in[j-1] + in[j] + in[j+1]
				}
				out[w-1] = in[w-2] + in[w-1]
			}
			sum2 := func(out, a, b []float32) {
				for j := range out {
					out[j] = (a[j] + b[j]) * inv
				}
			}
			sum2(dst[:w], rows[:w], rows[w:2*w])
			for i := 1; i < h-1; i++ {
				out, a, b, c := dst[i*w:(i+1)*w], rows[(i-1)*w:i*w], rows[i*w:(i+1)*w], rows[(i+1)*w:(i+2)*w]
				for j := range out {
					out[j] = (a[j] + b[j] + c[j]) * inv
				}
			}
			sum2(dst[(h-1)*w:], rows[(h-2)*w:(h-1)*w], rows[(h-1)*w:])
		}
	})
}

// AvgPool2DBackward spreads each output gradient evenly over its window.
func (CPU) AvgPool2DBackward(dx, dy *Tensor, p Pool2DParams) {
	nc, h, w, oh, ow := check.Planes("AvgPool2DBackward", dy, dx)
	check.Pool("AvgPool2DBackward", p, h, w, oh, ow)
	dxs, dys := dx.Float32s(), dy.Float32s()
	inv := 1 / float32(p.Kernel*p.Kernel)
	if p.Stride == 1 && p.Kernel == 2*p.Pad+1 && oh == h && ow == w {
		// A centred window at stride 1 keeps the size: the gradient of
		// each input is the mean over the window centred on it, clipped
		// at the edges the same way, the forward pass on dy.
		avgPoolStride1(dxs, dys, nc, h, w, oh, ow, p.Kernel, p.Pad, inv)
		return
	}
	parallelFor(nc, oh*ow*p.Kernel*p.Kernel, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dst, src := dxs[pl*h*w:(pl+1)*h*w], dys[pl*oh*ow:(pl+1)*oh*ow]
			clear(dst)
			for oi := range oh {
				i0 := oi*p.Stride - p.Pad
				for oj := range ow {
					j0 := oj*p.Stride - p.Pad
					g := src[oi*ow+oj] * inv
					for i := max(i0, 0); i < min(i0+p.Kernel, h); i++ {
						row := dst[i*w+max(j0, 0) : i*w+min(j0+p.Kernel, w)]
						for j := range row {
							row[j] += g
						}
					}
				}
			}
		}
	})
}

// adaptiveWindows returns PyTorch's adaptive pooling windows [lo, hi) of an
// n-long axis pooled to m outputs.
func adaptiveWindows(n, m int) (lo, hi []int) {
	lo, hi = make([]int, m), make([]int, m)
	for i := range m {
		lo[i] = i * n / m
		hi[i] = ((i+1)*n + m - 1) / m
	}
	return lo, hi
}

// adaptive checks an adaptive pooling of x (N x C x H x W) to y and
// returns the planes, their sizes and the row and column windows.
func adaptive(op string, y, x *Tensor) (nc, h, w, oh, ow int, r0, r1, c0, c1 []int) {
	nc, h, w, oh, ow = check.Adaptive(op, y, x)
	r0, r1 = adaptiveWindows(h, oh)
	c0, c1 = adaptiveWindows(w, ow)
	return
}

// AdaptiveAvgPool2D averages over PyTorch's adaptive windows.
func (CPU) AdaptiveAvgPool2D(y, x *Tensor) {
	nc, h, w, oh, ow, r0, r1, c0, c1 := adaptive("AdaptiveAvgPool2D", y, x)
	xs, ys := x.Float32s(), y.Float32s()
	parallelFor(nc, h*w+oh*ow, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			src, dst := xs[pl*h*w:(pl+1)*h*w], ys[pl*oh*ow:(pl+1)*oh*ow]
			for oi := range oh {
				for oj := range ow {
					var s float32
					for i := r0[oi]; i < r1[oi]; i++ {
						for _, v := range src[i*w+c0[oj] : i*w+c1[oj]] {
							s += v
						}
					}
					dst[oi*ow+oj] = s / float32((r1[oi]-r0[oi])*(c1[oj]-c0[oj]))
				}
			}
		}
	})
}

// AdaptiveAvgPool2DBackward spreads each output gradient over its window.
func (CPU) AdaptiveAvgPool2DBackward(dx, dy *Tensor) {
	nc, h, w, oh, ow, r0, r1, c0, c1 := adaptive("AdaptiveAvgPool2DBackward", dy, dx)
	dxs, dys := dx.Float32s(), dy.Float32s()
	parallelFor(nc, h*w+oh*ow, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dst, src := dxs[pl*h*w:(pl+1)*h*w], dys[pl*oh*ow:(pl+1)*oh*ow]
			clear(dst)
			for oi := range oh {
				for oj := range ow {
					g := src[oi*ow+oj] / float32((r1[oi]-r0[oi])*(c1[oj]-c0[oj]))
					for i := r0[oi]; i < r1[oi]; i++ {
						row := dst[i*w+c0[oj] : i*w+c1[oj]]
						for j := range row {
							row[j] += g
						}
					}
				}
			}
		}
	})
}

// linearTaps are the two source indices and weights of each output of a
// 1-D linear resampling with PyTorch's align_corners=False rule.
type linearTaps struct {
	i0, i1 []int
	w0, w1 []float32
}

func bilinearTaps(in, out int) linearTaps {
	t := linearTaps{make([]int, out), make([]int, out), make([]float32, out), make([]float32, out)}
	scale := float64(in) / float64(out)
	for o := range out {
		src := max(scale*(float64(o)+0.5)-0.5, 0)
		i0 := min(int(src), in-1)
		lam := src - float64(i0)
		t.i0[o], t.i1[o] = i0, min(i0+1, in-1)
		t.w0[o], t.w1[o] = float32(1-lam), float32(lam)
	}
	return t
}

// bilinear checks a bilinear resize of x (N x C x H x W) to y and returns
// the planes, their sizes and the row and column taps.
func bilinear(op string, y, x *Tensor) (nc, h, w, oh, ow int, rt, ct linearTaps) {
	nc, h, w, oh, ow = check.Bilinear(op, y, x)
	return nc, h, w, oh, ow, bilinearTaps(h, oh), bilinearTaps(w, ow)
}

// ResizeBilinear resamples each plane with PyTorch's bilinear rule.
func (CPU) ResizeBilinear(y, x *Tensor) {
	nc, h, w, oh, ow, rt, ct := bilinear("ResizeBilinear", y, x)
	xs, ys := x.Float32s(), y.Float32s()
	parallelFor(nc, 8*oh*ow, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			src, dst := xs[pl*h*w:(pl+1)*h*w], ys[pl*oh*ow:(pl+1)*oh*ow]
			for oi := range oh {
				a, b := src[rt.i0[oi]*w:][:w], src[rt.i1[oi]*w:][:w]
				wa, wb := rt.w0[oi], rt.w1[oi]
				row := dst[oi*ow : (oi+1)*ow]
				for oj := range row {
					j0, j1 := ct.i0[oj], ct.i1[oj]
					row[oj] = wa*(ct.w0[oj]*a[j0]+ct.w1[oj]*a[j1]) + wb*(ct.w0[oj]*b[j0]+ct.w1[oj]*b[j1])
				}
			}
		}
	})
}

// ResizeBilinearBackward scatters each output gradient to its four taps.
func (CPU) ResizeBilinearBackward(dx, dy *Tensor) {
	nc, h, w, oh, ow, rt, ct := bilinear("ResizeBilinearBackward", dy, dx)
	dxs, dys := dx.Float32s(), dy.Float32s()
	parallelFor(nc, 8*oh*ow, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dst, src := dxs[pl*h*w:(pl+1)*h*w], dys[pl*oh*ow:(pl+1)*oh*ow]
			clear(dst)
			for oi := range oh {
				a, b := dst[rt.i0[oi]*w:][:w], dst[rt.i1[oi]*w:][:w]
				wa, wb := rt.w0[oi], rt.w1[oi]
				for oj, g := range src[oi*ow : (oi+1)*ow] {
					j0, j1 := ct.i0[oj], ct.i1[oj]
					ga, gb := wa*g, wb*g
					a[j0] += ga * ct.w0[oj]
					a[j1] += ga * ct.w1[oj]
					b[j0] += gb * ct.w0[oj]
					b[j1] += gb * ct.w1[oj]
				}
			}
		}
	})
}

// GaussianBlur blurs each plane with a separable Gaussian, rows then
// columns, reflecting at the borders.
func (CPU) GaussianBlur(y, x *Tensor, sigma float64, r int) {
	nc, h, w, oh, ow := check.Planes("GaussianBlur", y, x)
	if oh != h || ow != w {
		panic(fmt.Sprintf("anomnet/tensor: GaussianBlur: y %v, want x's shape %v", y, x))
	}
	k64 := GaussianKernel(sigma, r)
	k := make([]float32, len(k64))
	for i, v := range k64 {
		k[i] = float32(v)
	}
	// Reflected source indices for every tap of every output position.
	colIdx, rowIdx := reflectTable(w, r), reflectTable(h, r)
	xs, ys := x.Float32s(), y.Float32s()
	parallelFor(nc, 2*h*w*len(k), func(lo, hi int) {
		tmp := make([]float32, h*w)
		for pl := lo; pl < hi; pl++ {
			src, dst := xs[pl*h*w:(pl+1)*h*w], ys[pl*h*w:(pl+1)*h*w]
			for i := range h {
				in, out := src[i*w:(i+1)*w], tmp[i*w:(i+1)*w]
				for j := range out {
					var s float32
					for t, kv := range k {
						s += kv * in[colIdx[j*len(k)+t]]
					}
					out[j] = s
				}
			}
			for i := range h {
				out := dst[i*w : (i+1)*w]
				clear(out)
				for t, kv := range k {
					in := tmp[rowIdx[i*len(k)+t]*w:][:w]
					for j := range out {
						out[j] += kv * in[j]
					}
				}
			}
		}
	})
}

func reflectTable(n, r int) []int {
	idx := make([]int, n*(2*r+1))
	for i := range n {
		for t := -r; t <= r; t++ {
			idx[i*(2*r+1)+t+r] = Reflect(i+t, n)
		}
	}
	return idx
}

// channelCopy copies, for every image, c channels of hw elements from src
// (sc channels per image, starting at channel so) to dst (dc channels per
// image, starting at do).
func channelCopy(dst []float32, dc, do int, src []float32, sc, so, c, n, hw int) {
	parallelFor(n, c*hw, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(dst[(i*dc+do)*hw:(i*dc+do+c)*hw], src[(i*sc+so)*hw:(i*sc+so+c)*hw])
		}
	})
}

// Concat stacks xs along the channel axis into y.
func (CPU) Concat(y *Tensor, xs ...*Tensor) {
	ys := check.ExpectRank("Concat", "y", y, 4)
	check.Concat(y, ys, xs, func(i, off, c int) {
		channelCopy(y.Float32s(), ys[1], off, xs[i].Float32s(), c, 0, c, ys[0], ys[2]*ys[3])
	})
}

// Split copies consecutive channel ranges of x into ys.
func (CPU) Split(ys []*Tensor, skip []int, x *Tensor) {
	xs := check.ExpectRank("Split", "x", x, 4)
	check.Split(x, xs, ys, skip, func(i, off, c int) {
		channelCopy(ys[i].Float32s(), c, 0, x.Float32s(), xs[1], off, c, xs[0], xs[2]*xs[3])
	})
}

// coord is CoordConv's coordinate of index i on an axis of n elements.
func coord(i, n int) float32 {
	if n == 1 {
		return 0
	}
	return float32(-1 + 2*float64(i)/float64(n-1))
}

// AppendCoords writes x's channels and then the x and y coordinate channels.
func (CPU) AppendCoords(y, x *Tensor) {
	xs := check.ExpectRank("AppendCoords", "x", x, 4)
	n, c, h, w := xs[0], xs[1], xs[2], xs[3]
	check.Expect("AppendCoords", "y", y, Float32, n, c+2, h, w)
	ys := y.Float32s()
	channelCopy(ys, c+2, 0, x.Float32s(), c, 0, c, n, h*w)
	for i := range n {
		cx := ys[(i*(c+2)+c)*h*w:][:h*w]
		cy := ys[(i*(c+2)+c+1)*h*w:][:h*w]
		for r := range h {
			for col := range w {
				cx[r*w+col] = coord(col, w)
				cy[r*w+col] = coord(r, h)
			}
		}
	}
}

// transposeTile is the side of the square tiles ChannelsLast and
// ChannelsFirst transpose, small enough that both tiles stay in L1.
const transposeTile = 32

// transpose writes the r x c matrix src into dst as c x r. Each tile goes
// through a small buffer: written to dst's rows one after the other, not
// one value to each of 32 rows in turn, whose addresses, a row's length
// apart, would share few of L1's sets (6 KB apart, the 32 rows of a tile
// fell in 2 of its 64 sets; 2.6 times slower at 1536 x 784).
func transpose(dst, src []float32, r, c int) {
	var buf [transposeTile * transposeTile]float32
	for i0 := 0; i0 < r; i0 += transposeTile {
		ti := min(transposeTile, r-i0)
		for j0 := 0; j0 < c; j0 += transposeTile {
			tj := min(transposeTile, c-j0)
			for i := range ti {
				for j, v := range src[(i0+i)*c+j0 : (i0+i)*c+j0+tj] {
					buf[j*transposeTile+i] = v
				}
			}
			for j := range tj {
				copy(dst[(j0+j)*r+i0:(j0+j)*r+i0+ti], buf[j*transposeTile:j*transposeTile+ti])
			}
		}
	}
}

// ChannelsLast turns each image's C x (H*W) map into (H*W) x C rows.
func (CPU) ChannelsLast(y, x *Tensor) {
	n, c, hw := check.Channels("ChannelsLast", y, x)
	src, dst := x.Float32s(), y.Float32s()
	parallelFor(n, c*hw, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			transpose(dst[i*c*hw:(i+1)*c*hw], src[i*c*hw:(i+1)*c*hw], c, hw)
		}
	})
}

// ChannelsFirst turns (H*W) x C rows per image back into C x (H*W) maps.
func (CPU) ChannelsFirst(y, x *Tensor) {
	n, c, hw := check.Channels("ChannelsFirst", y, x)
	src, dst := x.Float32s(), y.Float32s()
	parallelFor(n, c*hw, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			transpose(dst[i*c*hw:(i+1)*c*hw], src[i*c*hw:(i+1)*c*hw], hw, c)
		}
	})
}
