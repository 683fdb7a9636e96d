//go:build cuda

package cuda

/*
#include "kernels/anomnet_cuda.h"
*/
import "C"

import "github.com/org/anomnet/internal/tensor"

// The matrix product and the convolutions (kernels/conv.cu).

// Gemm sets c = alpha*op(a)*op(b) + beta*c.
func (d *Device) Gemm(transA, transB bool, alpha float32, a, b *tensor.Tensor, beta float32, c *tensor.Tensor) {
	d.launch("Gemm", func(k kernel) {
		m, n, inner := check.Gemm(transA, transB, a, b, c)
		lda, ldb := a.Dim(1), b.Dim(1)
		pa, pb, pc := k.mem("a", a), k.mem("b", b), k.mem("c", c)
		k.run(func() C.int {
			return C.anc_gemm(d.ctx, cbool(transA), cbool(transB), k.ci(m), k.ci(n), k.ci(inner), C.float(alpha),
				pa, k.ci(lda), pb, k.ci(ldb), C.float(beta), pc)
		})
	})
}

// conv checks a convolution as the CPU does and returns its geometry for
// the kernels.
func (k kernel) conv(x, w, y *tensor.Tensor, p tensor.Conv2DParams) C.anc_conv_geom {
	s := check.Conv(k.op, x, w, y, p)
	return C.anc_conv_geom{
		n: k.ci(s.N), c: k.ci(s.C), h: k.ci(s.H), w: k.ci(s.W),
		o: k.ci(s.O), kh: k.ci(s.KH), kw: k.ci(s.KW), oh: k.ci(s.OH), ow: k.ci(s.OW),
		sh: k.ci(p.StrideH), sw: k.ci(p.StrideW), ph: k.ci(p.PadH), pw: k.ci(p.PadW),
	}
}

// convBias is conv for the passes with an optional bias (or its gradient)
// of O elements, named bias.
func (k kernel) convBias(x, w, y *tensor.Tensor, p tensor.Conv2DParams, name string, bias *tensor.Tensor) C.anc_conv_geom {
	g := k.conv(x, w, y, p)
	if bias != nil {
		check.Expect(k.op, name, bias, tensor.Float32, int(g.o))
	}
	return g
}

// Conv2D sets y = conv(x, w) + bias, with p's accumulation and ReLU fused.
func (d *Device) Conv2D(y, x, w, bias *tensor.Tensor, p tensor.Conv2DParams) {
	d.launch("Conv2D", func(k kernel) {
		g := k.convBias(x, w, y, p, "bias", bias)
		py, px, pw, pb := k.mem("y", y), k.mem("x", x), k.mem("w", w), k.memOpt("bias", bias)
		k.run(func() C.int { return C.anc_conv2d(d.ctx, py, px, pw, pb, g, cbool(p.Accumulate), cbool(p.ReLU)) })
	})
}

// Conv2DBackwardData sets dx to the gradient with respect to x.
func (d *Device) Conv2DBackwardData(dx, dy, w *tensor.Tensor, p tensor.Conv2DParams) {
	d.launch("Conv2DBackwardData", func(k kernel) {
		g := k.conv(dx, w, dy, p)
		pdx, pdy, pw := k.mem("dx", dx), k.mem("dy", dy), k.mem("w", w)
		k.run(func() C.int { return C.anc_conv2d_backward_data(d.ctx, pdx, pdy, pw, g) })
	})
}

// Conv2DBackwardFilter sets dw, and dbias unless nil.
func (d *Device) Conv2DBackwardFilter(dw, dbias, x, dy *tensor.Tensor, p tensor.Conv2DParams) {
	d.launch("Conv2DBackwardFilter", func(k kernel) {
		g := k.convBias(x, dw, dy, p, "dbias", dbias)
		pdw, pdb, px, pdy := k.mem("dw", dw), k.memOpt("dbias", dbias), k.mem("x", x), k.mem("dy", dy)
		k.run(func() C.int { return C.anc_conv2d_backward_filter(d.ctx, pdw, pdb, px, pdy, g) })
	})
}
