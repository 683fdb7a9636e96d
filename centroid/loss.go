package centroid

import (
	"fmt"
	"math"
	"runtime"

	"gonum.org/v1/gonum/mat"

	"github.com/org/anomnet/internal/gemm"
	"github.com/org/anomnet/internal/parallel"
	"github.com/org/anomnet/internal/tensor"
)

// Attraction computes METHOD.md's attraction loss of feature rows f
// (N x D) to centroids c (K x D), both on device d,
//
//	L_att = (1/N) sum_i min_k ||f_i - c_k||^2,
//
// and returns its value (0 for no rows). It adds weight times the gradient
// into df (N x D) and dc (K x D) unless they are nil:
//
//	dL/df_i = (2/N) (f_i - c_k*(i)),  dL/dc_k = -(2/N) sum_{i: k*(i)=k} (f_i - c_k),
//
// k*(i) being row i's nearest centroid (Device.Nearest). The bulk work
// (O(N K D) search, O(N D) gradients) runs as Device ops; N x D scratch is
// allocated on d and freed before it returns.
func Attraction(d tensor.Device, f, c *tensor.Tensor, weight float32, df, dc *tensor.Tensor) float64 {
	n, dim := matrix("Attraction", "f", f)
	k, cdim := matrix("Attraction", "c", c)
	if cdim != dim || k == 0 {
		panic(fmt.Sprintf("anomnet/centroid: Attraction: f %v, c %v", f, c))
	}
	sameShape("Attraction", "df", df, f)
	sameShape("Attraction", "dc", dc, c)
	if n == 0 {
		return 0
	}
	idx := d.ZerosInt32(n)
	dist := d.Zeros(n)
	defer d.Free(idx)
	defer d.Free(dist)
	d.Nearest(idx, dist, f, c)
	// Nearest measures the distances in float64 before rounding them, so
	// the value is more accurate than one from float32 differences.
	loss := d.Dot(dist, dist) / float64(n)
	if (df == nil && dc == nil) || weight == 0 {
		return loss
	}
	// g = s (c_k* - f_i) with s = 2 weight / N: dc's contribution per row,
	// and minus df's.
	s := 2 * weight / float32(n)
	g := d.Zeros(n, dim)
	defer d.Free(g)
	d.GatherRows(g, c, idx)
	d.Scale(s, g)
	d.Axpy(-s, f, g)
	if dc != nil {
		d.ScatterAddRows(dc, g, idx)
	}
	if df != nil {
		d.Axpy(-1, g, df)
	}
	return loss
}

// Separation computes METHOD.md's separation loss of centroids c (K x D on
// device d) with threshold delta,
//
//	L_sep = 2/(K(K-1)) sum_{k<l} max(0, delta - ||c_k - c_l||)^2,
//
// the mean squared shortfall over pairs, and returns its value (0 when
// K < 2). It adds weight times the gradient into dc unless dc is nil. The
// gradient of a pair of coincident centroids is taken as 0 (the direction
// is undefined there); InitMean's jitter keeps centroids apart.
//
// The pairs inside delta are found from a float32 Gram matrix of the
// centred centroids (a GEMM, block by block of rows), with a margin that
// exceeds its rounding, so that no pair inside delta is missed; only
// those pairs are measured, on the host in float64, as the sum runs. The
// work is O(K^2 D) in float32 and O(P D) in float64 for P pairs inside.
func Separation(d tensor.Device, c *tensor.Tensor, delta float64, weight float32, dc *tensor.Tensor) float64 {
	k, dim := matrix("Separation", "c", c)
	sameShape("Separation", "dc", dc, c)
	if k < 2 || delta <= 0 { // no distance is below delta <= 0
		return 0
	}
	if math.IsNaN(delta) {
		return math.NaN()
	}
	cs := hostFloat64s(d, c)
	pairs := closePairs(cs, k, dim, delta)
	// Each pair measured in float64, in parallel; the loss summed in the
	// pairs' order.
	h := make([]float64, len(pairs))
	r := make([]float64, len(pairs))
	parallel.For(runtime.GOMAXPROCS(0), len(pairs), func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			ca, cb := cs[int(pairs[p][0])*dim:][:dim], cs[int(pairs[p][1])*dim:][:dim]
			var r2 float64
			for j := range ca {
				v := ca[j] - cb[j]
				r2 += v * v
			}
			r[p] = math.Sqrt(r2)
			h[p] = delta - r[p]
		}
	})
	s := 2 / float64(k*(k-1))
	var loss float64
	for _, v := range h {
		if !(v <= 0) { // NaN too: a NaN centroid makes the loss NaN
			loss += v * v
		}
	}
	if dc == nil || weight == 0 {
		return s * loss
	}
	// d(h^2)/dc_a = -2h (c_a - c_b)/r; c_b gets the opposite. Each
	// centroid's gradient sums over its own pairs, centroids in parallel.
	byCentroid := make([][]int32, k) // per centroid, its pairs inside delta
	for p, ab := range pairs {
		if !(h[p] <= 0) && r[p] != 0 {
			byCentroid[ab[0]] = append(byCentroid[ab[0]], int32(p))
			byCentroid[ab[1]] = append(byCentroid[ab[1]], int32(p))
		}
	}
	g := make([]float64, k*dim)
	parallel.For(runtime.GOMAXPROCS(0), k, func(_, lo, hi int) {
		for a := lo; a < hi; a++ {
			ga, ca := g[a*dim:(a+1)*dim], cs[a*dim:(a+1)*dim]
			for _, p := range byCentroid[a] {
				b := int(pairs[p][0])
				if b == a {
					b = int(pairs[p][1])
				}
				t, cb := -2*s*h[p]/r[p], cs[b*dim:(b+1)*dim]
				for j := range ga {
					ga[j] += t * (ca[j] - cb[j])
				}
			}
		}
	})
	addHost(d, dc, g, weight)
	return s * loss
}

