package centroid

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/org/anomnet/internal/tensor"
)

// randRows returns n*dim Gaussian values of standard deviation scale.
func randRows(rng *rand.Rand, n, dim int, scale float64) []float32 {
	x := make([]float32, n*dim)
	for i := range x {
		x[i] = float32(scale * rng.NormFloat64())
	}
	return x
}

func float64s(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, v := range xs {
		out[i] = float64(v)
	}
	return out
}

// numGrad is the central-difference gradient of fn at x, step h.
func numGrad(x []float64, h float64, fn func([]float64) float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		v := x[i]
		x[i] = v + h
		p := fn(x)
		x[i] = v - h
		m := fn(x)
		x[i] = v
		g[i] = (p - m) / (2 * h)
	}
	return g
}

// requireGradAdded checks that grad, which held before before the loss
// added weight times its gradient, now holds before + weight*want, to rtol
// of the largest element of weight*want.
func requireGradAdded(t *testing.T, name string, grad *tensor.Tensor, before []float32, weight float32, want []float64, rtol float64) {
	t.Helper()
	got := grad.Float32s()
	require.Len(t, got, len(want), name)
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(weight)*v))
	}
	require.Greater(t, scale, 0.0, "%s: zero gradient tests nothing", name)
	for i, w := range want {
		added := float64(got[i]) - float64(before[i])
		require.InDelta(t, float64(weight)*w, added, rtol*scale, "%s[%d]", name, i)
	}
}

// attractionRef is L_att in float64: rows f (n x dim), centroids c.
func attractionRef(f, c []float64, dim int) float64 {
	n, k := len(f)/dim, len(c)/dim
	var loss float64
	for i := range n {
		best := math.Inf(1)
		for j := range k {
			best = min(best, sqDist64(f[i*dim:(i+1)*dim], c[j*dim:(j+1)*dim]))
		}
		loss += best
	}
	return loss / float64(n)
}

func sqDist64(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		t := v - b[i]
		s += t * t
	}
	return s
}

// separationRef is L_sep in float64 for centroids c (k x dim).
func separationRef(c []float64, dim int, delta float64) float64 {
	k := len(c) / dim
	if k < 2 {
		return 0
	}
	var loss float64
	for a := range k {
		for b := a + 1; b < k; b++ {
			h := max(0, delta-math.Sqrt(sqDist64(c[a*dim:(a+1)*dim], c[b*dim:(b+1)*dim])))
			loss += h * h
		}
	}
	return 2 * loss / float64(k*(k-1))
}

// entropyRef is L_ent in float64 for centroids c (k x dim), by Gaussian
// elimination (independent of the Cholesky in Entropy). eps < 0 means
// METHOD.md's eps for c; otherwise eps is held at the value given. For
// k > dim it uses Sylvester's identity det(eps I_k + Ct Ct^T/k) =
// eps^(k-dim) det(eps I_dim + Ct^T Ct/k), whose matrix is well conditioned,
// so that central differences do not divide the rounding of eigenvalues
// near eps by the step.
func entropyRef(c []float64, dim int, eps float64) float64 {
	k := len(c) / dim
	ct := centered(slices.Clone(c), k, dim)
	if eps < 0 {
		eps = refEps(dot64(ct, ct)/float64(k), k)
	}
	m := min(k, dim)
	g := make([]float64, m*m)
	for a := range m {
		for b := range m {
			var s float64
			if k <= dim {
				s = dot64(ct[a*dim:(a+1)*dim], ct[b*dim:(b+1)*dim])
			} else {
				for i := range k {
					s += ct[i*dim+a] * ct[i*dim+b]
				}
			}
			g[a*m+b] = s / float64(k)
		}
		g[a*m+a] += eps
	}
	return -0.5 * (logDet(g, m) + float64(k-m)*math.Log(eps))
}

