package contrastive

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// reference is the brute-force float64 form of METHOD.md's CCL terms: it
// forms every ordered pair explicitly, shares no code with Loss, and also
// gives the gradient with respect to z and to f.
type reference struct {
	pos, neg float64
	dz, df   [][]float64 // d(pos+neg)/dz and /df, per row
	norm     []float64   // max(||f_i||, Eps)
	nearKink []bool      // row i has a negative pair with s_ij within kinkTol of the margin
}

// kinkTol is how close to the margin a negative pair's similarity may come
// before its row's gradient is left out of a comparison: there the hinge's
// derivative jumps, and float32 rounding (or a finite-difference step) may
// put the pair on either side.
const kinkTol = 1e-5

// testMargin is METHOD.md's hinge margin m of the negative term, and
// testSample its M, the number of feature vectors of a batch that form the
// pairs: the values the tests exercise Loss and Sample with.
const (
	testMargin = 0.1
	testSample = 4096
)

func normalized(f []float64, m, dim int) (z [][]float64, norm []float64) {
	z, norm = make([][]float64, m), make([]float64, m)
	for i := range m {
		row := f[i*dim : (i+1)*dim]
		norm[i] = max(math.Sqrt(dot(row, row)), float64(Eps))
		z[i] = make([]float64, dim)
		for t, v := range row {
			z[i][t] = v / norm[i]
		}
	}
	return z, norm
}

func dot(a, b []float64) float64 {
	var s float64
	for t := range a {
		s += a[t] * b[t]
	}
	return s
}

// refLoss evaluates the terms (and, when withGrad, their gradient) pair by
// pair in float64.
func refLoss(f []float64, y []int32, dim int, margin float64, withGrad bool) reference {
	m := len(y)
	z, norm := normalized(f, m, dim)
	r := reference{norm: norm, nearKink: make([]bool, m)}
	var nP, nN float64
	for i := range m {
		for j := range m {
			switch {
			case i == j:
			case y[i] == y[j]:
				nP++
			default:
				nN++
			}
		}
	}
	r.dz = make([][]float64, m)
	for i := range r.dz {
		r.dz[i] = make([]float64, dim)
	}
	for i := range m {
		for j := range m {
			if i == j {
				continue
			}
			s := dot(z[i], z[j])
			if y[i] == y[j] {
				r.pos += (1 - s) / nP
				for t := range dim { // d(-s_ij)/dz_i = -z_j, d(-s_ij)/dz_j = -z_i
					r.dz[i][t] -= z[j][t] / nP
					r.dz[j][t] -= z[i][t] / nP
				}
				continue
			}
			if math.Abs(s-margin) < kinkTol {
				r.nearKink[i], r.nearKink[j] = true, true
			}
			if s > margin {
				r.neg += (s - margin) / nN
				for t := range dim {
					r.dz[i][t] += z[j][t] / nN
					r.dz[j][t] += z[i][t] / nN
				}
			}
		}
	}
	if !withGrad {
		return r
	}
	// Through z = f/n: df = (dz - (dz.z) z)/n, or dz/Eps where the norm is
	// clamped (z = f/Eps there).
	r.df = make([][]float64, m)
	for i := range m {
		r.df[i] = make([]float64, dim)
		p := dot(r.dz[i], z[i])
		if norm[i] <= float64(Eps) {
			p = 0
		}
		for t := range dim {
			r.df[i][t] = (r.dz[i][t] - p*z[i][t]) / norm[i]
		}
	}
	return r
}

// features returns m x dim Gaussian rows, each scaled by 10^u with u
// uniform in [-spread, spread].
func features(rng *rand.Rand, m, dim int, spread float64) []float32 {
	f := make([]float32, m*dim)
	for i := range m {
		scale := math.Pow(10, spread*(2*rng.Float64()-1))
		for t := range dim {
			f[i*dim+t] = float32(scale * rng.NormFloat64())
		}
	}
	return f
}

func widen(f []float32) []float64 {
	w := make([]float64, len(f))
	for i, v := range f {
		w[i] = float64(v)
	}
	return w
}

// runLoss runs Loss on the CPU device and returns pos, neg and the gradient
// it adds to a zero df.
func runLoss(f []float32, y []int32, dim, k int, margin, weight float32) (pos, neg float64, df []float32) {
	d := tensor.CPU{}
	m := len(y)
	ft := d.FromHost(tensor.FromFloat32s(f, m, dim))
	yt := d.FromHost(tensor.FromInt32s(y, m))
	dft := d.Zeros(m, dim)
	pos, neg = Loss(d, ft, yt, k, margin, weight, dft)
	return pos, neg, d.ToHost(dft).Float32s()
}

// requireRowsClose compares the gradient rows that are not near a hinge
// kink, each within a tolerance relative to the size of the gradient before
// the projection (the scale of the rounding errors), and returns how many
// rows it skipped.
func requireRowsClose(t *testing.T, r reference, got []float32, dim int, rtol float64) int {
	t.Helper()
	skipped := 0
	for i, want := range r.df {
		if r.nearKink[i] {
			skipped++
			continue
		}
		var diff, scale float64
		for c := range dim {
			e := float64(got[i*dim+c]) - want[c]
			diff += e * e
		}
		scale = math.Sqrt(dot(r.dz[i], r.dz[i])) / r.norm[i]
		require.LessOrEqualf(t, math.Sqrt(diff), rtol*scale+1e-30,
			"row %d (norm %.3g): got %v, want %v", i, r.norm[i], got[i*dim:(i+1)*dim], want)
	}
	return skipped
}

