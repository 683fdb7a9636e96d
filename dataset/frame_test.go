package dataset

import (
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFrame(t *testing.T) {
	for _, tc := range []struct {
		w, h, side, most int
		fw, fh           int
	}{
		{201, 512, 224, 512, 208, 512},   // a kolektor part: the cap rules, its own size
		{512, 201, 224, 512, 512, 208},   // the same part lying down
		{100, 100, 224, 512, 224, 224},   // square, enlarged to the side
		{4000, 6000, 224, 512, 224, 336}, // a photo: the shorter side rules
		{6000, 4000, 224, 512, 336, 224},
		{30, 3000, 224, 512, 16, 512},  // a sliver keeps at least one block
		{300, 400, 224, 100, 176, 224}, // a cap below the side is the side
	} {
		fw, fh := Frame(tc.w, tc.h, tc.side, tc.most)
		require.Equal(t, [2]int{tc.fw, tc.fh}, [2]int{fw, fh}, "%dx%d", tc.w, tc.h)
		require.Zero(t, fw%FrameAlign)
		require.Zero(t, fh%FrameAlign)
		// Tall stays tall and wide stays wide, the ratio within rounding.
		require.Equal(t, tc.w < tc.h, fw < fh)
		if fw > FrameAlign && fh > FrameAlign {
			got, want := float64(fw)/float64(fh), float64(tc.w)/float64(tc.h)
			require.InEpsilon(t, want, got, float64(FrameAlign)/float64(min(fw, fh)), "%dx%d", tc.w, tc.h)
		}
	}
	require.Panics(t, func() { Frame(0, 10, 224, 512) })
}

func TestPreprocessFull(t *testing.T) {
	// A 40 x 100 image, white in its top 10 rows: nothing is cut, so the
	// white band stays at the top of the 16 x 48 frame, a tenth high.
	img := image.NewGray(image.Rect(0, 0, 40, 100))
	mask := image.NewGray(image.Rect(0, 0, 40, 100))
	for y := range 10 {
		for x := range 40 {
			img.SetGray(x, y, color.Gray{255})
			mask.SetGray(x, y, color.Gray{255})
		}
	}
	p := Preprocess{Width: 16, Height: 48}
	w, h := p.Size()
	require.Equal(t, [2]int{16, 48}, [2]int{w, h})
	out := p.Image(img)
	require.Equal(t, image.Rect(0, 0, 16, 48), out.Bounds())
	require.Equal(t, uint8(255), out.RGBAAt(8, 1).R, "the top band is kept")
	require.Equal(t, uint8(0), out.RGBAAt(8, 30).R)
	m := p.Mask(mask, 127)
	require.Len(t, m, 16*48)
	for y := range 48 {
		// Row y takes source row floor((2y+1)*100/96).
		want := (2*y+1)*100/96 < 10
		require.Equal(t, want, m[y*16+5], "row %d", y)
	}
	// The crop cuts the band away.
	c := Preprocess{Resize: 60, Crop: 40}.Mask(mask, 127)
	require.NotContains(t, c, true)

	require.Panics(t, func() { Preprocess{Width: 16}.Image(img) })
	cw, ch := Preprocess{}.Size()
	require.Equal(t, [2]int{224, 224}, [2]int{cw, ch})
}

func TestTiles(t *testing.T) {
	for _, tc := range []struct {
		w, h, size int
		overlap    float64
	}{
		{6000, 4000, 224, 0.25}, {224, 224, 224, 0.25}, {300, 224, 224, 0}, {1000, 230, 64, 0.5}, {100, 50, 64, 0.25},
	} {
		rs := Tiles(tc.w, tc.h, tc.size, tc.overlap)
		cover := make([]int, tc.w*tc.h)
		for _, r := range rs {
			require.Equal(t, tc.size, r.Dx())
			require.Equal(t, tc.size, r.Dy())
			for y := r.Min.Y; y < min(r.Max.Y, tc.h); y++ {
				for x := r.Min.X; x < min(r.Max.X, tc.w); x++ {
					cover[y*tc.w+x]++
				}
			}
		}
		require.NotContains(t, cover, 0, "%v: every pixel is in a tile", tc)
		// Neighbours along x overlap by at least the share asked, and the
		// last tile is flush with the far edge.
		var xs []int
		for _, r := range rs {
			if r.Min.Y == 0 {
				xs = append(xs, r.Min.X)
			}
		}
		if tc.w >= tc.size {
			require.Equal(t, tc.w-tc.size, xs[len(xs)-1], "%v", tc)
		}
		for i := 1; i < len(xs); i++ {
			require.LessOrEqual(t, xs[i]-xs[i-1], int(float64(tc.size)*(1-tc.overlap)), "%v", tc)
		}
	}
	require.Len(t, Tiles(6000, 4000, 224, 0.25), 36*24)
	require.Panics(t, func() { Tiles(10, 10, 0, 0) })
	require.Panics(t, func() { Tiles(10, 10, 8, 1) })
}

func TestPreprocessNative(t *testing.T) {
	img := image.NewGray(image.Rect(5, 7, 45, 107)) // bounds off the origin
	img.SetGray(5, 7, color.Gray{200})
	p := Preprocess{Native: true}
	out := p.Image(img)
	require.Equal(t, image.Rect(0, 0, 40, 100), out.Bounds())
	require.Equal(t, color.RGBA{200, 200, 200, 255}, out.RGBAAt(0, 0))
	m := p.Mask(img, 127)
	require.Len(t, m, 40*100)
	require.True(t, m[0])
	require.Equal(t, 1, countTrue(m))
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// TestTurn checks the full frame's turn: an image lying the other way
// from the frame is resized, and its mask too, to the frame turned a
// quarter turn, upright; others, square frames and the crop are not.
func TestTurn(t *testing.T) {
	p := Preprocess{Width: 32, Height: 64, Turn: true}
	for _, tc := range []struct {
		w, h   int
		turns  bool
		ow, oh int
	}{
		{100, 50, true, 64, 32}, {50, 100, false, 32, 64}, {60, 60, false, 32, 64}, {33, 32, true, 64, 32},
	} {
		if got := p.Turns(tc.w, tc.h); got != tc.turns {
			t.Errorf("Turns(%d, %d) = %v", tc.w, tc.h, got)
		}
		if w, h := p.SizeOf(tc.w, tc.h); w != tc.ow || h != tc.oh {
			t.Errorf("SizeOf(%d, %d) = %d, %d, want %d, %d", tc.w, tc.h, w, h, tc.ow, tc.oh)
		}
		img := image.NewGray(image.Rect(0, 0, tc.w, tc.h))
		// A bright left edge stays on the left: the image is not turned.
		for y := range tc.h {
			img.SetGray(0, y, color.Gray{Y: 255})
			img.SetGray(1, y, color.Gray{Y: 255})
		}
		out := p.Image(img)
		if b := out.Bounds(); b.Dx() != tc.ow || b.Dy() != tc.oh {
			t.Errorf("Image of %dx%d is %v, want %dx%d", tc.w, tc.h, b, tc.ow, tc.oh)
		}
		if out.Pix[0] < 128 || out.Pix[(tc.oh/2)*out.Stride] < 128 || out.Pix[(tc.oh/2)*out.Stride+(tc.ow-1)*4] > 127 {
			t.Errorf("Image of %dx%d: the left edge moved", tc.w, tc.h)
		}
		mask := p.Mask(img, 127)
		if len(mask) != tc.ow*tc.oh || !mask[(tc.oh/2)*tc.ow] || mask[(tc.oh/2)*tc.ow+tc.ow-1] {
			t.Errorf("Mask of %dx%d: %d labels, left edge %v, right edge %v", tc.w, tc.h, len(mask), mask[(tc.oh/2)*tc.ow], mask[(tc.oh/2)*tc.ow+tc.ow-1])
		}
	}
	for _, q := range []Preprocess{{Width: 32, Height: 64}, {Width: 48, Height: 48, Turn: true}, {Resize: 64, Crop: 56, Turn: true}, {Native: true, Turn: true}} {
		if q.Turns(100, 50) || q.Turns(50, 100) {
			t.Errorf("%+v turns", q)
		}
	}
}
