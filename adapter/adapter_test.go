package adapter_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/internal/tensor"
)

func TestIdentityWithoutPooling(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range []int{1, 3} {
		a := adapter.New(d, []int{5}, adapter.Options{Kernel: k, NoPool: true})
		xs, _ := randomMaps(rng, 2, []int{5}, [][2]int{{7, 9}})
		f := a.Forward(d, xs)
		require.Equal(t, xs[0].Shape(), f.Shape(), "kernel %d", k)
		require.Equal(t, xs[0].Float32s(), f.Float32s(), "kernel %d: a new adapter must pass its map through exactly", k)
	}
}

func TestForwardMatchesReference(t *testing.T) {
	d := tensor.CPU{}
	chans := []int{3, 4}
	sizes := [][2]int{{28, 28}, {14, 14}}
	cases := []struct {
		name   string
		opts   adapter.Options
		random bool
		oh, ow int
	}{
		{"identity", adapter.Options{}, false, 28, 28},
		{"identity,k=3", adapter.Options{Kernel: 3}, false, 28, 28},
		{"random", adapter.Options{}, true, 28, 28},
		{"random,k=3", adapter.Options{Kernel: 3}, true, 28, 28},
		{"random,nopool", adapter.Options{NoPool: true}, true, 28, 28},
		{"random,k=3,nopool", adapter.Options{Kernel: 3, NoPool: true}, true, 28, 28},
		// 28 -> 20 pools down and 14 -> 20 interpolates up.
		{"random,20x20", adapter.Options{Height: 20, Width: 20}, true, 20, 20},
		// 14x14 -> 20x10 is larger in one axis and smaller in the other.
		{"random,k=3,20x10", adapter.Options{Kernel: 3, Height: 20, Width: 10}, true, 20, 10},
		{"random,14x14", adapter.Options{Height: 14, Width: 14}, true, 14, 14},
		{"random,centre", adapter.Options{Centre: 0.1}, true, 28, 28},
		// The grid of the second map: the first (28x28) pooled down to 14x14.
		{"random,grid 2", adapter.Options{Grid: 2}, true, 14, 14},
		// Height and Width win over Grid.
		{"random,grid 2,20x20", adapter.Options{Grid: 2, Height: 20, Width: 20}, true, 20, 20},
		{"random,k=3,centre,20x10", adapter.Options{Kernel: 3, Centre: 0.5, Height: 20, Width: 10}, true, 20, 10},
		{"identity,centre 1", adapter.Options{Centre: 1}, false, 28, 28},
		{"identity,14x14", adapter.Options{Height: 14, Width: 14}, false, 14, 14},
		{"identity,28x40", adapter.Options{Height: 28, Width: 40}, false, 28, 40},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := adapter.New(d, chans, tc.opts)
			if tc.random {
				randomize(rng, d, a, 0.5)
			} else if tc.opts.Kernel == 0 {
				// A tap balance: multiples of the identity.
				d.Scale(0.5, a.Layers[1].W)
				d.Scale(0.7, a.Layers[0].W)
			}
			xs, fs := randomMaps(rng, 2, chans, sizes)
			got := a.Forward(d, xs)
			require.Equal(t, []int{2, 7, tc.oh, tc.ow}, got.Shape())
			want := refForward(fs, refLayers(a), refPool(tc.opts), tc.oh, tc.ow)
			requireClose(t, want.v, got.Float32s(), 1e-5, tc.name)

			// ForwardTape computes the same.
			var tape adapter.Tape
			defer tape.Free(d)
			require.Equal(t, got.Float32s(), a.ForwardTape(d, xs, &tape).Float32s())

			// Rows gives the same values as rows, bit for bit, in
			// one pass where the layers are multiples of the identity.
			buf := make([]float32, 2*tc.oh*tc.ow*7+3)
			for i := range buf {
				buf[i] = float32(math.NaN()) // every value must be written
			}
			rows, h, w := a.Rows(d, xs, buf)
			require.Equal(t, []int{tc.oh, tc.ow}, []int{h, w})
			want2 := tensor.New(2*tc.oh*tc.ow, 7)
			d.ChannelsLast(want2, got)
			require.Equal(t, want2.Shape(), rows.Shape())
			for i, v := range want2.Float32s() {
				if math.Float32bits(v) != math.Float32bits(rows.Float32s()[i]) {
					t.Fatalf("Rows: value %d is %g, want %g", i, rows.Float32s()[i], v)
				}
			}
		})
	}
}

func TestCoordinatesReachTheOutput(t *testing.T) {
	// Weight 1 on the x coordinate channel and 2 on the y one: the output
	// is x + 2y at every location, whatever the map.
	d := tensor.CPU{}
	a := adapter.New(d, []int{1}, adapter.Options{NoPool: true})
	d.Copy(a.Layers[0].W, tensor.FromFloat32s([]float32{0, 1, 2}, 1, 3, 1, 1))
	f := a.Forward(d, []*tensor.Tensor{tensor.New(1, 1, 3, 5)})
	for i := range 3 {
		for j := range 5 {
			want := -1 + 2*float64(j)/4 + 2*(-1+2*float64(i)/2)
			require.InDelta(t, want, f.Float32s()[i*5+j], 1e-6, "(%d, %d)", i, j)
		}
	}
}

