package devicetest

import (
	"math"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// Sizes selects the shapes of RunLarge.
type Sizes int

const (
	// Reduced shapes reach a blocked device's large paths (a GPU's 128 x
	// 128 GEMM tiles, which it takes from 1024 x 1024 outputs on; Nearest
	// beyond 64 centroids and over several chunks of rows; ragged edges)
	// at sizes that a CPU emulation runs in seconds.
	Reduced Sizes = iota
	// Full shapes are the sizes the pipeline runs at and beyond (a GEMM of
	// 1031 x 1029 x 1537, a convolution with 256 filters, Nearest of 4100
	// rows against 32768 centroids): for a real device.
	Full
)

func (s Sizes) String() string { return [...]string{"reduced", "full"}[s] }

// RunLarge checks Gemm, Conv2D and its two backward passes,
// CosineSimilarity, Nearest and NegativeHinge at large and ragged shapes
// against the float64 references (the backward passes against direct
// references, since central differences would take a forward pass per
// element).
func RunLarge(t *testing.T, d tensor.Device, tol Tolerance, sizes Sizes) {
	c := &checker{d: d, tol: tol, seed: seedOf(t)}
	t.Logf("devicetest: device %q, %s sizes, seed %d (%s=%d repeats this run)", d.Name(), sizes, c.seed, SeedEnv, c.seed)
	full := sizes == Full
	pick := func(reduced, f int) int {
		if full {
			return f
		}
		return reduced
	}
	run(t, "Gemm", func(t *testing.T) {
		m, n, k := 1031, 1029, pick(37, 1537)
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			c.gemmCase(t, m, n, k, tr[0], tr[1], 1, 0)
		}
		c.gemmCase(t, m, n, k, false, false, 0.5, -2)
	})
	// Conv2D: 256 filters over a 64 x 64 map, 3 x 3 and 1 x 1, outputs of
	// 256 x 4096 (the 128 x 128 tiles).
	cin := pick(3, 64)
	convs := []convCase{conv(1, cin, 64, 64, 256, 3, 1, 1, true), conv(1, cin, 64, 64, 256, 1, 1, 0, true), conv(2, cin, 33, 31, 256, 3, 2, 1, false)}
	run(t, "Conv2D", func(t *testing.T) {
		for _, g := range convs {
			c.conv2DCase(t, g, true, false)
		}
	})
	// Backward data: 256 input channels over 64 x 64 (a 256 x 4096 GEMM).
	run(t, "Conv2DBackwardData", func(t *testing.T) {
		for _, g := range []convCase{conv(1, 256, 64, 64, pick(4, 64), 3, 1, 1, false), conv(1, 256, 64, 64, pick(4, 64), 1, 1, 0, false),
			conv(1, 256, 33, 31, pick(4, 64), 3, 2, 1, false)} {
			c.backwardDataDirect(t, g)
		}
	})
	// Backward filter: 1024 filters of 128 x 3 x 3 (a 1024 x 1152 GEMM),
	// and 1 x 1 from 1024 channels.
	run(t, "Conv2DBackwardFilter", func(t *testing.T) {
		s := pick(6, 28)
		// A few filters over a long batch: a device may split the sum over
		// output positions (585 of them here: ragged slices).
		for _, g := range []convCase{conv(1, 128, s, s, 1024, 3, 1, 1, true), conv(1, 1024, pick(4, 28), pick(4, 28), 1024, 1, 1, 0, true),
			conv(3, 4, 15, 13, 32, 3, 1, 1, true), conv(8, 16, 32, 32, 24, 1, 1, 0, true)} {
			c.backwardFilterDirect(t, g)
		}
	})
	run(t, "CosineSimilarity", func(t *testing.T) {
		c.cosineCase(t, normCase{pick(1030, 2100), pick(16, 256), 1e-3})
	})
	run(t, "Nearest", func(t *testing.T) {
		// Beyond 64 centroids; then, at K = 16384 (full: 32768), more
		// rows than fit in one chunk of a blocked device (4096 rows;
		// full: 2048).
		c.nearestCase(t, nearestCase{N: 300, K: 100, D: 8}, "both")
		// Every centroid the same: K candidates per row, beyond what a
		// device may take one at a time.
		c.nearestCase(t, nearestCase{N: 40, K: 300, D: 8, same: true}, "both")
		c.nearestCase(t, nearestCase{N: 4100, K: pick(16384, 32768), D: pick(2, 16)}, "both")
	})
	run(t, "NegativeHinge", func(t *testing.T) {
		c.hingeCase(t, hingeCase{M: 1000, D: 8, labels: 37, margin: 0.1}, false)
		// The gradient's product is M x D: 1030 x 1024 fills 128 x 128
		// tiles.
		c.hingeCase(t, hingeCase{M: 1030, D: 1024, labels: 50, margin: 0.1}, false)
	})
}

