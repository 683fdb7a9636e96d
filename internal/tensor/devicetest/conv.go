package devicetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// convCase is one convolution shape of the suite.
type convCase struct {
	convGeom
	bias bool
}

func (g convCase) String() string {
	s := mapName(g.N, g.C, g.H, g.W) + fmt.Sprintf(",O=%d", g.O)
	p := g.P
	if g.KH == g.KW && p.StrideH == p.StrideW && p.PadH == p.PadW {
		s += fmt.Sprintf(",K=%d,S=%d,P=%d", g.KH, p.StrideH, p.PadH)
	} else {
		s += fmt.Sprintf(",KH=%d,KW=%d,SH=%d,SW=%d,PH=%d,PW=%d", g.KH, g.KW, p.StrideH, p.StrideW, p.PadH, p.PadW)
	}
	if !g.bias {
		s += ",nobias"
	}
	return s
}

// conv builds a convCase with square kernel, stride and padding.
func conv(n, c, h, w, o, k, s, p int, bias bool) convCase {
	return convCase{convGeom{N: n, C: c, H: h, W: w, O: o, KH: k, KW: k, P: tensor.Conv2DParams{StrideH: s, StrideW: s, PadH: p, PadW: p}}, bias}
}

// convCases cover 1x1 maps, C = 1, N > 1, 1x1 convolutions (the adapter's),
// kernels 3 and 7, stride 2 over odd and even sizes (where the last input
// row feeds no output and its gradient must be written as 0), padding
// wider than the kernel reach (outputs that are bias only), unequal axes,
// one case large enough for a device to split the batch among threads, a
// 1x1 one over maps wider than a GEMM tile, and one that the CPU computes
// by Winograd's algorithm.
var convCases = []convCase{
	conv(2, 3, 7, 5, 4, 3, 2, 1, true),
	conv(1, 1, 1, 1, 1, 1, 1, 0, true),
	conv(1, 2, 1, 1, 3, 3, 1, 1, true),
	conv(2, 5, 6, 4, 3, 1, 1, 0, true),
	conv(1, 2, 9, 8, 2, 7, 1, 3, false),
	conv(2, 1, 8, 7, 2, 3, 2, 0, true),
	conv(3, 2, 7, 7, 3, 7, 2, 3, true),
	conv(1, 2, 4, 4, 2, 3, 3, 3, true),
	conv(2, 4, 5, 6, 5, 3, 1, 1, false),
	{convGeom{N: 1, C: 3, H: 5, W: 9, O: 2, KH: 3, KW: 1, P: tensor.Conv2DParams{StrideH: 1, StrideW: 2, PadH: 0, PadW: 1}}, true},
	{convGeom{N: 2, C: 2, H: 6, W: 3, O: 2, KH: 2, KW: 3, P: tensor.Conv2DParams{StrideH: 2, StrideW: 1, PadH: 1, PadW: 0}}, false},
	conv(4, 8, 16, 16, 16, 3, 1, 1, true),
	// A 1x1 convolution over maps wider than a GEMM tile, with an odd
	// number of filters: whole and partial tiles, written in place.
	conv(2, 6, 8, 9, 13, 1, 1, 0, true),
	// 3x3, stride 1, 16 channels in and out: the CPU computes it by
	// Winograd's F(2x2, 3x3), with a cropped last tile row and column.
	conv(1, 16, 5, 3, 16, 3, 1, 1, true),
}

// convData draws x (N x C x H x W), w (O x C x KH x KW) and, if the case
// has one, a bias.
func convData(r *rand.Rand, g convCase) (x, w, b []float32) {
	x = randn(r, g.N*g.C*g.H*g.W)
	w = randn(r, g.O*g.C*g.KH*g.KW)
	if g.bias {
		b = randn(r, g.O)
	}
	return x, w, b
}

func (c *checker) conv2D(t *testing.T) {
	for _, g := range convCases {
		for _, mode := range []struct{ relu, acc bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
			c.conv2DCase(t, g, mode.relu, mode.acc)
		}
	}
}