// logDet is log |det g| for g (m x m), by elimination with partial
// pivoting; it overwrites g.
func logDet(g []float64, m int) float64 {
	var ld float64
	for col := range m {
		p := col
		for r := col + 1; r < m; r++ {
			if math.Abs(g[r*m+col]) > math.Abs(g[p*m+col]) {
				p = r
			}
		}
		if p != col {
			for j := range m {
				g[p*m+j], g[col*m+j] = g[col*m+j], g[p*m+j]
			}
		}
		piv := g[col*m+col]
		ld += math.Log(math.Abs(piv))
		for r := col + 1; r < m; r++ {
			f := g[r*m+col] / piv
			for j := col; j < m; j++ {
				g[r*m+j] -= f * g[col*m+j]
			}
		}
	}
	return ld
}

func refEps(trace float64, k int) float64 { return 1e-6*trace/float64(k) + 1e-12 }

// entropyEps is METHOD.md's eps for centroids c (k x dim).
func entropyEps(c []float64, dim int) float64 {
	k := len(c) / dim
	ct := centered(slices.Clone(c), k, dim)
	return refEps(dot64(ct, ct)/float64(k), k)
}

func dot64(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// TestAttractionValueAndNearest compares Attraction's value and Set.Nearest
// with a brute-force float64 search.
func TestAttractionValueAndNearest(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(1, 2))
	const n, k, dim = 300, 10, 24
	f := tensor.FromFloat32s(randRows(rng, n, dim, 1), n, dim)
	c := tensor.FromFloat32s(randRows(rng, k, dim, 1), k, dim)
	f64, c64 := float64s(f.Float32s()), float64s(c.Float32s())

	got := Attraction(d, f, c, 1, nil, nil)
	require.InEpsilon(t, attractionRef(f64, c64, dim), got, 1e-6)

	s := NewSet(c)
	require.Equal(t, k, s.K())
	require.Equal(t, dim, s.D())
	require.Same(t, c, s.Centroids())
	idx, dist := tensor.NewInt32(n), tensor.New(n)
	s.Nearest(d, idx, dist, f)
	for i := range n {
		fi := f64[i*dim : (i+1)*dim]
		best, bd := -1, math.Inf(1)
		for j := range k {
			if e := sqDist64(fi, c64[j*dim:(j+1)*dim]); e < bd {
				best, bd = j, e
			}
		}
		gi := int(idx.Int32s()[i])
		if gi != best {
			// Only a near-tie may go either way.
			require.InEpsilon(t, bd, sqDist64(fi, c64[gi*dim:(gi+1)*dim]), 1e-6, "row %d: idx %d, want %d", i, gi, best)
		}
		require.InEpsilon(t, math.Sqrt(bd), float64(dist.Float32s()[i]), 1e-6, "row %d", i)
	}
}

// TestAttractionGradient checks both gradients against central differences
// of the float64 loss, their scaling by weight, their accumulation into
// existing contents, and that a nil gradient or weight 0 changes nothing
// else.
func TestAttractionGradient(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(3, 4))
	const n, k, dim = 40, 5, 6
	const weight = 0.7
	f := tensor.FromFloat32s(randRows(rng, n, dim, 1), n, dim)
	c := tensor.FromFloat32s(randRows(rng, k, dim, 1), k, dim)
	f64, c64 := float64s(f.Float32s()), float64s(c.Float32s())
	df0, dc0 := randRows(rng, n, dim, 1), randRows(rng, k, dim, 1)
	df := tensor.FromFloat32s(slices.Clone(df0), n, dim)
	dc := tensor.FromFloat32s(slices.Clone(dc0), k, dim)

	loss := Attraction(d, f, c, weight, df, dc)
	require.InEpsilon(t, attractionRef(f64, c64, dim), loss, 1e-6, "the value is unweighted")

	const h = 1e-5
	wantF := numGrad(f64, h, func(x []float64) float64 { return attractionRef(x, c64, dim) })
	wantC := numGrad(c64, h, func(x []float64) float64 { return attractionRef(f64, x, dim) })
	requireGradAdded(t, "df", df, df0, weight, wantF, 1e-4)
	requireGradAdded(t, "dc", dc, dc0, weight, wantC, 1e-4)

	// One gradient alone is the same as with both.
	dfOnly := tensor.FromFloat32s(slices.Clone(df0), n, dim)
	Attraction(d, f, c, weight, dfOnly, nil)
	require.Equal(t, df.Float32s(), dfOnly.Float32s())
	dcOnly := tensor.FromFloat32s(slices.Clone(dc0), k, dim)
	Attraction(d, f, c, weight, nil, dcOnly)
	require.InDeltaSlice(t, dc.Float32s(), dcOnly.Float32s(), 1e-6)

	// Weight 0 adds nothing.
	Attraction(d, f, c, 0, dfOnly, dcOnly)
	require.Equal(t, df.Float32s(), dfOnly.Float32s())
}

