package devicetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// nearestCase is a Nearest case: N rows of x, K centroids of D dimensions.
// dup > 0 makes centroid dup a copy of centroid 0 and draws every x near
// it, so that every row has an exact tie that the lowest index must win;
// offset shifts all values, so that a device expanding ||x-c||^2 as
// ||x||^2 - 2 x.c + ||c||^2 cancels and must clamp before the root.
// same makes every centroid a copy of centroid 0: each is a candidate of
// every row, and the lowest index must win.
type nearestCase struct {
	N, K, D, dup int
	offset       float64
	same         bool
}

func (s nearestCase) String() string {
	name := fmt.Sprintf("N=%d,K=%d,D=%d,dup=%d,offset=%g", s.N, s.K, s.D, s.dup, s.offset)
	if s.same {
		name += ",same"
	}
	return name
}

func (c *checker) nearest(t *testing.T) {
	for _, s := range []nearestCase{
		{1, 1, 1, 0, 0, false},
		{7, 1, 4, 0, 0, false},
		{50, 8, 16, 0, 0, false},
		{10, 5, 3, 3, 0, false},
		{33, 12, 5, 11, 0, false},
		{64, 32, 24, 0, 5, false},
		{20, 6, 8, 4, 10, false},
		{300, 16, 32, 0, 0, false}, // row blocks of a blocked device, the last partial
	} {
		for _, outputs := range []string{"both", "idx", "dist"} {
			c.nearestCase(t, s, outputs)
		}
	}
}

// nearestCase checks one Nearest case with the outputs "both", "idx" or
// "dist".
func (c *checker) nearestCase(t *testing.T, s nearestCase, outputs string) {
	run(t, s.String()+",out="+outputs, func(t *testing.T) {
		r := c.rng(t)
		cent := randn(r, s.K*s.D)
		x := randn(r, s.N*s.D)
		if s.dup > 0 {
			copy(cent[s.dup*s.D:(s.dup+1)*s.D], cent[:s.D])
			for i := range s.N {
				for e := range s.D {
					x[i*s.D+e] = cent[e] + float32(0.01*r.NormFloat64())
				}
			}
			// One row sits exactly on the duplicated centroid:
			// distance 0 at two indices.
			copy(x[:s.D], cent[:s.D])
		}
		if s.same {
			for j := 1; j < s.K; j++ {
				copy(cent[j*s.D:(j+1)*s.D], cent[:s.D])
			}
		}
		for i := range cent {
			cent[i] += float32(s.offset)
		}
		for i := range x {
			x[i] += float32(s.offset)
		}
		var idx *outputInt32
		var dist *output
		var idxT, distT *tensor.Tensor
		if outputs != "dist" {
			idx = c.outInt32(s.N)
			idxT = idx.T
		}
		if outputs != "idx" {
			dist = c.out(s.N)
			distT = dist.T
		}
		c.d.Nearest(idxT, distT, c.in(x, s.N, s.D), c.in(cent, s.K, s.D))
		var gotIdx []int32
		var gotDist []float32
		if idx != nil {
			gotIdx = idx.get(t)
		}
		if dist != nil {
			gotDist = dist.get(t)
		}
		c.checkNearest(t, s, f64(x), f64(cent), gotIdx, gotDist)
	})
}

// checkNearest accepts an index whose squared distance is within rounding
// of the minimum (ties within rounding may go either way) unless an
// identical centroid has a lower index; dist must be the root of that
// squared distance.
func (c *checker) checkNearest(t *testing.T, s nearestCase, x, cent []float64, idx []int32, dist []float32) {
	t.Helper()
	for i := range s.N {
		xi := x[i*s.D : (i+1)*s.D]
		sq := make([]float64, s.K) // direct float64 sums, far more accurate than float32
		sqErr := make([]float64, s.K)
		best := 0
		for k := range s.K {
			ck := cent[k*s.D : (k+1)*s.D]
			var scale float64
			for e := range s.D {
				diff := xi[e] - ck[e]
				sq[k] += diff * diff
				scale += (math.Abs(xi[e]) + math.Abs(ck[e])) * (math.Abs(xi[e]) + math.Abs(ck[e]))
			}
			// The bound covers the expansion ||x||^2 - 2x.c + ||c||^2.
			sqErr[k] = c.tol.Abs + c.tol.Rel*scale
			if sq[k] < sq[best] {
				best = k
			}
		}
		k := best
		if idx != nil {
			k = int(idx[i])
			if k < 0 || k >= s.K {
				t.Errorf("Nearest idx[%d] = %d, out of [0, %d)", i, k, s.K)
				return
			}
			if sq[k]-sq[best] > sqErr[k]+sqErr[best] {
				t.Errorf("Nearest idx[%d] = %d at squared distance %.9g, but %d is at %.9g", i, k, sq[k], best, sq[best])
				return
			}
			for l := range k {
				if slices.Equal(cent[l*s.D:(l+1)*s.D], cent[k*s.D:(k+1)*s.D]) {
					t.Errorf("Nearest idx[%d] = %d, but centroid %d is identical: the lowest index wins ties", i, k, l)
					return
				}
			}
		}
		if dist != nil {
			want := math.Sqrt(sq[k])
			e := sqErr[k]
			if idx == nil {
				e += sqErr[best] // dist may be that of any near-tie
			}
			// |sqrt(a) - sqrt(b)| <= min(sqrt(|a-b|), |a-b|/sqrt(b)).
			bound := math.Sqrt(e)
			if want > 0 {
				bound = min(bound, e/want)
			}
			if err := math.Abs(float64(dist[i]) - want); !(err <= bound+c.tol.Abs) {
				t.Errorf("Nearest dist[%d] = %.9g, want %.9g (error %.3g, bound %.3g)", i, dist[i], want, err, bound+c.tol.Abs)
				return
			}
		}
	}
}

