//go:build cuda

package cuda

/*
#include "kernels/anomnet_cuda.h"
*/
import "C"

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/org/anomnet/internal/tensor"
)

var _ tensor.Device = (*Device)(nil)

// Device is a CUDA GPU as a tensor.Device. Its ops are queued on one CUDA
// stream and return at once, except the transfers to the host (ToHost, Sum,
// Dot) and Sync, which wait. The first failure is kept and returned by the
// next Sync; until then later ops do nothing. A Device is safe for
// concurrent use: calls are serialised on a mutex (the work itself runs in
// stream order on the GPU).
//
// Its tensors' memory is released by Free or, for whatever is left, by
// Close; no finalizer frees anything.
type Device struct {
	mu     sync.Mutex
	ctx    *C.anc_ctx
	name   string
	err    error                // first failure since the last Sync
	live   map[*buffer]struct{} // allocations not yet freed
	closed bool
}

// buffer is one device allocation, shared by the tensors viewing it.
type buffer struct {
	ptr    C.anc_dptr
	n      int  // elements of 4 bytes
	freed  bool // by Free or Close
	failed bool // the allocation failed (the error went to Sync)
}

// Storage is the memory of a CUDA tensor: elements [off, off+n) of a
// device allocation, of one element type. Slice returns a view of the same
// allocation.
type Storage struct {
	d      *Device
	buf    *buffer
	off, n int
	dt     tensor.DType
}

// Len is the number of elements.
func (s *Storage) Len() int { return s.n }

// Slice returns the storage of elements [i, j), sharing memory.
func (s *Storage) Slice(i, j int) tensor.Storage {
	if i < 0 || j < i || j > s.n {
		panic(fmt.Sprintf("anomnet/cuda: slice [%d, %d) of %d elements", i, j, s.n))
	}
	return &Storage{d: s.d, buf: s.buf, off: s.off + i, n: j - i, dt: s.dt}
}

// DType is the element type.
func (s *Storage) DType() tensor.DType { return s.dt }

// Count returns the number of CUDA devices.
func Count() (int, error) {
	var n C.int
	if st := C.anc_device_count(&n); st != 0 {
		return 0, &Error{Op: "Count", Code: int(st), Msg: "cudaGetDeviceCount: " + C.GoString(C.anc_error_string(st))}
	}
	return int(n), nil
}

// Available reports whether a CUDA device can be used.
func Available() bool {
	n, err := Count()
	return err == nil && n > 0
}

// New opens CUDA device ordinal (0 for the first GPU).
func New(ordinal int) (*Device, error) {
	n, err := Count()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("anomnet/cuda: New(%d): %d CUDA devices", ordinal, n)
	}
	var ctx *C.anc_ctx
	if st := C.anc_create(C.int(ordinal), &ctx); st != 0 {
		return nil, &Error{Op: fmt.Sprintf("New(%d)", ordinal), Code: int(st), Msg: C.GoString(C.anc_error_string(st))}
	}
	var buf [256]C.char
	if st := C.anc_device_name(ctx, &buf[0], C.int(len(buf))); st != 0 {
		err := &Error{Op: fmt.Sprintf("New(%d)", ordinal), Code: int(st), Msg: C.GoString(C.anc_last_error(ctx))}
		C.anc_destroy(ctx)
		return nil, err
	}
	return &Device{
		ctx:  ctx,
		name: fmt.Sprintf("cuda:%d (%s)", ordinal, C.GoString(&buf[0])),
		live: make(map[*buffer]struct{}),
	}, nil
}

// Use makes d the package-wide tensor.Device (tensor.Use).
func Use(d *Device) { tensor.Use(d) }

// Close waits for the queued work, frees every allocation of the device's
// tensors that Free has not, and releases the device's stream and memory.
// It returns the failure Sync would have. It is idempotent; the Device and
// its tensors must not be used afterwards. If d is the package-wide Device,
// the CPU becomes it again.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	err := d.err
	if st := C.anc_sync(d.ctx); st != 0 && err == nil {
		err = d.status("Close", st)
	}
	for b := range d.live {
		C.anc_free(d.ctx, b.ptr)
		b.freed = true
	}
	d.live = nil
	C.anc_destroy(d.ctx)
	d.ctx = nil
	d.closed = true
	if dd, ok := tensor.Default().(*Device); ok && dd == d {
		tensor.Use(tensor.CPU{})
	}
	return err
}

// Allocated returns the number of live allocations and their bytes: a
// check for tensors that are never freed.
func (d *Device) Allocated() (n int, bytes int64) {
	d.lock()
	defer d.mu.Unlock()
	for b := range d.live {
		n++
		bytes += 4 * int64(b.n)
	}
	return n, bytes
}

// Name returns "cuda:N (device name)".
func (d *Device) Name() string { return d.name }

// lock takes the mutex of an open device; the caller defers d.mu.Unlock.
func (d *Device) lock() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		panic("anomnet/cuda: use of a closed Device")
	}
}

