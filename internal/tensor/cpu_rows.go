package tensor

import (
	"fmt"
	"math"

	fastgemm "github.com/org/anomnet/internal/gemm"
)

// rowBlock is how many rows the row-wise ops hand to one GEMM: large enough
// for the GEMM to run at speed, small enough that the block of scores stays
// in cache.
const rowBlock = 128

// labels checks that t is an int32 vector of n elements.
func labels(op, name string, t *Tensor, n int) []int32 {
	check.Expect(op, name, t, Int32, n)
	return t.Int32s()
}

// Nearest finds each row's nearest centroid. Candidate distances come from
// the expansion |x|^2 - 2 x.c + |c|^2 with a blas32 GEMM for the dot
// products; every candidate within rounding of the best is then measured
// directly in float64, so that the reported distance is accurate and exact
// ties go to the lowest index whatever order the GEMM summed in.
func (CPU) Nearest(idx, dist, x, c *Tensor) {
	n, d := check.Matrix("Nearest", "x", x)
	k, dc := check.Matrix("Nearest", "c", c)
	if dc != d || k == 0 {
		panic(fmt.Sprintf("anomnet/tensor: Nearest: x %v, c %v", x, c))
	}
	var is []int32
	var ds []float32
	if idx != nil {
		is = labels("Nearest", "idx", idx, n)
	}
	if dist != nil {
		check.Expect("Nearest", "dist", dist, Float32, n)
		ds = dist.Float32s()
	}
	xs, cs := x.Float32s(), c.Float32s()
	cn := make([]float32, k)
	for j := range k {
		cn[j] = sqNorm(cs[j*d : (j+1)*d])
	}
	blocks := (n + rowBlock - 1) / rowBlock
	// The centroids packed once for all blocks of rows, not once per
	// block (the same products).
	var pb *fastgemm.PackedB
	if ownGEMM() && blocks > 1 && d > 0 {
		pb = fastgemm.PackB(true, d, k, cs, d)
	}
	parallelFor(blocks, rowBlock*k*d, func(lo, hi int) {
		dots := make([]float32, rowBlock*k)
		for b := lo; b < hi; b++ {
			r0, r1 := b*rowBlock, min((b+1)*rowBlock, n)
			if pb != nil {
				fastgemm.SgemmPackedB(false, r1-r0, 1, xs[r0*d:r1*d], d, pb, 0, dots, k)
			} else {
				gemm(false, true, 1, xs[r0*d:r1*d], d, cs, d, 0, dots, r1-r0, k, d)
			}
			for i := r0; i < r1; i++ {
				xi := xs[i*d : (i+1)*d]
				xn := sqNorm(xi)
				row := dots[(i-r0)*k : (i-r0+1)*k]
				best := float32(math.Inf(1))
				for j, dot := range row {
					row[j] = xn - 2*dot + cn[j]
					best = min(best, row[j])
				}
				bi, bd := -1, math.Inf(1)
				for j, d2 := range row {
					if d2 <= best+3e-5*(xn+cn[j])+1e-30 || d2 != d2 {
						if e := SqDist(xi, cs[j*d:(j+1)*d]); e < bd || bi < 0 {
							bi, bd = j, e
						}
					}
				}
				if is != nil {
					is[i] = int32(bi)
				}
				if ds != nil {
					ds[i] = float32(math.Sqrt(max(bd, 0)))
				}
			}
		}
	})
}

func sqNorm(a []float32) float32 {
	var s float32
	for _, v := range a {
		s += v * v
	}
	return s
}

// SqDist is the squared Euclidean distance of a and b (a's length),
// accumulated in float64: the exact re-ranking of Nearest, and the
// reference that the centroid seeding measures with.
func SqDist(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		t := float64(v) - float64(b[i])
		s += t * t
	}
	return s
}

// GatherRows sets y[i] = x[idx[i]].
func (CPU) GatherRows(y, x, idx *Tensor) {
	m, d := check.Matrix("GatherRows", "y", y)
	r, dx := check.Matrix("GatherRows", "x", x)
	if dx != d {
		panic(fmt.Sprintf("anomnet/tensor: GatherRows: y %v, x %v", y, x))
	}
	is := labels("GatherRows", "idx", idx, m)
	ys, xs := y.Float32s(), x.Float32s()
	for i, j := range is {
		if j < 0 || int(j) >= r {
			panic(fmt.Sprintf("anomnet/tensor: GatherRows: idx[%d] = %d out of %d rows", i, j, r))
		}
		copy(ys[i*d:(i+1)*d], xs[int(j)*d:(int(j)+1)*d])
	}
}

