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

// alloc returns storage of n elements, zeroed if zero is set.
func (k kernel) alloc(n int, dt tensor.DType, zero bool) *Storage {
	d := k.d
	b := &buffer{n: n}
	s := &Storage{d: d, buf: b, n: n, dt: dt}
	if n == 0 {
		return s
	}
	b.failed = true
	k.run(func() C.int {
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

// Zeros returns a new float32 tensor filled with zeros.
func (d *Device) Zeros(shape ...int) *tensor.Tensor { return d.zeros("Zeros", tensor.Float32, shape) }

// ZerosInt32 returns a new int32 tensor filled with zeros.
func (d *Device) ZerosInt32(shape ...int) *tensor.Tensor {
	return d.zeros("ZerosInt32", tensor.Int32, shape)
}

// zeros is Zeros or ZerosInt32 (op), of element type dt.
func (d *Device) zeros(op string, dt tensor.DType, shape []int) (t *tensor.Tensor) {
	d.launch(op, func(k kernel) {
		t = tensor.FromStorage(k.alloc(check.Shape(shape), dt, true), dt, shape...)
	})
	return t
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
func (d *Device) FromHost(t *tensor.Tensor) (dev *tensor.Tensor) {
	src, bytes := hostData("FromHost", t)
	d.launch("FromHost", func(k kernel) {
		s := k.alloc(t.Len(), t.DType(), false)
		if bytes > 0 && !s.buf.failed {
			k.run(func() C.int { return C.anc_to_device(d.ctx, s.buf.ptr, src, cll(bytes)) })
		}
		dev = tensor.FromStorage(s, t.DType(), t.Shape()...)
	})
	return dev
}

// ToHost copies a device tensor to a new host tensor. While a failure is
// pending (see Sync) nothing is copied: float32 elements read NaN.
func (d *Device) ToHost(t *tensor.Tensor) (h *tensor.Tensor) {
	ok := d.launch("ToHost", func(k kernel) {
		src := k.mem("t", t)
		if t.DType() == tensor.Int32 {
			h = tensor.NewInt32(t.Shape()...)
		} else {
			h = tensor.New(t.Shape()...)
		}
		if dst, bytes := hostData("ToHost", h); bytes > 0 {
			k.run(func() C.int { return C.anc_to_host(d.ctx, dst, src, cll(bytes)) })
		}
	})
	if !ok && t.DType() == tensor.Float32 {
		for i, f := 0, h.Float32s(); i < len(f); i++ {
			f[i] = float32(math.NaN())
		}
	}
	return h
}

// Copy copies src into dst: same dtype and size.
func (d *Device) Copy(dst, src *tensor.Tensor) {
	d.launch("Copy", func(k kernel) {
		if dst == nil || src == nil || dst.DType() != src.DType() || dst.Len() != src.Len() {
			panic(fmt.Sprintf("anomnet/cuda: Copy: dst %v, src %v", dst, src))
		}
		pd, ps := k.mem("dst", dst), k.mem("src", src)
		k.run(func() C.int { return C.anc_copy(d.ctx, pd, ps, cll(4*dst.Len())) })
	})
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