// conv2DCase checks one Conv2D, with the fused ReLU and accumulation as
// asked, against refConv2D.
func (c *checker) conv2DCase(t *testing.T, g convCase, relu, acc bool) {
	mode := struct{ relu, acc bool }{relu, acc}
	name := g.String()
	if mode.relu {
		name += ",relu"
	}
	if mode.acc {
		name += ",accumulate"
	}
	run(t, name, func(t *testing.T) {
		r := c.rng(t)
		x, w, b := convData(r, g)
		oh, ow := g.out()
		yShape := []int{g.N, g.O, oh, ow}
		var bias *tensor.Tensor
		if b != nil {
			bias = c.in(b, g.O)
		}
		var y0 []float32 // y's contents before an accumulating Conv2D
		if mode.acc {
			y0 = randn(r, g.N*g.O*oh*ow)
		}
		o := c.acc(y0, yShape...) // NaN-filled when not accumulating
		p := g.P
		p.ReLU, p.Accumulate = mode.relu, mode.acc
		c.d.Conv2D(o.T, c.in(x, g.N, g.C, g.H, g.W), c.in(w, g.O, g.C, g.KH, g.KW), bias, p)
		want, sc := refConv2D(g.convGeom, f64(x), f64(w), f64(b), true)
		for i := range want {
			if mode.acc {
				want[i] += float64(y0[i])
				sc[i] += math.Abs(float64(y0[i]))
			}
			if mode.relu {
				want[i] = max(want[i], 0)
			}
		}
		c.near(t, "Conv2D", yShape, o.get(t), want, sc)
	})
}

// conv2DBackwardData checks dx against central differences of
// L(x) = sum(dy .* conv(x, w)).
func (c *checker) conv2DBackwardData(t *testing.T) {
	for _, g := range convCases {
		run(t, g.String(), func(t *testing.T) {
			r := c.rng(t)
			x, w, _ := convData(r, g)
			oh, ow := g.out()
			dy := randn(r, g.N*g.O*oh*ow)
			xShape := []int{g.N, g.C, g.H, g.W}
			o := c.out(xShape...)
			c.d.Conv2DBackwardData(o.T, c.in(dy, g.N, g.O, oh, ow), c.in(w, g.O, g.C, g.KH, g.KW), g.P)
			dy64, w64, absW := f64(dy), f64(w), abs(f64(w))
			c.grad(t, "Conv2DBackwardData", xShape, o.get(t), gradCheck{
				x: f64(x),
				L: func(x []float64) float64 {
					y, _ := refConv2D(g.convGeom, x, w64, nil, false)
					return dotG(dy64, y)
				},
				// For v >= 0, conv(v, |w|) is the sum of |terms|.
				scale: linearScale(dy64, func(v []float64) []float64 {
					y, _ := refConv2D(g.convGeom, v, absW, nil, false)
					return y
				}),
			}, r)
		})
	}
}

// conv2DBackwardFilter checks dw and dbias (as one vector) against central
// differences of L(w, b) = sum(dy .* (conv(x, w) + b)), and dw alone with a
// nil dbias.
func (c *checker) conv2DBackwardFilter(t *testing.T) {
	for _, g := range convCases {
		run(t, g.String(), func(t *testing.T) {
			r := c.rng(t)
			x, w, _ := convData(r, g)
			b := randn(r, g.O)
			oh, ow := g.out()
			dy := randn(r, g.N*g.O*oh*ow)
			nw := len(w)
			xd, dyd := c.in(x, g.N, g.C, g.H, g.W), c.in(dy, g.N, g.O, oh, ow)
			wShape := []int{g.O, g.C, g.KH, g.KW}
			dw, db := c.out(wShape...), c.out(g.O)
			if g.bias {
				c.d.Conv2DBackwardFilter(dw.T, db.T, xd, dyd, g.P)
			} else {
				c.d.Conv2DBackwardFilter(dw.T, nil, xd, dyd, g.P)
			}
			got := dw.get(t)
			wb := append(f64(w), f64(b)...)
			if g.bias {
				got = append(got, db.get(t)...)
			} else {
				wb = f64(w)
			}
			x64, dy64, absX := f64(x), f64(dy), abs(f64(x))
			split := func(v []float64) (w, b []float64) {
				if g.bias {
					return v[:nw], v[nw:]
				}
				return v, nil
			}
			c.grad(t, "Conv2DBackwardFilter (dw then dbias)", []int{len(wb)}, got, gradCheck{
				x: wb,
				L: func(v []float64) float64 {
					w, b := split(v)
					y, _ := refConv2D(g.convGeom, x64, w, b, false)
					return dotG(dy64, y)
				},
				// For v >= 0, conv(|x|, v_w) + v_b is the sum of |terms|.
				scale: linearScale(dy64, func(v []float64) []float64 {
					w, b := split(v)
					y, _ := refConv2D(g.convGeom, absX, w, b, false)
					return y
				}),
			}, r)
		})
	}
}
