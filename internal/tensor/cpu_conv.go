package tensor

import (
	"runtime"

	fastgemm "github.com/org/anomnet/internal/gemm"
)

// convGeom is a checked convolution geometry.
type convGeom struct {
	n, c, h, w     int // input
	o, kh, kw      int // filters
	oh, ow         int // output
	p              Conv2DParams
	direct         bool // 1x1, stride 1, no padding: the input is its own im2col
	colRows, colSz int  // im2col: C*KH*KW rows of OH*OW columns
}

func convGeometry(op string, x, w, y *Tensor, p Conv2DParams) convGeom {
	s := check.Conv(op, x, w, y, p)
	g := convGeom{n: s.N, c: s.C, h: s.H, w: s.W, o: s.O, kh: s.KH, kw: s.KW, oh: s.OH, ow: s.OW, p: p}
	g.direct = g.kh == 1 && g.kw == 1 && p.StrideH == 1 && p.StrideW == 1 && p.PadH == 0 && p.PadW == 0
	g.colRows, g.colSz = g.c*g.kh*g.kw, g.oh*g.ow
	return g
}

// im2col unfolds one image x (C x H x W) into col (C*KH*KW x OH*OW).
func (g *convGeom) im2col(col, x []float32) {
	hw := g.h * g.w
	for c := range g.c {
		xc := x[c*hw : (c+1)*hw]
		for ki := range g.kh {
			for kj := range g.kw {
				row := col[((c*g.kh+ki)*g.kw+kj)*g.colSz:][:g.colSz]
				for oi := range g.oh {
					ii := oi*g.p.StrideH - g.p.PadH + ki
					dst := row[oi*g.ow : (oi+1)*g.ow]
					if ii < 0 || ii >= g.h {
						clear(dst)
						continue
					}
					src := xc[ii*g.w : (ii+1)*g.w]
					for oj := range dst {
						jj := oj*g.p.StrideW - g.p.PadW + kj
						if jj >= 0 && jj < g.w {
							dst[oj] = src[jj]
						} else {
							dst[oj] = 0
						}
					}
				}
			}
		}
	}
}

// col2im folds col (C*KH*KW x OH*OW) back into dx (C x H x W), summing
// overlaps; dx is overwritten.
func (g *convGeom) col2im(dx, col []float32) {
	clear(dx)
	hw := g.h * g.w
	for c := range g.c {
		xc := dx[c*hw : (c+1)*hw]
		for ki := range g.kh {
			for kj := range g.kw {
				row := col[((c*g.kh+ki)*g.kw+kj)*g.colSz:][:g.colSz]
				for oi := range g.oh {
					ii := oi*g.p.StrideH - g.p.PadH + ki
					if ii < 0 || ii >= g.h {
						continue
					}
					dst := xc[ii*g.w : (ii+1)*g.w]
					src := row[oi*g.ow : (oi+1)*g.ow]
					for oj, v := range src {
						jj := oj*g.p.StrideW - g.p.PadW + kj
						if jj >= 0 && jj < g.w {
							dst[jj] += v
						}
					}
				}
			}
		}
	}
}

// batchWorkers is how many images run at once: enough to use every core on
// small maps, while each GEMM also splits its own work.
func batchWorkers(n int) int { return min(n, runtime.GOMAXPROCS(0)) }

// Conv2D computes y = conv(x, w) + bias per image as W (O x C*KH*KW) times
// the image's im2col matrix.
func (CPU) Conv2D(y, x, w, bias *Tensor, p Conv2DParams) {
	g := convGeometry("Conv2D", x, w, y, p)
	if bias != nil {
		check.Expect("Conv2D", "bias", bias, Float32, g.o)
	}
	xs, ws, ys := x.Float32s(), w.Float32s(), y.Float32s()
	var bs []float32
	if bias != nil {
		bs = bias.Float32s()
	}
	if ownGEMM() {
		fastgemm.Conv2D(ys, xs, ws, bs, fastgemm.ConvGeom{
			N: g.n, C: g.c, H: g.h, W: g.w, O: g.o, KH: g.kh, KW: g.kw,
			StrideH: p.StrideH, StrideW: p.StrideW, PadH: p.PadH, PadW: p.PadW, OH: g.oh, OW: g.ow,
		}, p.Accumulate, p.ReLU)
		return
	}
	inSz, outSz := g.c*g.h*g.w, g.o*g.colSz
	beta := float32(0)
	if p.Accumulate {
		beta = 1
	}
	parallelFor(g.n, g.o*g.colRows*g.colSz, func(lo, hi int) {
		var col []float32
		if !g.direct {
			col = make([]float32, g.colRows*g.colSz)
		}
		for n := lo; n < hi; n++ {
			xn, yn := xs[n*inSz:(n+1)*inSz], ys[n*outSz:(n+1)*outSz]
			src := xn
			if !g.direct {
				g.im2col(col, xn)
				src = col
			}
			gemm(false, false, 1, ws, g.colRows, src, g.colSz, beta, yn, g.o, g.colSz, g.colRows)
			for o := range g.o {
				row := yn[o*g.colSz : (o+1)*g.colSz]
				if bs != nil {
					for i := range row {
						row[i] += bs[o]
					}
				}
				if p.ReLU {
					for i, v := range row {
						row[i] = max(v, 0)
					}
				}
			}
		}
	})
}

