package centroid

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// TestStats streams rows with a large offset in uneven batches and compares
// the mean, the mean standard deviation and the mean distance with direct
// two-pass float64 computations.
func TestStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n, dim = 1000, 7
	rows := make([]float32, n*dim)
	for i := range n {
		for j := range dim {
			// Per-dimension offsets up to 1e4 and spreads 0.5..3.5.
			rows[i*dim+j] = float32(1e4*float64(j)/dim + (0.5+0.5*float64(j))*rng.NormFloat64())
		}
	}
	mean := make([]float64, dim)
	for i := range n {
		for j := range dim {
			mean[j] += float64(rows[i*dim+j]) / n
		}
	}
	var meanStd float64
	for j := range dim {
		var v float64
		for i := range n {
			t := float64(rows[i*dim+j]) - mean[j]
			v += t * t
		}
		meanStd += math.Sqrt(v/n) / dim
	}

	s := NewStats(dim)
	for lo := 0; lo < n; {
		hi := min(n, lo+1+rng.IntN(300))
		s.Add(rows[lo*dim : hi*dim])
		lo = hi
	}
	s.Add(nil)
	require.Equal(t, n, s.Count())
	got := s.Mean()
	for j := range dim {
		require.InDelta(t, mean[j], float64(got[j]), 1e-7*max(1, math.Abs(mean[j])), "mean[%d]", j)
	}
	require.InEpsilon(t, meanStd, s.MeanStd(), 1e-9)

	md := NewMeanDistance(got)
	md.Add(rows[:100*dim])
	md.Add(rows[100*dim:])
	var dist float64
	for i := range n {
		var e float64
		for j := range dim {
			t := float64(rows[i*dim+j]) - float64(got[j])
			e += t * t
		}
		dist += math.Sqrt(e) / n
	}
	require.InEpsilon(t, dist, md.Value(), 1e-9)

	require.Panics(t, func() { s.Add(make([]float32, dim+1)) })
	require.Panics(t, func() { md.Add(make([]float32, dim-1)) })
	require.Panics(t, func() { NewStats(dim).Mean() })
	require.Panics(t, func() { NewMeanDistance(got).Value() })
}

// TestInitMean checks the jitter's mean and spread and the determinism.
func TestInitMean(t *testing.T) {
	mean := []float32{1, -2, 300}
	const k, std, jitter = 4000, 2.0, 0.01
	c := InitMean(mean, std, k, jitter, rand.New(rand.NewPCG(1, 1)))
	require.Equal(t, []int{k, 3}, c.Shape())
	cs := c.Float32s()
	sigma := std * jitter
	for j, m := range mean {
		var s, s2 float64
		for i := range k {
			e := float64(cs[i*3+j]) - float64(m)
			s += e
			s2 += e * e
		}
		require.InDelta(t, 0, s/k, 5*sigma/math.Sqrt(k), "offset of dimension %d", j)
		require.InEpsilon(t, sigma, math.Sqrt(s2/k), 0.1, "jitter of dimension %d", j)
	}
	again := InitMean(mean, std, k, jitter, rand.New(rand.NewPCG(1, 1)))
	require.Equal(t, cs, again.Float32s())
}

// TestInitKMeansPP checks that k-means++ returns rows of the sample,
// distinct ones, deterministically, that it favours far rows, and its error.
func TestInitKMeansPP(t *testing.T) {
	const n, dim, k = 60, 3, 12
	sample := randRows(rand.New(rand.NewPCG(2, 2)), n, dim, 1)
	c, err := InitKMeansPP(sample, dim, k, rand.New(rand.NewPCG(3, 3)))
	require.NoError(t, err)
	require.Equal(t, []int{k, dim}, c.Shape())
	rows := sampleRows(t, sample, dim, c)
	require.Len(t, uniq(rows), k, "rows %v are not distinct", rows)
	again, err := InitKMeansPP(sample, dim, k, rand.New(rand.NewPCG(3, 3)))
	require.NoError(t, err)
	require.Equal(t, c.Float32s(), again.Float32s())

	// k = n: every row once.
	c, err = InitKMeansPP(sample, dim, n, rand.New(rand.NewPCG(4, 4)))
	require.NoError(t, err)
	require.Len(t, uniq(sampleRows(t, sample, dim, c)), n)

	// Five distinct rows, each four times: five picks are the five rows;
	// seven picks repeat values but are still rows of the sample.
	var dup []float32
	for r := range 20 {
		dup = append(dup, sample[(r%5)*dim:(r%5+1)*dim]...)
	}
	c, err = InitKMeansPP(dup, dim, 5, rand.New(rand.NewPCG(5, 5)))
	require.NoError(t, err)
	vals := make(map[[dim]float32]bool)
	for i := range 5 {
		vals[[dim]float32(c.Float32s()[i*dim:(i+1)*dim])] = true
	}
	require.Len(t, vals, 5)
	c, err = InitKMeansPP(dup, dim, 7, rand.New(rand.NewPCG(5, 5)))
	require.NoError(t, err)
	sampleRows(t, dup, dim, c)

	// Two tight clusters far apart: the second centroid, drawn in
	// proportion to squared distance, lands in the other cluster.
	far := make([]float32, 0, 40*dim)
	rng := rand.New(rand.NewPCG(6, 6))
	for i := range 40 {
		off := float32(0)
		if i%2 == 1 {
			off = 100
		}
		for range dim {
			far = append(far, off+float32(0.01*rng.NormFloat64()))
		}
	}
	for seed := range uint64(20) {
		c, err = InitKMeansPP(far, dim, 2, rand.New(rand.NewPCG(seed, 7)))
		require.NoError(t, err)
		require.InDelta(t, 100, math.Abs(float64(c.Float32s()[0]-c.Float32s()[dim])), 1, "seed %d", seed)
	}

	// 98 rows at 0, one at 1 and one at 2 (1-D): after a first pick at 0,
	// the second is 2 with probability 4/(1+4) (squared distances), not
	// 2/3 (distances).
	line := make([]float32, 100)
	line[98], line[99] = 1, 2
	rng = rand.New(rand.NewPCG(8, 8))
	var twos, trials int
	for range 4000 {
		c, err = InitKMeansPP(line, 1, 2, rng)
		require.NoError(t, err)
		if cs := c.Float32s(); cs[0] == 0 {
			trials++
			if cs[1] == 2 {
				twos++
			}
		}
	}
	require.InDelta(t, 0.8, float64(twos)/float64(trials), 0.03, "%d of %d", twos, trials)

	_, err = InitKMeansPP(sample[:4*dim], dim, 5, rand.New(rand.NewPCG(1, 1)))
	require.True(t, errors.Is(err, ErrSampleTooSmall), "err = %v", err)
	require.Panics(t, func() { InitKMeansPP(sample[:4*dim+1], dim, 2, rand.New(rand.NewPCG(1, 1))) })
}

// sampleRows returns, for each centroid, the index of a sample row equal to
// it, and fails if there is none.
func sampleRows(t *testing.T, sample []float32, dim int, c *tensor.Tensor) []int {
	t.Helper()
	cs := c.Float32s()
	var idx []int
	for i := range c.Dim(0) {
		found := -1
		for r := range len(sample) / dim {
			if slices.Equal(cs[i*dim:(i+1)*dim], sample[r*dim:(r+1)*dim]) {
				found = r
				break
			}
		}
		require.GreaterOrEqual(t, found, 0, "centroid %d is not a row of the sample", i)
		idx = append(idx, found)
	}
	return idx
}

func uniq(xs []int) []int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return slices.Compact(s)
}
