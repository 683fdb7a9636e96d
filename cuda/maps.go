//go:build cuda

package cuda

/*
#include "kernels/anomnet_cuda.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/org/anomnet/internal/tensor"
)

// The ops on NCHW feature maps (kernels/maps.cu, and the channel copies of
// kernels/runtime.cu).

// planes runs an op over the planes of NCHW maps: out from in, which are
// y and x forward and dx and dy backward. size checks the maps (y and x,
// whatever the direction) and returns the plane count and the sizes of x's
// and y's planes; f queues the kernel with out's and in's memory.
func (d *Device) planes(op string, out, in *tensor.Tensor, backward bool,
	size func(op string, y, x *tensor.Tensor) (nc, h, w, oh, ow int),
	f func(k kernel, out, in C.anc_dptr, nc C.longlong, h, w, oh, ow C.int) C.int) {
	d.launch(op, func(k kernel) {
		outName, inName, y, x := "y", "x", out, in
		if backward {
			outName, inName, y, x = "dx", "dy", in, out
		}
		nc, h, w, oh, ow := size(op, y, x)
		po, pi := k.mem(outName, out), k.mem(inName, in)
		k.run(func() C.int { return f(k, po, pi, cll(nc), k.ci(h), k.ci(w), k.ci(oh), k.ci(ow)) })
	})
}

// ZeroPad2D copies x into y at (top, left) with zeros around it.
func (d *Device) ZeroPad2D(y, x *tensor.Tensor, top, left int) {
	fits := func(op string, y, x *tensor.Tensor) (nc, h, w, oh, ow int) {
		nc, h, w, oh, ow = check.Planes(op, y, x)
		if top < 0 || left < 0 || top+h > oh || left+w > ow {
			panic(fmt.Sprintf("anomnet/cuda: ZeroPad2D: x %v at (%d, %d) does not fit y %v", x, top, left, y))
		}
		return
	}
	d.planes("ZeroPad2D", y, x, false, fits, func(k kernel, py, px C.anc_dptr, nc C.longlong, h, w, oh, ow C.int) C.int {
		return C.anc_zero_pad2d(d.ctx, py, px, nc, h, w, oh, ow, k.ci(top), k.ci(left))
	})
}

// pool runs MaxPool2D, AvgPool2D or AvgPool2DBackward (op names it) after
// the CPU's checks: out from in as for planes.
func (d *Device) pool(op string, out, in *tensor.Tensor, p tensor.Pool2DParams) {
	size := func(op string, y, x *tensor.Tensor) (nc, h, w, oh, ow int) {
		nc, h, w, oh, ow = check.Planes(op, y, x)
		check.Pool(op, p, h, w, oh, ow)
		return
	}
	d.planes(op, out, in, op == "AvgPool2DBackward", size, func(k kernel, po, pi C.anc_dptr, nc C.longlong, h, w, oh, ow C.int) C.int {
		ks, s, pad := k.ci(p.Kernel), k.ci(p.Stride), k.ci(p.Pad)
		switch op {
		case "MaxPool2D":
			return C.anc_max_pool2d(d.ctx, po, pi, nc, h, w, oh, ow, ks, s, pad)
		case "AvgPool2D":
			return C.anc_avg_pool2d(d.ctx, po, pi, nc, h, w, oh, ow, ks, s, pad)
		}
		return C.anc_avg_pool2d_backward(d.ctx, po, pi, nc, h, w, oh, ow, ks, s, pad)
	})
}

// MaxPool2D takes the maximum over each window; padding counts as -Inf.
func (d *Device) MaxPool2D(y, x *tensor.Tensor, p tensor.Pool2DParams) { d.pool("MaxPool2D", y, x, p) }

// AvgPool2D averages each window, padding counting as zeros.
func (d *Device) AvgPool2D(y, x *tensor.Tensor, p tensor.Pool2DParams) { d.pool("AvgPool2D", y, x, p) }

// AvgPool2DBackward sets dx to the gradient of AvgPool2D.
func (d *Device) AvgPool2DBackward(dx, dy *tensor.Tensor, p tensor.Pool2DParams) {
	d.pool("AvgPool2DBackward", dx, dy, p)
}

// resample runs AdaptiveAvgPool2D, ResizeBilinear or the gradient of
// either (op names it): out from in as for planes.
func (d *Device) resample(op string, out, in *tensor.Tensor) {
	size := check.Bilinear
	if strings.HasPrefix(op, "Adaptive") {
		size = check.Adaptive
	}
	d.planes(op, out, in, strings.HasSuffix(op, "Backward"), size, func(_ kernel, po, pi C.anc_dptr, nc C.longlong, h, w, oh, ow C.int) C.int {
		switch op {
		case "AdaptiveAvgPool2D":
			return C.anc_adaptive_avg_pool2d(d.ctx, po, pi, nc, h, w, oh, ow)
		case "AdaptiveAvgPool2DBackward":
			return C.anc_adaptive_avg_pool2d_backward(d.ctx, po, pi, nc, h, w, oh, ow)
		case "ResizeBilinear":
			return C.anc_resize_bilinear(d.ctx, po, pi, nc, h, w, oh, ow)
		}
		return C.anc_resize_bilinear_backward(d.ctx, po, pi, nc, h, w, oh, ow)
	})
}

// AdaptiveAvgPool2D averages over PyTorch's adaptive windows.
func (d *Device) AdaptiveAvgPool2D(y, x *tensor.Tensor) { d.resample("AdaptiveAvgPool2D", y, x) }

// AdaptiveAvgPool2DBackward sets dx to the gradient of AdaptiveAvgPool2D.
func (d *Device) AdaptiveAvgPool2DBackward(dx, dy *tensor.Tensor) {
	d.resample("AdaptiveAvgPool2DBackward", dx, dy)
}

// ResizeBilinear resamples x to y's size with PyTorch's bilinear rule.
func (d *Device) ResizeBilinear(y, x *tensor.Tensor) { d.resample("ResizeBilinear", y, x) }

// ResizeBilinearBackward sets dx to the gradient of ResizeBilinear.
func (d *Device) ResizeBilinearBackward(dx, dy *tensor.Tensor) {
	d.resample("ResizeBilinearBackward", dx, dy)
}

// GaussianBlur blurs each plane with a separable Gaussian, reflecting at
// the borders as tensor.Reflect does.
func (d *Device) GaussianBlur(y, x *tensor.Tensor, sigma float64, r int) {
	var k32 []float32
	same := func(op string, y, x *tensor.Tensor) (nc, h, w, oh, ow int) {
		nc, h, w, oh, ow = check.Planes(op, y, x)
		if oh != h || ow != w {
			panic(fmt.Sprintf("anomnet/cuda: GaussianBlur: y %v, want x's shape %v", y, x))
		}
		k64 := tensor.GaussianKernel(sigma, r)
		k32 = make([]float32, len(k64))
		for i, v := range k64 {
			k32[i] = float32(v)
		}
		return
	}
	d.planes("GaussianBlur", y, x, false, same, func(k kernel, py, px C.anc_dptr, nc C.longlong, h, w, _, _ C.int) C.int {
		return C.anc_gaussian_blur(d.ctx, py, px, nc, h, w, (*C.float)(unsafe.Pointer(&k32[0])), k.ci(r))
	})
}

// copyChannels copies ch planes of hw per image for n images.
func (k kernel) copyChannels(dst C.anc_dptr, dc, dof int, src C.anc_dptr, sc, so, ch, n, hw int) {
	k.run(func() C.int {
		return C.anc_copy_channels(k.d.ctx, dst, k.ci(dc), k.ci(dof), src, k.ci(sc), k.ci(so), k.ci(ch), k.ci(n), cll(hw))
	})
}

// Concat stacks xs along the channel axis into y.
func (d *Device) Concat(y *tensor.Tensor, xs ...*tensor.Tensor) {
	d.launch("Concat", func(k kernel) {
		ys := check.ExpectRank(k.op, "y", y, 4)
		py := k.mem("y", y)
		check.Concat(y, ys, xs, func(i, off, c int) {
			k.copyChannels(py, ys[1], off, k.mem(fmt.Sprintf("xs[%d]", i), xs[i]), c, 0, c, ys[0], ys[2]*ys[3])
		})
	})
}

// Split copies consecutive channel ranges of x into ys; a nil entry skips
// skip[i] channels.
func (d *Device) Split(ys []*tensor.Tensor, skip []int, x *tensor.Tensor) {
	d.launch("Split", func(k kernel) {
		xs := check.ExpectRank(k.op, "x", x, 4)
		px := k.mem("x", x)
		check.Split(x, xs, ys, skip, func(i, off, c int) {
			k.copyChannels(k.mem(fmt.Sprintf("ys[%d]", i), ys[i]), c, 0, px, xs[1], off, c, xs[0], xs[2]*xs[3])
		})
	})
}

// AppendCoords writes x's channels and CoordConv's two coordinate channels
// into y.
func (d *Device) AppendCoords(y, x *tensor.Tensor) {
	d.launch("AppendCoords", func(k kernel) {
		xs := check.ExpectRank(k.op, "x", x, 4)
		n, c, h, w := xs[0], xs[1], xs[2], xs[3]
		check.Expect(k.op, "y", y, tensor.Float32, n, c+2, h, w)
		py, px := k.mem("y", y), k.mem("x", x)
		k.copyChannels(py, c+2, 0, px, c, 0, c, n, h*w)
		k.run(func() C.int { return C.anc_coord_channels(d.ctx, py, k.ci(n), k.ci(c), k.ci(h), k.ci(w)) })
	})
}

// ChannelsLast turns x (N x C x H x W) into rows y ((N*H*W) x C).
func (d *Device) ChannelsLast(y, x *tensor.Tensor) { d.transpose("ChannelsLast", y, x) }

// ChannelsFirst turns rows x ((N*H*W) x C) into y (N x C x H x W).
func (d *Device) ChannelsFirst(y, x *tensor.Tensor) { d.transpose("ChannelsFirst", y, x) }

// transpose runs ChannelsLast or ChannelsFirst (op names it): each image's
// C x (H*W) map becomes (H*W) x C rows, or the reverse.
func (d *Device) transpose(op string, y, x *tensor.Tensor) {
	d.launch(op, func(k kernel) {
		n, c, hw := check.Channels(op, y, x)
		py, px := k.mem("y", y), k.mem("x", x)
		rows, cols := c, hw
		if op == "ChannelsFirst" {
			rows, cols = hw, c
		}
		k.run(func() C.int { return C.anc_transpose(d.ctx, py, px, k.ci(n), k.ci(rows), k.ci(cols)) })
	})
}
