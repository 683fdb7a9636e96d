package centroid

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/org/anomnet/internal/tensor"
	"github.com/stretchr/testify/require"
)

// farthestBrute is the farthest-point rule as written: after each choice,
// every point's distance to its nearest chosen point, in float64, and the
// farthest point next.
func farthestBrute(z []float32, dim, k, first int) (chosen []int, gaps []float64) {
	n := len(z) / dim
	mind := make([]float64, n)
	for i := range mind {
		mind[i] = math.Inf(1)
	}
	p := first
	for len(chosen) < k {
		chosen = append(chosen, p)
		for i := range n {
			mind[i] = min(mind[i], tensor.SqDist(z[i*dim:(i+1)*dim], z[p*dim:(p+1)*dim]))
		}
		best := 0
		for i, d := range mind {
			if d > mind[best] {
				best = i
			}
		}
		gaps = append(gaps, mind[best])
		p = best
	}
	return chosen, gaps
}

// TestFarthestPoint checks that every point FarthestPoint chooses is, when
// chosen, the farthest of all points from those chosen before (to float32
// rounding), against a brute-force float64 reference on random clustered
// data, on data with exact ties, and with duplicate points.
func TestFarthestPoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	cases := []struct {
		name        string
		n, dim, k   int
		clusters    int
		grid, dupes bool
	}{
		{name: "clustered", n: 3000, dim: 16, k: 300, clusters: 20},
		{name: "uniform", n: 2000, dim: 8, k: 500},
		{name: "high dim", n: 800, dim: 128, k: 200, clusters: 5},
		{name: "grid ties", n: 400, dim: 2, k: 60, grid: true},
		{name: "duplicates", n: 600, dim: 4, k: 600, dupes: true},
		{name: "all", n: 50, dim: 3, k: 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			z := make([]float32, c.n*c.dim)
			centers := make([]float64, max(c.clusters, 1)*c.dim)
			for i := range centers {
				centers[i] = 10 * rng.NormFloat64()
			}
			for i := range c.n {
				for j := range c.dim {
					switch {
					case c.grid:
						z[i*c.dim+j] = float32([2]int{i % 20, i / 20}[j])
					case c.dupes:
						z[i*c.dim+j] = float32((i % 37) * (j + 1))
					case c.clusters > 0:
						z[i*c.dim+j] = float32(centers[(i%c.clusters)*c.dim+j] + rng.NormFloat64())
					default:
						z[i*c.dim+j] = float32(rng.Float64())
					}
				}
			}
			first := rng.IntN(c.n)
			var calls int
			orig := slices.Clone(z)
			got, err := FarthestPoint(z, c.dim, c.k, first, func(int) { calls++ })
			// The distances are rounded in float32 from norms of the
			// centred points: the tolerance of a comparison scales with them.
			var norm2 float64
			for i := range c.n {
				norm2 = max(norm2, tensor.SqDist(z[i*c.dim:(i+1)*c.dim], make([]float32, c.dim)))
			}
			z = orig
			require.NoError(t, err)
			if c.dupes {
				require.Len(t, got, 37, "37 distinct points")
			} else {
				require.Len(t, got, c.k)
				require.Positive(t, calls)
			}
			seen := map[int]bool{}
			for _, p := range got {
				require.False(t, seen[p], "point %d chosen twice", p)
				seen[p] = true
			}
			// Replay the choices: each must be (one of) the farthest.
			n := c.n
			mind := make([]float64, n)
			for i := range mind {
				mind[i] = math.Inf(1)
			}
			for s, p := range got {
				if s > 0 {
					far := 0.0
					for _, d := range mind {
						far = max(far, d)
					}
					require.InDelta(t, far, mind[p], 2e-6*norm2+1e-9, "step %d chose %d at %g, the farthest is at %g", s, p, mind[p], far)
				}
				for i := range n {
					mind[i] = min(mind[i], tensor.SqDist(z[i*c.dim:(i+1)*c.dim], z[p*c.dim:(p+1)*c.dim]))
				}
			}
			if c.name == "uniform" {
				// Far from ties at float32 rounding, the choice is unique.
				want, _ := farthestBrute(z, c.dim, 40, first)
				require.Equal(t, want, got[:40])
			}
		})
	}
}

func TestFarthestPointErrors(t *testing.T) {
	z := make([]float32, 12)
	for _, c := range []struct{ dim, k, first int }{{5, 1, 0}, {4, 0, 0}, {4, 4, 0}, {4, 2, 3}, {4, 2, -1}} {
		_, err := FarthestPoint(z, c.dim, c.k, c.first, nil)
		require.Error(t, err, "dim %d k %d first %d", c.dim, c.k, c.first)
	}
}
