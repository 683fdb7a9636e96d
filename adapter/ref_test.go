package adapter_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/internal/tensor"
)

// This file holds a float64 reference of METHOD.md section 3, written from
// the specification with plain loops (no tensor ops), and the helpers the
// tests share.

// fmap is a float64 NCHW map.
type fmap struct {
	n, c, h, w int
	v          []float64
}

func newMap(n, c, h, w int) fmap { return fmap{n, c, h, w, make([]float64, n*c*h*w)} }

func (m fmap) at(n, c, i, j int) float64 { return m.v[((n*m.c+c)*m.h+i)*m.w+j] }

func (m fmap) set(n, c, i, j int, v float64) { m.v[((n*m.c+c)*m.h+i)*m.w+j] = v }

// refLayer is one layer's parameters in float64: w is C x (C+2) x k x k.
type refLayer struct {
	w, b []float64
	k    int
}

// refCoord is CoordConv's coordinate of index i on an axis of n: -1..1.
func refCoord(i, n int) float64 {
	if n == 1 {
		return 0
	}
	return -1 + 2*float64(i)/float64(n-1)
}

func refCoords(x fmap) fmap {
	y := newMap(x.n, x.c+2, x.h, x.w)
	for n := range x.n {
		for i := range x.h {
			for j := range x.w {
				for c := range x.c {
					y.set(n, c, i, j, x.at(n, c, i, j))
				}
				y.set(n, x.c, i, j, refCoord(j, x.w))
				y.set(n, x.c+1, i, j, refCoord(i, x.h))
			}
		}
	}
	return y
}

// refConv is a same-size convolution with zero padding k/2 and bias.
func refConv(x fmap, l refLayer) fmap {
	o := len(l.b)
	y := newMap(x.n, o, x.h, x.w)
	p := l.k / 2
	for n := range x.n {
		for oc := range o {
			for i := range x.h {
				for j := range x.w {
					s := l.b[oc]
					for c := range x.c {
						for ki := range l.k {
							for kj := range l.k {
								ii, jj := i+ki-p, j+kj-p
								if ii < 0 || ii >= x.h || jj < 0 || jj >= x.w {
									continue
								}
								s += l.w[((oc*x.c+c)*l.k+ki)*l.k+kj] * x.at(n, c, ii, jj)
							}
						}
					}
					y.set(n, oc, i, j, s)
				}
			}
		}
	}
	return y
}

// refAvgPool3 is 3x3 mean pooling, stride 1, zero padding 1 counted in the
// mean.
func refAvgPool3(x fmap) fmap {
	y := newMap(x.n, x.c, x.h, x.w)
	for n := range x.n {
		for c := range x.c {
			for i := range x.h {
				for j := range x.w {
					var s float64
					for di := -1; di <= 1; di++ {
						for dj := -1; dj <= 1; dj++ {
							if ii, jj := i+di, j+dj; ii >= 0 && ii < x.h && jj >= 0 && jj < x.w {
								s += x.at(n, c, ii, jj)
							}
						}
					}
					y.set(n, c, i, j, s/9)
				}
			}
		}
	}
	return y
}

// refAdaptive averages over PyTorch's adaptive windows: output i covers
// inputs floor(i*in/out) to ceil((i+1)*in/out) - 1.
func refAdaptive(x fmap, oh, ow int) fmap {
	y := newMap(x.n, x.c, oh, ow)
	win := func(o, in, out int) (int, int) {
		return int(math.Floor(float64(o*in) / float64(out))), int(math.Ceil(float64((o+1)*in) / float64(out)))
	}
	for n := range x.n {
		for c := range x.c {
			for i := range oh {
				i0, i1 := win(i, x.h, oh)
				for j := range ow {
					j0, j1 := win(j, x.w, ow)
					var s float64
					for ii := i0; ii < i1; ii++ {
						for jj := j0; jj < j1; jj++ {
							s += x.at(n, c, ii, jj)
						}
					}
					y.set(n, c, i, j, s/float64((i1-i0)*(j1-j0)))
				}
			}
		}
	}
	return y
}