// status is the error of a failed C call.
func (d *Device) status(op string, st C.int) error {
	return &Error{Op: op, Code: int(st), Msg: C.GoString(C.anc_last_error(d.ctx))}
}

// do runs a C call unless a failure is pending, and keeps its failure.
func (d *Device) do(op string, f func() C.int) {
	if d.err != nil {
		return
	}
	if st := f(); st != 0 {
		d.err = d.status(op, st)
	}
}

// alloc returns storage of n elements, zeroed if zero is set.
func (d *Device) alloc(op string, n int, dt tensor.DType, zero bool) *Storage {
	b := &buffer{n: n}
	s := &Storage{d: d, buf: b, n: n, dt: dt}
	if n == 0 {
		return s
	}
	b.failed = true
	d.do(op, func() C.int {
		var p C.anc_dptr
		st := C.anc_malloc(d.ctx, &p, C.longlong(4*n))
		if st == 0 {
			b.ptr, b.failed = p, false
			d.live[b] = struct{}{}
			if zero {
				st = C.anc_memset0(d.ctx, p, C.longlong(4*n))
			}
		}
		return st
	})
	return s
}

// storage returns t's storage, checking that t is a live tensor of d.
func (d *Device) storage(op, name string, t *tensor.Tensor) *Storage {
	if t == nil {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is nil", op, name))
	}
	s, ok := t.Storage().(*Storage)
	if !ok {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s is a %s tensor in %T memory, not on %s (copy it with FromHost)", op, name, t.DType(), t.Storage(), d.name))
	}
	if s.d != d {
		panic(fmt.Sprintf("anomnet/cuda: %s: %s lives on %s, not on %s", op, name, s.d.name, d.name))
	}
	switch {
	case s.buf.freed:
		panic(fmt.Sprintf("anomnet/cuda: %s: %s was freed", op, name))
	case s.buf.failed:
		panic(fmt.Sprintf("anomnet/cuda: %s: %s has no memory: its allocation failed (Sync returned the error)", op, name))
	}
	return s
}

// mem returns the device address of t's elements.
func (d *Device) mem(op, name string, t *tensor.Tensor) C.anc_dptr {
	s := d.storage(op, name, t)
	return s.buf.ptr + C.anc_dptr(4*s.off)
}

// memOpt is mem for optional arguments: 0 for nil.
func (d *Device) memOpt(op, name string, t *tensor.Tensor) C.anc_dptr {
	if t == nil {
		return 0
	}
	return d.mem(op, name, t)
}

// ci converts a size to a C int, which every kernel dimension is.
func ci(op string, v int) C.int {
	if v < math.MinInt32 || v > math.MaxInt32 {
		panic(fmt.Sprintf("anomnet/cuda: %s: size %d does not fit the kernels' 32-bit dimensions", op, v))
	}
	return C.int(v)
}

