package tensor

import (
	"fmt"
	"math"
	"sync"
)

// Conv2DParams are the geometry of a 2-D convolution: stride and symmetric
// zero padding per axis. Output size: OH = (H + 2*PadH - KH)/StrideH + 1.
type Conv2DParams struct {
	StrideH, StrideW int
	PadH, PadW       int
	// Accumulate makes Conv2D add to y's contents (a residual connection
	// fused into the convolution) instead of overwriting them.
	Accumulate bool
	// ReLU makes Conv2D apply max(., 0) to its output, after the bias and
	// the accumulation, fused into the convolution. The backward ops
	// ignore both fields.
	ReLU bool
}

// Out returns the output height and width of a convolution (or a
// pooling) with kernel kh x kw over an h x w input.
func (p Conv2DParams) Out(h, w, kh, kw int) (oh, ow int) {
	return (h+2*p.PadH-kh)/p.StrideH + 1, (w+2*p.PadW-kw)/p.StrideW + 1
}

// Pool2DParams are the geometry of a square pooling window.
type Pool2DParams struct {
	Kernel, Stride, Pad int
}

// Out returns the output size of the pooling over an h x w input.
func (p Pool2DParams) Out(h, w int) (oh, ow int) {
	return (h+2*p.Pad-p.Kernel)/p.Stride + 1, (w+2*p.Pad-p.Kernel)/p.Stride + 1
}

// AdamParams configure one Adam step (PyTorch's torch.optim.Adam, with
// weight decay added to the gradient, not decoupled).
type AdamParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	// Step is the 1-based step number, for the bias corrections.
	Step int
}