// refBilinear is PyTorch's bilinear interpolation, align_corners=False:
// source coordinate (o+0.5)*in/out - 0.5, clamped at 0.
func refBilinear(x fmap, oh, ow int) fmap {
	y := newMap(x.n, x.c, oh, ow)
	tap := func(o, in, out int) (int, int, float64) {
		s := math.Max((float64(o)+0.5)*float64(in)/float64(out)-0.5, 0)
		i0 := min(int(math.Floor(s)), in-1)
		return i0, min(i0+1, in-1), s - float64(i0)
	}
	for n := range x.n {
		for c := range x.c {
			for i := range oh {
				i0, i1, a := tap(i, x.h, oh)
				for j := range ow {
					j0, j1, b := tap(j, x.w, ow)
					v := (1-a)*((1-b)*x.at(n, c, i0, j0)+b*x.at(n, c, i0, j1)) +
						a*((1-b)*x.at(n, c, i1, j0)+b*x.at(n, c, i1, j1))
					y.set(n, c, i, j, v)
				}
			}
		}
	}
	return y
}

// refPool is the weight of the centre beyond the mean that refForward
// takes for opts: -1 without the aggregation.
func refPool(opts adapter.Options) float64 {
	if opts.NoPool {
		return -1
	}
	return opts.Centre
}

// refForward is the adapter in float64: per map coordinates, convolution,
// the aggregation unless pool < 0 (the 3x3 mean, with pool of the weight
// moved to the centre), resampling to oh x ow, then concatenation.
func refForward(maps []fmap, layers []refLayer, pool float64, oh, ow int) fmap {
	var parts []fmap
	d := 0
	for i, x := range maps {
		y := refConv(refCoords(x), layers[i])
		if pool >= 0 {
			m := refAvgPool3(y)
			for k := range m.v {
				m.v[k] = (1-pool)*m.v[k] + pool*y.v[k]
			}
			y = m
		}
		switch {
		case y.h == oh && y.w == ow:
		case y.h >= oh && y.w >= ow:
			y = refAdaptive(y, oh, ow)
		default:
			y = refBilinear(y, oh, ow)
		}
		parts = append(parts, y)
		d += y.c
	}
	f := newMap(maps[0].n, d, oh, ow)
	off := 0
	for _, p := range parts {
		for n := range p.n {
			for c := range p.c {
				for i := range oh {
					for j := range ow {
						f.set(n, off+c, i, j, p.at(n, c, i, j))
					}
				}
			}
		}
		off += p.c
	}
	return f
}

// randomMaps returns host maps (for the adapter) and their float64 copies
// (for the reference) with values in [-1, 1).
func randomMaps(rng *rand.Rand, n int, chans []int, sizes [][2]int) ([]*tensor.Tensor, []fmap) {
	var ts []*tensor.Tensor
	var fs []fmap
	for i, c := range chans {
		t := tensor.New(n, c, sizes[i][0], sizes[i][1])
		f := newMap(n, c, sizes[i][0], sizes[i][1])
		for j := range t.Float32s() {
			v := float32(2*rng.Float64() - 1)
			t.Float32s()[j] = v
			f.v[j] = float64(v)
		}
		ts = append(ts, t)
		fs = append(fs, f)
	}
	return ts, fs
}

// refLayers returns the adapter's parameters in float64.
func refLayers(a *adapter.Adapter) []refLayer {
	var ls []refLayer
	for _, l := range a.Layers {
		ls = append(ls, refLayer{w: f64(l.W.Float32s()), b: f64(l.B.Float32s()), k: l.W.Dim(2)})
	}
	return ls
}

// randomize sets every parameter of a to random values in [-scale, scale)
// through the device, as a trainer's update would.
func randomize(rng *rand.Rand, d tensor.Device, a *adapter.Adapter, scale float64) {
	for _, p := range a.Params() {
		h := tensor.New(p.Shape()...)
		for j := range h.Float32s() {
			h.Float32s()[j] = float32(scale * (2*rng.Float64() - 1))
		}
		d.Copy(p, h)
	}
}

func f64(s []float32) []float64 {
	r := make([]float64, len(s))
	for i, v := range s {
		r[i] = float64(v)
	}
	return r
}

// requireClose checks got against want within rel times (1 + |want|).
func requireClose(t *testing.T, want []float64, got []float32, rel float64, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i, w := range want {
		if diff := math.Abs(float64(got[i]) - w); diff > rel*(1+math.Abs(w)) || math.IsNaN(float64(got[i])) {
			require.Failf(t, "mismatch", "%s: element %d: got %g, want %g", msg, i, got[i], w)
		}
	}
}
