//go:build cuda

package cuda

/*
#include "kernels/anomnet_cuda.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/org/anomnet/internal/tensor"
)

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

// check is the shape checks of package tensor, with this package's prefix.
const check = tensor.Check("anomnet/cuda")

// launch is the opening of every op: it takes the device's lock (an op on
// a closed Device panics) and runs body, which checks the arguments, finds
// their memory (kernel.mem) and queues the C calls (kernel.run) under the
// lock. It reports whether the device is free of failures afterwards: if
// not, the op's results must not be read (Sync returns the failure).
func (d *Device) launch(op string, body func(k kernel)) (ok bool) {
	d.lock()
	defer d.mu.Unlock()
	body(kernel{d: d, op: op})
	return d.err == nil
}

// kernel is an op at work under its device's lock (see launch); op names
// it in panics and in the failure it leaves for Sync.
type kernel struct {
	d  *Device
	op string
}

// run queues a C call unless a failure is pending, and keeps its failure.
func (k kernel) run(call func() C.int) {
	if k.d.err != nil {
		return
	}
	if st := call(); st != 0 {
		k.d.err = k.d.status(k.op, st)
	}
}

// mem returns the device address of t's elements, checking that t, the
// argument called name, is a live tensor of the device.
func (k kernel) mem(name string, t *tensor.Tensor) C.anc_dptr {
	d, op := k.d, k.op
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
	return s.buf.ptr + C.anc_dptr(4*s.off)
}

// memOpt is mem for optional arguments: 0 for nil.
func (k kernel) memOpt(name string, t *tensor.Tensor) C.anc_dptr {
	if t == nil {
		return 0
	}
	return k.mem(name, t)
}

// ci converts a size to a C int, which every kernel dimension is.
func (k kernel) ci(v int) C.int {
	if v < math.MinInt32 || v > math.MaxInt32 {
		panic(fmt.Sprintf("anomnet/cuda: %s: size %d does not fit the kernels' 32-bit dimensions", k.op, v))
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

// fastDiv divides each of n (0 <= n < 2^31) by d (>= 1) as the kernels'
// index arithmetic does (FastDiv in kernels/common.cuh, on the host).
func fastDiv(d int32, n []int32) []int32 {
	q := make([]int32, len(n))
	if len(n) > 0 {
		C.anc_fast_div(C.int(d), (*C.int)(unsafe.Pointer(&n[0])), (*C.int)(unsafe.Pointer(&q[0])), cll(len(n)))
	}
	return q
}

// tf32 rounds each of x to TF32 as the tensor-core products round their
// inputs (tf32 in kernels/mma.cuh, on the host).
func tf32(x []float32) []float32 {
	y := make([]float32, len(x))
	if len(x) > 0 {
		C.anc_tf32((*C.float)(unsafe.Pointer(&x[0])), (*C.float)(unsafe.Pointer(&y[0])), cll(len(x)))
	}
	return y
}
