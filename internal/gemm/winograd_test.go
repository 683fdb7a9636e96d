package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refConv is a direct convolution in float64 (with bias, accumulate and
// ReLU as Conv2D applies them) and, per output, the scale sum |w x| + |b|
// + |y0| for the tolerance.
func refConv(g ConvGeom, y0, x, w, bias []float32, accumulate, relu bool) (want, scale []float64) {
	ohw := g.OH * g.OW
	want, scale = make([]float64, g.N*g.O*ohw), make([]float64, g.N*g.O*ohw)
	for n := range g.N {
		for o := range g.O {
			for oy := range g.OH {
				for ox := range g.OW {
					var s, sa float64
					for c := range g.C {
						for ki := range g.KH {
							for kj := range g.KW {
								iy, ix := oy*g.StrideH-g.PadH+ki, ox*g.StrideW-g.PadW+kj
								if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
									continue
								}
								p := float64(w[((o*g.C+c)*g.KH+ki)*g.KW+kj]) * float64(x[((n*g.C+c)*g.H+iy)*g.W+ix])
								s += p
								sa += math.Abs(p)
							}
						}
					}
					if bias != nil {
						s += float64(bias[o])
						sa += math.Abs(float64(bias[o]))
					}
					at := (n*g.O+o)*ohw + oy*g.OW + ox
					if accumulate {
						s += float64(y0[at])
						sa += math.Abs(float64(y0[at]))
					}
					if relu {
						s = max(s, 0)
					}
					want[at], scale[at] = s, sa
				}
			}
		}
	}
	return want, scale
}

// TestWinogradMatchesReference checks the F(2x2, 3x3) path against a
// float64 direct convolution on random inputs: odd and even output sizes
// (cropped tiles), paddings 0, 1 and 2, a batch whose tiles span chunks
// and images, with and without bias, accumulate and ReLU, with every
// micro-kernel. Its error bound is that of the direct path times 4: the
// transforms add a few roundings of values up to the tile's sum.
func TestWinogradMatchesReference(t *testing.T) {
	geoms := []ConvGeom{
		{N: 1, C: 16, H: 4, W: 4, O: 16, PadH: 1, PadW: 1},
		{N: 2, C: 17, H: 7, W: 9, O: 19, PadH: 1, PadW: 1},
		{N: 3, C: 16, H: 8, W: 5, O: 33, PadH: 0, PadW: 0},
		{N: 1, C: 20, H: 6, W: 6, O: 16, PadH: 2, PadW: 2},
		{N: 2, C: 40, H: 13, W: 11, O: 24, PadH: 1, PadW: 0},
		{N: 9, C: 64, H: 14, W: 14, O: 64, PadH: 1, PadW: 1}, // several chunks
	}
	withKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, uint64(len(Active().Name))))
		for _, g := range geoms {
			g.KH, g.KW, g.StrideH, g.StrideW = 3, 3, 1, 1
			g.OH, g.OW = g.H+2*g.PadH-2, g.W+2*g.PadW-2
			if !useWinograd(g) {
				t.Fatalf("%+v does not take the Winograd path", g)
			}
			for _, mode := range []struct{ bias, acc, relu bool }{{true, false, false}, {false, true, false}, {true, true, true}} {
				t.Run(fmt.Sprintf("%+v/%+v", g, mode), func(t *testing.T) {
					x := randSlice(r, g.N*g.C*g.H*g.W)
					w := randSlice(r, g.O*g.C*9)
					var bias []float32
					if mode.bias {
						bias = randSlice(r, g.O)
					}
					y := randSlice(r, g.N*g.O*g.OH*g.OW)
					y0 := append([]float32(nil), y...)
					want, scale := refConv(g, y0, x, w, bias, mode.acc, mode.relu)
					for _, workers := range []int{1, 3} {
						copy(y, y0)
						winogradConv(y, x, w, bias, g, mode.acc, mode.relu, workers)
						for i, v := range y {
							if d := math.Abs(float64(v) - want[i]); d > 4*float64(g.C*9+2)*0x1p-23*scale[i]+1e-30 {
								t.Fatalf("workers %d: y[%d] = %g, want %g (|diff| %.3g, scale %.3g)", workers, i, v, want[i], d, scale[i])
							}
						}
					}
				})
			}
		}
	})
}

