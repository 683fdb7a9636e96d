package report

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// PCA block subspace iteration: the block holds the 2 wanted components
// and pcaExtra more, so that the error of the second shrinks by
// lambda[2+pcaExtra] / lambda[1] per step rather than lambda[2] / lambda[1].
const (
	pcaExtra = 8
	pcaIters = 100  // a cap, reached only when lambda[1] ~ lambda[2+pcaExtra]
	pcaTol   = 1e-9 // change of the unit component vectors between steps
)

// PCA2 projects rows (each n x dim, row-major) onto the first two principal
// components of fit (n' x dim, row-major; for example the features of the
// first snapshot, so that later ones are drawn in the same frame). It
// returns the components (unit vectors, the first of the larger variance),
// the mean of fit, and per slice of rows the coordinates x = (r - mean) .
// basis[0] and y = (r - mean) . basis[1] of each of its rows.
//
// The components come from block subspace iteration on the covariance,
// applied as X^T (X V) to a dim x min(10, dim) block V (random from a fixed
// seed; X is the centred fit), with a Rayleigh-Ritz step each iteration.
// A step costs about 40 n' dim flops and needs neither the dim x dim
// covariance nor the n' x n' Gram matrix (1536 and 2000 wide for anomnet's
// features, whose eigen-decomposition would take seconds). The result is
// exact once the block spans R^dim (dim <= 10) or the data (n' <= 10);
// otherwise the error falls by eigenvalue 11 over eigenvalue 2 per step.
// The iteration stops when both components move less than 1e-9 in a step,
// or after 100 steps, which takes eigenvalues 2 to 11 nearly equal, when
// the second component is ill-defined anyway.
//
// Each component's sign makes its largest-magnitude loading positive (the
// first of equal ones), so that the result is deterministic. When fit has
// fewer than two directions of variance (a single row, for example) the
// missing components are arbitrary unit vectors orthogonal to the others;
// for dim 1 the second component is zero.
func PCA2(fit []float32, dim int, rows ...[]float32) (basis [2][]float64, mean []float64, proj [][2][]float64) {
	if dim < 1 || len(fit) == 0 || len(fit)%dim != 0 {
		panic(fmt.Sprintf("anomnet/report: PCA2: %d values to fit do not make rows of width %d", len(fit), dim))
	}
	for i, r := range rows {
		if len(r)%dim != 0 {
			panic(fmt.Sprintf("anomnet/report: PCA2: set %d has %d values, not rows of width %d", i, len(r), dim))
		}
	}
	n := len(fit) / dim
	mean = make([]float64, dim)
	for i := range n {
		for j, v := range fit[i*dim : (i+1)*dim] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	x := mat.NewDense(n, dim, nil)
	for i := range n {
		row := x.RawRowView(i)
		for j, v := range fit[i*dim : (i+1)*dim] {
			row[j] = float64(v) - mean[j]
		}
	}

	u := components(x, min(2+pcaExtra, dim))
	for c := range 2 {
		basis[c] = make([]float64, dim)
		if c < u.RawMatrix().Cols {
			mat.Col(basis[c], c, u)
			orient(basis[c])
		}
	}

	proj = make([][2][]float64, len(rows))
	for s, r := range rows {
		m := len(r) / dim
		for c := range 2 {
			proj[s][c] = make([]float64, m)
		}
		for i := range m {
			var px, py float64
			for j, v := range r[i*dim : (i+1)*dim] {
				d := float64(v) - mean[j]
				px += d * basis[0][j]
				py += d * basis[1][j]
			}
			proj[s][0][i], proj[s][1][i] = px, py
		}
	}
	return basis, mean, proj
}

// components returns, as the columns of a dim x min(2, k) matrix, the
// leading eigenvectors of X^T X (the first the largest) found by subspace
// iteration with a block of k columns.
func components(x *mat.Dense, k int) *mat.Dense {
	_, dim := x.Dims()
	want := min(2, k)
	rng := rand.New(rand.NewPCG(1, 2))
	v := mat.NewDense(dim, k, nil)
	for i := range dim {
		for j := range k {
			v.Set(i, j, rng.NormFloat64())
		}
	}
	orthonormalize(v)

	var xv, y, z mat.Dense
	var h mat.SymDense
	var eig mat.EigenSym
	lead := mat.NewDense(k, want, nil)
	ritz := mat.NewDense(dim, want, nil)
	prev := mat.NewDense(dim, want, nil)
	for it := range pcaIters {
		xv.Mul(x, v)           // n x k
		h.SymOuterK(1, xv.T()) // k x k: V^T X^T X V
		if !eig.Factorize(&h, true) {
			panic("anomnet/report: PCA2: eigen-decomposition of the projected covariance failed")
		}
		eig.VectorsTo(&y)
		// EigenSym sorts the eigenvalues ascending: take the last columns.
		for c := range want {
			lead.SetCol(c, mat.Col(nil, k-1-c, &y))
		}
		ritz.Mul(v, lead)
		if it > 0 && converged(ritz, prev) {
			break
		}
		prev.Copy(ritz)
		z.Mul(x.T(), &xv) // dim x k: X^T X V
		v.Copy(&z)
		orthonormalize(v)
	}
	return ritz
}

// converged says whether every column of a equals that of b up to sign
// within pcaTol.
func converged(a, b *mat.Dense) bool {
	r, c := a.Dims()
	for j := range c {
		var d, s float64
		for i := range r {
			p, q := a.At(i, j), b.At(i, j)
			d += (p - q) * (p - q)
			s += (p + q) * (p + q)
		}
		if math.Sqrt(min(d, s)) > pcaTol {
			return false
		}
	}
	return true
}

// orthonormalize makes the columns of m (dim x k, k <= dim) orthonormal,
// spanning what they spanned where they are independent, by classical
// Gram-Schmidt applied twice (as accurate as Householder for so few
// columns). A column (nearly) in the span of those before it is replaced by
// the first unit vector e_i that is not.
func orthonormalize(m *mat.Dense) {
	dim, k := m.Dims()
	col := make([]float64, dim)
	next := 0 // the next e_i to try
	for j := 0; j < k; j++ {
		mat.Col(col, j, m)
		n0 := floats.Norm(col, 2)
		for range 2 {
			for i := range j {
				var dot float64
				for t := range dim {
					dot += m.At(t, i) * col[t]
				}
				for t := range dim {
					col[t] -= dot * m.At(t, i)
				}
			}
		}
		n := floats.Norm(col, 2)
		if !(n > 1e-10*n0) {
			if next >= dim {
				panic("anomnet/report: PCA2: no unit vector completes the basis")
			}
			// Replace by e_next and redo the column.
			for t := range dim {
				m.Set(t, j, 0)
			}
			m.Set(next, j, 1)
			next++
			j--
			continue
		}
		for t := range dim {
			m.Set(t, j, col[t]/n)
		}
	}
}

// orient flips v so that its largest-magnitude entry is positive.
func orient(v []float64) {
	big := 0
	for i, x := range v {
		if math.Abs(x) > math.Abs(v[big]) {
			big = i
		}
	}
	if v[big] < 0 {
		for i := range v {
			v[i] = -v[i]
		}
	}
}