// sepRows is how many centroids' rows of the Gram matrix closePairs holds
// at once.
const sepRows = 256

// closePairs returns the pairs a < b of the k centroids cs (k x dim,
// float64) that may lie closer than delta, in order, among them every
// pair that does. It bounds each distance from below through a float32
// Gram matrix of the centred centroids, |x_a|^2 + |x_b|^2 - 2 x_a.x_b,
// lowered by the GEMM's rounding, at most gamma (|x_a|^2 + |x_b|^2) with
// gamma = dim u / (1 - dim u) (any order of the sums, u = 2^-24), and by
// the rounding of x to float32, at most u (|x_a| + |x_b|) in distance.
func closePairs(cs []float64, k, dim int, delta float64) [][2]int32 {
	mean := rowMean(cs, k, dim)
	x := make([]float32, k*dim)
	norm := make([]float64, k) // |x_a|^2 of the float32 rows
	for a := range k {
		for j, v := range cs[a*dim : (a+1)*dim] {
			x[a*dim+j] = float32(v - mean[j])
			norm[a] += float64(x[a*dim+j]) * float64(x[a*dim+j])
		}
	}
	const u = 1.0 / (1 << 24)
	gamma := 2 * float64(dim) * u / (1 - float64(dim)*u) // twice the bound
	var pairs [][2]int32
	gram := make([]float32, min(sepRows, k)*k)
	for a0 := 0; a0 < k; a0 += sepRows {
		rows := min(sepRows, k-a0)
		// Columns from a0 on: the pairs a < b of these rows.
		cols := k - a0
		gemm.Sgemm(false, true, rows, cols, dim, 1, x[a0*dim:], dim, x[a0*dim:], dim, 0, gram, cols)
		for i := range rows {
			a := a0 + i
			for b := a + 1; b < k; b++ {
				na, nb := norm[a], norm[b]
				r2 := na + nb - 2*float64(gram[i*cols+b-a0]) - gamma*(na+nb)
				lower := math.Sqrt(max(r2, 0)) - 2*u*(math.Sqrt(na)+math.Sqrt(nb))
				if lower < delta || math.IsNaN(r2) {
					pairs = append(pairs, [2]int32{int32(a), int32(b)})
				}
			}
		}
	}
	return pairs
}

// Entropy computes METHOD.md's entropy regulariser of centroids c (K x D on
// device d): with Ct the centroids minus their mean, G = Ct Ct^T / K and
// eps = 1e-6 trace(G)/K + 1e-12,
//
//	L_ent = -H(C),  H(C) = 1/2 log det(G + eps I),
//
// the Gaussian entropy of the centroid set (up to a constant), which
// minimising L_ent maximises. It returns the value and adds weight times the
// gradient into dc unless dc is nil: with eps held constant, as METHOD.md's
// dH/dCt = (1/K) (G + eps I)^-1 Ct does, dL/dC is -(1/K) (G + eps I)^-1 Ct
// minus its mean over rows (the centring's backward). Holding eps constant
// leaves out eps's dependence on trace(G): for K <= D, the gradient of
// -1/2 log trace(G) (one eigenvalue of G + eps I is eps exactly), a radial
// term about 1/(K-1) the size of the rest, which would also reward scale.
//
// It computes on the host in float64 through a Cholesky factorisation
// (O(K^2 D + K^3) for K centroids). When G + eps I is not positive definite
// (non-finite centroids), it returns NaN and leaves dc unchanged.
func Entropy(d tensor.Device, c *tensor.Tensor, weight float32, dc *tensor.Tensor) float64 {
	k, dim := matrix("Entropy", "c", c)
	sameShape("Entropy", "dc", dc, c)
	if k == 0 {
		return 0
	}
	if dim == 0 {
		// G is the K x K zero matrix; nothing depends on the centroids.
		return -0.5 * float64(k) * math.Log(1e-12)
	}
	ct := centered(hostFloat64s(d, c), k, dim)
	ctm := mat.NewDense(k, dim, ct)
	a := gram(ct, k, dim)
	var tr float64
	for i := range k {
		tr += a.At(i, i)
	}
	eps := 1e-6*tr/float64(k) + 1e-12
	for i := range k {
		a.SetSym(i, i, a.At(i, i)+eps)
	}
	var chol mat.Cholesky
	if !chol.Factorize(a) {
		return math.NaN()
	}
	loss := -0.5 * chol.LogDet()
	if dc == nil || weight == 0 {
		return loss
	}
	// (G + eps I)^-1 Ct, block by block of columns in parallel (the
	// factor is only read). SolveTo's only error is a condition-number
	// warning; eps bounds the condition number by about 1e6 K.
	g := make([]float64, k*dim)
	parallel.For(runtime.GOMAXPROCS(0), dim, func(_, lo, hi int) {
		var x mat.Dense
		_ = chol.SolveTo(&x, ctm.Slice(0, k, lo, hi))
		raw := x.RawMatrix()
		for i := range k {
			for j, v := range raw.Data[i*raw.Stride : i*raw.Stride+hi-lo] {
				g[i*dim+lo+j] = -v / float64(k)
			}
		}
	})
	// The centring's backward. In exact arithmetic (G + eps I)^-1 Ct is
	// zero-sum already (the all-ones vector is an eigenvector, eigenvalue
	// 1/eps); this also removes the rounding in Ct's column sums that 1/eps
	// amplifies.
	addHost(d, dc, centered(g, k, dim), weight)
	return loss
}

