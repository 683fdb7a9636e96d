package contrastive

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSampleDistinctInRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct{ n, m int }{{1000, 100}, {25088, testSample}, {10, 9}, {1, 1}, {5, 0}, {0, 0}} {
		s := Sample(rng, c.n, c.m)
		require.Len(t, s, c.m)
		seen := make(map[int32]bool, len(s))
		for _, v := range s {
			require.True(t, v >= 0 && int(v) < c.n, "index %d out of [0, %d)", v, c.n)
			require.False(t, seen[v], "index %d drawn twice", v)
			seen[v] = true
		}
	}
}

func TestSampleAllWhenMAtLeastN(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, m := range []int{50, 80} {
		s := Sample(rng, 50, m)
		require.Len(t, s, 50)
		sorted := slices.Sorted(slices.Values(s))
		for i, v := range sorted {
			require.Equal(t, int32(i), v)
		}
		require.False(t, slices.IsSorted(s), "all n indices should come in a random order")
	}
	require.Empty(t, Sample(rng, 0, 10))
}

func TestSampleDeterministic(t *testing.T) {
	a := Sample(rand.New(rand.NewPCG(9, 9)), 5000, 300)
	b := Sample(rand.New(rand.NewPCG(9, 9)), 5000, 300)
	c := Sample(rand.New(rand.NewPCG(9, 10)), 5000, 300)
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
}

// TestSampleUniform checks that every index is drawn equally often, both
// overall and in the first position.
func TestSampleUniform(t *testing.T) {
	const n, m, trials = 10, 3, 20000
	rng := rand.New(rand.NewPCG(4, 5))
	var drawn, first [n]int
	for range trials {
		s := Sample(rng, n, m)
		first[s[0]]++
		for _, v := range s {
			drawn[v]++
		}
	}
	pAny, pFirst := float64(m)/n, 1.0/n
	for i := range n {
		sd := math.Sqrt(trials * pAny * (1 - pAny))
		require.InDelta(t, trials*pAny, float64(drawn[i]), 5*sd, "index %d", i)
		sd = math.Sqrt(trials * pFirst * (1 - pFirst))
		require.InDelta(t, trials*pFirst, float64(first[i]), 5*sd, "index %d first", i)
	}
}

func TestSamplePanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	require.PanicsWithValue(t, "anomnet/contrastive: Sample(-1 of 5)", func() { Sample(rng, 5, -1) })
	require.PanicsWithValue(t, "anomnet/contrastive: Sample(1 of -5)", func() { Sample(rng, -5, 1) })
}
