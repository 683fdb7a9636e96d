package tensor

import (
	"fmt"
	"slices"
)

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
		var rows, pooled, sized, cols []float32
		for _, u := range units[lo:hi] {
			t := taps[u.tap]
			h, w, g := t.H, t.W, min(pooledGroup, t.C-u.c0)
			rows = slices.Grow(rows[:0], h*w)[:h*w]
			pooled = slices.Grow(pooled[:0], g*h*w)[:g*h*w]
			for c := range g {
				src := t.X[((u.img*t.C)+u.c0+c)*h*w:][:h*w]
				avgPool3(pooled[c*h*w:(c+1)*h*w], src, rows, h, w, t.Scale, inv)
			}
			planes := pooled
			if h != th || w != tw {
				sized = slices.Grow(sized[:0], g*locs)[:g*locs]
				cols = slices.Grow(cols[:0], h*tw)[:h*tw]
				for c := range g {
					resizePlane(sized[c*locs:(c+1)*locs], pooled[c*h*w:(c+1)*h*w], cols, h, w, th, tw, rts[u.tap], cts[u.tap])
				}
				planes = sized
			}
			out := dst[u.img*locs*dim:]
			for l := range locs {
				row := out[l*dim+u.off+u.c0:][:g]
				for c := range row {
					row[c] = planes[c*locs+l]
				}
			}
		}
	})
}

// avgPool3 writes to dst the 3 x 3 mean (stride 1, padding 1, counted) of
// the h x w plane src times scale, rounding as avgPoolStride1 does (each
// sum starts from 0 and adds left to right, top to bottom); rows is
// scratch of h*w values.
func avgPool3(dst, src, rows []float32, h, w int, scale, inv float32) {
	for i := range h {
		in, out := src[i*w:(i+1)*w], rows[i*w:(i+1)*w]
		if scale != 1 {
			for j, v := range in {
				out[j] = v * scale // scaled in place, then summed below
			}
			in = out
		}
		if w == 1 {
			out[0] = 0 + in[0]
			continue
		}
		prev, cur := in[0], in[1]
		out[0] = 0 + prev + cur
		for j := 1; j < w-1; j++ {
			next := in[j+1]
			out[j] = 0 + prev + cur + next
			prev, cur = cur, next
		}
		out[w-1] = 0 + prev + cur
	}
	for oi := range h {
		out := dst[oi*w : (oi+1)*w]
		switch a, b := max(oi-1, 0), min(oi+2, h); b - a {
		case 1:
			for j, v := range rows[a*w : (a+1)*w] {
				out[j] = (0 + v) * inv
			}
		case 2:
			r0, r1 := rows[a*w:(a+1)*w], rows[(a+1)*w:(a+2)*w]
			for j := range out {
				out[j] = (0 + r0[j] + r1[j]) * inv
			}
		default:
			r0, r1, r2 := rows[a*w:(a+1)*w], rows[(a+1)*w:(a+2)*w], rows[(a+2)*w:(a+3)*w]
			for j := range out {
				out[j] = (0 + r0[j] + r1[j] + r2[j]) * inv
			}
		}
	}
}

// resizePlane resamples one plane (src, h x w) to oh x ow with the taps
// rt and ct, as ResizeBilinear does: each source row's interpolation
// along the columns, which ResizeBilinear computes again for every output
// row that uses it, is made once into cols (h x ow scratch), with the
// same rounding.
func resizePlane(dst, src, cols []float32, h, w, oh, ow int, rt, ct linearTaps) {
	for i := range h {
		a, out := src[i*w:(i+1)*w], cols[i*ow:(i+1)*ow]
		for oj := range out {
			out[oj] = ct.w0[oj]*a[ct.i0[oj]] + ct.w1[oj]*a[ct.i1[oj]]
		}
	}
	for oi := range oh {
		a, b := cols[rt.i0[oi]*ow:][:ow], cols[rt.i1[oi]*ow:][:ow]
		wa, wb := rt.w0[oi], rt.w1[oi]
		row := dst[oi*ow : (oi+1)*ow]
		for oj := range row {
			row[oj] = wa*a[oj] + wb*b[oj]
		}
	}
}
