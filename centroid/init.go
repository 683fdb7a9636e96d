package centroid

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/org/anomnet/internal/tensor"
)

// Stats accumulates, per dimension, the mean and the sum of squared
// deviations (float64) of feature rows streamed in batches, for
// initialisation. Batches are merged with Chan et al.'s pairwise update,
// which avoids the cancellation of raw sums of squares when a feature's
// mean is large next to its spread.
type Stats struct {
	dim  int
	n    int
	mean []float64
	m2   []float64
	// bm and b2 are one batch's mean and squared deviations, reused.
	bm, b2 []float64
}

// NewStats returns an empty accumulator for rows of dim features.
func NewStats(dim int) *Stats {
	if dim < 1 {
		panic(fmt.Sprintf("anomnet/centroid: NewStats: dimension %d", dim))
	}
	return &Stats{
		dim: dim, mean: make([]float64, dim), m2: make([]float64, dim),
		bm: make([]float64, dim), b2: make([]float64, dim),
	}
}

// Add accumulates rows, a row-major batch of feature rows; its length must
// be a multiple of the dimension.
func (s *Stats) Add(rows []float32) {
	nb := rowCount("Stats.Add", rows, s.dim)
	if nb == 0 {
		return
	}
	// Two passes over the batch: its mean, then its squared deviations.
	clear(s.bm)
	clear(s.b2)
	for i := range nb {
		for j, v := range rows[i*s.dim : (i+1)*s.dim] {
			s.bm[j] += float64(v)
		}
	}
	for j := range s.bm {
		s.bm[j] /= float64(nb)
	}
	for i := range nb {
		for j, v := range rows[i*s.dim : (i+1)*s.dim] {
			t := float64(v) - s.bm[j]
			s.b2[j] += t * t
		}
	}
	n, m := float64(s.n), float64(nb)
	for j := range s.mean {
		delta := s.bm[j] - s.mean[j]
		s.mean[j] += delta * m / (n + m)
		s.m2[j] += s.b2[j] + delta*delta*n*m/(n+m)
	}
	s.n += nb
}

// Count is the number of rows added.
func (s *Stats) Count() int { return s.n }

// Mean returns the mean of the rows added, per dimension. It panics when
// no rows were added (check Count).
func (s *Stats) Mean() []float32 {
	s.nonEmpty("Mean")
	m := make([]float32, s.dim)
	for j, v := range s.mean {
		m[j] = float32(v)
	}
	return m
}

// MeanStd returns the mean over dimensions of the per-dimension population
// standard deviation of the rows added: InitMean's jitter scale. It panics
// when no rows were added (check Count).
func (s *Stats) MeanStd() float64 {
	s.nonEmpty("MeanStd")
	var sum float64
	for _, v := range s.m2 {
		sum += math.Sqrt(v / float64(s.n))
	}
	return sum / float64(s.dim)
}

func (s *Stats) nonEmpty(op string) {
	if s.n == 0 {
		panic("anomnet/centroid: Stats." + op + " of no rows")
	}
}

// MeanDistance accumulates the average Euclidean distance of feature rows
// to a fixed mean: METHOD.md's default separation threshold delta, measured
// in a second pass over the training features once Stats has the mean.
type MeanDistance struct {
	mean []float64
	sum  float64
	n    int
}

// NewMeanDistance returns an empty accumulator of distances to mean (which
// it copies).
func NewMeanDistance(mean []float32) *MeanDistance {
	if len(mean) == 0 {
		panic("anomnet/centroid: NewMeanDistance: empty mean")
	}
	m := &MeanDistance{mean: make([]float64, len(mean))}
	for j, v := range mean {
		m.mean[j] = float64(v)
	}
	return m
}

// Add accumulates rows, a row-major batch of feature rows; its length must
// be a multiple of the mean's length.
func (m *MeanDistance) Add(rows []float32) {
	dim := len(m.mean)
	nb := rowCount("MeanDistance.Add", rows, dim)
	for i := range nb {
		var s float64
		for j, v := range rows[i*dim : (i+1)*dim] {
			t := float64(v) - m.mean[j]
			s += t * t
		}
		m.sum += math.Sqrt(s)
	}
	m.n += nb
}

// Value returns the mean distance of the rows added to the mean. It panics
// when no rows were added.
func (m *MeanDistance) Value() float64 {
	if m.n == 0 {
		panic("anomnet/centroid: MeanDistance.Value of no rows")
	}
	return m.sum / float64(m.n)
}