// TestWinogradFilterCache: weights changed in place, or other weights at
// the same address, are transformed again; unchanged ones come from the
// cache, which stays within its bound.
func TestWinogradFilterCache(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	g := ConvGeom{N: 1, C: 16, H: 6, W: 6, O: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, OH: 6, OW: 6}
	x := randSlice(r, g.N*g.C*g.H*g.W)
	w := randSlice(r, g.O*g.C*9)
	y := make([]float32, g.N*g.O*g.OH*g.OW)
	for round := range 3 {
		if round > 0 {
			w[r.IntN(len(w))] += 1 // one filter tap changes in place
		}
		for range 2 { // the second call of a round finds the cache filled
			winogradConv(y, x, w, nil, g, false, false, 1)
			want, scale := refConv(g, nil, x, w, nil, false, false)
			for i, v := range y {
				if d := math.Abs(float64(v) - want[i]); d > 4*float64(g.C*9+2)*0x1p-23*scale[i]+1e-30 {
					t.Fatalf("round %d: y[%d] = %g, want %g", round, i, v, want[i])
				}
			}
		}
	}
	filterCache.Lock()
	defer filterCache.Unlock()
	if filterCache.bytes > filterCacheBytes && len(filterCache.entries) > 1 {
		t.Errorf("cache holds %d bytes in %d entries, bound %d", filterCache.bytes, len(filterCache.entries), filterCacheBytes)
	}
}

// TestWinogradGate: Conv2D takes the Winograd path only for 3x3, stride 1,
// at least winogradMinChannels channels in and out, and a 2x2 output.
func TestWinogradGate(t *testing.T) {
	base := ConvGeom{N: 1, C: 16, H: 8, W: 8, O: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, OH: 8, OW: 8}
	if !useWinograd(base) {
		t.Fatal("base case")
	}
	for name, edit := range map[string]func(*ConvGeom){
		"stride 2":    func(g *ConvGeom) { g.StrideH, g.StrideW, g.OH, g.OW = 2, 2, 4, 4 },
		"1x1":         func(g *ConvGeom) { g.KH, g.KW = 1, 1 },
		"3x1":         func(g *ConvGeom) { g.KW = 1 },
		"15 channels": func(g *ConvGeom) { g.C = 15 },
		"15 filters":  func(g *ConvGeom) { g.O = 15 },
		"1-wide out":  func(g *ConvGeom) { g.OW = 1 },
	} {
		g := base
		edit(&g)
		if useWinograd(g) {
			t.Errorf("%s: takes the Winograd path", name)
		}
	}
}

