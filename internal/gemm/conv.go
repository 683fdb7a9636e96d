package gemm

import "fmt"

// ConvGeom is the geometry of a 2-D convolution over a batch of NCHW maps.
type ConvGeom struct {
	N, C, H, W       int // input
	O, KH, KW        int // filters
	StrideH, StrideW int
	PadH, PadW       int
	OH, OW           int // output
}

// Conv2D sets y = conv(x, w) + bias, or adds that to y if accumulate is
// set, then applies max(., 0) if relu, for a whole batch as one implicit
// GEMM: the filters w (O x C*KH*KW) times the
// im2col matrix of the batch (C*KH*KW x N*OH*OW), whose panels are packed
// straight from x as the product needs them, so that no im2col matrix is
// ever stored; the product's columns land in y image by image (NCHW). bias
// may be nil.
func Conv2D(y, x, w, bias []float32, g ConvGeom, accumulate, relu bool) {
	k := g.C * g.KH * g.KW
	ohw := g.OH * g.OW
	if len(x) < g.N*g.C*g.H*g.W || len(w) < g.O*k || len(y) < g.N*g.O*ohw || (bias != nil && len(bias) < g.O) {
		panic(fmt.Sprintf("anomnet/gemm: Conv2D: slices too short for %+v", g))
	}
	if g.N == 0 || g.O == 0 || ohw == 0 {
		return
	}
	if k == 0 {
		for n := range g.N {
			for o := range g.O {
				row := y[(n*g.O+o)*ohw:][:ohw]
				for i, v := range row {
					if !accumulate {
						v = 0
					}
					if bias != nil {
						v += bias[o]
					}
					if relu {
						v = max(v, 0)
					}
					row[i] = v
				}
			}
		}
		return
	}
	if useWinograd(g) {
		winogradConv(y, x, w, bias, g, accumulate, relu, workersFor(g.N*g.O*ohw*k))
		return
	}
	j := &job{ker: Active(), m: g.O, n: g.N * ohw, k: k, c: y, ldc: ohw,
		groupCols: ohw, groupStride: g.O * ohw, overwrite: !accumulate, bias: bias, relu: relu}
	j.packA = func(dst []float32, i0, mm, p0, kc int) { packMatrix(dst, j.ker.MR, w, k, false, 1, i0, mm, p0, kc) }
	if g.KH == 1 && g.KW == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 0 && g.PadW == 0 {
		j.packB = func(dst []float32, p0, kc, j0, nn int) { g.pack1x1(dst, j.ker.NR, x, p0, kc, j0, nn) }
	} else {
		j.packB = func(dst []float32, p0, kc, j0, nn int) { g.packPatches(dst, j.ker.NR, x, p0, kc, j0, nn) }
	}
	j.run()
}

// pack1x1 packs rows [p0, p0+kc) (input channels) and columns [j0, j0+nn)
// (output positions across the batch) of a 1x1, stride-1 convolution's
// im2col matrix, which is the input itself, one image after another.
func (g *ConvGeom) pack1x1(dst []float32, nr int, x []float32, p0, kc, j0, nn int) {
	hw := g.H * g.W
	// The panel's columns in runs that share an image, found once for
	// all its rows; off is where row p0 of a run starts in x.
	type segment struct{ c, off, run int }
	var segs [32]segment
	ns := 0
	for c := 0; c < nn; {
		n, pix := (j0+c)/hw, (j0+c)%hw
		run := min(nn-c, hw-pix)
		segs[ns] = segment{c, (n*g.C+p0)*hw + pix, run}
		ns++
		c += run
	}
	if ns == 1 && nn == nr && packRows != nil {
		// A whole panel inside one image: kc rows of nr values, hw apart.
		src := x[segs[0].off : segs[0].off+(kc-1)*hw+nr]
		packRows(dst[:kc*nr], src, hw, nr)
		return
	}
	for p := range kc {
		d := dst[p*nr : (p+1)*nr]
		for _, sg := range segs[:ns] {
			copy(d[sg.c:sg.c+sg.run], x[sg.off+p*hw:][:sg.run])
		}
		clear(d[nn:])
	}
}

// packA12, where set, packs a whole 12-row strip of a row-major matrix
// (row i at src[i*ld:], kc values each) k-major into dst.
var packA12 func(dst, src []float32, ld, kc int)

// packRows, where set, copies len(dst)/nr rows of nr values from src, ld
// apart, into dst one after another; nil where no fast version exists.
var packRows func(dst, src []float32, ld, nr int)

// packPatches packs part of the im2col matrix of a general convolution
// from x: row p is (channel, kernel row, kernel column), column j is
// (image, output row, output column); taps in the padding are zeros. The
// panel's columns are handled in segments that share an image and an
// output row, along which the taps of one kernel position are evenly
// spaced in one input row (contiguous at stride 1).
func (g *ConvGeom) packPatches(dst []float32, nr int, x []float32, p0, kc, j0, nn int) {
	ohw, hw, kk := g.OH*g.OW, g.H*g.W, g.KH*g.KW
	// inner: every tap of the segment, for every kernel position, lies
	// inside the input, so that the copy needs no bounds.
	type segment struct {
		c, n, base, ih0, iw0 int
		inner                bool
	}
	var segs [64]segment
	ns := 0
	for c := 0; c < nn; {
		n, pix := (j0+c)/ohw, (j0+c)%ohw
		oh, ow := pix/g.OW, pix%g.OW
		n0 := min(nn-c, g.OW-ow)
		sg := segment{c: c, n: n0, base: n * g.C * hw, ih0: oh*g.StrideH - g.PadH, iw0: ow*g.StrideW - g.PadW}
		sg.inner = sg.ih0 >= 0 && sg.ih0+g.KH <= g.H && sg.iw0 >= 0 && sg.iw0+(n0-1)*g.StrideW+g.KW <= g.W
		segs[ns] = sg
		ns++
		c += n0
	}
	for p := range kc {
		ch, r := (p0+p)/kk, (p0+p)%kk
		ki, kj := r/g.KW, r%g.KW
		d := dst[p*nr : (p+1)*nr]
		for _, sg := range segs[:ns] {
			out := d[sg.c : sg.c+sg.n]
			ih, iw := sg.ih0+ki, sg.iw0+kj
			if sg.inner {
				src := x[sg.base+ch*hw+ih*g.W+iw:]
				if g.StrideW == 1 {
					copy(out, src)
				} else {
					for t := range out {
						out[t] = src[t*g.StrideW]
					}
				}
				continue
			}
			if uint(ih) >= uint(g.H) {
				clear(out)
				continue
			}
			row := x[sg.base+ch*hw+ih*g.W:][:g.W]
			if g.StrideW == 1 {
				// Taps iw .. iw+len(out)-1: zeros left and right of the row.
				lo := min(max(-iw, 0), len(out))
				hi := max(min(g.W-iw, len(out)), lo)
				clear(out[:lo])
				copy(out[lo:hi], row[iw+lo:iw+hi])
				clear(out[hi:])
				continue
			}
			for t := range out {
				if c := iw + t*g.StrideW; uint(c) < uint(g.W) {
					out[t] = row[c]
				} else {
					out[t] = 0
				}
			}
		}
		clear(d[nn:])
	}
}