// rowCount returns the number of rows of dim elements in rows, and panics
// if len(rows) is not a multiple of dim.
func rowCount(op string, rows []float32, dim int) int {
	if len(rows)%dim != 0 {
		panic(fmt.Sprintf("anomnet/centroid: %s: %d values are not rows of %d", op, len(rows), dim))
	}
	return len(rows) / dim
}

// InitMean returns k centroids, a k x len(mean) host tensor, each at mean
// plus independent Gaussian jitter of standard deviation jitter*std per
// element. METHOD.md's choice is jitter 0.01 and std = Stats.MeanStd(): the
// jitter breaks the centroids' symmetry, without which the separation
// gradient would be zero.
func InitMean(mean []float32, std float64, k int, jitter float64, rng *rand.Rand) *tensor.Tensor {
	if k < 1 || len(mean) == 0 || rng == nil {
		panic(fmt.Sprintf("anomnet/centroid: InitMean: k %d, dimension %d, rng %p", k, len(mean), rng))
	}
	dim := len(mean)
	c := make([]float32, k*dim)
	sigma := jitter * std
	for i := range k {
		for j, m := range mean {
			c[i*dim+j] = float32(float64(m) + sigma*rng.NormFloat64())
		}
	}
	return tensor.FromFloat32s(c, k, dim)
}

// ErrSampleTooSmall is returned by InitKMeansPP when the sample has fewer
// rows than the centroids wanted.
var ErrSampleTooSmall = errors.New("anomnet/centroid: k-means++ sample has fewer rows than centroids")

// InitKMeansPP seeds k centroids with k-means++ (Arthur and Vassilvitskii):
// the first is a uniformly drawn row of sample (n x dim, row-major, on the
// host), each next one a row drawn with probability proportional to its
// squared distance to the nearest centroid chosen so far. It returns them
// as a k x dim host tensor, distinct rows of the sample when the sample has
// at least k distinct rows. When every remaining row coincides with a chosen
// centroid, it draws uniformly among the rows not yet chosen. It returns an
// error wrapping ErrSampleTooSmall when n < k.
func InitKMeansPP(sample []float32, dim, k int, rng *rand.Rand) (*tensor.Tensor, error) {
	return greedySeed("InitKMeansPP", sample, dim, k, rng, func(w []float64, total float64, chosen []bool) int {
		return drawWeighted(w, total, chosen, rng)
	})
}

// greedySeed picks k rows of sample one after another: the first at random,
// each next by next, given every row's squared distance w to its nearest
// chosen row, their total, and which rows are chosen.
func greedySeed(name string, sample []float32, dim, k int, rng *rand.Rand, next func(w []float64, total float64, chosen []bool) int) (*tensor.Tensor, error) {
	if dim < 1 || k < 1 || rng == nil {
		panic(fmt.Sprintf("anomnet/centroid: %s: dimension %d, k %d, rng %p", name, dim, k, rng))
	}
	n := rowCount(name, sample, dim)
	if n < k {
		return nil, fmt.Errorf("%w: %d rows for %d centroids", ErrSampleTooSmall, n, k)
	}
	row := func(i int) []float32 { return sample[i*dim : (i+1)*dim] }
	c := make([]float32, 0, k*dim)
	chosen := make([]bool, n)
	w := make([]float64, n) // squared distance to the nearest chosen centroid
	for i := range w {
		w[i] = math.Inf(1)
	}
	pick := rng.IntN(n)
	for {
		chosen[pick] = true
		p := row(pick)
		c = append(c, p...)
		if len(c) == k*dim {
			break
		}
		var total float64
		for i := range w {
			w[i] = min(w[i], tensor.SqDist(row(i), p))
			total += w[i]
		}
		pick = next(w, total, chosen)
	}
	return tensor.FromFloat32s(c, k, dim), nil
}

// drawWeighted draws index i with probability w[i]/total, never one of
// weight 0; when every weight is 0, it draws uniformly among the indices
// not yet chosen.
func drawWeighted(w []float64, total float64, chosen []bool, rng *rand.Rand) int {
	if total > 0 && !math.IsInf(total, 0) {
		r := rng.Float64() * total
		last := -1
		var cum float64
		for i, v := range w {
			if v <= 0 {
				continue
			}
			cum += v
			last = i
			if cum > r {
				return i
			}
		}
		return last // r fell past the rounded cumulative sum
	}
	var free []int
	for i, ok := range chosen {
		if !ok {
			free = append(free, i)
		}
	}
	return free[rng.IntN(len(free))]
}