func TestLossMatchesBruteForce(t *testing.T) {
	type tc struct {
		name   string
		m, dim int
		k      int
		labels func(rng *rand.Rand, m int) []int32
		spread float64
		zero   int // index of a zero row, or -1
		tiny   int // index of a row scaled below Eps, or -1
		margin float32
	}
	randomLabels := func(k int) func(*rand.Rand, int) []int32 {
		return func(rng *rand.Rand, m int) []int32 {
			y := make([]int32, m)
			for i := range y {
				y[i] = int32(rng.IntN(k))
			}
			return y
		}
	}
	cases := []tc{
		{
			// Label 3 occurs once, label 4 never; norms span 1e-3..1e3, one
			// row is zero and one has norm Eps/2: both are clamped, and the
			// second is the one row where z_i is not unit length, so that
			// the z_i term of the positive gradient (radial, hence removed
			// by the normalisation's backward elsewhere) shows.
			name: "mixed", m: 40, dim: 12, k: 5, spread: 3, zero: 5, tiny: 9, margin: testMargin,
			labels: func(rng *rand.Rand, m int) []int32 {
				y := randomLabels(3)(rng, m)
				y[17] = 3
				return y
			},
		},
		{name: "four labels, negative margin", m: 40, dim: 12, k: 4, spread: 1, zero: -1, tiny: -1, margin: -0.2, labels: randomLabels(4)},
		{
			name: "one label (N empty)", m: 40, dim: 12, k: 3, spread: 2, zero: -1, tiny: -1, margin: testMargin,
			labels: func(_ *rand.Rand, m int) []int32 {
				y := make([]int32, m)
				for i := range y {
					y[i] = 2
				}
				return y
			},
		},
		{
			name: "distinct labels (P empty)", m: 4, dim: 12, k: 4, spread: 1, zero: -1, tiny: -1, margin: testMargin,
			labels: func(_ *rand.Rand, m int) []int32 { return []int32{2, 0, 3, 1} },
		},
		// More rows than the CPU hinge's row block, and a small D so that
		// many pairs sit above the margin.
		{name: "several row blocks", m: 300, dim: 6, k: 3, spread: 1, zero: -1, tiny: -1, margin: testMargin, labels: randomLabels(3)},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 1))
			f := features(rng, c.m, c.dim, c.spread)
			if c.zero >= 0 {
				clear(f[c.zero*c.dim : (c.zero+1)*c.dim])
			}
			if c.tiny >= 0 {
				row := f[c.tiny*c.dim : (c.tiny+1)*c.dim]
				var n float64
				for _, v := range row {
					n += float64(v) * float64(v)
				}
				for i, v := range row {
					row[i] = float32(float64(v) * float64(Eps) / 2 / math.Sqrt(n))
				}
			}
			y := c.labels(rng, c.m)
			ref := refLoss(widen(f), y, c.dim, float64(c.margin), true)
			pos, neg, df := runLoss(f, y, c.dim, c.k, c.margin, 1)

			require.InDelta(t, ref.pos, pos, 1e-6*max(1, math.Abs(ref.pos)))
			require.InDelta(t, ref.neg, neg, 1e-6*max(1, math.Abs(ref.neg)))
			switch c.name {
			case "one label (N empty)":
				require.Zero(t, neg)
				require.Greater(t, pos, 0.5)
			case "distinct labels (P empty)":
				require.Zero(t, pos)
			default:
				require.Greater(t, pos, 0.0)
				require.Greater(t, neg, 0.0)
			}
			skipped := requireRowsClose(t, ref, df, c.dim, 1e-5)
			require.LessOrEqual(t, skipped, c.m/10, "too many rows near the hinge kink")
		})
	}
}

// TestLossGradientFiniteDifference checks d(pos+neg)/df against central
// differences of the float64 reference, element by element.
func TestLossGradientFiniteDifference(t *testing.T) {
	const m, dim, k = 24, 8, 3
	const margin = 0.05
	rng := rand.New(rand.NewPCG(7, 7))
	f := features(rng, m, dim, 1)
	y := make([]int32, m)
	for i := range y {
		y[i] = int32(i % k)
	}
	y[m-1] = 0 // unequal label counts
	_, _, df := runLoss(f, y, dim, k, margin, 1)

	f64 := widen(f)
	value := func(g []float64) float64 {
		r := refLoss(g, y, dim, margin, false)
		return r.pos + r.neg
	}
	// A step moves the row's similarities by about h/||f_i|| = 1e-6; rows
	// with a negative pair closer than kinkTol to the margin (where the
	// derivative jumps) are skipped, and must be few.
	base := refLoss(f64, y, dim, margin, true)
	skipped := 0
	for i := range m {
		if base.nearKink[i] {
			skipped++
			continue
		}
		h := 1e-6 * base.norm[i]
		var scale float64
		for c := range dim {
			scale = max(scale, math.Abs(base.df[i][c]))
		}
		for c := range dim {
			g := slices.Clone(f64)
			g[i*dim+c] += h
			up := value(g)
			g[i*dim+c] -= 2 * h
			down := value(g)
			fd := (up - down) / (2 * h)
			require.InDeltaf(t, fd, float64(df[i*dim+c]), 1e-4*scale,
				"df[%d][%d]: finite difference %g, Loss %g", i, c, fd, df[i*dim+c])
		}
	}
	require.LessOrEqual(t, skipped, 2)
	require.Greater(t, base.neg, 0.0)
}