// gatherCases are GatherRows' shapes: R rows of D, M gathered.
var gatherCases = [][3]int{{1, 1, 1}, {6, 4, 9}, {5, 3, 2}, {20, 7, 40}, {4, 1, 3}, {500, 64, 1200}}

// randIdx returns m indices in [0, r), with repeats when m > 1.
func randIdx(rng *rand.Rand, m, r int) []int32 {
	idx := make([]int32, m)
	for i := range idx {
		idx[i] = int32(rng.IntN(r))
	}
	if m > 1 {
		idx[m-1] = idx[0]
	}
	return idx
}

// refGather returns rows idx of x (rows of d).
func refGather(x []float64, d int, idx []int32) []float64 {
	y := make([]float64, 0, len(idx)*d)
	for _, k := range idx {
		y = append(y, x[int(k)*d:(int(k)+1)*d]...)
	}
	return y
}

func (c *checker) gatherRows(t *testing.T) {
	for _, s := range gatherCases {
		rows, d, m := s[0], s[1], s[2]
		run(t, fmt.Sprintf("R=%d,D=%d,M=%d", rows, d, m), func(t *testing.T) {
			r := c.rng(t)
			x, idx := randn(r, rows*d), randIdx(r, m, rows)
			o := c.out(m, d)
			c.d.GatherRows(o.T, c.in(x, rows, d), c.inInt32(idx, m))
			exact(t, "GatherRows", []int{m, d}, o.get(t), f32(refGather(f64(x), d, idx)))
		})
	}
}

// scatterAddRows checks accumulation into finite rows, and the op as
// GatherRows' backward by finite differences of L(x) = sum(g .* gather(x)).
func (c *checker) scatterAddRows(t *testing.T) {
	for _, s := range gatherCases {
		rows, d, m := s[0], s[1], s[2]
		run(t, fmt.Sprintf("R=%d,D=%d,M=%d", rows, d, m), func(t *testing.T) {
			r := c.rng(t)
			y0, g, idx := randn(r, rows*d), randn(r, m*d), randIdx(r, m, rows)
			want, sc := f64(y0), abs(f64(y0))
			for i, k := range idx {
				for e := range d {
					want[int(k)*d+e] += float64(g[i*d+e])
					sc[int(k)*d+e] += math.Abs(float64(g[i*d+e]))
				}
			}
			gd, idxd := c.in(g, m, d), c.inInt32(idx, m)
			o := c.acc(y0, rows, d)
			c.d.ScatterAddRows(o.T, gd, idxd)
			c.near(t, "ScatterAddRows", []int{rows, d}, o.get(t), want, sc)

			o = c.acc(make([]float32, rows*d), rows, d)
			c.d.ScatterAddRows(o.T, gd, idxd)
			g64 := f64(g)
			c.grad(t, "ScatterAddRows as GatherRows' backward", []int{rows, d}, o.get(t), gradCheck{
				x: randn64(r, rows*d),
				L: func(x []float64) float64 { return dotG(g64, refGather(x, d, idx)) },
				scale: linearScale(g64, func(v []float64) []float64 {
					return refGather(v, d, idx)
				}),
			}, r)
		})
	}
}

// normCase is a NormalizeRows case: M rows of D, with a zero row and a row
// of norm eps/5 (both clamped) when M > 2.
type normCase struct {
	M, D int
	eps  float32
}

func (s normCase) String() string { return fmt.Sprintf("M=%d,D=%d,eps=%g", s.M, s.D, s.eps) }

