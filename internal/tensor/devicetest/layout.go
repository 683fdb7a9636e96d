package devicetest

// The layout ops: Concat and Split of channel groups, the coordinate
// channels of CoordConv, and the channels-first/last transposes.

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// concatCase is a Concat/Split case: N maps of H x W with channel counts
// Cs.
type concatCase struct {
	N, H, W int
	Cs      []int
}

func (s concatCase) String() string {
	return fmt.Sprintf("N=%d,Cs=%v,H=%d,W=%d", s.N, s.Cs, s.H, s.W)
}

func (s concatCase) total() int {
	n := 0
	for _, c := range s.Cs {
		n += c
	}
	return n
}

var concatCases = []concatCase{
	{2, 3, 4, []int{1, 3, 2}},
	{1, 1, 1, []int{2}},
	{3, 2, 5, []int{1, 1}},
	{1, 1, 1, []int{1, 4, 1, 2}},
	{2, 2, 3, []int{5, 2}},
	{2, 32, 32, []int{32, 40}},
}

func (c *checker) concat(t *testing.T) {
	for _, s := range concatCases {
		run(t, s.String(), func(t *testing.T) {
			r := c.rng(t)
			hw := s.H * s.W
			xs := make([]*tensor.Tensor, len(s.Cs))
			x64 := make([][]float64, len(s.Cs))
			for k, ch := range s.Cs {
				x := randn(r, s.N*ch*hw)
				xs[k] = c.in(x, s.N, ch, s.H, s.W)
				x64[k] = f64(x)
			}
			yShape := []int{s.N, s.total(), s.H, s.W}
			o := c.out(yShape...)
			c.d.Concat(o.T, xs...)
			exact(t, "Concat", yShape, o.get(t), f32(refConcat(s.N, hw, s.Cs, x64)))
		})
	}
}

// split checks Split against Concat's reference, with and without skipped
// (nil) parts, and as Concat's backward by finite differences of
// L(xs) = sum(g .* concat(xs)).
func (c *checker) split(t *testing.T) {
	for _, s := range concatCases {
		for _, skipping := range []bool{false, true} {
			if skipping && len(s.Cs) < 2 {
				continue
			}
			name := s.String()
			if skipping {
				name += ",skip=odd"
			}
			run(t, name, func(t *testing.T) {
				r := c.rng(t)
				hw := s.H * s.W
				xShape := []int{s.N, s.total(), s.H, s.W}
				g := randn(r, size(xShape...))
				parts := make([][]float64, len(s.Cs))
				ys := make([]*tensor.Tensor, len(s.Cs))
				outs := make([]*output, len(s.Cs))
				var skip []int
				if skipping {
					skip = make([]int, len(s.Cs))
				}
				for k, ch := range s.Cs {
					parts[k] = randn64(r, s.N*ch*hw)
					if skipping && k%2 == 1 {
						skip[k] = ch // ys[k] stays nil
						continue
					}
					outs[k] = c.out(s.N, ch, s.H, s.W)
					ys[k] = outs[k].T
				}
				c.d.Split(ys, skip, c.in(g, xShape...))

				// Split(g) is the gradient of L at any point; the parts
				// drawn above are the point.
				g64 := f64(g)
				var got []float32
				for k, ch := range s.Cs {
					if outs[k] == nil {
						continue
					}
					gk := outs[k].get(t)
					got = append(got, gk...)
					// Part k of g in Concat's layout: channels
					// [sum(Cs[:k]), +ch) of every item.
					want := partOf(s, k, g)
					exact(t, fmt.Sprintf("Split part %d", k), []int{s.N, ch, s.H, s.W}, gk, want)
				}
				if skipping {
					return // the finite-difference check needs every part
				}
				var point []float64
				for _, p := range parts {
					point = append(point, p...)
				}
				unflat := func(v []float64) [][]float64 {
					out := make([][]float64, len(s.Cs))
					off := 0
					for k, ch := range s.Cs {
						out[k] = v[off : off+s.N*ch*hw]
						off += s.N * ch * hw
					}
					return out
				}
				c.grad(t, "Split as Concat's backward", []int{len(point)}, got, gradCheck{
					x: point,
					L: func(v []float64) float64 {
						return dotG(g64, refConcat(s.N, hw, s.Cs, unflat(v)))
					},
					scale: linearScale(g64, func(v []float64) []float64 {
						return refConcat(s.N, hw, s.Cs, unflat(v))
					}),
				}, r)
			})
		}
	}
}

// partOf returns the channels of part k of x, a concatenation of s.
func partOf(s concatCase, k int, x []float32) []float32 {
	hw := s.H * s.W
	c0 := 0
	for _, ch := range s.Cs[:k] {
		c0 += ch
	}
	total := s.total()
	var out []float32
	for n := range s.N {
		out = append(out, x[(n*total+c0)*hw:(n*total+c0+s.Cs[k])*hw]...)
	}
	return out
}