func cll(v int) C.longlong { return C.longlong(v) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Zeros returns a new float32 tensor filled with zeros.
func (d *Device) Zeros(shape ...int) *tensor.Tensor {
	d.lock()
	defer d.mu.Unlock()
	return tensor.FromStorage(d.alloc("Zeros", checkShape(shape), tensor.Float32, true), tensor.Float32, shape...)
}

// ZerosInt32 returns a new int32 tensor filled with zeros.
func (d *Device) ZerosInt32(shape ...int) *tensor.Tensor {
	d.lock()
	defer d.mu.Unlock()
	return tensor.FromStorage(d.alloc("ZerosInt32", checkShape(shape), tensor.Int32, true), tensor.Int32, shape...)
}

// hostData returns the address and size in bytes of a host tensor's
// elements.
func hostData(op string, t *tensor.Tensor) (unsafe.Pointer, int) {
	if t == nil {
		panic(fmt.Sprintf("anomnet/cuda: %s: nil tensor", op))
	}
	if !t.IsHost() {
		panic(fmt.Sprintf("anomnet/cuda: %s: %v is not a host tensor", op, t))
	}
	if t.Len() == 0 {
		return nil, 0
	}
	if t.DType() == tensor.Int32 {
		return unsafe.Pointer(&t.Int32s()[0]), 4 * t.Len()
	}
	return unsafe.Pointer(&t.Float32s()[0]), 4 * t.Len()
}

// FromHost copies a host tensor to a new tensor on the device.
func (d *Device) FromHost(t *tensor.Tensor) *tensor.Tensor {
	src, bytes := hostData("FromHost", t)
	d.lock()
	defer d.mu.Unlock()
	s := d.alloc("FromHost", t.Len(), t.DType(), false)
	if bytes > 0 && !s.buf.failed {
		d.do("FromHost", func() C.int { return C.anc_to_device(d.ctx, s.buf.ptr, src, cll(bytes)) })
	}
	return tensor.FromStorage(s, t.DType(), t.Shape()...)
}

// ToHost copies a device tensor to a new host tensor. While a failure is
// pending (see Sync) nothing is copied: float32 elements read NaN.
func (d *Device) ToHost(t *tensor.Tensor) *tensor.Tensor {
	d.lock()
	defer d.mu.Unlock()
	src := d.mem("ToHost", "t", t)
	var h *tensor.Tensor
	if t.DType() == tensor.Int32 {
		h = tensor.NewInt32(t.Shape()...)
	} else {
		h = tensor.New(t.Shape()...)
	}
	dst, bytes := hostData("ToHost", h)
	if bytes == 0 {
		return h
	}
	d.do("ToHost", func() C.int { return C.anc_to_host(d.ctx, dst, src, cll(bytes)) })
	if d.err != nil && t.DType() == tensor.Float32 {
		for i, f := 0, h.Float32s(); i < len(f); i++ {
			f[i] = float32(math.NaN())
		}
	}
	return h
}

// Copy copies src into dst: same dtype and size.
func (d *Device) Copy(dst, src *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	if dst == nil || src == nil || dst.DType() != src.DType() || dst.Len() != src.Len() {
		panic(fmt.Sprintf("anomnet/cuda: Copy: dst %v, src %v", dst, src))
	}
	pd, ps := d.mem("Copy", "dst", dst), d.mem("Copy", "src", src)
	d.do("Copy", func() C.int { return C.anc_copy(d.ctx, pd, ps, cll(4*dst.Len())) })
}

// Free releases the allocation of t early, if t covers all of it (views of
// part of an allocation leave it alone). It is idempotent, and a no-op for
// host tensors.
func (d *Device) Free(t *tensor.Tensor) {
	if t == nil || t.IsHost() {
		return
	}
	d.lock()
	defer d.mu.Unlock()
	s, ok := t.Storage().(*Storage)
	if !ok || s.d != d {
		panic(fmt.Sprintf("anomnet/cuda: Free: %v is not a tensor of %s", t, d.name))
	}
	b := s.buf
	if b.freed || b.failed || b.n == 0 || s.off != 0 || s.n != b.n {
		return
	}
	b.freed = true
	delete(d.live, b)
	if st := C.anc_free(d.ctx, b.ptr); st != 0 && d.err == nil {
		d.err = d.status("Free", st)
	}
}

// Sync waits for the queued work and returns the first failure since the
// previous Sync.
func (d *Device) Sync() error {
	d.lock()
	defer d.mu.Unlock()
	err := d.err
	d.err = nil
	if st := C.anc_sync(d.ctx); st != 0 && err == nil {
		err = d.status("Sync", st)
	}
	return err
}

// Fill sets every element of x to v.
func (d *Device) Fill(x *tensor.Tensor, v float32) {
	d.lock()
	defer d.mu.Unlock()
	expectSize("Fill", "x", x, x.Len())
	p := d.mem("Fill", "x", x)
	d.do("Fill", func() C.int { return C.anc_fill(d.ctx, p, cll(x.Len()), C.float(v)) })
}

// Add sets dst = a + b; dst may alias a or b.
func (d *Device) Add(dst, a, b *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	n := dst.Len()
	expectSize("Add", "dst", dst, n)
	expectSize("Add", "a", a, n)
	expectSize("Add", "b", b, n)
	pd, pa, pb := d.mem("Add", "dst", dst), d.mem("Add", "a", a), d.mem("Add", "b", b)
	d.do("Add", func() C.int { return C.anc_add(d.ctx, pd, pa, pb, cll(n)) })
}

// Axpy sets y += alpha*x.
func (d *Device) Axpy(alpha float32, x, y *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	n := y.Len()
	expectSize("Axpy", "y", y, n)
	expectSize("Axpy", "x", x, n)
	px, py := d.mem("Axpy", "x", x), d.mem("Axpy", "y", y)
	d.do("Axpy", func() C.int { return C.anc_axpy(d.ctx, C.float(alpha), px, py, cll(n)) })
}

// Scale sets x *= alpha.
func (d *Device) Scale(alpha float32, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	expectSize("Scale", "x", x, x.Len())
	p := d.mem("Scale", "x", x)
	d.do("Scale", func() C.int { return C.anc_scale(d.ctx, C.float(alpha), p, cll(x.Len())) })
}

// Sum returns the sum of x's elements, accumulated in float64; NaN if the
// device has failed (see Sync).
func (d *Device) Sum(x *tensor.Tensor) float64 {
	d.lock()
	defer d.mu.Unlock()
	expectSize("Sum", "x", x, x.Len())
	p := d.mem("Sum", "x", x)
	out := C.double(math.NaN())
	d.do("Sum", func() C.int { return C.anc_sum(d.ctx, p, cll(x.Len()), &out) })
	if d.err != nil {
		return math.NaN()
	}
	return float64(out)
}

// Dot returns the dot product of x and y, the products and their sum in
// float64; NaN if the device has failed (see Sync).
func (d *Device) Dot(x, y *tensor.Tensor) float64 {
	d.lock()
	defer d.mu.Unlock()
	expectSize("Dot", "x", x, x.Len())
	expectSize("Dot", "y", y, x.Len())
	px, py := d.mem("Dot", "x", x), d.mem("Dot", "y", y)
	out := C.double(math.NaN())
	d.do("Dot", func() C.int { return C.anc_dot(d.ctx, px, py, cll(x.Len()), &out) })
	if d.err != nil {
		return math.NaN()
	}
	return float64(out)
}

// Gemm sets c = alpha*op(a)*op(b) + beta*c.
func (d *Device) Gemm(transA, transB bool, alpha float32, a, b *tensor.Tensor, beta float32, c *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	as, bs := expectRank("Gemm", "a", a, 2), expectRank("Gemm", "b", b, 2)
	m, k := as[0], as[1]
	if transA {
		m, k = k, m
	}
	kb, n := bs[0], bs[1]
	if transB {
		kb, n = n, kb
	}
	if kb != k {
		panic(fmt.Sprintf("anomnet/cuda: Gemm: op(a) is %dx%d but op(b) is %dx%d", m, k, kb, n))
	}
	expect("Gemm", "c", c, tensor.Float32, m, n)
	pa, pb, pc := d.mem("Gemm", "a", a), d.mem("Gemm", "b", b), d.mem("Gemm", "c", c)
	const op = "Gemm"
	d.do(op, func() C.int {
		return C.anc_gemm(d.ctx, cbool(transA), cbool(transB), ci(op, m), ci(op, n), ci(op, k), C.float(alpha),
			pa, ci(op, as[1]), pb, ci(op, bs[1]), C.float(beta), pc)
	})
}

// convGeometry checks a convolution as the CPU does and returns its
// geometry for the kernels.
func convGeometry(op string, x, w, y *tensor.Tensor, p tensor.Conv2DParams) C.anc_conv_geom {
	xs := expectRank(op, "x", x, 4)
	ws := expectRank(op, "w", w, 4)
	if p.StrideH < 1 || p.StrideW < 1 || p.PadH < 0 || p.PadW < 0 {
		panic(fmt.Sprintf("anomnet/cuda: %s: bad params %+v", op, p))
	}
	if ws[1] != xs[1] {
		panic(fmt.Sprintf("anomnet/cuda: %s: w is %v for x %v (channels differ)", op, w, x))
	}
	n, c, h, wd, o, kh, kw := xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3]
	if h+2*p.PadH < kh || wd+2*p.PadW < kw {
		panic(fmt.Sprintf("anomnet/cuda: %s: kernel %dx%d larger than padded input %v", op, kh, kw, x))
	}
	oh, ow := p.Out(h, wd, kh, kw)
	expect(op, "y", y, tensor.Float32, n, o, oh, ow)
	return C.anc_conv_geom{
		n: ci(op, n), c: ci(op, c), h: ci(op, h), w: ci(op, wd),
		o: ci(op, o), kh: ci(op, kh), kw: ci(op, kw), oh: ci(op, oh), ow: ci(op, ow),
		sh: ci(op, p.StrideH), sw: ci(op, p.StrideW), ph: ci(op, p.PadH), pw: ci(op, p.PadW),
	}
}