func TestAccessors(t *testing.T) {
	d := tensor.CPU{}
	chans := []int{512, 1024}
	a := adapter.New(d, chans, adapter.Options{})
	require.Equal(t, 1536, a.Dim())
	require.Equal(t, chans, a.Channels())
	a.Channels()[0] = 7
	require.Equal(t, chans, a.Channels(), "Channels must return a copy")
	require.Equal(t, adapter.Options{Kernel: 1}, a.Options())

	h, w := a.OutSize([][2]int{{28, 28}, {14, 14}})
	require.Equal(t, [2]int{28, 28}, [2]int{h, w})
	h, w = a.OutSize([][2]int{{7, 7}, {14, 14}})
	require.Equal(t, [2]int{14, 14}, [2]int{h, w})
	h, w = a.OutSize([][2]int{{4, 8}, {8, 4}})
	require.Equal(t, [2]int{4, 8}, [2]int{h, w}, "ties go to the first map")

	b := adapter.New(d, []int{2, 3}, adapter.Options{Kernel: 3, NoPool: true, Height: 5, Width: 6})
	require.Equal(t, adapter.Options{Kernel: 3, NoPool: true, Height: 5, Width: 6}, b.Options())
	h, w = b.OutSize([][2]int{{28, 28}, {14, 14}})
	require.Equal(t, [2]int{5, 6}, [2]int{h, w})

	// A size set in one axis only takes the other from the largest map.
	c := adapter.New(d, []int{2, 3}, adapter.Options{Width: 9})
	h, w = c.OutSize([][2]int{{7, 7}, {14, 12}})
	require.Equal(t, [2]int{14, 9}, [2]int{h, w})
	c = adapter.New(d, []int{2, 3}, adapter.Options{Height: 9})
	h, w = c.OutSize([][2]int{{7, 7}, {14, 12}})
	require.Equal(t, [2]int{9, 12}, [2]int{h, w})

	ps := b.Params()
	require.Len(t, ps, 4)
	for i, l := range b.Layers {
		require.Same(t, l.W, ps[2*i])
		require.Same(t, l.B, ps[2*i+1])
		c := b.Channels()[i]
		require.Equal(t, []int{c, c + 2, 3, 3}, l.W.Shape())
		require.Equal(t, []int{c}, l.B.Shape())
	}
	gs := b.NewGrads(d)
	require.Len(t, gs, len(ps))
	for i, g := range gs {
		require.Equal(t, ps[i].Shape(), g.Shape())
		require.NotSame(t, ps[i], g)
		for _, v := range g.Float32s() {
			require.Zero(t, v)
		}
	}
}

func TestOptionsJSON(t *testing.T) {
	o := adapter.Options{Kernel: 3, NoPool: true, Height: 5, Width: 6}
	b, err := json.Marshal(o)
	require.NoError(t, err)
	require.JSONEq(t, `{"kernel": 3, "no_pool": true, "height": 5, "width": 6}`, string(b))
	var back adapter.Options
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, o, back)
}

// requirePanicsWithPrefix checks that f panics with a string carrying the
// package's prefix.
func requirePanicsWithPrefix(t *testing.T, f func(), msg string) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		require.NotNil(t, r, "%s: no panic", msg)
		s, ok := r.(string)
		require.True(t, ok, "%s: panic value %v is not a string", msg, r)
		require.True(t, strings.HasPrefix(s, "anomnet/adapter: "), "%s: %q", msg, s)
	}()
	f()
}