// TestLossWeightAccumulates checks that Loss adds weight times the gradient
// to df's contents, and that its values do not depend on df or weight.
func TestLossWeightAccumulates(t *testing.T) {
	const m, dim, k = 32, 10, 4
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(3, 4))
	f := features(rng, m, dim, 1)
	y := make([]int32, m)
	for i := range y {
		y[i] = int32(rng.IntN(k))
	}
	ft := tensor.FromFloat32s(f, m, dim)
	yt := tensor.FromInt32s(y, m)

	pos1, neg1, g1 := runLoss(f, y, dim, k, testMargin, 1)
	pos0, neg0 := Loss(d, ft, yt, k, testMargin, 1, nil)
	require.Equal(t, pos1, pos0)
	require.Equal(t, neg1, neg0)

	const w = -0.37
	prior := features(rng, m, dim, 0)
	df := tensor.FromFloat32s(append([]float32(nil), prior...), m, dim)
	posW, negW := Loss(d, ft, yt, k, testMargin, w, df)
	require.Equal(t, pos1, posW)
	require.Equal(t, neg1, negW)
	var gmax float64
	for _, v := range g1 {
		gmax = max(gmax, math.Abs(float64(v)))
	}
	require.Greater(t, gmax, 0.0)
	for i, v := range df.Float32s() {
		require.InDelta(t, float64(prior[i])+w*float64(g1[i]), float64(v), 1e-6*(1+gmax), "element %d", i)
	}

	// Weight 0 adds nothing.
	posZ, _ := Loss(d, ft, yt, k, testMargin, 0, df)
	require.Equal(t, pos1, posZ)
	for i, v := range df.Float32s() {
		require.InDelta(t, float64(prior[i])+w*float64(g1[i]), float64(v), 1e-6*(1+gmax), "element %d", i)
	}
}

func TestLossEmpty(t *testing.T) {
	d := tensor.CPU{}
	df := tensor.New(0, 5)
	pos, neg := Loss(d, tensor.New(0, 5), tensor.NewInt32(0), 2, testMargin, 1, df)
	require.Zero(t, pos)
	require.Zero(t, neg)
}

func TestLossPanics(t *testing.T) {
	d := tensor.CPU{}
	f := tensor.New(4, 3)
	y := tensor.NewInt32(4)
	for name, call := range map[string]func(){
		"f not a matrix": func() { Loss(d, tensor.New(12), y, 2, testMargin, 1, nil) },
		"y length":       func() { Loss(d, f, tensor.NewInt32(3), 2, testMargin, 1, nil) },
		"y float":        func() { Loss(d, f, tensor.New(4), 2, testMargin, 1, nil) },
		"df shape":       func() { Loss(d, f, y, 2, testMargin, 1, tensor.New(3, 4)) },
		"k":              func() { Loss(d, f, y, 0, testMargin, 1, nil) },
		"label range":    func() { Loss(d, f, tensor.FromInt32s([]int32{0, 1, 2, 0}, 4), 2, testMargin, 1, nil) },
		"negative label": func() { Loss(d, f, tensor.FromInt32s([]int32{0, -1, 1, 0}, 4), 2, testMargin, 1, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "no panic")
				msg := fmt.Sprint(r)
				require.True(t, strings.HasPrefix(msg, "anomnet/contrastive: "), msg)
			}()
			call()
		})
	}
}

func BenchmarkLoss(b *testing.B) {
	for _, s := range []struct{ m, dim, k int }{{testSample, 1536, 10}} {
		b.Run(fmt.Sprintf("M=%d,D=%d", s.m, s.dim), func(b *testing.B) {
			d := tensor.CPU{}
			rng := rand.New(rand.NewPCG(1, 2))
			y := make([]int32, s.m)
			for i := range y {
				y[i] = int32(rng.IntN(s.k))
			}
			f := d.FromHost(tensor.FromFloat32s(features(rng, s.m, s.dim, 0.5), s.m, s.dim))
			yt := d.FromHost(tensor.FromInt32s(y, s.m))
			df := d.Zeros(s.m, s.dim)
			b.ResetTimer()
			for b.Loop() {
				Loss(d, f, yt, s.k, testMargin, 1, df)
			}
			// The hinge's similarity product, 2 M^2 D flops (its gradient
			// product costs as much again and is not counted).
			flops := 2 * float64(s.m) * float64(s.m) * float64(s.dim)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