// Conv2D sets y = conv(x, w) + bias, with p's accumulation and ReLU fused.
func (d *Device) Conv2D(y, x, w, bias *tensor.Tensor, p tensor.Conv2DParams) {
	d.lock()
	defer d.mu.Unlock()
	const op = "Conv2D"
	g := convGeometry(op, x, w, y, p)
	if bias != nil {
		expect(op, "bias", bias, tensor.Float32, int(g.o))
	}
	py, px, pw, pb := d.mem(op, "y", y), d.mem(op, "x", x), d.mem(op, "w", w), d.memOpt(op, "bias", bias)
	d.do(op, func() C.int { return C.anc_conv2d(d.ctx, py, px, pw, pb, g, cbool(p.Accumulate), cbool(p.ReLU)) })
}

// Conv2DBackwardData sets dx to the gradient with respect to x.
func (d *Device) Conv2DBackwardData(dx, dy, w *tensor.Tensor, p tensor.Conv2DParams) {
	d.lock()
	defer d.mu.Unlock()
	const op = "Conv2DBackwardData"
	g := convGeometry(op, dx, w, dy, p)
	pdx, pdy, pw := d.mem(op, "dx", dx), d.mem(op, "dy", dy), d.mem(op, "w", w)
	d.do(op, func() C.int { return C.anc_conv2d_backward_data(d.ctx, pdx, pdy, pw, g) })
}

