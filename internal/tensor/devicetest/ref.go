package devicetest

import (
	"math"

	"github.com/org/anomnet/internal/tensor"
)

// The float64 references below are plain loops written from the doc
// comments of tensor.Device. Each returns, next to its result, the scale
// of every element: the sum of the magnitudes of the terms it is made of,
// which bounds float32 rounding (see Tolerance).

// convGeom is the geometry of a convolution test.
type convGeom struct {
	N, C, H, W, O, KH, KW int
	P                     tensor.Conv2DParams
}

// out is the output size, from the formula of Conv2DParams' doc rather
// than its Out method (tested on its own).
func (g convGeom) out() (oh, ow int) {
	return (g.H+2*g.P.PadH-g.KH)/g.P.StrideH + 1, (g.W+2*g.P.PadW-g.KW)/g.P.StrideW + 1
}

// refConv2D is cross-correlation with zero padding: y[n,o,i,j] = b[o] +
// sum_{c,a,e} w[o,c,a,e] x[n,c,i*SH-PH+a,j*SW-PW+e]. b may be nil. The
// scale is computed only if withScale (finite differences need y alone).
//
// The loops run tap by tap over whole output planes, rather than output by
// output, only for speed: finite differences call it hundreds of times.
func refConv2D(g convGeom, x, w, b []float64, withScale bool) (y, scale []float64) {
	oh, ow := g.out()
	y = make([]float64, g.N*g.O*oh*ow)
	scale = make([]float64, len(y))
	for n := range g.N {
		for o := range g.O {
			yo, so := y[(n*g.O+o)*oh*ow:][:oh*ow], scale[(n*g.O+o)*oh*ow:][:oh*ow]
			if b != nil {
				for k := range yo {
					yo[k], so[k] = b[o], math.Abs(b[o])
				}
			}
			if !withScale {
				so = nil
			}
			for c := range g.C {
				xc := x[(n*g.C+c)*g.H*g.W:][:g.H*g.W]
				for a := range g.KH {
					for e := range g.KW {
						wv := w[((o*g.C+c)*g.KH+a)*g.KW+e]
						for i := range oh {
							ih := i*g.P.StrideH - g.P.PadH + a
							if ih < 0 || ih >= g.H {
								continue
							}
							xr, yr := xc[ih*g.W:][:g.W], yo[i*ow:][:ow]
							if so == nil {
								for j := range yr {
									if iw := j*g.P.StrideW - g.P.PadW + e; iw >= 0 && iw < g.W {
										yr[j] += wv * xr[iw]
									}
								}
								continue
							}
							sr := so[i*ow:][:ow]
							for j := range yr {
								if iw := j*g.P.StrideW - g.P.PadW + e; iw >= 0 && iw < g.W {
									t := wv * xr[iw]
									yr[j] += t
									sr[j] += math.Abs(t)
								}
							}
						}
					}
				}
			}
		}
	}
	if !withScale {
		scale = nil
	}
	return y, scale
}

// poolGeom is the geometry of a pooling test.
type poolGeom struct {
	N, C, H, W int
	P          tensor.Pool2DParams
}

func (g poolGeom) out() (oh, ow int) {
	k, s, p := g.P.Kernel, g.P.Stride, g.P.Pad
	return (g.H+2*p-k)/s + 1, (g.W+2*p-k)/s + 1
}

// refPool2D is max pooling (padding as -Inf) or average pooling (padding
// as zeros that count in the mean, so the divisor is always Kernel^2: with
// floor output sizes no window reaches past the padding).
func refPool2D(g poolGeom, x []float64, isMax bool) (y, scale []float64) {
	oh, ow := g.out()
	k, s, p := g.P.Kernel, g.P.Stride, g.P.Pad
	y = make([]float64, g.N*g.C*oh*ow)
	scale = make([]float64, len(y))
	for nc := range g.N * g.C {
		for i := range oh {
			for j := range ow {
				m, sum, sc := math.Inf(-1), 0.0, 0.0
				for a := range k {
					ih := i*s - p + a
					if ih < 0 || ih >= g.H {
						continue
					}
					for e := range k {
						iw := j*s - p + e
						if iw < 0 || iw >= g.W {
							continue
						}
						v := x[(nc*g.H+ih)*g.W+iw]
						m = max(m, v)
						sum += v
						sc += math.Abs(v)
					}
				}
				o := (nc*oh+i)*ow + j
				if isMax {
					y[o], scale[o] = m, math.Abs(m)
				} else {
					div := float64(k * k)
					y[o], scale[o] = sum/div, sc/div
				}
			}
		}
	}
	return y, scale
}

// adaptiveWindow is PyTorch's adaptive pooling window of output index i:
// [floor(i*in/out), ceil((i+1)*in/out)).
func adaptiveWindow(i, in, out int) (lo, hi int) {
	return i * in / out, ((i+1)*in + out - 1) / out
}

// refAdaptiveAvgPool2D averages x (N*C maps of h x w) over adaptive
// windows into oh x ow maps.
func refAdaptiveAvgPool2D(nc, h, w, oh, ow int, x []float64) (y, scale []float64) {
	y = make([]float64, nc*oh*ow)
	scale = make([]float64, len(y))
	for m := range nc {
		for i := range oh {
			h0, h1 := adaptiveWindow(i, h, oh)
			for j := range ow {
				w0, w1 := adaptiveWindow(j, w, ow)
				var sum, sc float64
				for a := h0; a < h1; a++ {
					for e := w0; e < w1; e++ {
						v := x[(m*h+a)*w+e]
						sum += v
						sc += math.Abs(v)
					}
				}
				cnt := float64((h1 - h0) * (w1 - w0))
				o := (m*oh+i)*ow + j
				y[o], scale[o] = sum/cnt, sc/cnt
			}
		}
	}
	return y, scale
}