func TestPanics(t *testing.T) {
	d := tensor.CPU{}
	for name, f := range map[string]func(){
		"kernel 2":        func() { adapter.New(d, []int{4}, adapter.Options{Kernel: 2}) },
		"kernel -1":       func() { adapter.New(d, []int{4}, adapter.Options{Kernel: -1}) },
		"no channels":     func() { adapter.New(d, nil, adapter.Options{}) },
		"zero channels":   func() { adapter.New(d, []int{4, 0}, adapter.Options{}) },
		"negative chans":  func() { adapter.New(d, []int{-3}, adapter.Options{}) },
		"negative height": func() { adapter.New(d, []int{4}, adapter.Options{Height: -4, Width: 4}) },
		"negative width":  func() { adapter.New(d, []int{4}, adapter.Options{Width: -1}) },
		"grid 3 of 2":     func() { adapter.New(d, []int{4, 4}, adapter.Options{Grid: 3}) },
		"grid -1":         func() { adapter.New(d, []int{4}, adapter.Options{Grid: -1}) },
		"centre 1.5":      func() { adapter.New(d, []int{4}, adapter.Options{Centre: 1.5}) },
	} {
		requirePanicsWithPrefix(t, f, name)
	}

	a := adapter.New(d, []int{2, 3}, adapter.Options{})
	x2, x3 := tensor.New(1, 2, 4, 4), tensor.New(1, 3, 2, 2)
	for name, f := range map[string]func(){
		"one map":        func() { a.Forward(d, []*tensor.Tensor{x2}) },
		"channels":       func() { a.Forward(d, []*tensor.Tensor{x3, x2}) },
		"batch":          func() { a.Forward(d, []*tensor.Tensor{x2, tensor.New(2, 3, 2, 2)}) },
		"rank":           func() { a.Forward(d, []*tensor.Tensor{x2, tensor.New(3, 2, 2)}) },
		"nil tape":       func() { a.ForwardTape(d, []*tensor.Tensor{x2, x3}, nil) },
		"out size":       func() { a.OutSize([][2]int{{4, 4}}) },
		"empty tape":     func() { a.Backward(d, &adapter.Tape{}, tensor.New(1, 5, 4, 4), a.NewGrads(d)) },
		"empty map size": func() { a.OutSize([][2]int{{4, 4}, {0, 2}}) },
		"backward dF": func() {
			var tp adapter.Tape
			a.ForwardTape(d, []*tensor.Tensor{x2, x3}, &tp)
			a.Backward(d, &tp, tensor.New(1, 5, 2, 2), a.NewGrads(d))
		},
		"backward grads": func() {
			var tp adapter.Tape
			a.ForwardTape(d, []*tensor.Tensor{x2, x3}, &tp)
			a.Backward(d, &tp, tensor.New(1, 5, 4, 4), a.NewGrads(d)[:3])
		},
		"backward shapes": func() {
			var tp adapter.Tape
			a.ForwardTape(d, []*tensor.Tensor{x2, x3}, &tp)
			g := a.NewGrads(d)
			g[0], g[2] = g[2], g[0]
			a.Backward(d, &tp, tensor.New(1, 5, 4, 4), g)
		},
	} {
		requirePanicsWithPrefix(t, f, name)
	}
}

func TestConcurrentForward(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(5, 6))
	chans := []int{3, 2}
	a := adapter.New(d, chans, adapter.Options{Kernel: 3})
	randomize(rng, d, a, 0.5)
	xs, _ := randomMaps(rng, 3, chans, [][2]int{{12, 12}, {6, 6}})
	want := a.Forward(d, xs).Float32s()

	const workers = 8
	got := make([][]float32, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for range 3 {
				got[g] = a.Forward(d, xs).Float32s()
			}
		})
	}
	wg.Wait()
	for g := range workers {
		require.Equal(t, want, got[g], "goroutine %d", g)
	}
}

func ExampleNew() {
	d := tensor.CPU{}
	// ResNet-50's stages 2 and 3 at 224 input.
	a := adapter.New(d, []int{512, 1024}, adapter.Options{})
	h, w := a.OutSize([][2]int{{28, 28}, {14, 14}})
	fmt.Println(a.Dim(), h, w)
	// Output: 1536 28 28
}

// TestScaledIdentity covers Forward's shortcut for a layer that is a
// multiple of the identity (as a tap balance leaves it) and the
// convolution it must fall back to as soon as any other weight is not
// zero: both must match the float64 reference, and ForwardTape, which
// always convolves.
func TestScaledIdentity(t *testing.T) {
	d := tensor.CPU{}
	chans := []int{3, 4}
	sizes := [][2]int{{8, 8}, {4, 4}}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{1, 3} {
		for _, tc := range []struct {
			name string
			edit func(w, b []float32)
		}{
			{"scaled", func(w, b []float32) {}},
			{"a coordinate weight", func(w, b []float32) { w[len(w)-1] = 1e-3 }},
			{"an off-diagonal weight", func(w, b []float32) { w[k*k] = 1e-3 }},
			{"a bias", func(w, b []float32) { b[1] = 0.25 }},
		} {
			a := adapter.New(d, chans, adapter.Options{Kernel: k})
			for i, l := range a.Layers {
				d.Scale(float32(0.5+0.25*float64(i)), l.W)
			}
			tc.edit(a.Layers[1].W.Float32s(), a.Layers[1].B.Float32s())
			xs, fs := randomMaps(rng, 2, chans, sizes)
			got := a.Forward(d, xs)
			want := refForward(fs, refLayers(a), refPool(adapter.Options{}), 8, 8)
			requireClose(t, want.v, got.Float32s(), 1e-5, fmt.Sprintf("k=%d, %s", k, tc.name))
			var tape adapter.Tape
			require.Equal(t, got.Float32s(), a.ForwardTape(d, xs, &tape).Float32s(), "k=%d, %s: ForwardTape", k, tc.name)
			tape.Free(d)
		}
	}
}