// TestSeparationGradient checks Separation's value and gradient with
// delta set so that some pairs are inside it and some outside.
func TestSeparationGradient(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(5, 6))
	const k, dim = 7, 5
	const weight = 1.3
	c := tensor.FromFloat32s(randRows(rng, k, dim, 1), k, dim)
	c64 := float64s(c.Float32s())
	var dists []float64
	for a := range k {
		for b := a + 1; b < k; b++ {
			dists = append(dists, math.Sqrt(sqDist64(c64[a*dim:(a+1)*dim], c64[b*dim:(b+1)*dim])))
		}
	}
	slices.Sort(dists)
	// Halfway between two middle distances: about half the pairs inside.
	m := len(dists) / 2
	delta := (dists[m-1] + dists[m]) / 2
	require.Greater(t, dists[m]-dists[m-1], 1e-3, "a pair too close to delta for central differences")

	dc0 := randRows(rng, k, dim, 1)
	dc := tensor.FromFloat32s(slices.Clone(dc0), k, dim)
	loss := Separation(d, c, delta, weight, dc)
	ref := func(x []float64) float64 { return separationRef(x, dim, delta) }
	require.InEpsilon(t, ref(c64), loss, 1e-12)
	requireGradAdded(t, "dc", dc, dc0, weight, numGrad(c64, 1e-6, ref), 1e-5)

	// Weight 0 and a nil gradient change nothing; all pairs outside delta
	// cost nothing; fewer than two centroids cost nothing.
	before := slices.Clone(dc.Float32s())
	Separation(d, c, delta, 0, dc)
	require.Equal(t, before, dc.Float32s())
	require.Equal(t, loss, Separation(d, c, delta, weight, nil))
	require.Zero(t, Separation(d, c, dists[0]/2, weight, dc))
	require.Equal(t, before, dc.Float32s())
	require.Zero(t, Separation(d, c.Batch(0, 1), 10, weight, nil))
}

// TestEntropyBlocks checks Entropy from enough centroids on that gram
// splits the rows and the solve runs in column blocks (K <= D and K > D,
// an odd K) against the same formula unblocked: G by one SymOuterK, one
// solve for all of Ct.
func TestEntropyBlocks(t *testing.T) {
	d := tensor.CPU{}
	for _, tc := range []struct{ k, dim int }{{101, 130}, {90, 40}} {
		rng := rand.New(rand.NewPCG(11, uint64(tc.k)))
		k, dim := tc.k, tc.dim
		c32 := randRows(rng, k, dim, 1)
		for i := range c32 {
			c32[i] += 3
		}
		ct := centered(float64s(c32), k, dim)
		ctm := mat.NewDense(k, dim, ct)
		var a mat.SymDense
		a.SymOuterK(1/float64(k), ctm)
		got := gram(slices.Clone(ct), k, dim)
		for i := range k {
			for j := range k {
				require.InDelta(t, a.At(i, j), got.At(i, j), 1e-12*a.At(i, i), "G[%d,%d]", i, j)
			}
		}
		eps := entropyEps(float64s(c32), dim)
		for i := range k {
			a.SetSym(i, i, a.At(i, i)+eps)
		}
		var chol mat.Cholesky
		require.True(t, chol.Factorize(&a))
		var x mat.Dense
		require.NoError(t, chol.SolveTo(&x, ctm))
		want := make([]float64, k*dim)
		for i := range k {
			for j := range dim {
				want[i*dim+j] = -x.At(i, j) / float64(k)
			}
		}
		want = centered(want, k, dim)

		dc := tensor.New(k, dim)
		loss := Entropy(d, tensor.FromFloat32s(c32, k, dim), 1, dc)
		require.InDelta(t, -0.5*chol.LogDet(), loss, 1e-9*math.Abs(loss), "K=%d D=%d value", k, dim)
		requireGradAdded(t, "dc", dc, make([]float32, k*dim), 1, want, 1e-6)
	}
}