// normRows draws rows whose norms stay clear of eps (by 2%, and at least
// 1e-3) so that finite differences do not cross the clamp, with row 1 zero
// and row 2 of norm eps/5 when there are more than 2 rows.
func normRows(r *rand.Rand, s normCase) []float32 {
	x := make([]float32, s.M*s.D)
	for i := range s.M {
		row := x[i*s.D : (i+1)*s.D]
		for {
			var ss float64
			for e := range row {
				row[e] = float32(r.NormFloat64())
				ss += float64(row[e]) * float64(row[e])
			}
			n := math.Sqrt(ss)
			if s.M > 2 && i == 1 {
				clear(row)
				break
			}
			if s.M > 2 && i == 2 {
				for e := range row {
					row[e] = float32(float64(row[e]) / n * float64(s.eps) / 5)
				}
				break
			}
			if math.Abs(n-float64(s.eps)) > max(0.02*float64(s.eps), 1e-3) {
				break
			}
		}
	}
	return x
}

var normCases = []normCase{{1, 1, 1e-6}, {5, 3, 1e-6}, {17, 9, 0.25}, {64, 16, 1e-3}, {4, 1, 0.5}, {3, 2, 4}, {700, 32, 1e-3}}

func (c *checker) normalizeRows(t *testing.T) {
	for _, s := range normCases {
		for _, withNorms := range []bool{true, false} {
			run(t, fmt.Sprintf("%v,norms=%t", s, withNorms), func(t *testing.T) {
				x := normRows(c.rng(t), s)
				z := c.out(s.M, s.D)
				var norms *output
				var normsT *tensor.Tensor
				if withNorms {
					norms = c.out(s.M)
					normsT = norms.T
				}
				c.d.NormalizeRows(z.T, normsT, c.in(x, s.M, s.D), s.eps)
				wantZ, wantN := refNormalizeRows(s.M, s.D, f64(x), float64(s.eps))
				c.near(t, "NormalizeRows z", []int{s.M, s.D}, z.get(t), wantZ, nil)
				if withNorms {
					c.near(t, "NormalizeRows norms", []int{s.M}, norms.get(t), wantN, nil)
				}
			})
		}
	}
}

// normalizeRowsBackward checks dx against central differences of
// L(x) = sum(dz .* normalize(x)), given the device's own z and norms.
func (c *checker) normalizeRowsBackward(t *testing.T) {
	for _, s := range normCases {
		if s.eps < 1e-3 {
			continue // a finite-difference step would leave the clamp of the small rows
		}
		run(t, s.String(), func(t *testing.T) {
			r := c.rng(t)
			x, dz := normRows(r, s), randn(r, s.M*s.D)
			z, norms := c.out(s.M, s.D), c.out(s.M)
			c.d.NormalizeRows(z.T, norms.T, c.in(x, s.M, s.D), s.eps)
			dx := c.out(s.M, s.D)
			c.d.NormalizeRowsBackward(dx.T, c.in(dz, s.M, s.D), z.T, norms.T, s.eps)

			x64, dz64, eps := f64(x), f64(dz), float64(s.eps)
			zRef, nRef := refNormalizeRows(s.M, s.D, x64, eps)
			sc := make([]float64, len(x))
			for i := range s.M {
				var proj float64
				for e := range s.D {
					proj += math.Abs(dz64[i*s.D+e] * zRef[i*s.D+e])
				}
				for e := range s.D {
					k := i*s.D + e
					sc[k] = (math.Abs(dz64[k]) + proj*math.Abs(zRef[k])) / nRef[i]
				}
			}
			c.grad(t, "NormalizeRowsBackward", []int{s.M, s.D}, dx.get(t), gradCheck{
				x: x64,
				L: func(x []float64) float64 {
					z, _ := refNormalizeRows(s.M, s.D, x, eps)
					return dotG(dz64, z)
				},
				scale: vecScale(sc),
			}, r)
		})
	}
}

// cosineSimilarity uses the cases of NormalizeRows: the zero row must give
// 0 and the row of norm eps/5 divides by eps, not by its own norm.
func (c *checker) cosineSimilarity(t *testing.T) {
	for _, s := range normCases {
		c.cosineCase(t, s)
	}
}

// cosineCase checks one CosineSimilarity against the float64 reference.
func (c *checker) cosineCase(t *testing.T, s normCase) {
	run(t, s.String(), func(t *testing.T) {
		x := normRows(c.rng(t), s)
		o := c.out(s.M, s.M)
		c.d.CosineSimilarity(o.T, c.in(x, s.M, s.D), s.eps)
		x64 := f64(x)
		_, n := refNormalizeRows(s.M, s.D, x64, float64(s.eps))
		want := make([]float64, s.M*s.M)
		sc := make([]float64, s.M*s.M)
		for i := range s.M {
			for j := range s.M {
				var dot, dsc float64
				for e := range s.D {
					p := x64[i*s.D+e] * x64[j*s.D+e]
					dot += p
					dsc += math.Abs(p)
				}
				want[i*s.M+j] = dot / (n[i] * n[j])
				sc[i*s.M+j] = dsc / (n[i] * n[j])
			}
		}
		c.near(t, "CosineSimilarity", []int{s.M, s.M}, o.get(t), want, sc)
	})
}