// backwardDataDirect checks Conv2DBackwardData against refConvBackward's dx.
func (c *checker) backwardDataDirect(t *testing.T, g convCase) {
	run(t, g.String(), func(t *testing.T) {
		r := c.rng(t)
		_, w, _ := convData(r, g)
		oh, ow := g.out()
		dy := randn(r, g.N*g.O*oh*ow)
		xShape := []int{g.N, g.C, g.H, g.W}
		o := c.out(xShape...)
		c.d.Conv2DBackwardData(o.T, c.in(dy, g.N, g.O, oh, ow), c.in(w, g.O, g.C, g.KH, g.KW), g.P)
		dx, dxScale, _, _, _ := refConvBackward(g.convGeom, nil, f64(w), f64(dy))
		c.near(t, "Conv2DBackwardData", xShape, o.get(t), dx, dxScale)
	})
}

// backwardFilterDirect checks Conv2DBackwardFilter's dw and dbias against
// refConvBackward's.
func (c *checker) backwardFilterDirect(t *testing.T, g convCase) {
	run(t, g.String(), func(t *testing.T) {
		r := c.rng(t)
		x, _, _ := convData(r, g)
		oh, ow := g.out()
		dy := randn(r, g.N*g.O*oh*ow)
		wShape := []int{g.O, g.C, g.KH, g.KW}
		dw, db := c.out(wShape...), c.out(g.O)
		c.d.Conv2DBackwardFilter(dw.T, db.T, c.in(x, g.N, g.C, g.H, g.W), c.in(dy, g.N, g.O, oh, ow), g.P)
		_, _, wantW, wScale, wantB := refConvBackward(g.convGeom, f64(x), nil, f64(dy))
		c.near(t, "Conv2DBackwardFilter dw", wShape, dw.get(t), wantW, wScale)
		c.near(t, "Conv2DBackwardFilter dbias", []int{g.O}, db.get(t), wantB, abs(wantB))
	})
}

// refConvBackward returns, in float64, the gradients of L = sum(dy .*
// conv(x, w)): dx (when w is given) and dw and dbias (when x is given),
// with the sums of the magnitudes of their terms.
func refConvBackward(g convGeom, x, w, dy []float64) (dx, dxScale, dw, dwScale, db []float64) {
	oh, ow := g.out()
	if w != nil {
		dx, dxScale = make([]float64, g.N*g.C*g.H*g.W), make([]float64, g.N*g.C*g.H*g.W)
	}
	if x != nil {
		dw, dwScale, db = make([]float64, g.O*g.C*g.KH*g.KW), make([]float64, g.O*g.C*g.KH*g.KW), make([]float64, g.O)
	}
	for n := range g.N {
		for o := range g.O {
			gy := dy[(n*g.O+o)*oh*ow:][:oh*ow]
			if db != nil {
				for _, v := range gy {
					db[o] += v
				}
			}
			for ch := range g.C {
				base := (n*g.C + ch) * g.H * g.W
				for a := range g.KH {
					for e := range g.KW {
						wi := ((o*g.C+ch)*g.KH+a)*g.KW + e
						var sw, ssw float64
						for i := range oh {
							ih := i*g.P.StrideH - g.P.PadH + a
							if ih < 0 || ih >= g.H {
								continue
							}
							for j := range ow {
								iw := j*g.P.StrideW - g.P.PadW + e
								if iw < 0 || iw >= g.W {
									continue
								}
								gv := gy[i*ow+j]
								if dx != nil {
									p := w[wi] * gv
									dx[base+ih*g.W+iw] += p
									dxScale[base+ih*g.W+iw] += math.Abs(p)
								}
								if dw != nil {
									p := x[base+ih*g.W+iw] * gv
									sw += p
									ssw += math.Abs(p)
								}
							}
						}
						if dw != nil {
							dw[wi] += sw
							dwScale[wi] += ssw
						}
					}
				}
			}
		}
	}
	return dx, dxScale, dw, dwScale, db
}