// Conv2DBackwardFilter sets dw, and dbias unless nil.
func (d *Device) Conv2DBackwardFilter(dw, dbias, x, dy *tensor.Tensor, p tensor.Conv2DParams) {
	d.lock()
	defer d.mu.Unlock()
	const op = "Conv2DBackwardFilter"
	g := convGeometry(op, x, dw, dy, p)
	if dbias != nil {
		expect(op, "dbias", dbias, tensor.Float32, int(g.o))
	}
	pdw, pdb, px, pdy := d.mem(op, "dw", dw), d.memOpt(op, "dbias", dbias), d.mem(op, "x", x), d.mem(op, "dy", dy)
	d.do(op, func() C.int { return C.anc_conv2d_backward_filter(d.ctx, pdw, pdb, px, pdy, g) })
}

// ReLU sets y = max(x, 0); y may alias x.
func (d *Device) ReLU(y, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	n := y.Len()
	expectSize("ReLU", "y", y, n)
	expectSize("ReLU", "x", x, n)
	py, px := d.mem("ReLU", "y", y), d.mem("ReLU", "x", x)
	d.do("ReLU", func() C.int { return C.anc_relu(d.ctx, py, px, cll(n)) })
}

// ReLUBackward sets dx = dy where y > 0, else 0; dx may alias dy.
func (d *Device) ReLUBackward(dx, dy, y *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "ReLUBackward"
	n := dx.Len()
	expectSize(op, "dx", dx, n)
	expectSize(op, "dy", dy, n)
	expectSize(op, "y", y, n)
	pdx, pdy, py := d.mem(op, "dx", dx), d.mem(op, "dy", dy), d.mem(op, "y", y)
	d.do(op, func() C.int { return C.anc_relu_backward(d.ctx, pdx, pdy, py, cll(n)) })
}

// ZeroPad2D copies x into y at (top, left) with zeros around it.
func (d *Device) ZeroPad2D(y, x *tensor.Tensor, top, left int) {
	d.lock()
	defer d.mu.Unlock()
	const op = "ZeroPad2D"
	nc, h, w, oh, ow := planes(op, y, x)
	if top < 0 || left < 0 || top+h > oh || left+w > ow {
		panic(fmt.Sprintf("anomnet/cuda: ZeroPad2D: x %v at (%d, %d) does not fit y %v", x, top, left, y))
	}
	py, px := d.mem(op, "y", y), d.mem(op, "x", x)
	d.do(op, func() C.int {
		return C.anc_zero_pad2d(d.ctx, py, px, cll(nc), ci(op, h), ci(op, w), ci(op, oh), ci(op, ow), ci(op, top), ci(op, left))
	})
}

// pool runs one of the pooling kernels after the CPU's checks: f(out, in)
// with out = y and in = x forward, out = dx and in = dy backward.
func (d *Device) pool(op string, out, in *tensor.Tensor, p tensor.Pool2DParams, backward bool,
	f func(*C.anc_ctx, C.anc_dptr, C.anc_dptr, C.longlong, C.int, C.int, C.int, C.int, C.int, C.int, C.int) C.int) {
	d.lock()
	defer d.mu.Unlock()
	outName, inName, pooled, full := "y", "x", out, in
	if backward {
		outName, inName, pooled, full = "dx", "dy", in, out
	}
	nc, h, w, oh, ow := planes(op, pooled, full)
	checkPool(op, p, h, w, oh, ow)
	po, pi := d.mem(op, outName, out), d.mem(op, inName, in)
	d.do(op, func() C.int {
		return f(d.ctx, po, pi, cll(nc), ci(op, h), ci(op, w), ci(op, oh), ci(op, ow), ci(op, p.Kernel), ci(op, p.Stride), ci(op, p.Pad))
	})
}

// MaxPool2D takes the maximum over each window; padding counts as -Inf.
func (d *Device) MaxPool2D(y, x *tensor.Tensor, p tensor.Pool2DParams) {
	d.pool("MaxPool2D", y, x, p, false, func(c *C.anc_ctx, a, b C.anc_dptr, nc C.longlong, h, w, oh, ow, k, s, pd C.int) C.int {
		return C.anc_max_pool2d(c, a, b, nc, h, w, oh, ow, k, s, pd)
	})
}

// AvgPool2D averages each window, padding counting as zeros.
func (d *Device) AvgPool2D(y, x *tensor.Tensor, p tensor.Pool2DParams) {
	d.pool("AvgPool2D", y, x, p, false, func(c *C.anc_ctx, a, b C.anc_dptr, nc C.longlong, h, w, oh, ow, k, s, pd C.int) C.int {
		return C.anc_avg_pool2d(c, a, b, nc, h, w, oh, ow, k, s, pd)
	})
}

// AvgPool2DBackward sets dx to the gradient of AvgPool2D.
func (d *Device) AvgPool2DBackward(dx, dy *tensor.Tensor, p tensor.Pool2DParams) {
	d.pool("AvgPool2DBackward", dx, dy, p, true, func(c *C.anc_ctx, a, b C.anc_dptr, nc C.longlong, h, w, oh, ow, k, s, pd C.int) C.int {
		return C.anc_avg_pool2d_backward(c, a, b, nc, h, w, oh, ow, k, s, pd)
	})
}