// hingeCase is a NegativeHinge case: M unit rows of D with labels drawn
// from the first `labels` integers (0: all distinct).
type hingeCase struct {
	M, D, labels int
	margin       float32
}

func (s hingeCase) String() string {
	l := fmt.Sprint(s.labels)
	switch s.labels {
	case 0:
		l = "distinct"
	case 1:
		l = "equal"
	}
	return fmt.Sprintf("M=%d,D=%d,labels=%s,margin=%g", s.M, s.D, l, s.margin)
}

// hingeGap keeps every s_ij this far from the margin, so that neither
// float32 rounding nor finite differences cross the hinge.
const hingeGap = 1e-3

// hingeData draws unit rows (rounded to float32) and labels, redrawing a
// row while any of its similarities is within hingeGap of the margin.
func hingeData(r *rand.Rand, s hingeCase) ([]float32, []int32) {
	z := make([]float32, s.M*s.D)
	y := make([]int32, s.M)
	for i := range s.M {
		switch s.labels {
		case 0:
			y[i] = int32(i)
		default:
			y[i] = int32(r.IntN(s.labels))
		}
		row := z[i*s.D : (i+1)*s.D]
	draw:
		for {
			var ss float64
			v := make([]float64, s.D)
			for e := range v {
				v[e] = r.NormFloat64()
				ss += v[e] * v[e]
			}
			for e := range v {
				row[e] = float32(v[e] / math.Sqrt(ss))
			}
			for j := range i + 1 {
				var dot float64
				for e := range s.D {
					dot += float64(row[e]) * float64(z[j*s.D+e])
				}
				if math.Abs(dot-float64(s.margin)) < hingeGap {
					continue draw
				}
			}
			break
		}
	}
	return z, y
}

// negativeHinge checks loss and grad against the reference, with and
// without grad, and the relation d(sum_i loss[i])/dz[i] = 2 grad[i] by
// finite differences: s_ij = s_ji, and both orders are in the sum.
func (c *checker) negativeHinge(t *testing.T) {
	for _, s := range []hingeCase{
		{1, 3, 1, 0.1},
		{6, 4, 1, 0.1},
		{8, 3, 0, 0.1},
		{40, 5, 3, 0.1},
		{25, 2, 5, -0.3},
		{30, 8, 4, 0.9},
		{3, 1, 0, 0.1},
		{150, 8, 6, 0.1}, // two row blocks of a blocked device
	} {
		c.hingeCase(t, s, true)
	}
}

// hingeCase checks one NegativeHinge against refHinge, loss and gradient,
// and with differences also the gradient against central differences of
// the loss (M^2 D work per element: small cases only).
func (c *checker) hingeCase(t *testing.T, s hingeCase, differences bool) {
	run(t, s.String(), func(t *testing.T) {
		r := c.rng(t)
		z, y := hingeData(r, s)
		zd, yd := c.in(z, s.M, s.D), c.inInt32(y, s.M)
		z64, margin := f64(z), float64(s.margin)
		wantLoss, lossScale, wantGrad, gradScale := refHinge(s.M, s.D, z64, y, margin)

		loss, grad := c.out(s.M), c.out(s.M, s.D)
		c.d.NegativeHinge(loss.T, grad.T, zd, yd, s.margin)
		c.near(t, "NegativeHinge loss", []int{s.M}, loss.get(t), wantLoss, lossScale)
		gotGrad := grad.get(t)
		c.near(t, "NegativeHinge grad", []int{s.M, s.D}, gotGrad, wantGrad, gradScale)

		lossOnly := c.out(s.M)
		c.d.NegativeHinge(lossOnly.T, nil, zd, yd, s.margin)
		c.near(t, "NegativeHinge loss with nil grad", []int{s.M}, lossOnly.get(t), wantLoss, lossScale)

		if !differences {
			return // the gradient against refHinge's alone
		}
		twice := make([]float32, len(gotGrad))
		sc := make([]float64, len(gotGrad))
		for i, g := range gotGrad {
			twice[i] = 2 * g // exact
			sc[i] = 2 * gradScale[i]
		}
		c.grad(t, "2*NegativeHinge grad as d(sum loss)/dz", []int{s.M, s.D}, twice, gradCheck{
			x: z64,
			L: func(z []float64) float64 {
				l, _, _, _ := refHinge(s.M, s.D, z, y, margin)
				return dotG(ones(len(l)), l)
			},
			scale: vecScale(sc),
		}, r)
	})
}
