package adapter_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/internal/tensor"
)

// refLoss is the test's loss on the float64 reference output:
// L = sum(G * F) + 1/2 sum(F^2), so that dL/dF = G + F.
func refLoss(f fmap, g []float64) float64 {
	var l float64
	for i, v := range f.v {
		l += g[i]*v + 0.5*v*v
	}
	return l
}

// TestGradients checks Backward against float64 central differences of
// refLoss through the reference forward, for every element of every W and B.
func TestGradients(t *testing.T) {
	d := tensor.CPU{}
	chans := []int{2, 3}
	cases := []struct {
		name  string
		opts  adapter.Options
		sizes [][2]int
	}{
		// Default target 6x6: the 3x3 map is interpolated up.
		{"k=1", adapter.Options{}, [][2]int{{6, 6}, {3, 3}}},
		{"k=3", adapter.Options{Kernel: 3}, [][2]int{{6, 6}, {3, 3}}},
		{"k=1,nopool", adapter.Options{NoPool: true}, [][2]int{{6, 6}, {3, 3}}},
		{"k=3,nopool", adapter.Options{Kernel: 3, NoPool: true}, [][2]int{{6, 6}, {3, 3}}},
		// Target 4x4: the 6x6 map is pooled down, the 3x3 one interpolated up.
		{"k=1,4x4", adapter.Options{Height: 4, Width: 4}, [][2]int{{6, 6}, {3, 3}}},
		{"k=3,4x4", adapter.Options{Kernel: 3, Height: 4, Width: 4}, [][2]int{{6, 6}, {3, 3}}},
		{"k=1,nopool,4x4", adapter.Options{NoPool: true, Height: 4, Width: 4}, [][2]int{{6, 6}, {3, 3}}},
		{"k=3,nopool,4x4", adapter.Options{Kernel: 3, NoPool: true, Height: 4, Width: 4}, [][2]int{{6, 6}, {3, 3}}},
		// Non-square: 5x7 -> 6x4 is up in one axis and down in the other;
		// 7x5 -> 6x4 is pooled down unevenly.
		{"k=3,mixed", adapter.Options{Kernel: 3, Height: 6, Width: 4}, [][2]int{{5, 7}, {7, 5}}},
		// Default target is the first map, the second one is pooled down.
		{"k=1,down", adapter.Options{}, [][2]int{{3, 4}, {6, 7}}},
		// A centre-weighted aggregation, the 3x3 map interpolated up.
		{"k=1,centre", adapter.Options{Centre: 0.1}, [][2]int{{6, 6}, {3, 3}}},
		{"k=3,centre,4x4", adapter.Options{Kernel: 3, Centre: 0.3, Height: 4, Width: 4}, [][2]int{{6, 6}, {3, 3}}},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := adapter.New(d, chans, tc.opts)
			randomize(rng, d, a, 0.5)
			xs, fs := randomMaps(rng, 2, chans, tc.sizes)
			var tape adapter.Tape
			defer tape.Free(d)
			f := a.ForwardTape(d, xs, &tape)
			oh, ow := f.Dim(2), f.Dim(3)
			pool := refPool(tc.opts)
			layers := refLayers(a)
			ref := refForward(fs, layers, pool, oh, ow)
			requireClose(t, ref.v, f.Float32s(), 1e-5, "forward")

			g := make([]float64, len(ref.v))
			for i := range g {
				g[i] = 2*rng.Float64() - 1
			}
			dF := tensor.New(f.Shape()...)
			for i, v := range f.Float32s() {
				dF.Float32s()[i] = float32(g[i] + float64(v))
			}
			grads := a.NewGrads(d)
			a.Backward(d, &tape, dF, grads)

			requireGradients(t, fs, layers, pool, oh, ow, g, grads)
		})
	}
}

// TestBackwardOverwritesAndTapeReuse checks that Backward overwrites its
// gradients, and that a tape reused across batches of other sizes gives
// what a fresh tape gives.
func TestBackwardOverwritesAndTapeReuse(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(9, 10))
	chans := []int{2, 3}
	sizes := [][2]int{{6, 6}, {3, 3}}
	a := adapter.New(d, chans, adapter.Options{Kernel: 3, Height: 4, Width: 4})
	randomize(rng, d, a, 0.5)
	xs, _ := randomMaps(rng, 3, chans, sizes)
	dF := tensor.New(3, 5, 4, 4)
	for i := range dF.Float32s() {
		dF.Float32s()[i] = float32(2*rng.Float64() - 1)
	}

	var fresh adapter.Tape
	a.ForwardTape(d, xs, &fresh)
	want := a.NewGrads(d)
	a.Backward(d, &fresh, dF, want)
	fresh.Free(d)
	fresh.Free(d) // idempotent

	var tape adapter.Tape
	other, _ := randomMaps(rng, 2, chans, [][2]int{{5, 5}, {3, 3}})
	a.ForwardTape(d, other, &tape)
	same, _ := randomMaps(rng, 3, chans, sizes)
	a.ForwardTape(d, same, &tape) // same shapes: the buffers are reused
	a.ForwardTape(d, xs, &tape)
	got := a.NewGrads(d)
	for range 2 {
		a.Backward(d, &tape, dF, got)
		for i := range want {
			require.Equal(t, want[i].Float32s(), got[i].Float32s(), "gradient %d", i)
		}
	}
	tape.Free(d)
	requirePanicsWithPrefix(t, func() { a.Backward(d, &tape, dF, got) }, "freed tape")
}

// TestSingleLayerGradient covers the path without Split: one map whose
// output is F itself.
func TestSingleLayerGradient(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, opts := range []adapter.Options{{NoPool: true}, {Kernel: 3, Height: 3, Width: 5}} {
		a := adapter.New(d, []int{2}, opts)
		randomize(rng, d, a, 0.5)
		xs, fs := randomMaps(rng, 2, []int{2}, [][2]int{{4, 4}})
		var tape adapter.Tape
		f := a.ForwardTape(d, xs, &tape)
		g := make([]float64, f.Len())
		dF := tensor.New(f.Shape()...)
		for i := range g {
			g[i] = 2*rng.Float64() - 1
			dF.Float32s()[i] = float32(g[i]) + f.Float32s()[i]
		}
		grads := a.NewGrads(d)
		a.Backward(d, &tape, dF, grads)
		requireGradients(t, fs, refLayers(a), refPool(opts), f.Dim(2), f.Dim(3), g, grads)
		tape.Free(d)
	}
}

// requireGradients checks grads (W0, B0, W1, B1, ...) against float64
// central differences of refLoss(refForward(fs, layers, ...), g).
func requireGradients(t *testing.T, fs []fmap, layers []refLayer, pool float64, oh, ow int, g []float64, grads []*tensor.Tensor) {
	t.Helper()
	const h = 1e-2 // exact for a quadratic loss, up to rounding
	for li := range layers {
		for pi, p := range [][]float64{layers[li].w, layers[li].b} {
			got := grads[2*li+pi].Float32s()
			want := make([]float64, len(p))
			for j := range p {
				old := p[j]
				p[j] = old + h
				lp := refLoss(refForward(fs, layers, pool, oh, ow), g)
				p[j] = old - h
				lm := refLoss(refForward(fs, layers, pool, oh, ow), g)
				p[j] = old
				want[j] = (lp - lm) / (2 * h)
			}
			scale := 0.0
			for _, v := range want {
				scale = max(scale, math.Abs(v))
			}
			for j := range want {
				require.InDelta(t, want[j], got[j], 1e-5*(1+scale), "layer %d param %d element %d", li, pi, j)
			}
		}
	}
}
