package tensor

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPooledRows checks PooledRows bit for bit against the five ops it
// stands for (Scale, AvgPool2D, ResizeBilinear where the size differs,
// Concat, ChannelsLast), with channel counts that do and do not fill a
// group, scales of 1, a power of two and neither, and taps already at the
// grid's size or smaller in one or both sides.
func TestPooledRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type tap struct {
		c, h, w int
		scale   float32
	}
	for _, tc := range []struct {
		n, th, tw int
		taps      []tap
	}{
		{1, 6, 9, []tap{{5, 6, 9, 1}}},
		{2, 8, 12, []tap{{16, 8, 12, 1}, {37, 4, 6, 0.5}}},
		{3, 7, 5, []tap{{20, 7, 5, 0.70710677}, {33, 3, 2, 0.5}, {8, 7, 3, 1}}},
		{1, 1, 1, []tap{{3, 1, 1, 2}}},
	} {
		cpu := CPU{}
		var taps []RowsTap
		var outs []*Tensor
		dim := 0
		for _, tp := range tc.taps {
			x := New(tc.n, tp.c, tp.h, tp.w)
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(rng.NormFloat64() * 3)
			}
			taps = append(taps, RowsTap{X: slices.Clone(x.Float32s()), C: tp.c, H: tp.h, W: tp.w, Scale: tp.scale})
			if tp.scale != 1 {
				cpu.Scale(tp.scale, x)
			}
			p := New(tc.n, tp.c, tp.h, tp.w)
			cpu.AvgPool2D(p, x, Pool2DParams{Kernel: 3, Stride: 1, Pad: 1})
			if tp.h != tc.th || tp.w != tc.tw {
				r := New(tc.n, tp.c, tc.th, tc.tw)
				cpu.ResizeBilinear(r, p)
				p = r
			}
			outs = append(outs, p)
			dim += tp.c
		}
		f := New(tc.n, dim, tc.th, tc.tw)
		cpu.Concat(f, outs...)
		want := New(tc.n*tc.th*tc.tw, dim)
		cpu.ChannelsLast(want, f)
		got := make([]float32, len(want.Float32s()))
		for i := range got {
			got[i] = float32(math.NaN()) // every value must be written
		}
		PooledRows(got, tc.n, tc.th, tc.tw, taps)
		for i, v := range want.Float32s() {
			if math.Float32bits(got[i]) != math.Float32bits(v) {
				t.Fatalf("%d images, grid %dx%d, taps %v: value %d (row %d, column %d) is %g, want %g", tc.n, tc.th, tc.tw, tc.taps, i, i/dim, i%dim, got[i], v)
			}
		}
	}
}

// TestPooledRowsPanics checks that a tap larger than the grid, or sizes
// that do not match, are refused.
func TestPooledRowsPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"tap larger than the grid": func() {
			PooledRows(make([]float32, 4*2), 1, 2, 2, []RowsTap{{X: make([]float32, 2*3*3), C: 2, H: 3, W: 3, Scale: 1}})
		},
		"short dst": func() {
			PooledRows(make([]float32, 7), 1, 2, 2, []RowsTap{{X: make([]float32, 2*2*2), C: 2, H: 2, W: 2, Scale: 1}})
		},
		"short X": func() {
			PooledRows(make([]float32, 8), 1, 2, 2, []RowsTap{{X: make([]float32, 7), C: 2, H: 2, W: 2, Scale: 1}})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// BenchmarkPooledRows times a batch of 8 of kolektor's full-input maps
// (stage 2: 512 x 26 x 64, stage 3: 1024 x 13 x 32, halved) against the
// five ops it replaces.
func BenchmarkPooledRows(b *testing.B) {
	const n, th, tw = 8, 26, 64
	x2, x3 := New(n, 512, th, tw), New(n, 1024, 13, 32)
	for _, x := range []*Tensor{x2, x3} {
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(i%97) * 0.01
		}
	}
	taps := []RowsTap{{X: x2.Float32s(), C: 512, H: th, W: tw, Scale: 1}, {X: x3.Float32s(), C: 1024, H: 13, W: 32, Scale: 0.5}}
	dst := make([]float32, n*th*tw*1536)
	b.Run("pooled", func(b *testing.B) {
		for b.Loop() {
			PooledRows(dst, n, th, tw, taps)
		}
	})
	b.Run("ops", func(b *testing.B) {
		cpu := CPU{}
		for b.Loop() {
			y3 := New(n, 1024, 13, 32)
			cpu.Copy(y3, x3)
			cpu.Scale(0.5, y3)
			p2, p3 := New(n, 512, th, tw), New(n, 1024, 13, 32)
			cpu.AvgPool2D(p2, x2, Pool2DParams{Kernel: 3, Stride: 1, Pad: 1})
			cpu.AvgPool2D(p3, y3, Pool2DParams{Kernel: 3, Stride: 1, Pad: 1})
			r3 := New(n, 1024, th, tw)
			cpu.ResizeBilinear(r3, p3)
			f := New(n, 1536, th, tw)
			cpu.Concat(f, p2, r3)
			rows := New(n*th*tw, 1536)
			cpu.ChannelsLast(rows, f)
		}
	})
}
