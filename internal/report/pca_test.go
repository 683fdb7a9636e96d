package report

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// cloud returns n points in dim dimensions with standard deviations sd
// (then 0.1) along the columns of a random rotation, offset from the
// origin.
func cloud(rng *rand.Rand, n, dim int, sd ...float64) []float32 {
	a := mat.NewDense(dim, dim, nil)
	for i := range dim {
		for j := range dim {
			a.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var q mat.Dense
	qr.QTo(&q)
	out := make([]float32, n*dim)
	z := make([]float64, dim)
	for i := range n {
		for j := range dim {
			s := 0.1
			if j < len(sd) {
				s = sd[j]
			}
			z[j] = s * rng.NormFloat64()
		}
		for r := range dim {
			v := 3.0 + float64(r)
			for j := range dim {
				v += q.At(r, j) * z[j]
			}
			out[i*dim+r] = float32(v)
		}
	}
	return out
}

// directPCA returns the two leading eigenvectors of the covariance of x,
// computed in float64 with a full eigen-decomposition.
func directPCA(x []float32, dim int) [2][]float64 {
	n := len(x) / dim
	mean := make([]float64, dim)
	for i := range n {
		for j := range dim {
			mean[j] += float64(x[i*dim+j]) / float64(n)
		}
	}
	cov := mat.NewSymDense(dim, nil)
	for a := range dim {
		for b := a; b < dim; b++ {
			var s float64
			for i := range n {
				s += (float64(x[i*dim+a]) - mean[a]) * (float64(x[i*dim+b]) - mean[b])
			}
			cov.SetSym(a, b, s/float64(n-1))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		panic("eigen-decomposition failed")
	}
	var v mat.Dense
	eig.VectorsTo(&v)
	return [2][]float64{mat.Col(nil, dim-1, &v), mat.Col(nil, dim-2, &v)}
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestPCA2RecoversPrincipalAxes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n, dim int
	}{
		{"dim<=block", 300, 6},    // exact in one step
		{"n>dim", 400, 40},        // iterated
		{"n<dim", 30, 80},         // the data span fewer dimensions
		{"n<block", 8, 50},        // fewer rows than the block
		{"anomnet-ish", 200, 192}, // many dimensions
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.dim)))
			x := cloud(rng, tc.n, tc.dim, 5, 2, 0.7, 0.5)
			basis, mean, proj := PCA2(x, tc.dim, x, x[:2*tc.dim])
			want := directPCA(x, tc.dim)
			for c := range 2 {
				require.InDelta(t, 1, dot(basis[c], basis[c]), 1e-12, "component %d is a unit vector", c)
				require.InDelta(t, 1, math.Abs(dot(basis[c], want[c])), 1e-8, "component %d", c)
				big := 0
				for i, v := range basis[c] {
					if math.Abs(v) > math.Abs(basis[c][big]) {
						big = i
					}
				}
				require.Positive(t, basis[c][big], "component %d: largest loading positive", c)
			}
			require.InDelta(t, 0, dot(basis[0], basis[1]), 1e-12)
			for j := range tc.dim {
				var m float64
				for i := range tc.n {
					m += float64(x[i*tc.dim+j])
				}
				require.InDelta(t, m/float64(tc.n), mean[j], 1e-12, "mean %d", j)
			}
			require.Len(t, proj, 2)
			require.Len(t, proj[0][0], tc.n)
			require.Len(t, proj[1][1], 2)
			for i := range 2 {
				d := make([]float64, tc.dim)
				for j := range d {
					d[j] = float64(x[i*tc.dim+j]) - mean[j]
				}
				require.InDelta(t, dot(d, basis[0]), proj[0][0][i], 1e-9)
				require.InDelta(t, dot(d, basis[1]), proj[0][1][i], 1e-9)
				require.Equal(t, proj[0][0][i], proj[1][0][i])
			}
			// The projections of the fit are centred, the first the wider.
			var s0, s1, ss0, ss1 float64
			for i := range tc.n {
				s0 += proj[0][0][i]
				s1 += proj[0][1][i]
				ss0 += proj[0][0][i] * proj[0][0][i]
				ss1 += proj[0][1][i] * proj[0][1][i]
			}
			require.InDelta(t, 0, s0/float64(tc.n), 1e-4)
			require.InDelta(t, 0, s1/float64(tc.n), 1e-4)
			require.Greater(t, ss0, ss1)
		})
	}
}

func TestPCA2Deterministic(t *testing.T) {
	x := cloud(rand.New(rand.NewPCG(3, 4)), 120, 30, 3, 1)
	b1, m1, p1 := PCA2(x, 30, x)
	b2, m2, p2 := PCA2(x, 30, x)
	require.Equal(t, b1, b2)
	require.Equal(t, m1, m2)
	require.Equal(t, p1, p2)
}

func TestPCA2Degenerate(t *testing.T) {
	// dim 1: the only axis, and no second one.
	b, mean, p := PCA2([]float32{1, 2, 6}, 1, []float32{0, 3})
	require.Equal(t, []float64{1}, b[0])
	require.Equal(t, []float64{0}, b[1])
	require.InDelta(t, 3, mean[0], 1e-12)
	require.InDeltaSlice(t, []float64{-3, 0}, p[0][0], 1e-12)
	require.Equal(t, []float64{0, 0}, p[0][1])

	// One row: no variance, but still two orthonormal axes.
	b, _, p = PCA2([]float32{1, 2, 3, 4}, 4, []float32{1, 2, 3, 4})
	require.InDelta(t, 1, dot(b[0], b[0]), 1e-12)
	require.InDelta(t, 1, dot(b[1], b[1]), 1e-12)
	require.InDelta(t, 0, dot(b[0], b[1]), 1e-12)
	require.Equal(t, [2][]float64{{0}, {0}}, p[0])

	require.Panics(t, func() { PCA2(nil, 3) })
	require.Panics(t, func() { PCA2(make([]float32, 5), 3) })
	require.Panics(t, func() { PCA2(make([]float32, 6), 3, make([]float32, 4)) })
	require.Panics(t, func() { PCA2(make([]float32, 6), 0) })
}