// TestSeparationScreen checks the screened Separation on centroids where
// the float32 screen matters: several blocks of rows, a large common offset
// (the centring's work), and pairs placed at distances just inside and
// just outside delta. Every pair inside delta must be found (the value and
// gradient equal a float64 brute force), and the screen must leave out
// most of the pairs far outside it.
func TestSeparationScreen(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(9, 10))
	const k, dim = sepRows + 45, 300
	const delta = 0.5
	c := randRows(rng, k, dim, 3) // pairs about 3 sqrt(2 dim) = 73 apart
	for j := range dim {
		off := float32(200 + rng.Float64())
		for a := range k {
			c[a*dim+j] += off
		}
	}
	// Pairs across the blocks at delta times 1 -+ 1e-4, 1e-3, 0.1, 0.5.
	var inside int
	for i, f := range []float64{1 - 1e-4, 1 + 1e-4, 1 - 1e-3, 1 + 1e-3, 0.9, 1.1, 0.5, 2} {
		a, b := 3+17*i, sepRows+2*i
		dir := randRows(rng, 1, dim, 1)
		n := math.Sqrt(float64(vecSq(dir)))
		for j := range dim {
			c[b*dim+j] = c[a*dim+j] + float32(f*delta/n)*dir[j]
		}
		if f < 1 {
			inside++
		}
	}
	c64 := float64s(c)
	got := 0
	for a := range k {
		for b := a + 1; b < k; b++ {
			if math.Sqrt(sqDist64(c64[a*dim:(a+1)*dim], c64[b*dim:(b+1)*dim])) < delta {
				got++
			}
		}
	}
	require.Equal(t, inside, got, "the placed pairs are the only ones inside delta")
	pairs := closePairs(c64, k, dim, delta)
	require.Less(t, len(pairs), 100, "the screen leaves out the pairs far outside delta")

	ct := tensor.FromFloat32s(c, k, dim)
	dc := tensor.New(k, dim)
	loss := Separation(d, ct, delta, 1, dc)
	require.InEpsilon(t, separationRef(c64, dim, delta), loss, 1e-12)
	// The gradient, brute force in float64.
	want := make([]float64, k*dim)
	s := 2 / float64(k*(k-1))
	for a := range k {
		for b := a + 1; b < k; b++ {
			ca, cb := c64[a*dim:(a+1)*dim], c64[b*dim:(b+1)*dim]
			r := math.Sqrt(sqDist64(ca, cb))
			if r >= delta {
				continue
			}
			for j := range dim {
				g := -2 * s * (delta - r) / r * (ca[j] - cb[j])
				want[a*dim+j] += g
				want[b*dim+j] -= g
			}
		}
	}
	requireGradAdded(t, "dc", dc, make([]float32, k*dim), 1, want, 1e-6)
}

func vecSq(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v * v
	}
	return s
}