// AdaptiveAvgPool2D averages over PyTorch's adaptive windows.
func (d *Device) AdaptiveAvgPool2D(y, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "AdaptiveAvgPool2D"
	nc, h, w, oh, ow := adaptive(op, y, x)
	py, px := d.mem(op, "y", y), d.mem(op, "x", x)
	d.do(op, func() C.int {
		return C.anc_adaptive_avg_pool2d(d.ctx, py, px, cll(nc), ci(op, h), ci(op, w), ci(op, oh), ci(op, ow))
	})
}

// AdaptiveAvgPool2DBackward sets dx to the gradient of AdaptiveAvgPool2D.
func (d *Device) AdaptiveAvgPool2DBackward(dx, dy *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "AdaptiveAvgPool2DBackward"
	nc, h, w, oh, ow := adaptive(op, dy, dx)
	pdx, pdy := d.mem(op, "dx", dx), d.mem(op, "dy", dy)
	d.do(op, func() C.int {
		return C.anc_adaptive_avg_pool2d_backward(d.ctx, pdx, pdy, cll(nc), ci(op, h), ci(op, w), ci(op, oh), ci(op, ow))
	})
}

// ResizeBilinear resamples x to y's size with PyTorch's bilinear rule.
func (d *Device) ResizeBilinear(y, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "ResizeBilinear"
	nc, h, w, oh, ow := bilinear(op, y, x)
	py, px := d.mem(op, "y", y), d.mem(op, "x", x)
	d.do(op, func() C.int {
		return C.anc_resize_bilinear(d.ctx, py, px, cll(nc), ci(op, h), ci(op, w), ci(op, oh), ci(op, ow))
	})
}

// ResizeBilinearBackward sets dx to the gradient of ResizeBilinear.
func (d *Device) ResizeBilinearBackward(dx, dy *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "ResizeBilinearBackward"
	nc, h, w, oh, ow := bilinear(op, dy, dx)
	pdx, pdy := d.mem(op, "dx", dx), d.mem(op, "dy", dy)
	d.do(op, func() C.int {
		return C.anc_resize_bilinear_backward(d.ctx, pdx, pdy, cll(nc), ci(op, h), ci(op, w), ci(op, oh), ci(op, ow))
	})
}

// GaussianBlur blurs each plane with a separable Gaussian, reflecting at
// the borders as tensor.Reflect does.
func (d *Device) GaussianBlur(y, x *tensor.Tensor, sigma float64, r int) {
	d.lock()
	defer d.mu.Unlock()
	const op = "GaussianBlur"
	nc, h, w, oh, ow := planes(op, y, x)
	if oh != h || ow != w {
		panic(fmt.Sprintf("anomnet/cuda: GaussianBlur: y %v, want x's shape %v", y, x))
	}
	k64 := tensor.GaussianKernel(sigma, r)
	k := make([]float32, len(k64))
	for i, v := range k64 {
		k[i] = float32(v)
	}
	py, px := d.mem(op, "y", y), d.mem(op, "x", x)
	d.do(op, func() C.int {
		return C.anc_gaussian_blur(d.ctx, py, px, cll(nc), ci(op, h), ci(op, w), (*C.float)(unsafe.Pointer(&k[0])), ci(op, r))
	})
}

// copyChannels copies ch planes of hw per image for n images.
func (d *Device) copyChannels(op string, dst C.anc_dptr, dc, dof int, src C.anc_dptr, sc, so, ch, n, hw int) {
	d.do(op, func() C.int {
		return C.anc_copy_channels(d.ctx, dst, ci(op, dc), ci(op, dof), src, ci(op, sc), ci(op, so), ci(op, ch), ci(op, n), cll(hw))
	})
}

// Concat stacks xs along the channel axis into y.
func (d *Device) Concat(y *tensor.Tensor, xs ...*tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "Concat"
	ys := expectRank(op, "y", y, 4)
	py := d.mem(op, "y", y)
	off := 0
	for i, x := range xs {
		name := fmt.Sprintf("xs[%d]", i)
		s := expectRank(op, name, x, 4)
		if s[0] != ys[0] || s[2] != ys[2] || s[3] != ys[3] || off+s[1] > ys[1] {
			panic(fmt.Sprintf("anomnet/cuda: Concat: %s %v does not fit y %v at channel %d", name, x, y, off))
		}
		d.copyChannels(op, py, ys[1], off, d.mem(op, name, x), s[1], 0, s[1], ys[0], ys[2]*ys[3])
		off += s[1]
	}
	if off != ys[1] {
		panic(fmt.Sprintf("anomnet/cuda: Concat: inputs have %d channels, y has %d", off, ys[1]))
	}
}

