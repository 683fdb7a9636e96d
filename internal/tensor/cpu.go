package tensor

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"

	fastgemm "github.com/org/anomnet/internal/gemm"
)

// CPU is the Device that always builds, with no cgo. Its tensors are host
// tensors; its matrix products run on anomnet's SIMD GEMM (package
// internal/gemm: Go assembly on amd64, Go elsewhere) unless a program
// installs another BLAS with gonum's blas32.Use; its ops spread over
// GOMAXPROCS goroutines. The zero value is ready to
// use and safe for concurrent use.
type CPU struct{}

var _ Device = CPU{}

// Name returns "cpu".
func (CPU) Name() string { return "cpu" }

// Zeros returns a new host tensor.
func (CPU) Zeros(shape ...int) *Tensor { return New(shape...) }

// ZerosInt32 returns a new host int32 tensor.
func (CPU) ZerosInt32(shape ...int) *Tensor { return NewInt32(shape...) }

// FromHost returns a copy of t, so that the caller may reuse t.
func (CPU) FromHost(t *Tensor) *Tensor { return hostCopy(t) }

// ToHost returns a copy of t.
func (CPU) ToHost(t *Tensor) *Tensor { return hostCopy(t) }

func hostCopy(t *Tensor) *Tensor {
	switch t.dtype {
	case Int32:
		return FromInt32s(append([]int32(nil), t.Int32s()...), t.shape...)
	default:
		return FromFloat32s(append([]float32(nil), t.Float32s()...), t.shape...)
	}
}

// Copy copies src into dst.
func (CPU) Copy(dst, src *Tensor) {
	if dst.dtype != src.dtype || dst.Len() != src.Len() {
		panic(fmt.Sprintf("anomnet/tensor: Copy: dst %v, src %v", dst, src))
	}
	if dst.dtype == Int32 {
		copy(dst.Int32s(), src.Int32s())
		return
	}
	copy(dst.Float32s(), src.Float32s())
}

// Free does nothing: the garbage collector owns host memory.
func (CPU) Free(*Tensor) {}

// Sync returns nil: CPU ops finish before they return and cannot fail.
func (CPU) Sync() error { return nil }

// Fill sets every element of x to v.
func (CPU) Fill(x *Tensor, v float32) {
	d := x.Float32s()
	parallelFor(len(d), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] = v
		}
	})
}

// Add sets dst = a + b.
func (CPU) Add(dst, a, b *Tensor) {
	check.ExpectSize("Add", "a", a, dst.Len())
	check.ExpectSize("Add", "b", b, dst.Len())
	y, p, q := dst.Float32s(), a.Float32s(), b.Float32s()
	parallelFor(len(y), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = p[i] + q[i]
		}
	})
}

// Axpy sets y += alpha*x.
func (CPU) Axpy(alpha float32, x, y *Tensor) {
	check.ExpectSize("Axpy", "x", x, y.Len())
	xs, ys := x.Float32s(), y.Float32s()
	parallelFor(len(ys), 2, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ys[i] += alpha * xs[i]
		}
	})
}

// Scale sets x *= alpha.
func (CPU) Scale(alpha float32, x *Tensor) {
	d := x.Float32s()
	parallelFor(len(d), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] *= alpha
		}
	})
}

// Sum returns the sum of x's elements in float64.
func (CPU) Sum(x *Tensor) float64 {
	d := x.Float32s()
	return reduce(len(d), func(lo, hi int) float64 {
		var s float64
		for _, v := range d[lo:hi] {
			s += float64(v)
		}
		return s
	})
}

// Dot returns the dot product of x and y in float64.
func (CPU) Dot(x, y *Tensor) float64 {
	check.ExpectSize("Dot", "y", y, x.Len())
	a, b := x.Float32s(), y.Float32s()
	return reduce(len(a), func(lo, hi int) float64 {
		var s float64
		for i := lo; i < hi; i++ {
			s += float64(a[i]) * float64(b[i])
		}
		return s
	})
}

// reduce sums part(lo, hi) over chunks of [0, n) computed in parallel, in
// a fixed chunk order so that the result does not depend on scheduling.
func reduce(n int, part func(lo, hi int) float64) float64 {
	const chunk = 1 << 14
	parts := make([]float64, (n+chunk-1)/chunk)
	parallelFor(len(parts), chunk, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			parts[c] = part(c*chunk, min((c+1)*chunk, n))
		}
	})
	var s float64
	for _, p := range parts {
		s += p
	}
	return s
}

// Gemm sets c = alpha*op(a)*op(b) + beta*c through blas32.
func (CPU) Gemm(transA, transB bool, alpha float32, a, b *Tensor, beta float32, c *Tensor) {
	m, n, k := check.Gemm(transA, transB, a, b, c)
	gemm(transA, transB, alpha, a.Float32s(), a.Dim(1), b.Float32s(), b.Dim(1), beta, c.Float32s(), m, n, k)
}

// ownGEMM reports whether products run on package internal/gemm: true
// unless a program installed another BLAS with blas32.Use.
func ownGEMM() bool {
	_, native := blas32.Implementation().(gonum.Implementation)
	return native
}

// gemm is Gemm on row-major slices: a has lda columns as stored, b has ldb;
// c is m x n. With beta = 0, c's old contents are ignored even if NaN. It
// runs anomnet's own SIMD GEMM unless the program installed another BLAS
// with blas32.Use, which then does the work.
func gemm(transA, transB bool, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, m, n, k int) {
	if ownGEMM() {
		fastgemm.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, n)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	if beta == 0 {
		clear(c[:m*n])
	}
	if k == 0 || alpha == 0 {
		if beta != 0 && beta != 1 {
			for i := range c[:m*n] {
				c[i] *= beta
			}
		}
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	ar, ac := m, k
	if transA {
		ta, ar, ac = blas.Trans, k, m
	}
	br, bc := k, n
	if transB {
		tb, br, bc = blas.Trans, n, k
	}
	blas32.Gemm(ta, tb, alpha,
		blas32.General{Rows: ar, Cols: ac, Stride: max(lda, 1), Data: a},
		blas32.General{Rows: br, Cols: bc, Stride: max(ldb, 1), Data: b},
		beta,
		blas32.General{Rows: m, Cols: n, Stride: n, Data: c})
}

// Adam applies one step of Adam with L2 weight decay added to the gradient.
func (CPU) Adam(param, grad, m, v *Tensor, p AdamParams) {
	n := param.Len()
	check.ExpectSize("Adam", "grad", grad, n)
	check.ExpectSize("Adam", "m", m, n)
	check.ExpectSize("Adam", "v", v, n)
	if p.Step < 1 {
		panic(fmt.Sprintf("anomnet/tensor: Adam: step %d, want >= 1", p.Step))
	}
	w, g, ms, vs := param.Float32s(), grad.Float32s(), m.Float32s(), v.Float32s()
	bc1 := 1 - math.Pow(float64(p.Beta1), float64(p.Step))
	bc2 := 1 - math.Pow(float64(p.Beta2), float64(p.Step))
	// PyTorch: p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
	stepSize := float32(float64(p.LR) / bc1)
	sqrtBC2 := float32(math.Sqrt(bc2))
	parallelFor(n, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := g[i] + p.WeightDecay*w[i]
			ms[i] = p.Beta1*ms[i] + (1-p.Beta1)*gi
			vs[i] = p.Beta2*vs[i] + (1-p.Beta2)*gi*gi
			denom := float32(math.Sqrt(float64(vs[i])))/sqrtBC2 + p.Eps
			w[i] -= stepSize * ms[i] / denom
		}
	})
}
