package tensor

import "fmt"

// RowsTap is one tapped map for PooledRows: X holds N x C x H x W values,
// row-major, each multiplied by Scale before the pooling.
type RowsTap struct {
	X       []float32
	C, H, W int
	Scale   float32
}

// pooledGroup is how many channels PooledRows pools and resizes at once:
// their values at a location fill one cache line of a row.
const pooledGroup = 16

// PooledRows writes to dst (N*th*tw x D row-major, D the taps' channels
// added up) the feature rows of N images: for each tap, in order, its
// planes times Scale, averaged over 3 x 3 windows (stride 1, padding 1,
// the padding counted in the mean), then resized bilinearly to th x tw
// where they are not that size already; the taps side by side and each
// location a row (channels last). The values are bit for bit those of
// Scale, AvgPool2D, ResizeBilinear, Concat and ChannelsLast in turn, in
// one pass that keeps a group of channels in cache instead of five passes
// over the batch. A tap larger than th x tw in either side panics (the
// adapter pools those instead).
func PooledRows(dst []float32, n, th, tw int, taps []RowsTap) {
	dim := 0
	for i, t := range taps {
		if len(t.X) != n*t.C*t.H*t.W || t.H > th || t.W > tw || t.C < 1 {
			panic(fmt.Sprintf("anomnet/tensor: PooledRows: tap %d is %d values of %d x %d x %d x %d for a %d x %d grid", i, len(t.X), n, t.C, t.H, t.W, th, tw))
		}
		dim += t.C
	}
	if len(dst) != n*th*tw*dim {
		panic(fmt.Sprintf("anomnet/tensor: PooledRows: dst of %d values, want %d x %d x %d x %d", len(dst), n, th, tw, dim))
	}
	// The work: one unit per image, tap and group of channels.
	type unit struct{ img, tap, c0, off int }
	var units []unit
	for img := range n {
		off := 0
		for i, t := range taps {
			for c0 := 0; c0 < t.C; c0 += pooledGroup {
				units = append(units, unit{img, i, c0, off})
			}
			off += t.C
		}
	}
	const inv = 1 / float32(9)
	locs := th * tw
	rts, cts := make([]linearTaps, len(taps)), make([]linearTaps, len(taps))
	for i, t := range taps {
		rts[i], cts[i] = bilinearTaps(t.H, th), bilinearTaps(t.W, tw)
	}
	parallelFor(len(units), pooledGroup*locs*20, func(lo, hi int) {
		var rows, pooled, sized []float32
		for _, u := range units[lo:hi] {
			t := taps[u.tap]
			h, w, g := t.H, t.W, min(pooledGroup, t.C-u.c0)
			rows = grow(rows, h*w)
			pooled = grow(pooled, g*h*w)
			for c := range g {
				src := t.X[((u.img*t.C)+u.c0+c)*h*w:][:h*w]
				avgPool3(pooled[c*h*w:(c+1)*h*w], src, rows, h, w, t.Scale, inv)
			}
			planes := pooled
			if h != th || w != tw {
				sized = grow(sized, g*locs)
				for c := range g {
					resizePlane(sized[c*locs:(c+1)*locs], pooled[c*h*w:(c+1)*h*w], w, th, tw, rts[u.tap], cts[u.tap])
				}
				planes = sized
			}
			// Into the rows, 16 locations by 16 channels at a time.
			out := dst[u.img*locs*dim:]
			for l0 := 0; l0 < locs; l0 += 16 {
				l1 := min(l0+16, locs)
				for c0 := 0; c0 < g; c0 += 16 {
					c1 := min(c0+16, g)
					for l := l0; l < l1; l++ {
						row := out[l*dim+u.off+u.c0+c0:][:c1-c0]
						for c := range row {
							row[c] = planes[(c0+c)*locs+l]
						}
					}
				}
			}
		}
	})
}

// grow returns s with length n, reusing its memory where it is enough.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// avgPool3 writes to dst the 3 x 3 mean (stride 1, padding 1, counted) of
// the h x w plane src times scale, with the sums of avgPoolStride1 in the
// same order; rows is scratch of h*w values.
func avgPool3(dst, src, rows []float32, h, w int, scale, inv float32) {
	for i := range h {
		in, out := src[i*w:(i+1)*w], rows[i*w:(i+1)*w]
		for oj := range out {
			var s float32
			for _, v := range in[max(oj-1, 0):min(oj+2, w)] {
				if scale != 1 {
					v = float32(v * scale)
				}
				s += v
			}
			out[oj] = s
		}
	}
	for oi := range h {
		out := dst[oi*w : (oi+1)*w]
		clear(out)
		for i := max(oi-1, 0); i < min(oi+2, h); i++ {
			for oj, v := range rows[i*w : (i+1)*w] {
				out[oj] += v
			}
		}
		for oj := range out {
			out[oj] *= inv
		}
	}
}

// resizePlane resamples one plane (src, w wide) to oh x ow with the taps
// rt and ct, as ResizeBilinear does.
func resizePlane(dst, src []float32, w, oh, ow int, rt, ct linearTaps) {
	for oi := range oh {
		a, b := src[rt.i0[oi]*w:][:w], src[rt.i1[oi]*w:][:w]
		wa, wb := rt.w0[oi], rt.w1[oi]
		row := dst[oi*ow : (oi+1)*ow]
		for oj := range row {
			j0, j1 := ct.i0[oj], ct.i1[oj]
			row[oj] = wa*(ct.w0[oj]*a[j0]+ct.w1[oj]*a[j1]) + wb*(ct.w0[oj]*b[j0]+ct.w1[oj]*b[j1])
		}
	}
}
