//go:build cuda

package cuda

/*
#include "kernels/anomnet_cuda.h"
*/
import "C"

import (
	"fmt"

	"github.com/org/anomnet/internal/tensor"
)

// The row-wise ops on matrices (kernels/rows.cu).

// Nearest finds each row's nearest centroid: idx (int32) and dist, either
// of which may be nil.
func (d *Device) Nearest(idx, dist, x, c *tensor.Tensor) {
	d.launch("Nearest", func(k kernel) {
		n, dim := check.Matrix(k.op, "x", x)
		kc, dc := check.Matrix(k.op, "c", c)
		if dc != dim || kc == 0 {
			panic(fmt.Sprintf("anomnet/cuda: Nearest: x %v, c %v", x, c))
		}
		if idx != nil {
			check.Expect(k.op, "idx", idx, tensor.Int32, n)
		}
		if dist != nil {
			check.Expect(k.op, "dist", dist, tensor.Float32, n)
		}
		pi, pd, px, pc := k.memOpt("idx", idx), k.memOpt("dist", dist), k.mem("x", x), k.mem("c", c)
		k.run(func() C.int { return C.anc_nearest(d.ctx, pi, pd, px, pc, cll(n), k.ci(kc), k.ci(dim)) })
	})
}

// indexRows runs GatherRows (m rows of y from the r of x) or, with
// scatter, ScatterAddRows (m rows of x into the r of y), idx being the m
// indices; f queues the kernel.
func (d *Device) indexRows(op string, y, x, idx *tensor.Tensor, scatter bool,
	f func(py, px, pi C.anc_dptr, m C.longlong, dim C.int, r C.longlong) C.int) {
	d.launch(op, func(k kernel) {
		yr, dim := check.Matrix(op, "y", y)
		xr, dx := check.Matrix(op, "x", x)
		if dx != dim {
			panic(fmt.Sprintf("anomnet/cuda: %s: y %v, x %v", op, y, x))
		}
		m, r := yr, xr
		if scatter {
			m, r = xr, yr
		}
		check.Expect(op, "idx", idx, tensor.Int32, m)
		py, px, pi := k.mem("y", y), k.mem("x", x), k.mem("idx", idx)
		k.run(func() C.int { return f(py, px, pi, cll(m), k.ci(dim), cll(r)) })
	})
}

// GatherRows sets y[i] = x[idx[i]]. An index out of range is reported by
// the next Sync (the kernel cannot panic), and its row is left alone.
func (d *Device) GatherRows(y, x, idx *tensor.Tensor) {
	d.indexRows("GatherRows", y, x, idx, false, func(py, px, pi C.anc_dptr, m C.longlong, dim C.int, r C.longlong) C.int {
		return C.anc_gather_rows(d.ctx, py, px, pi, m, dim, r)
	})
}

// ScatterAddRows adds row i of x to row idx[i] of y. An index out of range
// is reported by the next Sync, and its row is skipped.
func (d *Device) ScatterAddRows(y, x, idx *tensor.Tensor) {
	d.indexRows("ScatterAddRows", y, x, idx, true, func(py, px, pi C.anc_dptr, m C.longlong, dim C.int, r C.longlong) C.int {
		return C.anc_scatter_add_rows(d.ctx, py, px, pi, m, dim, r)
	})
}

// NormalizeRows sets z[i] = x[i]/max(||x[i]||, eps), and the clamped norms
// unless norms is nil.
func (d *Device) NormalizeRows(z, norms, x *tensor.Tensor, eps float32) {
	d.launch("NormalizeRows", func(k kernel) {
		m, dim := check.Matrix(k.op, "x", x)
		check.Expect(k.op, "z", z, tensor.Float32, m, dim)
		if norms != nil {
			check.Expect(k.op, "norms", norms, tensor.Float32, m)
		}
		pz, pn, px := k.mem("z", z), k.memOpt("norms", norms), k.mem("x", x)
		k.run(func() C.int { return C.anc_normalize_rows(d.ctx, pz, pn, px, cll(m), k.ci(dim), C.float(eps)) })
	})
}

// NormalizeRowsBackward sets dx to the gradient through NormalizeRows.
func (d *Device) NormalizeRowsBackward(dx, dz, z, norms *tensor.Tensor, eps float32) {
	d.launch("NormalizeRowsBackward", func(k kernel) {
		m, dim := check.Matrix(k.op, "z", z)
		check.Expect(k.op, "dz", dz, tensor.Float32, m, dim)
		check.Expect(k.op, "dx", dx, tensor.Float32, m, dim)
		check.Expect(k.op, "norms", norms, tensor.Float32, m)
		pdx, pdz, pz, pn := k.mem("dx", dx), k.mem("dz", dz), k.mem("z", z), k.mem("norms", norms)
		k.run(func() C.int {
			return C.anc_normalize_rows_backward(d.ctx, pdx, pdz, pz, pn, cll(m), k.ci(dim), C.float(eps))
		})
	})
}

// CosineSimilarity sets s to the cosine similarities of x's rows.
func (d *Device) CosineSimilarity(s, x *tensor.Tensor, eps float32) {
	d.launch("CosineSimilarity", func(k kernel) {
		m, dim := check.Matrix(k.op, "x", x)
		check.Expect(k.op, "s", s, tensor.Float32, m, m)
		ps, px := k.mem("s", s), k.mem("x", x)
		k.run(func() C.int { return C.anc_cosine_similarity(d.ctx, ps, px, k.ci(m), k.ci(dim), C.float(eps)) })
	})
}

// NegativeHinge computes the per-row hinge loss of the contrastive negative
// term, and its gradient unless grad is nil, without storing the M x M
// similarities (only, for the gradient, a packed bit per pair).
func (d *Device) NegativeHinge(loss, grad, z, y *tensor.Tensor, margin float32) {
	d.launch("NegativeHinge", func(k kernel) {
		m, dim := check.Matrix(k.op, "z", z)
		check.Expect(k.op, "loss", loss, tensor.Float32, m)
		check.Expect(k.op, "y", y, tensor.Int32, m)
		if grad != nil {
			check.Expect(k.op, "grad", grad, tensor.Float32, m, dim)
		}
		pl, pg, pz, py := k.mem("loss", loss), k.memOpt("grad", grad), k.mem("z", z), k.mem("y", y)
		k.run(func() C.int {
			return C.anc_negative_hinge(d.ctx, pl, pg, pz, py, k.ci(m), k.ci(dim), C.float(margin))
		})
	})
}
