package vec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// paths runs f with the assembly loops (where this machine has them) and
// with the Go ones.
func paths(t *testing.T, f func(t *testing.T)) {
	asm := useAVX512
	t.Cleanup(func() { useAVX512 = asm })
	for _, on := range []bool{true, false} {
		if on && !asm {
			continue
		}
		useAVX512 = on
		name := "go"
		if on {
			name = "avx512"
		}
		t.Run(name, f)
	}
}

// lengths covers the empty vector, tails of every size and the feature
// dimension anomnet searches in.
var lengths = []int{0, 1, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 1536, 1541}

func randVec(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 3)
	}
	return x
}

// TestSqDist holds SqDist to a float64 sum on random vectors.
func TestSqDist(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, n := range lengths {
			a, b := randVec(rng, n), randVec(rng, n+3) // b may be longer
			var want float64
			for i := range a {
				d := float64(a[i]) - float64(b[i])
				want += d * d
			}
			got := SqDist(a, b)
			require.InDelta(t, want, float64(got), 1e-5*want+1e-12, "n %d", n)
		}
		// Equal vectors: exactly zero.
		a := randVec(rng, 1536)
		require.Zero(t, SqDist(a, a))
	})
}

// TestDot holds Dot to a float64 sum on random vectors.
func TestDot(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 2))
		for _, n := range lengths {
			a, b := randVec(rng, n), randVec(rng, n+5)
			var want, mag float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			require.InDelta(t, want, float64(Dot(a, b)), 1e-6*mag+1e-12, "n %d", n)
		}
	})
}

// TestMinDist holds MinDist to the Go expression it stands for, bit for
// bit, with the minimum in every position.
func TestMinDist(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		require.True(t, math.IsInf(float64(MinDist(1, nil, nil)), 1))
		for _, n := range lengths[1:] {
			c, d := randVec(rng, n), randVec(rng, n+2)
			for i := range c {
				c[i] = c[i] * c[i] * 50 // squared norms, large beside the dot products
			}
			a := float32(rng.Float64() * 100)
			for _, at := range []int{-1, 0, n / 2, n - 1} {
				if at >= 0 {
					d[at] = 1000
				}
				want := float32(math.Inf(1))
				for j := range c {
					want = min(want, a+c[j]-2*d[j])
				}
				require.Equal(t, want, MinDist(a, c, d), "n %d, minimum at %d", n, at)
			}
		}
	})
}

// TestMin holds Min to a scan, with the minimum in every position and
// infinities among the elements.
func TestMin(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		require.True(t, math.IsInf(float64(Min(nil)), 1))
		for _, n := range lengths[1:] {
			x := randVec(rng, n)
			x[rng.IntN(n)] = float32(math.Inf(1))
			for _, at := range []int{0, n / 2, n - 1} {
				y := append([]float32(nil), x...)
				y[at] = -100
				require.Equal(t, float32(-100), Min(y), "n %d, minimum at %d", n, at)
			}
			want := x[0]
			for _, v := range x {
				want = min(want, v)
			}
			require.Equal(t, want, Min(x), "n %d", n)
		}
	})
}

// TestFilterLE holds FilterLE to a scan: the same indices in the same
// order, ties with the limit included, with reused and short buffers.
func TestFilterLE(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		var buf []int32
		for _, n := range lengths {
			x := randVec(rng, n)
			for i := range x {
				if rng.IntN(7) == 0 {
					x[i] = 1 // ties with the limit
				}
				if rng.IntN(11) == 0 {
					x[i] = float32(math.Inf(1))
				}
			}
			for _, limit := range []float32{-100, -1, 1, 100, float32(math.Inf(1))} {
				var want []int32
				for j, v := range x {
					if v <= limit {
						want = append(want, int32(j))
					}
				}
				buf = FilterLE(x, limit, buf)
				require.Equal(t, len(want), len(buf), "n %d limit %g", n, limit)
				if len(want) > 0 {
					require.Equal(t, want, buf, "n %d limit %g", n, limit)
				}
				short := FilterLE(x, limit, make([]int32, 3, 4))
				require.Equal(t, len(want), len(short))
			}
		}
	})
}

func BenchmarkVec(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	a, c := randVec(rng, 1536), randVec(rng, 1536)
	keys := randVec(rng, 32768)
	out := make([]int32, 0, len(keys)+16)
	for _, on := range []bool{true, false} {
		if on && !useAVX512 {
			continue
		}
		asm := useAVX512
		useAVX512 = on
		name := map[bool]string{true: "avx512", false: "go"}[on]
		b.Run("SqDist1536/"+name, func(b *testing.B) {
			for b.Loop() {
				SqDist(a, c)
			}
		})
		b.Run("Dot130/"+name, func(b *testing.B) {
			for b.Loop() {
				Dot(a[:130], c)
			}
		})
		b.Run("Min32k/"+name, func(b *testing.B) {
			for b.Loop() {
				Min(keys)
			}
		})
		b.Run("FilterLE32k/"+name, func(b *testing.B) {
			for b.Loop() {
				out = FilterLE(keys, -7, out)
			}
		})
		useAVX512 = asm
	}
}