// Device runs every numerical operation anomnet needs. CPU is always
// available; the cuda package registers a GPU Device when built with the
// cuda tag. Use and Default select the package-wide Device, like
// gonum's blas32.Use.
//
// All tensor arguments must live on the Device (see FromHost). Unless an op
// says otherwise, outputs must not overlap inputs, outputs are overwritten
// (not accumulated), and shapes are checked: a mismatch panics. Elementwise
// ops (Add, Axpy, ReLU, ReLUBackward, Adam) check sizes only, so that a
// map may be combined with a flat view of it. Float32 is
// the element type everywhere except where an argument is said to be int32.
//
// Ops may run asynchronously on devices with queues; Sync waits for them and
// returns the first device error since the previous Sync (the CPU never
// fails). After a device error, later ops may do nothing.
type Device interface {
	// Name identifies the device, e.g. "cpu" or "cuda:0 (NVIDIA H200)".
	Name() string

	// Zeros returns a new float32 tensor on the device, filled with zeros.
	Zeros(shape ...int) *Tensor
	// ZerosInt32 returns a new int32 tensor on the device, filled with zeros.
	ZerosInt32(shape ...int) *Tensor
	// FromHost copies a host tensor to a new tensor on the device.
	FromHost(t *Tensor) *Tensor
	// ToHost copies a device tensor to a new host tensor.
	ToHost(t *Tensor) *Tensor
	// Copy copies src into dst: same dtype and size; shapes may differ.
	Copy(dst, src *Tensor)
	// Free releases a tensor's device memory early; it is idempotent and
	// a no-op on the CPU. The tensor must not be used afterwards.
	Free(t *Tensor)
	// Sync waits for queued work and reports the first error since the
	// previous Sync.
	Sync() error

	// Fill sets every element of x (float32) to v.
	Fill(x *Tensor, v float32)
	// Add sets dst = a + b elementwise. dst may alias a or b.
	Add(dst, a, b *Tensor)
	// Axpy sets y += alpha*x elementwise.
	Axpy(alpha float32, x, y *Tensor)
	// Scale sets x *= alpha.
	Scale(alpha float32, x *Tensor)
	// Sum returns the sum of x's elements, accumulated in float64.
	Sum(x *Tensor) float64
	// Dot returns the dot product of x and y (same size), summed in
	// float64 (the products may be float32).
	Dot(x, y *Tensor) float64

	// Gemm sets c = alpha*op(a)*op(b) + beta*c for matrices (rank-2
	// tensors), op(m) being m or its transpose; with beta = 0, c's old
	// values (even NaN) are ignored.
	Gemm(transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor)

	// Conv2D sets y = conv(x, w) + bias: x is N x C x H x W, w is
	// O x C x KH x KW, bias has O elements or is nil, y is N x O x OH x OW
	// (cross-correlation, as in PyTorch).
	Conv2D(y, x, w, bias *Tensor, p Conv2DParams)
	// Conv2DBackwardData sets dx to the gradient with respect to x given
	// dy, the gradient with respect to y.
	Conv2DBackwardData(dx, dy, w *Tensor, p Conv2DParams)
	// Conv2DBackwardFilter sets dw (and dbias unless nil) to the gradients
	// with respect to w and bias given x and dy.
	Conv2DBackwardFilter(dw, dbias, x, dy *Tensor, p Conv2DParams)

	// ReLU sets y = max(x, 0). y may alias x.
	ReLU(y, x *Tensor)
	// ReLUBackward sets dx = dy where y > 0, else 0; y is ReLU's output.
	// dx may alias dy.
	ReLUBackward(dx, dy, y *Tensor)

	// ZeroPad2D copies x (N x C x H x W) into y (N x C x H' x W') with top
	// rows and left columns of zeros before it and zeros after it to fill
	// y (H' >= top+H, W' >= left+W).
	ZeroPad2D(y, x *Tensor, top, left int)
	// MaxPool2D sets y to the maximum over each window; padding counts as
	// -Inf (PyTorch's MaxPool2d). As in PyTorch, the padding of the pooling
	// ops is at most half the kernel.
	MaxPool2D(y, x *Tensor, p Pool2DParams)
	// AvgPool2D sets y to the mean over each window; padding counts as
	// zeros in the mean (PyTorch's AvgPool2d, count_include_pad=True).
	AvgPool2D(y, x *Tensor, p Pool2DParams)
	// AvgPool2DBackward sets dx to the gradient of AvgPool2D.
	AvgPool2DBackward(dx, dy *Tensor, p Pool2DParams)
	// AdaptiveAvgPool2D averages x (N x C x H x W) over PyTorch's adaptive
	// windows to y (N x C x OH x OW): output row i covers input rows
	// floor(i*H/OH) to ceil((i+1)*H/OH) - 1, and likewise for columns.
	AdaptiveAvgPool2D(y, x *Tensor)
	// AdaptiveAvgPool2DBackward sets dx to the gradient of
	// AdaptiveAvgPool2D.
	AdaptiveAvgPool2DBackward(dx, dy *Tensor)
	// ResizeBilinear resamples x (N x C x H x W) to y (N x C x OH x OW)
	// with PyTorch's bilinear interpolation, align_corners=False and no
	// antialiasing: source coordinate (o+0.5)*H/OH - 0.5, clamped at 0.
	ResizeBilinear(y, x *Tensor)
	// ResizeBilinearBackward sets dx to the gradient of ResizeBilinear.
	ResizeBilinearBackward(dx, dy *Tensor)
	// GaussianBlur convolves each channel of x with a separable Gaussian
	// of standard deviation sigma and radius r (kernel size 2r+1; weights
	// exp(-t^2/(2 sigma^2)) normalised to sum 1), reflecting at the border
	// without repeating the edge as PyTorch's "reflect" padding does. For
	// maps no larger than the radius, which PyTorch refuses, the
	// reflection repeats periodically (see Reflect). y has x's shape.
	GaussianBlur(y, x *Tensor, sigma float64, r int)

	// Concat stacks xs along the channel axis (axis 1) into y; every x has
	// y's shape except in that axis.
	Concat(y *Tensor, xs ...*Tensor)
	// Split is Concat's inverse (and its backward): it copies consecutive
	// channel ranges of x into ys. A nil entry skips its channels, whose
	// count is then given by the matching entry of skip; skip may be nil
	// when no entry is nil, and its entries for non-nil ys are ignored.
	Split(ys []*Tensor, skip []int, x *Tensor)
	// AppendCoords sets y (N x (C+2) x H x W) to x's C channels followed by
	// CoordConv's two coordinate channels: x = -1 + 2*j/(W-1) along the
	// width, then y = -1 + 2*i/(H-1) along the height (0 when the axis has
	// one element).
	AppendCoords(y, x *Tensor)
	// ChannelsLast turns x (N x C x H x W) into rows y ((N*H*W) x C), one
	// feature vector per location, in n, h, w order.
	ChannelsLast(y, x *Tensor)
	// ChannelsFirst is ChannelsLast's inverse: rows x ((N*H*W) x C) into y
	// (N x C x H x W).
	ChannelsFirst(y, x *Tensor)

	// Nearest finds, for each row of x (N x D), the nearest row of c
	// (K x D): idx (int32, N) gets its index and dist (N) the Euclidean
	// distance, the squared distance clamped at 0 before the root. Exact
	// ties (identical centroids) go to the lowest index; within rounding,
	// near-ties may go either way. Either output may be nil.
	Nearest(idx, dist, x, c *Tensor)
	// GatherRows sets y[i] = x[idx[i]] for matrices x (R x D) and y (M x D)
	// and int32 idx (M).
	GatherRows(y, x, idx *Tensor)
	// ScatterAddRows adds row i of x (M x D) to row idx[i] of y (R x D):
	// GatherRows' backward, and per-label sums. It accumulates into y.
	ScatterAddRows(y, x, idx *Tensor)
	// NormalizeRows sets z[i] = x[i]/n[i] with n[i] = max(||x[i]||, eps),
	// and norms[i] = n[i] unless norms is nil.
	NormalizeRows(z, norms, x *Tensor, eps float32)
	// NormalizeRowsBackward sets dx to the gradient through
	// NormalizeRows, given its outputs z and norms and dz:
	// dx[i] = (dz[i] - (dz[i].z[i]) z[i]) / n[i] where norms[i] > eps, and
	// dz[i]/eps where the norm was clamped (norms[i] == eps).
	NormalizeRowsBackward(dx, dz, z, norms *Tensor, eps float32)
	// CosineSimilarity sets s (M x M) to the cosine similarity of the rows
	// of x (M x D), each norm clamped at eps: s[i][j] = x[i].x[j] /
	// (max(||x[i]||, eps) max(||x[j]||, eps)).
	CosineSimilarity(s, x *Tensor, eps float32)
	// NegativeHinge computes the per-row reductions of the contrastive
	// negative term without forming the M x M matrix. For rows z (M x D,
	// usually unit length) with int32 labels y (M), and s_ij = z[i].z[j]:
	//   loss[i] = sum over j with y[j] != y[i] of max(0, s_ij - margin)
	//   grad[i] = sum over j with y[j] != y[i] and s_ij > margin of z[j]
	// loss has M elements; grad (M x D) may be nil. grad[i] is the
	// derivative of loss[i] with the other rows held fixed; since every pair
	// counts in both orders, the derivative of sum(loss) with respect to
	// z[i] is 2*grad[i] (and that of METHOD.md's L_neg is 2*grad[i]/|N|).
	NegativeHinge(loss, grad, z, y *Tensor, margin float32)

	// Adam applies one Adam step to param given grad, updating the moment
	// estimates m and v in place (all of one size). The bias corrections
	// 1 - beta^Step are computed in float64.
	Adam(param, grad, m, v *Tensor, p AdamParams)
}

