package centroid

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"

	"github.com/org/anomnet/internal/parallel"
	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/vec"
)

// ProjectionDim is the dimension of the random projection through which
// FarthestPoint's caller tracks distances, as PatchCore's sampler does:
// large enough to keep the geometry of the features (Johnson-Lindenstrauss),
// small enough that the distances of a million vectors fit in memory.
const ProjectionDim = 128

// Projection returns a dim x out random Gaussian matrix with entries of
// variance 1/out: x P keeps squared distances in expectation.
func Projection(dim, out int, rng *rand.Rand) []float32 {
	p := make([]float32, dim*out)
	s := 1 / math.Sqrt(float64(out))
	for i := range p {
		p[i] = float32(rng.NormFloat64() * s)
	}
	return p
}

// FarthestPoint selects k of the n points z (n x dim, row-major) by greedy
// farthest-point selection, the k-center rule of PatchCore's coreset:
// the first point is first, then each next one is the point farthest from
// all chosen so far (ties go to the lowest index). It returns their
// indices in the order chosen: fewer than k when the points left all
// coincide with chosen ones. progress, when not nil, is called now and
// then with the number chosen so far. It subtracts the points' mean from z
// (which moves no distance) to keep the rounding of the distances small.
//
// The rule is followed exactly (to float32 rounding), but lazily: every
// point's distance to its nearest chosen point is brought up to date with
// a GEMM once per block of new points, and in between only the points
// that were farthest at the last update are tracked. One of them is the
// next choice as long as it is still farther than every untracked point
// was; when none is, the block ends early.
func FarthestPoint(z []float32, dim, k, first int, progress func(done int)) ([]int, error) {
	if dim < 1 || len(z)%dim != 0 {
		return nil, fmt.Errorf("anomnet/centroid: %d values are not rows of %d", len(z), dim)
	}
	n := len(z) / dim
	if k < 1 || k > n {
		return nil, fmt.Errorf("anomnet/centroid: %d points to choose from %d", k, n)
	}
	if first < 0 || first >= n {
		return nil, fmt.Errorf("anomnet/centroid: first point %d of %d", first, n)
	}
	center(z, dim)
	f := &farthest{z: z, dim: dim, n: n, mind: make([]float32, n), zn: make([]float32, n), chosen: make([]bool, n)}
	var top float32
	for i := range n {
		f.zn[i] = dot32(f.row(i), f.row(i)) // not vec.Dot: its rounding would turn near-ties the other way and change the choices
		f.mind[i] = float32(math.Inf(1))
		top = max(top, f.zn[i])
	}
	f.eps = coincide * top
	out := []int{first}
	f.choose(first)
	for len(out) < k {
		p, ok := f.next()
		if !ok {
			f.flush()
			if p, ok = f.next(); !ok {
				panic("anomnet/centroid: FarthestPoint: no choice after an update")
			}
		}
		if f.cur[p] <= 0 {
			break // every point left coincides with a chosen one
		}
		out = append(out, f.cand[p])
		f.choose(f.cand[p])
		if len(f.pending) == farthestBlock {
			f.flush()
		}
		if progress != nil && (len(out)%256 == 0 || len(out) == k) {
			progress(len(out))
		}
	}
	return out, nil
}

// center subtracts the mean row from the rows of z.
func center(z []float32, dim int) {
	n := len(z) / dim
	mean := make([]float64, dim)
	for i := range n {
		for j, v := range z[i*dim : (i+1)*dim] {
			mean[j] += float64(v)
		}
	}
	for i := range n {
		for j := range dim {
			z[i*dim+j] -= float32(mean[j] / float64(n))
		}
	}
}

// farthestBlock is how many chosen points wait for the GEMM that updates
// every distance; farthestTracked how many of the farthest points are
// tracked in between. A block ends early when no tracked point is known to
// be the farthest. 512 rather than 64: the GEMM packs every training
// vector once per block, and its short inner dimension (128) makes the
// packing cost as much as the products (seeding kolektor: 5.8 s at 64,
// 3.5 s at 512, the same choices).
const (
	farthestBlock   = 512
	farthestTracked = 2048
)

// coincide is the squared distance, as a share of the largest squared
// norm, below which two points count as one: the float32 rounding of
// |x|^2 + |p|^2 - 2 x.p, which the GEMM, the vector loops and the norms
// each round their own way, stays well below it, so that duplicates
// measure 0 and are never chosen twice.
const coincide = 1e-5