// ScatterAddRows adds row i of x to row idx[i] of y; columns are split among
// goroutines so that no two write the same element.
func (CPU) ScatterAddRows(y, x, idx *Tensor) {
	r, d := check.Matrix("ScatterAddRows", "y", y)
	m, dx := check.Matrix("ScatterAddRows", "x", x)
	if dx != d {
		panic(fmt.Sprintf("anomnet/tensor: ScatterAddRows: y %v, x %v", y, x))
	}
	is := labels("ScatterAddRows", "idx", idx, m)
	for i, j := range is {
		if j < 0 || int(j) >= r {
			panic(fmt.Sprintf("anomnet/tensor: ScatterAddRows: idx[%d] = %d out of %d rows", i, j, r))
		}
	}
	ys, xs := y.Float32s(), x.Float32s()
	parallelFor(d, m, func(lo, hi int) {
		for i, j := range is {
			dst, src := ys[int(j)*d+lo:int(j)*d+hi], xs[i*d+lo:i*d+hi]
			for t, v := range src {
				dst[t] += v
			}
		}
	})
}

// NormalizeRows scales each row to unit length, the norm clamped at eps.
func (CPU) NormalizeRows(z, norms, x *Tensor, eps float32) {
	m, d := check.Matrix("NormalizeRows", "x", x)
	check.Expect("NormalizeRows", "z", z, Float32, m, d)
	var ns []float32
	if norms != nil {
		check.Expect("NormalizeRows", "norms", norms, Float32, m)
		ns = norms.Float32s()
	}
	zs, xs := z.Float32s(), x.Float32s()
	parallelFor(m, 3*d, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			n := rowNorm(xs[i*d:(i+1)*d], eps)
			if ns != nil {
				ns[i] = n
			}
			for t, v := range xs[i*d : (i+1)*d] {
				zs[i*d+t] = v / n
			}
		}
	})
}

// rowNorm is max(||a||, eps), summed in float64.
func rowNorm(a []float32, eps float32) float32 {
	var s float64
	for _, v := range a {
		s += float64(v) * float64(v)
	}
	return max(float32(math.Sqrt(s)), eps)
}

// NormalizeRowsBackward projects dz onto the tangent space of each unit row.
func (CPU) NormalizeRowsBackward(dx, dz, z, norms *Tensor, eps float32) {
	m, d := check.Matrix("NormalizeRowsBackward", "z", z)
	check.Expect("NormalizeRowsBackward", "dz", dz, Float32, m, d)
	check.Expect("NormalizeRowsBackward", "dx", dx, Float32, m, d)
	check.Expect("NormalizeRowsBackward", "norms", norms, Float32, m)
	dxs, dzs, zs, ns := dx.Float32s(), dz.Float32s(), z.Float32s(), norms.Float32s()
	parallelFor(m, 4*d, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g, zi, out := dzs[i*d:(i+1)*d], zs[i*d:(i+1)*d], dxs[i*d:(i+1)*d]
			n := ns[i]
			if n <= eps {
				for t, v := range g {
					out[t] = v / eps
				}
				continue
			}
			var p float64
			for t, v := range g {
				p += float64(v) * float64(zi[t])
			}
			pf := float32(p)
			for t, v := range g {
				out[t] = (v - pf*zi[t]) / n
			}
		}
	})
}

// CosineSimilarity normalises the rows and multiplies them by their
// transpose with one GEMM.
func (cpu CPU) CosineSimilarity(s, x *Tensor, eps float32) {
	m, d := check.Matrix("CosineSimilarity", "x", x)
	check.Expect("CosineSimilarity", "s", s, Float32, m, m)
	z := New(m, d)
	cpu.NormalizeRows(z, nil, x, eps)
	gemm(false, true, 1, z.Float32s(), d, z.Float32s(), d, 0, s.Float32s(), m, m, d)
}

// NegativeHinge works through blocks of rows: one GEMM gives the block's
// similarities to every row, the hinge is summed per row, and a second GEMM
// with the 0/1 mask of active pairs gives the gradient.
func (CPU) NegativeHinge(loss, grad, z, y *Tensor, margin float32) {
	m, d := check.Matrix("NegativeHinge", "z", z)
	check.Expect("NegativeHinge", "loss", loss, Float32, m)
	ys := labels("NegativeHinge", "y", y, m)
	var gs []float32
	if grad != nil {
		check.Expect("NegativeHinge", "grad", grad, Float32, m, d)
		gs = grad.Float32s()
	}
	zs, ls := z.Float32s(), loss.Float32s()
	blocks := (m + rowBlock - 1) / rowBlock
	parallelFor(blocks, 2*rowBlock*m*d, func(lo, hi int) {
		sim := make([]float32, rowBlock*m)
		for b := lo; b < hi; b++ {
			r0, r1 := b*rowBlock, min((b+1)*rowBlock, m)
			gemm(false, true, 1, zs[r0*d:r1*d], d, zs, d, 0, sim, r1-r0, m, d)
			for i := r0; i < r1; i++ {
				row := sim[(i-r0)*m : (i-r0+1)*m]
				var l float64
				for j, s := range row {
					if ys[j] != ys[i] && s > margin {
						l += float64(s - margin)
						row[j] = 1
					} else {
						row[j] = 0
					}
				}
				ls[i] = float32(l)
			}
			if gs != nil {
				gemm(false, false, 1, sim, m, zs, d, 0, gs[r0*d:r1*d], r1-r0, d, m)
			}
		}
	})
}