// Split copies consecutive channel ranges of x into ys; a nil entry skips
// skip[i] channels.
func (d *Device) Split(ys []*tensor.Tensor, skip []int, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "Split"
	xs := expectRank(op, "x", x, 4)
	px := d.mem(op, "x", x)
	off := 0
	for i, y := range ys {
		if y == nil {
			if i >= len(skip) || skip[i] < 0 {
				panic(fmt.Sprintf("anomnet/cuda: Split: ys[%d] is nil without a skip count", i))
			}
			off += skip[i]
			continue
		}
		name := fmt.Sprintf("ys[%d]", i)
		s := expectRank(op, name, y, 4)
		if s[0] != xs[0] || s[2] != xs[2] || s[3] != xs[3] || off+s[1] > xs[1] {
			panic(fmt.Sprintf("anomnet/cuda: Split: %s %v does not fit x %v at channel %d", name, y, x, off))
		}
		d.copyChannels(op, d.mem(op, name, y), s[1], 0, px, xs[1], off, s[1], xs[0], xs[2]*xs[3])
		off += s[1]
	}
	if off != xs[1] {
		panic(fmt.Sprintf("anomnet/cuda: Split: outputs take %d channels, x has %d", off, xs[1]))
	}
}

// AppendCoords writes x's channels and CoordConv's two coordinate channels
// into y.
func (d *Device) AppendCoords(y, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "AppendCoords"
	xs := expectRank(op, "x", x, 4)
	n, c, h, w := xs[0], xs[1], xs[2], xs[3]
	expect(op, "y", y, tensor.Float32, n, c+2, h, w)
	py, px := d.mem(op, "y", y), d.mem(op, "x", x)
	d.copyChannels(op, py, c+2, 0, px, c, 0, c, n, h*w)
	d.do(op, func() C.int { return C.anc_coord_channels(d.ctx, py, ci(op, n), ci(op, c), ci(op, h), ci(op, w)) })
}

// ChannelsLast turns x (N x C x H x W) into rows y ((N*H*W) x C).
func (d *Device) ChannelsLast(y, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "ChannelsLast"
	xs := expectRank(op, "x", x, 4)
	n, c, hw := xs[0], xs[1], xs[2]*xs[3]
	expect(op, "y", y, tensor.Float32, n*hw, c)
	py, px := d.mem(op, "y", y), d.mem(op, "x", x)
	d.do(op, func() C.int { return C.anc_transpose(d.ctx, py, px, ci(op, n), ci(op, c), ci(op, hw)) })
}

// ChannelsFirst turns rows x ((N*H*W) x C) into y (N x C x H x W).
func (d *Device) ChannelsFirst(y, x *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "ChannelsFirst"
	ys := expectRank(op, "y", y, 4)
	n, c, hw := ys[0], ys[1], ys[2]*ys[3]
	expect(op, "x", x, tensor.Float32, n*hw, c)
	py, px := d.mem(op, "y", y), d.mem(op, "x", x)
	d.do(op, func() C.int { return C.anc_transpose(d.ctx, py, px, ci(op, n), ci(op, hw), ci(op, c)) })
}

// Nearest finds each row's nearest centroid: idx (int32) and dist, either
// of which may be nil.
func (d *Device) Nearest(idx, dist, x, c *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "Nearest"
	n, dim := matrix(op, "x", x)
	k, dc := matrix(op, "c", c)
	if dc != dim || k == 0 {
		panic(fmt.Sprintf("anomnet/cuda: Nearest: x %v, c %v", x, c))
	}
	if idx != nil {
		expect(op, "idx", idx, tensor.Int32, n)
	}
	if dist != nil {
		expect(op, "dist", dist, tensor.Float32, n)
	}
	pi, pd, px, pc := d.memOpt(op, "idx", idx), d.memOpt(op, "dist", dist), d.mem(op, "x", x), d.mem(op, "c", c)
	d.do(op, func() C.int { return C.anc_nearest(d.ctx, pi, pd, px, pc, cll(n), ci(op, k), ci(op, dim)) })
}

// GatherRows sets y[i] = x[idx[i]]. An index out of range is reported by
// the next Sync (the kernel cannot panic), and its row is left alone.
func (d *Device) GatherRows(y, x, idx *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "GatherRows"
	m, dim := matrix(op, "y", y)
	r, dx := matrix(op, "x", x)
	if dx != dim {
		panic(fmt.Sprintf("anomnet/cuda: GatherRows: y %v, x %v", y, x))
	}
	expect(op, "idx", idx, tensor.Int32, m)
	py, px, pi := d.mem(op, "y", y), d.mem(op, "x", x), d.mem(op, "idx", idx)
	d.do(op, func() C.int { return C.anc_gather_rows(d.ctx, py, px, pi, cll(m), ci(op, dim), cll(r)) })
}

// ScatterAddRows adds row i of x to row idx[i] of y. An index out of range
// is reported by the next Sync, and its row is skipped.
func (d *Device) ScatterAddRows(y, x, idx *tensor.Tensor) {
	d.lock()
	defer d.mu.Unlock()
	const op = "ScatterAddRows"
	r, dim := matrix(op, "y", y)
	m, dx := matrix(op, "x", x)
	if dx != dim {
		panic(fmt.Sprintf("anomnet/cuda: ScatterAddRows: y %v, x %v", y, x))
	}
	expect(op, "idx", idx, tensor.Int32, m)
	py, px, pi := d.mem(op, "y", y), d.mem(op, "x", x), d.mem(op, "idx", idx)
	d.do(op, func() C.int { return C.anc_scatter_add_rows(d.ctx, py, px, pi, cll(m), ci(op, dim), cll(r)) })
}