// randn64 returns n standard normal values rounded to float32.
func randn64(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(float32(r.NormFloat64()))
	}
	return x
}

// appendCoords checks the copied channels exactly and the coordinate
// channels to a float32 rounding, with exact ends (-1, 1) and 0 for axes
// of one element.
func (c *checker) appendCoords(t *testing.T) {
	for _, s := range [][4]int{{2, 3, 4, 5}, {1, 1, 1, 1}, {1, 2, 3, 1}, {2, 1, 5, 7}, {1, 1, 1, 6}, {2, 32, 32, 32}} {
		n, ch, h, w := s[0], s[1], s[2], s[3]
		run(t, mapName(n, ch, h, w), func(t *testing.T) {
			x := randn(c.rng(t), n*ch*h*w)
			yShape := []int{n, ch + 2, h, w}
			o := c.out(yShape...)
			c.d.AppendCoords(o.T, c.in(x, n, ch, h, w))
			got := o.get(t)
			// coord returns the coordinate of index i of an axis of n and
			// whether every float32 evaluation gets it exactly (the ends,
			// and 0 for an axis of one element).
			coord := func(i, n int) (float64, bool) {
				if n == 1 {
					return 0, true
				}
				return -1 + 2*float64(i)/float64(n-1), i == 0 || i == n-1
			}
			var copied, gotCoords []float32
			var want []float64
			var isExact []bool
			for b := range n {
				copied = append(copied, got[b*(ch+2)*h*w:(b*(ch+2)+ch)*h*w]...)
				gotCoords = append(gotCoords, got[(b*(ch+2)+ch)*h*w:(b+1)*(ch+2)*h*w]...)
				for _, axis := range []int{1, 0} { // x (along the width) first
					for i := range h {
						for j := range w {
							v, e := coord(j, w)
							if axis == 0 {
								v, e = coord(i, h)
							}
							want = append(want, v)
							isExact = append(isExact, e)
						}
					}
				}
			}
			exact(t, "AppendCoords, copied channels", []int{n, ch, h, w}, copied, x)
			// A few float32 roundings of values of magnitude <= 1,
			// whatever the order of operations.
			coordShape := []int{n, 2, h, w}
			nearTol(t, "AppendCoords, coordinate channels", coordShape, gotCoords, want, ones(len(want)), 0x1p-21, 0)
			for i, v := range want {
				if isExact[i] && float64(gotCoords[i]) != v {
					t.Errorf("AppendCoords coordinate at %s = %.9g, want exactly %g", index(coordShape, i), gotCoords[i], v)
					break
				}
			}
		})
	}
}

// channelsCases are the shapes of ChannelsLast and ChannelsFirst.
var channelsCases = [][4]int{{2, 3, 4, 5}, {1, 1, 1, 1}, {1, 4, 1, 3}, {3, 2, 2, 1}, {2, 64, 32, 32}}

// channelsLastRef lays out x (N x C x H x W) as rows (N*H*W) x C.
func channelsLastRef(n, ch, h, w int, x []float32) []float32 {
	y := make([]float32, len(x))
	for b := range n {
		for c := range ch {
			for i := range h {
				for j := range w {
					y[((b*h+i)*w+j)*ch+c] = x[((b*ch+c)*h+i)*w+j]
				}
			}
		}
	}
	return y
}

func (c *checker) channelsLast(t *testing.T) {
	for _, s := range channelsCases {
		n, ch, h, w := s[0], s[1], s[2], s[3]
		run(t, mapName(n, ch, h, w), func(t *testing.T) {
			x := randn(c.rng(t), n*ch*h*w)
			o := c.out(n*h*w, ch)
			c.d.ChannelsLast(o.T, c.in(x, n, ch, h, w))
			exact(t, "ChannelsLast", []int{n * h * w, ch}, o.get(t), channelsLastRef(n, ch, h, w, x))
		})
	}
}

// channelsFirst checks the exact layout and the round trip through
// ChannelsLast.
func (c *checker) channelsFirst(t *testing.T) {
	for _, s := range channelsCases {
		n, ch, h, w := s[0], s[1], s[2], s[3]
		run(t, mapName(n, ch, h, w), func(t *testing.T) {
			x := randn(c.rng(t), n*ch*h*w)
			rows := channelsLastRef(n, ch, h, w, x)
			shape := []int{n, ch, h, w}
			o := c.out(shape...)
			c.d.ChannelsFirst(o.T, c.in(rows, n*h*w, ch))
			exact(t, "ChannelsFirst", shape, o.get(t), x)

			mid := c.out(n*h*w, ch)
			c.d.ChannelsLast(mid.T, c.in(x, shape...))
			back := c.out(shape...)
			c.d.ChannelsFirst(back.T, mid.T)
			exact(t, "ChannelsFirst(ChannelsLast(x))", shape, back.get(t), x)
		})
	}
}