// bilinearSource is PyTorch's align_corners=False source of output index
// o: src = (o+0.5)*in/out - 0.5 clamped at 0, interpolating between i0 =
// floor(src) and i1 = min(i0+1, in-1) with weight lam on i1.
func bilinearSource(o, in, out int) (i0, i1 int, lam, src float64) {
	src = (float64(o)+0.5)*float64(in)/float64(out) - 0.5
	src = max(src, 0)
	i0 = int(math.Floor(src))
	i1 = min(i0+1, in-1)
	return i0, i1, src - float64(i0), src
}

// refResizeBilinear resamples nc maps of h x w to oh x ow. The scale adds
// src*|corner| per axis because a device computes the source coordinate
// in float32, whose rounding (relative to src) moves lam.
func refResizeBilinear(nc, h, w, oh, ow int, x []float64) (y, scale []float64) {
	y = make([]float64, nc*oh*ow)
	scale = make([]float64, len(y))
	for m := range nc {
		for i := range oh {
			h0, h1, lh, sh := bilinearSource(i, h, oh)
			for j := range ow {
				w0, w1, lw, sw := bilinearSource(j, w, ow)
				at := func(a, e int) float64 { return x[(m*h+a)*w+e] }
				terms := [4]float64{
					(1 - lh) * (1 - lw) * at(h0, w0),
					(1 - lh) * lw * at(h0, w1),
					lh * (1 - lw) * at(h1, w0),
					lh * lw * at(h1, w1),
				}
				corners := math.Abs(at(h0, w0)) + math.Abs(at(h0, w1)) + math.Abs(at(h1, w0)) + math.Abs(at(h1, w1))
				o := (m*oh+i)*ow + j
				var sc float64
				for _, t := range terms {
					y[o] += t
					sc += math.Abs(t)
				}
				scale[o] = sc + (sh+sw)*corners
			}
		}
	}
	return y, scale
}

// refGaussianBlur is the direct 2-D convolution of each of nc maps with
// the outer product of GaussianKernel(sigma, r), indexing by Reflect.
func refGaussianBlur(nc, h, w int, x []float64, sigma float64, r int) (y, scale []float64) {
	k := tensor.GaussianKernel(sigma, r)
	y = make([]float64, len(x))
	scale = make([]float64, len(x))
	for m := range nc {
		for i := range h {
			for j := range w {
				var sum, sc float64
				for a := -r; a <= r; a++ {
					ih := tensor.Reflect(i+a, h)
					for e := -r; e <= r; e++ {
						t := k[a+r] * k[e+r] * x[(m*h+ih)*w+tensor.Reflect(j+e, w)]
						sum += t
						sc += math.Abs(t)
					}
				}
				o := (m*h+i)*w + j
				y[o], scale[o] = sum, sc
			}
		}
	}
	return y, scale
}

// refConcat stacks maps (n x cs[k] x hw each) along the channel axis.
func refConcat(n, hw int, cs []int, xs [][]float64) []float64 {
	total := 0
	for _, c := range cs {
		total += c
	}
	y := make([]float64, 0, n*total*hw)
	for b := range n {
		for k, x := range xs {
			y = append(y, x[b*cs[k]*hw:(b+1)*cs[k]*hw]...)
		}
	}
	return y
}

// refGemm returns alpha*op(a)*op(b) + beta*c for c of m x n, with inner
// dimension k; a is m x k (k x m if transA), b is k x n (n x k if transB).
func refGemm(transA, transB bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64) (y, scale []float64) {
	y = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := range m {
		for j := range n {
			var sum, sc float64
			for l := range k {
				av := a[i*k+l]
				if transA {
					av = a[l*m+i]
				}
				bv := b[l*n+j]
				if transB {
					bv = b[j*k+l]
				}
				sum += av * bv
				sc += math.Abs(av * bv)
			}
			y[i*n+j] = alpha * sum
			scale[i*n+j] = math.Abs(alpha) * sc
			if beta != 0 {
				y[i*n+j] += beta * c[i*n+j]
				scale[i*n+j] += math.Abs(beta * c[i*n+j])
			}
		}
	}
	return y, scale
}

// refNormalizeRows returns z[i] = x[i]/max(||x[i]||, eps) and the clamped
// norms.
func refNormalizeRows(m, d int, x []float64, eps float64) (z, norms []float64) {
	z = make([]float64, m*d)
	norms = make([]float64, m)
	for i := range m {
		var ss float64
		for _, v := range x[i*d : (i+1)*d] {
			ss += v * v
		}
		norms[i] = max(math.Sqrt(ss), eps)
		for e := range d {
			z[i*d+e] = x[i*d+e] / norms[i]
		}
	}
	return z, norms
}

// refHinge returns the per-row negative hinge loss, d loss[i]/d z[i] with
// the other rows fixed, and their scales.
func refHinge(m, d int, z []float64, y []int32, margin float64) (loss, lossScale, grad, gradScale []float64) {
	loss = make([]float64, m)
	lossScale = make([]float64, m)
	grad = make([]float64, m*d)
	gradScale = make([]float64, m*d)
	for i := range m {
		for j := range m {
			if y[j] == y[i] {
				continue
			}
			var s, sc float64
			for e := range d {
				s += z[i*d+e] * z[j*d+e]
				sc += math.Abs(z[i*d+e] * z[j*d+e])
			}
			if s <= margin {
				continue
			}
			loss[i] += s - margin
			lossScale[i] += sc + math.Abs(margin)
			for e := range d {
				grad[i*d+e] += z[j*d+e]
				gradScale[i*d+e] += math.Abs(z[j*d+e])
			}
		}
	}
	return loss, lossScale, grad, gradScale
}