var (
	defaultMu     sync.RWMutex
	defaultDevice Device = CPU{}
)

// Use sets the Device that Default returns. It is meant for program start-up
// (the cuda package's Use, for example).
func Use(d Device) {
	if d == nil {
		panic("anomnet/tensor: Use(nil)")
	}
	defaultMu.Lock()
	defaultDevice = d
	defaultMu.Unlock()
}

// Default returns the package-wide Device: CPU unless Use was called.
func Default() Device {
	defaultMu.RLock()
	defer defaultMu.RUnlock()
	return defaultDevice
}

// GaussianRadius is the blur radius METHOD.md uses for a sigma:
// floor(4*sigma + 0.5), so the kernel size is 2*floor(4*sigma+0.5)+1.
func GaussianRadius(sigma float64) int { return int(math.Floor(4*sigma + 0.5)) }

// GaussianKernel returns the normalised 1-D Gaussian weights of radius r.
func GaussianKernel(sigma float64, r int) []float64 {
	if sigma <= 0 || r < 0 {
		panic(fmt.Sprintf("anomnet/tensor: Gaussian kernel with sigma %g, radius %d", sigma, r))
	}
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		t := float64(i - r)
		k[i] = math.Exp(-t * t / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	return k
}

// Reflect maps index i into [0, n) by reflection without repeating the edge
// (... 2 1 | 0 1 2 ... n-1 | n-2 ...), periodically for any i.
func Reflect(i, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i %= period
	if i < 0 {
		i += period
	}
	if i >= n {
		i = period - i
	}
	return i
}