// gram returns G = Ct Ct^T / K for the k rows of ct (k x dim): from
// enough rows on, as three products at once, the Gram matrices of the two
// halves of the rows and the product of one half with the other.
func gram(ct []float64, k, dim int) *mat.SymDense {
	var a mat.SymDense
	scale := 1 / float64(k)
	if k < 64 || dim == 0 {
		a.SymOuterK(scale, mat.NewDense(k, dim, ct))
		return &a
	}
	h := k / 2
	top, bot := mat.NewDense(h, dim, ct[:h*dim]), mat.NewDense(k-h, dim, ct[h*dim:])
	var g11, g22 mat.SymDense
	var g21 mat.Dense
	done := make(chan struct{})
	go func() {
		g21.Mul(bot, top.T())
		close(done)
	}()
	g11.SymOuterK(scale, top)
	g22.SymOuterK(scale, bot)
	<-done
	data := make([]float64, k*k) // the upper triangle is read
	for i := range h {
		for j := i; j < h; j++ {
			data[i*k+j] = g11.At(i, j)
		}
		for j := h; j < k; j++ {
			data[i*k+j] = scale * g21.At(j-h, i)
		}
	}
	for i := h; i < k; i++ {
		for j := i; j < k; j++ {
			data[i*k+j] = g22.At(i-h, j-h)
		}
	}
	return mat.NewSymDense(k, data)
}

// Spread returns how spread out the centroids c (K x D on device d) are:
// the root mean squared distance of the centroids to their mean,
// sqrt((1/K) sum_k ||c_k - mean||^2), computed on the host in float64. It
// is 0 for collapsed centroids (and for K = 0); centroids at pairwise
// distance r, in a regular simplex, have spread r sqrt((K-1)/(2K)).
func Spread(d tensor.Device, c *tensor.Tensor) float64 {
	k, dim := matrix("Spread", "c", c)
	if k == 0 {
		return 0
	}
	ct := centered(hostFloat64s(d, c), k, dim)
	var s float64
	for _, v := range ct {
		s += v * v
	}
	return math.Sqrt(s / float64(k))
}

// hostFloat64s copies the float32 tensor t from device d to the host as
// float64s.
func hostFloat64s(d tensor.Device, t *tensor.Tensor) []float64 {
	h := d.ToHost(t)
	xs := h.Float32s()
	out := make([]float64, len(xs))
	for i, v := range xs {
		out[i] = float64(v)
	}
	return out
}

// rowMean returns the mean of the k rows of x (k x dim).
func rowMean(x []float64, k, dim int) []float64 {
	mean := make([]float64, dim)
	for i := range k {
		for j, v := range x[i*dim : (i+1)*dim] {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(k)
	}
	return mean
}

// centered subtracts from each row of x (k x dim) the mean of the rows, in
// place, and returns x.
func centered(x []float64, k, dim int) []float64 {
	mean := rowMean(x, k, dim)
	for i := range k {
		for j := range dim {
			x[i*dim+j] -= mean[j]
		}
	}
	return x
}

// addHost adds weight times the host values g into the device tensor dst.
func addHost(d tensor.Device, dst *tensor.Tensor, g []float64, weight float32) {
	w := float64(weight)
	h := make([]float32, len(g))
	for i, v := range g {
		h[i] = float32(w * v)
	}
	t := d.FromHost(tensor.FromFloat32s(h, dst.Shape()...))
	d.Axpy(1, t, dst)
	d.Free(t)
}
