//go:build cuda

package cuda

/*
#include "kernels/anomnet_cuda.h"
*/
import "C"

import (
	"fmt"
	"math"

	"github.com/org/anomnet/internal/tensor"
)

// The elementwise ops and reductions (kernels/elementwise.cu).

// arg is a tensor argument of an op, by its name in the op's signature.
type arg struct {
	name string
	t    *tensor.Tensor
}

// floats checks that each of args is float32 with n elements, then returns
// their memory, in order.
func (k kernel) floats(n int, args ...arg) []C.anc_dptr {
	for _, a := range args {
		check.ExpectSize(k.op, a.name, a.t, n)
	}
	p := make([]C.anc_dptr, len(args))
	for i, a := range args {
		p[i] = k.mem(a.name, a.t)
	}
	return p
}

// Fill sets every element of x to v.
func (d *Device) Fill(x *tensor.Tensor, v float32) {
	d.launch("Fill", func(k kernel) {
		p := k.floats(x.Len(), arg{"x", x})
		k.run(func() C.int { return C.anc_fill(d.ctx, p[0], cll(x.Len()), C.float(v)) })
	})
}

// Add sets dst = a + b; dst may alias a or b.
func (d *Device) Add(dst, a, b *tensor.Tensor) {
	d.launch("Add", func(k kernel) {
		n := dst.Len()
		p := k.floats(n, arg{"dst", dst}, arg{"a", a}, arg{"b", b})
		k.run(func() C.int { return C.anc_add(d.ctx, p[0], p[1], p[2], cll(n)) })
	})
}

// Axpy sets y += alpha*x.
func (d *Device) Axpy(alpha float32, x, y *tensor.Tensor) {
	d.launch("Axpy", func(k kernel) {
		n := y.Len()
		check.ExpectSize(k.op, "y", y, n)
		check.ExpectSize(k.op, "x", x, n)
		px, py := k.mem("x", x), k.mem("y", y)
		k.run(func() C.int { return C.anc_axpy(d.ctx, C.float(alpha), px, py, cll(n)) })
	})
}

// Scale sets x *= alpha.
func (d *Device) Scale(alpha float32, x *tensor.Tensor) {
	d.launch("Scale", func(k kernel) {
		p := k.floats(x.Len(), arg{"x", x})
		k.run(func() C.int { return C.anc_scale(d.ctx, C.float(alpha), p[0], cll(x.Len())) })
	})
}

// reduce runs Sum or Dot: body queues the kernel that sets *out. It
// returns *out, or NaN if the device has failed (see Sync).
func (d *Device) reduce(op string, body func(k kernel, out *C.double)) float64 {
	out := C.double(math.NaN())
	if !d.launch(op, func(k kernel) { body(k, &out) }) {
		return math.NaN()
	}
	return float64(out)
}

// Sum returns the sum of x's elements, accumulated in float64; NaN if the
// device has failed (see Sync).
func (d *Device) Sum(x *tensor.Tensor) float64 {
	return d.reduce("Sum", func(k kernel, out *C.double) {
		p := k.floats(x.Len(), arg{"x", x})
		k.run(func() C.int { return C.anc_sum(d.ctx, p[0], cll(x.Len()), out) })
	})
}

// Dot returns the dot product of x and y, the products and their sum in
// float64; NaN if the device has failed (see Sync).
func (d *Device) Dot(x, y *tensor.Tensor) float64 {
	return d.reduce("Dot", func(k kernel, out *C.double) {
		p := k.floats(x.Len(), arg{"x", x}, arg{"y", y})
		k.run(func() C.int { return C.anc_dot(d.ctx, p[0], p[1], cll(x.Len()), out) })
	})
}

// ReLU sets y = max(x, 0); y may alias x.
func (d *Device) ReLU(y, x *tensor.Tensor) {
	d.launch("ReLU", func(k kernel) {
		n := y.Len()
		p := k.floats(n, arg{"y", y}, arg{"x", x})
		k.run(func() C.int { return C.anc_relu(d.ctx, p[0], p[1], cll(n)) })
	})
}

// ReLUBackward sets dx = dy where y > 0, else 0; dx may alias dy.
func (d *Device) ReLUBackward(dx, dy, y *tensor.Tensor) {
	d.launch("ReLUBackward", func(k kernel) {
		n := dx.Len()
		p := k.floats(n, arg{"dx", dx}, arg{"dy", dy}, arg{"y", y})
		k.run(func() C.int { return C.anc_relu_backward(d.ctx, p[0], p[1], p[2], cll(n)) })
	})
}

// Adam applies one Adam step (PyTorch's, with L2 weight decay).
func (d *Device) Adam(param, grad, m, v *tensor.Tensor, p tensor.AdamParams) {
	d.launch("Adam", func(k kernel) {
		n := param.Len()
		check.ExpectSize(k.op, "param", param, n)
		check.ExpectSize(k.op, "grad", grad, n)
		check.ExpectSize(k.op, "m", m, n)
		check.ExpectSize(k.op, "v", v, n)
		if p.Step < 1 {
			panic(fmt.Sprintf("anomnet/cuda: Adam: step %d, want >= 1", p.Step))
		}
		bc1 := 1 - math.Pow(float64(p.Beta1), float64(p.Step))
		bc2 := 1 - math.Pow(float64(p.Beta2), float64(p.Step))
		step := float32(float64(p.LR) / bc1)
		sqrtBC2 := float32(math.Sqrt(bc2))
		pp, pg, pm, pv := k.mem("param", param), k.mem("grad", grad), k.mem("m", m), k.mem("v", v)
		k.run(func() C.int {
			return C.anc_adam(d.ctx, pp, pg, pm, pv, cll(n), C.float(step), C.float(sqrtBC2), C.float(p.Beta1), C.float(p.Beta2),
				C.float(p.Eps), C.float(p.WeightDecay))
		})
	})
}