// NormalizeRows sets z[i] = x[i]/max(||x[i]||, eps), and the clamped norms
// unless norms is nil.
func (d *Device) NormalizeRows(z, norms, x *tensor.Tensor, eps float32) {
	d.lock()
	defer d.mu.Unlock()
	const op = "NormalizeRows"
	m, dim := matrix(op, "x", x)
	expect(op, "z", z, tensor.Float32, m, dim)
	if norms != nil {
		expect(op, "norms", norms, tensor.Float32, m)
	}
	pz, pn, px := d.mem(op, "z", z), d.memOpt(op, "norms", norms), d.mem(op, "x", x)
	d.do(op, func() C.int { return C.anc_normalize_rows(d.ctx, pz, pn, px, cll(m), ci(op, dim), C.float(eps)) })
}

// NormalizeRowsBackward sets dx to the gradient through NormalizeRows.
func (d *Device) NormalizeRowsBackward(dx, dz, z, norms *tensor.Tensor, eps float32) {
	d.lock()
	defer d.mu.Unlock()
	const op = "NormalizeRowsBackward"
	m, dim := matrix(op, "z", z)
	expect(op, "dz", dz, tensor.Float32, m, dim)
	expect(op, "dx", dx, tensor.Float32, m, dim)
	expect(op, "norms", norms, tensor.Float32, m)
	pdx, pdz, pz, pn := d.mem(op, "dx", dx), d.mem(op, "dz", dz), d.mem(op, "z", z), d.mem(op, "norms", norms)
	d.do(op, func() C.int {
		return C.anc_normalize_rows_backward(d.ctx, pdx, pdz, pz, pn, cll(m), ci(op, dim), C.float(eps))
	})
}

// CosineSimilarity sets s to the cosine similarities of x's rows.
func (d *Device) CosineSimilarity(s, x *tensor.Tensor, eps float32) {
	d.lock()
	defer d.mu.Unlock()
	const op = "CosineSimilarity"
	m, dim := matrix(op, "x", x)
	expect(op, "s", s, tensor.Float32, m, m)
	ps, px := d.mem(op, "s", s), d.mem(op, "x", x)
	d.do(op, func() C.int { return C.anc_cosine_similarity(d.ctx, ps, px, ci(op, m), ci(op, dim), C.float(eps)) })
}

// NegativeHinge computes the per-row hinge loss of the contrastive negative
// term, and its gradient unless grad is nil, without storing the M x M
// similarities (only, for the gradient, a packed bit per pair).
func (d *Device) NegativeHinge(loss, grad, z, y *tensor.Tensor, margin float32) {
	d.lock()
	defer d.mu.Unlock()
	const op = "NegativeHinge"
	m, dim := matrix(op, "z", z)
	expect(op, "loss", loss, tensor.Float32, m)
	expect(op, "y", y, tensor.Int32, m)
	if grad != nil {
		expect(op, "grad", grad, tensor.Float32, m, dim)
	}
	pl, pg, pz, py := d.mem(op, "loss", loss), d.memOpt(op, "grad", grad), d.mem(op, "z", z), d.mem(op, "y", y)
	d.do(op, func() C.int {
		return C.anc_negative_hinge(d.ctx, pl, pg, pz, py, ci(op, m), ci(op, dim), C.float(margin))
	})
}

// Adam applies one Adam step (PyTorch's, with L2 weight decay).
func (d *Device) Adam(param, grad, m, v *tensor.Tensor, p tensor.AdamParams) {
	d.lock()
	defer d.mu.Unlock()
	const op = "Adam"
	n := param.Len()
	expectSize(op, "param", param, n)
	expectSize(op, "grad", grad, n)
	expectSize(op, "m", m, n)
	expectSize(op, "v", v, n)
	if p.Step < 1 {
		panic(fmt.Sprintf("anomnet/cuda: Adam: step %d, want >= 1", p.Step))
	}
	bc1 := 1 - math.Pow(float64(p.Beta1), float64(p.Step))
	bc2 := 1 - math.Pow(float64(p.Beta2), float64(p.Step))
	step := float32(float64(p.LR) / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	pp, pg, pm, pv := d.mem(op, "param", param), d.mem(op, "grad", grad), d.mem(op, "m", m), d.mem(op, "v", v)
	d.do(op, func() C.int {
		return C.anc_adam(d.ctx, pp, pg, pm, pv, cll(n), C.float(step), C.float(sqrtBC2), C.float(p.Beta1), C.float(p.Beta2),
			C.float(p.Eps), C.float(p.WeightDecay))
	})
}