// Conv2DBackwardData computes dx per image as col2im(W^T dy).
func (CPU) Conv2DBackwardData(dx, dy, w *Tensor, p Conv2DParams) {
	g := convGeometry("Conv2DBackwardData", dx, w, dy, p)
	dxs, ws, dys := dx.Float32s(), w.Float32s(), dy.Float32s()
	inSz, outSz := g.c*g.h*g.w, g.o*g.colSz
	parallelFor(g.n, g.o*g.colRows*g.colSz, func(lo, hi int) {
		var col []float32
		if !g.direct {
			col = make([]float32, g.colRows*g.colSz)
		}
		for n := lo; n < hi; n++ {
			dxn, dyn := dxs[n*inSz:(n+1)*inSz], dys[n*outSz:(n+1)*outSz]
			if g.direct {
				gemm(true, false, 1, ws, g.colRows, dyn, g.colSz, 0, dxn, g.colRows, g.colSz, g.o)
				continue
			}
			gemm(true, false, 1, ws, g.colRows, dyn, g.colSz, 0, col, g.colRows, g.colSz, g.o)
			g.col2im(dxn, col)
		}
	})
}

// Conv2DBackwardFilter computes dw = sum over images of dy im2col(x)^T and
// dbias = sum of dy over images and positions. Images are split among
// workers, each with its own partial dw, added up in a fixed order.
func (CPU) Conv2DBackwardFilter(dw, dbias, x, dy *Tensor, p Conv2DParams) {
	g := convGeometry("Conv2DBackwardFilter", x, dw, dy, p)
	if dbias != nil {
		check.Expect("Conv2DBackwardFilter", "dbias", dbias, Float32, g.o)
	}
	xs, dys, dws := x.Float32s(), dy.Float32s(), dw.Float32s()
	inSz, outSz := g.c*g.h*g.w, g.o*g.colSz
	workers := batchWorkers(g.n)
	if g.n*g.o*g.colRows*g.colSz < 1<<20 {
		workers = 1
	}
	partial := make([][]float32, workers)
	parallelFor(workers, 1<<20, func(lo, hi int) {
		for wk := lo; wk < hi; wk++ {
			acc := dws
			if wk > 0 {
				acc = make([]float32, len(dws))
			}
			partial[wk] = acc
			var col []float32
			if !g.direct {
				col = make([]float32, g.colRows*g.colSz)
			}
			beta := float32(0)
			for n := wk * g.n / workers; n < (wk+1)*g.n/workers; n++ {
				src := xs[n*inSz : (n+1)*inSz]
				if !g.direct {
					g.im2col(col, src)
					src = col
				}
				gemm(false, true, 1, dys[n*outSz:(n+1)*outSz], g.colSz, src, g.colSz, beta, acc, g.o, g.colRows, g.colSz)
				beta = 1
			}
			if beta == 0 {
				clear(acc)
			}
		}
	})
	for _, acc := range partial[1:] {
		for i, v := range acc {
			dws[i] += v
		}
	}
	if dbias == nil {
		return
	}
	db := dbias.Float32s()
	parallelFor(g.o, g.n*g.colSz, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			var s float64
			for n := range g.n {
				for _, v := range dys[n*outSz+o*g.colSz:][:g.colSz] {
					s += float64(v)
				}
			}
			db[o] = float32(s)
		}
	})
}