// farthest is FarthestPoint's state. Squared distances are |x|^2 + |p|^2 -
// 2 x.p in float32, from the GEMM and from the vector dot product alike,
// and 0 below eps.
type farthest struct {
	z      []float32
	dim, n int
	eps    float32
	zn     []float32 // squared norms
	mind   []float32 // squared distance to the nearest chosen point, as of the last flush
	chosen []bool

	pending []int     // chosen since the last flush
	cand    []int     // the tracked points, ascending
	cur     []float32 // their distance to the nearest chosen point, up to date
	theta   float32   // every untracked point's mind is below it
}

func (f *farthest) row(i int) []float32 { return f.z[i*f.dim : (i+1)*f.dim : (i+1)*f.dim] }

// clamp is a squared distance as the search counts it: 0 below eps.
func (f *farthest) clamp(v float32) float32 {
	if v <= f.eps {
		return 0
	}
	return v
}

// choose makes point p chosen: tracked points get their distance to it.
func (f *farthest) choose(p int) {
	f.chosen[p] = true
	f.pending = append(f.pending, p)
	for c, i := range f.cand {
		if f.chosen[i] {
			f.cur[c] = 0
			continue
		}
		f.cur[c] = min(f.cur[c], f.clamp(f.zn[i]+f.zn[p]-2*vec.Dot(f.row(i), f.row(p))))
	}
}

// next returns the tracked point (its position in cand) that is the
// farthest of all points, if one is known to be.
func (f *farthest) next() (int, bool) {
	best := -1
	for c, v := range f.cur {
		if best < 0 || v > f.cur[best] {
			best = c
		}
	}
	if best < 0 || f.cur[best] < f.theta {
		return -1, false
	}
	return best, true
}

// flush brings every point's distance up to date with the pending chosen
// points, then tracks the farthestTracked farthest points.
func (f *farthest) flush() {
	if m := len(f.pending); m > 0 {
		pm := make([]float32, m*f.dim)
		for j, p := range f.pending {
			copy(pm[j*f.dim:], f.row(p))
		}
		const rows = 4096
		dots := make([]float32, rows*m)
		cpu := tensor.CPU{}
		pt := tensor.FromFloat32s(pm, m, f.dim)
		zp := make([]float32, m)
		for j, p := range f.pending {
			zp[j] = f.zn[p]
		}
		for lo := 0; lo < f.n; lo += rows {
			hi := min(lo+rows, f.n)
			dt := tensor.FromFloat32s(dots[:(hi-lo)*m], hi-lo, m)
			cpu.Gemm(false, true, 1, tensor.FromFloat32s(f.z[lo*f.dim:hi*f.dim], hi-lo, f.dim), pt, 0, dt)
			// min over j of |x_i|^2 + |p_j|^2 - 2 x_i.p_j (0 below eps).
			parallel.For(runtime.GOMAXPROCS(0), hi-lo, func(_, a, b int) {
				for i := lo + a; i < lo+b; i++ {
					f.mind[i] = min(f.mind[i], f.clamp(vec.MinDist(f.zn[i], zp, dots[(i-lo)*m:(i-lo+1)*m])))
				}
			})
		}
		for _, p := range f.pending {
			f.mind[p] = 0
		}
		f.pending = f.pending[:0]
	}
	// Track the points at or above the farthestTracked-th largest distance.
	t := min(farthestTracked, f.n)
	vals := slices.Clone(f.mind)
	f.theta = quickSelectDesc(vals, t-1)
	f.cand, f.cur = f.cand[:0], f.cur[:0]
	for i, v := range f.mind {
		if v >= f.theta {
			f.cand = append(f.cand, i)
			f.cur = append(f.cur, v)
		}
	}
	if f.theta <= 0 {
		// All untracked points coincide with chosen ones: any tracked
		// point at distance 0 or more is the farthest.
		f.theta = 0
	}
	// The untracked points are below theta, so a tracked point still at
	// theta or above is the farthest of all. Nudging theta above the
	// largest untracked value is not needed: ">= theta" suffices.
}

// quickSelectDesc returns the value that would be at position k if v were
// sorted in descending order; it reorders v.
func quickSelectDesc(v []float32, k int) float32 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		pivot := v[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for v[i] > pivot {
				i++
			}
			for v[j] < pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}

// dot32 is the dot product of a and b in float32 with four partial sums.
func dot32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