// TestEntropyGradient checks Entropy's value against an independent
// float64 log-determinant, and its gradient, with eps held fixed as the
// method specifies, against central differences; for K <= D and K > D
// (where G is singular and eps alone keeps it definite).
func TestEntropyGradient(t *testing.T) {
	d := tensor.CPU{}
	for _, tc := range []struct{ k, dim int }{{6, 10}, {8, 3}, {1, 4}} {
		rng := rand.New(rand.NewPCG(7, uint64(tc.k)))
		const weight = 0.4
		k, dim := tc.k, tc.dim
		// An offset, like real features' mean, that the centring removes.
		c32 := randRows(rng, k, dim, 1)
		for i := range c32 {
			c32[i] += 5
		}
		c := tensor.FromFloat32s(c32, k, dim)
		c64 := float64s(c32)
		dc0 := randRows(rng, k, dim, 1)
		dc := tensor.FromFloat32s(slices.Clone(dc0), k, dim)

		loss := Entropy(d, c, weight, dc)
		require.InDelta(t, entropyRef(c64, dim, -1), loss, 1e-9*max(1, math.Abs(loss)), "K=%d D=%d value", k, dim)
		if k == 1 {
			// One centroid: G = 0, eps = 1e-12, nothing to move.
			require.InDelta(t, -0.5*math.Log(1e-12), loss, 1e-9)
			require.Equal(t, dc0, dc.Float32s())
			continue
		}
		eps := entropyEps(c64, dim)
		want := numGrad(c64, 1e-4, func(x []float64) float64 { return entropyRef(x, dim, eps) })
		requireGradAdded(t, "dc", dc, dc0, weight, want, 1e-4)

		// The gradient is zero-sum over the centroids (the centring).
		g := tensor.New(k, dim)
		Entropy(d, c, 1, g)
		var norm float64
		for _, v := range g.Float32s() {
			norm = max(norm, math.Abs(float64(v)))
		}
		for j := range dim {
			var s float64
			for i := range k {
				s += float64(g.Float32s()[i*dim+j])
			}
			require.InDelta(t, 0, s, 1e-5*norm, "K=%d D=%d column %d", k, dim, j)
		}
	}
}

// TestEntropyNotFinite checks that non-finite centroids give NaN and leave
// the gradient alone.
func TestEntropyNotFinite(t *testing.T) {
	d := tensor.CPU{}
	c := tensor.FromFloat32s([]float32{0, 1, float32(math.NaN()), 2, 3, 4}, 3, 2)
	dc := tensor.New(3, 2)
	require.True(t, math.IsNaN(Entropy(d, c, 1, dc)))
	require.Equal(t, make([]float32, 6), dc.Float32s())
}

// TestSpread checks Spread against its definition and the simplex formula.
func TestSpread(t *testing.T) {
	d := tensor.CPU{}
	// Three corners of a unit simplex in 3-D: pairwise distance sqrt(2).
	c := tensor.FromFloat32s([]float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, 3)
	require.InDelta(t, math.Sqrt(2)*math.Sqrt(2.0/6), Spread(d, c), 1e-7)
	// Shifting every centroid changes nothing; collapsed centroids have 0.
	c = tensor.FromFloat32s([]float32{11, 10, 10, 10, 11, 10, 10, 10, 11}, 3, 3)
	require.InDelta(t, math.Sqrt(2)*math.Sqrt(2.0/6), Spread(d, c), 1e-6)
	require.Zero(t, Spread(d, tensor.FromFloat32s([]float32{2, 3, 2, 3}, 2, 2)))
}

// TestShapePanics checks the programmer-error panics.
func TestShapePanics(t *testing.T) {
	d := tensor.CPU{}
	f, c := tensor.New(4, 3), tensor.New(2, 3)
	require.PanicsWithValue(t, "anomnet/centroid: NewSet: c is Tensor(float32[6]), want a float32 matrix", func() { NewSet(tensor.New(6)) })
	require.Panics(t, func() { NewSet(tensor.NewInt32(2, 3)) })
	require.Panics(t, func() { Attraction(d, f, tensor.New(2, 4), 1, nil, nil) })
	require.Panics(t, func() { Attraction(d, f, c, 1, tensor.New(3, 4), nil) })
	require.Panics(t, func() { Attraction(d, f, c, 1, nil, tensor.New(3, 2)) })
	require.Panics(t, func() { Separation(d, c, 1, 1, tensor.New(3, 2)) })
	require.Panics(t, func() { Entropy(d, c, 1, tensor.New(6)) })
	require.Panics(t, func() { Spread(d, tensor.New(6)) })
}