// BenchmarkConv3x3 times ResNet-50's 3x3 convolutions (a batch of 8 at
// 224x224 input) by the direct implicit GEMM and by F(2x2, 3x3), in one
// run for a ratio. GFLOP/s counts the direct convolution's work for both.
func BenchmarkConv3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, g := range []ConvGeom{
		{N: 8, C: 64, H: 56, W: 56, O: 64},
		{N: 8, C: 128, H: 28, W: 28, O: 128},
		{N: 8, C: 256, H: 14, W: 14, O: 256},
	} {
		g.KH, g.KW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.OH, g.OW = 3, 3, 1, 1, 1, 1, g.H, g.W
		x := randSlice(r, g.N*g.C*g.H*g.W)
		w := randSlice(r, g.O*g.C*9)
		bias := randSlice(r, g.O)
		y := make([]float32, g.N*g.O*g.OH*g.OW)
		flops := 2 * float64(g.N*g.O*g.OH*g.OW*g.C*9)
		for _, wino := range []bool{false, true} {
			name := fmt.Sprintf("C=%d,HW=%d/direct", g.C, g.H)
			if wino {
				name = fmt.Sprintf("C=%d,HW=%d/winograd", g.C, g.H)
			}
			b.Run(name, func(b *testing.B) {
				defer func(old bool) { winogradEnabled = old }(winogradEnabled)
				winogradEnabled = wino
				for b.Loop() {
					Conv2D(y, x, w, bias, g, false, true)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestWinoPrimitives compares the transform loops in use (AVX-512 where
// the CPU has it) with the Go ones bit for bit, over lengths around the
// vector width, with every flag combination, with inputs that end where
// the data ends (odd n: the vector loop leaves the tail to Go) or have
// room past it (even n: the vector loop masks its last block); and checks
// the Go ones against their definitions in float64.
func TestWinoPrimitives(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 2, 14, 15, 16, 17, 18, 31, 32, 33, 34, 100, 101} {
		// Rows.
		var d [4][]float32
		for i := range d {
			d[i] = randSlice(r, n)
		}
		// The outputs have guard values past n, which must survive.
		var got, want, guarded [4][]float32
		for i := range got {
			guarded[i] = make([]float32, n+16)
			for k := range guarded[i] {
				guarded[i][k] = -7
			}
			got[i], want[i] = guarded[i][:n], make([]float32, n)
		}
		winoRows(got[0], got[1], got[2], got[3], d[0], d[1], d[2], d[3])
		for i := range guarded {
			for k := n; k < n+16; k++ {
				if guarded[i][k] != -7 {
					t.Fatalf("rows n=%d: c%d written at %d", n, i, k)
				}
			}
		}
		winoRowsGo(want[0], want[1], want[2], want[3], d[0], d[1], d[2], d[3])
		for q := range n {
			def := [4]float32{d[0][q] - d[2][q], d[1][q] + d[2][q], d[2][q] - d[1][q], d[1][q] - d[3][q]}
			for i := range 4 {
				if got[i][q] != want[i][q] || want[i][q] != def[i] {
					t.Fatalf("rows n=%d: c%d[%d] = %g (Go %g, definition %g)", n, i, q, got[i][q], want[i][q], def[i])
				}
			}
		}
		// Columns of four rows of b (row i at b[i*lb:]) into 16 streams,
		// with b exactly long enough (odd n: Go) and with room for the
		// vector loop to read past its last row (even n: assembly). The
		// streams have a guard value after each run, which must survive.
		lb := 2*n + 2 + n%3
		b := randSlice(r, 3*lb+2*n+2+32)
		if n%2 == 1 {
			b = b[: 3*lb+2*n+2 : 3*lb+2*n+2]
		}
		plane := n + 5
		gotV, wantV := make([]float32, 16*plane), make([]float32, 16*plane)
		for i := range gotV {
			gotV[i], wantV[i] = -7, -7
		}
		winoCols4(gotV, plane, b, lb, n)
		winoCols4Go(wantV, plane, b, lb, n)
		for i := range 4 {
			row := b[i*lb:]
			for k := range n {
				def := [4]float32{row[2*k] - row[2*k+2], row[2*k+1] + row[2*k+2], row[2*k+2] - row[2*k+1], row[2*k+1] - row[2*k+3]}
				for j := range 4 {
					at := (4*i+j)*plane + k
					if gotV[at] != wantV[at] || wantV[at] != def[j] {
						t.Fatalf("cols n=%d: value %d of tile %d = %g (Go %g, definition %g)", n, 4*i+j, k, gotV[at], wantV[at], def[j])
					}
				}
			}
		}
		for xi := range 16 {
			for k := n; k < plane; k++ {
				if gotV[xi*plane+k] != -7 {
					t.Fatalf("cols n=%d: stream %d written at %d, past its %d tiles", n, xi, k, n)
				}
			}
		}
		// Output.
		stride := n + 3
		m := randSlice(r, 16*stride+16)
		if n%2 == 1 {
			m = m[: 15*stride+n : 15*stride+n]
		}
		old := [2][]float32{randSlice(r, 2*n), randSlice(r, 2*n)}
		for flags := range uint8(4) {
			g0, g1 := append([]float32(nil), old[0]...), append([]float32(nil), old[1]...)
			w0, w1 := append([]float32(nil), old[0]...), append([]float32(nil), old[1]...)
			winoOut(g0, g1, m, stride, 0.25, flags)
			winoOutGo(w0, w1, m, stride, 0.25, flags)
			for j := range n {
				var tm [4][4]float64
				for xi := range 16 {
					tm[xi/4][xi%4] = float64(m[xi*stride+j])
				}
				for i := range 2 {
					// Row i of Aᵀ M, then times A.
					var s [4]float64
					for c := range 4 {
						if i == 0 {
							s[c] = tm[0][c] + tm[1][c] + tm[2][c]
						} else {
							s[c] = tm[1][c] - tm[2][c] - tm[3][c]
						}
					}
					for k, v := range [2]float64{s[0] + s[1] + s[2] + 0.25, s[1] - s[2] - s[3] + 0.25} {
						at := 2*j + k
						if flags&flagAdd != 0 {
							v += float64(old[i][at])
						}
						if flags&flagReLU != 0 {
							v = max(v, 0)
						}
						gv, wv := [2][]float32{g0, g1}[i][at], [2][]float32{w0, w1}[i][at]
						if gv != wv || math.Abs(float64(wv)-v) > 1e-5*(1+math.Abs(v)) {
							t.Fatalf("out n=%d flags %d: row %d [%d] = %g (Go %g, float64 %g)", n, flags, i, at, gv, wv, v)
						}
					}
				}
			}
		}
	}
}

// TestWinogradGoTransforms runs the whole Winograd test with the Go
// transform loops, which machines without AVX-512 (and noasm builds) use.
func TestWinogradGoTransforms(t *testing.T) {
	r, c, o := winoRows, winoCols4, winoOut
	defer func() { winoRows, winoCols4, winoOut = r, c, o }()
	winoRows, winoCols4, winoOut = winoRowsGo, winoCols4Go, winoOutGo
	TestWinogradMatchesReference(t)
}

// TestPackRows checks the panel copy in use (AVX-512 where the CPU has
// it) against the definition, for 32- and 16-wide panels, and that it
// writes nothing past the panel.
func TestPackRows(t *testing.T) {
	if packRows == nil {
		t.Skip("no fast panel copy on this machine or build")
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, nr := range []int{32, 16} {
		for _, rows := range []int{1, 2, 7} {
			for _, ld := range []int{32, 33, 100} {
				src := randSlice(r, (rows-1)*ld+nr)
				dst := make([]float32, rows*nr+8)
				for i := range dst {
					dst[i] = -7
				}
				packRows(dst[:rows*nr], src, ld, nr)
				for p := range rows {
					for c := range nr {
						if dst[p*nr+c] != src[p*ld+c] {
							t.Fatalf("nr %d, %d rows, ld %d: row %d col %d = %g, want %g", nr, rows, ld, p, c, dst[p*nr+c], src[p*ld+c])
						}
					}
				}
				for i := rows * nr; i < len(dst); i++ {
					if dst[i] != -7 {
						t.Fatalf("nr %d, %d rows, ld %d: wrote past the panel", nr, rows, ld)
					}
				}
			}
		}
	}
}

// TestPackA12 checks the 12-row strip packing in use against its
// definition, for depths around its four-at-a-time step, and that it
// writes nothing past the strip.
func TestPackA12(t *testing.T) {
	if packA12 == nil {
		t.Skip("no fast strip packing on this machine or build")
	}
	r := rand.New(rand.NewPCG(13, 14))
	for _, kc := range []int{1, 3, 4, 5, 8, 9, 37} {
		for _, ld := range []int{kc, kc + 3} {
			src := randSlice(r, 11*ld+kc)
			dst := make([]float32, 12*kc+8)
			for i := range dst {
				dst[i] = -7
			}
			packA12(dst[:12*kc], src, ld, kc)
			for p := range kc {
				for i := range 12 {
					if dst[p*12+i] != src[i*ld+p] {
						t.Fatalf("kc %d, ld %d: k %d row %d = %g, want %g", kc, ld, p, i, dst[p*12+i], src[i*ld+p])
					}
				}
			}
			for i := 12 * kc; i < len(dst); i++ {
				if dst[i] != -7 {
					t.Fatalf("kc %d, ld %d: wrote past the strip", kc, ld)
				}
			}
		}
	}
}
