package report

import (
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// luminance is the Rec. 709 luma of c's sRGB values (0..255).
func luminance(c color.RGBA) float64 {
	return 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
}

func TestHeatEndpointsAndAnchors(t *testing.T) {
	require.Equal(t, color.RGBA{0, 0, 4, 255}, Heat(0))
	require.Equal(t, color.RGBA{252, 255, 164, 255}, Heat(1))
	require.Equal(t, Heat(0), Heat(-3), "clamped below")
	require.Equal(t, Heat(1), Heat(7), "clamped above")
	require.Equal(t, Heat(0), Heat(math.NaN()))
	require.Equal(t, Heat(1), Heat(math.Inf(1)))
	for k, a := range inferno {
		require.Equal(t, color.RGBA{a[0], a[1], a[2], 255}, Heat(float64(k)/15), "anchor %d", k)
	}
}

func TestHeatLuminanceRises(t *testing.T) {
	prev := luminance(Heat(0))
	for i := 1; i <= 1000; i++ {
		l := luminance(Heat(float64(i) / 1000))
		// Rounding may drop a falling channel a level before a rising one
		// gains one: at most 0.72 (a level of green).
		require.GreaterOrEqual(t, l, prev-0.72, "at %g", float64(i)/1000)
		prev = max(prev, l)
	}
	for k := 1; k < len(inferno); k++ {
		require.Greater(t, luminance(Heat(float64(k)/15)), luminance(Heat(float64(k-1)/15)), "anchor %d", k)
	}
}

func TestHeatmapImage(t *testing.T) {
	m := []float32{
		2, 4, 6,
		3, 5, 7,
		1, 9, 10,
	}
	img := HeatmapImage(m, 3, 3, 2, 6)
	require.Equal(t, image.Rect(0, 0, 3, 3), img.Bounds())
	require.Equal(t, Heat(0), img.RGBAAt(0, 0), "lo")
	require.Equal(t, Heat(0.5), img.RGBAAt(1, 0), "midway")
	require.Equal(t, Heat(1), img.RGBAAt(2, 0), "hi")
	require.Equal(t, Heat(0), img.RGBAAt(0, 2), "below lo clamps")
	require.Equal(t, Heat(1), img.RGBAAt(2, 2), "above hi clamps")
	hot, cold := img.RGBAAt(2, 0), img.RGBAAt(0, 0)
	require.Greater(t, hot.R, cold.R)
	require.Greater(t, luminance(hot), luminance(cold))

	flat := HeatmapImage(m, 3, 3, 5, 5)
	for i := range 9 {
		require.Equal(t, Heat(0), flat.RGBAAt(i%3, i/3), "hi <= lo")
	}
	require.Panics(t, func() { HeatmapImage(m, 4, 4, 0, 1) })

	// A map of any shape: 3 wide, 2 tall, row-major.
	wide := HeatmapImage([]float32{0, 0, 1, 0, 0, 0}, 3, 2, 0, 1)
	require.Equal(t, image.Rect(0, 0, 3, 2), wide.Bounds())
	require.Equal(t, Heat(1), wide.RGBAAt(2, 0))
	require.Equal(t, Heat(0), wide.RGBAAt(0, 1))
	require.Panics(t, func() { HeatmapImage(m, 2, 3, 0, 1) })

	nan := float32(math.NaN())
	holes := HeatmapImage([]float32{nan, 1}, 2, 1, 0, 1)
	require.Equal(t, color.RGBA{}, holes.RGBAAt(0, 0), "not inspected: transparent")
	require.Equal(t, Heat(1), holes.RGBAAt(1, 0))
}

func TestOverlay(t *testing.T) {
	// An image whose bounds do not start at the origin.
	img := image.NewRGBA(image.Rect(10, 20, 12, 22))
	for i := range img.Pix {
		img.Pix[i] = 100
	}
	img.Pix[3], img.Pix[7], img.Pix[11], img.Pix[15] = 255, 255, 255, 255
	m := []float32{0, 1, 0.5, 0.25}

	base := Overlay(img, m, 2, 2, 0, 1, 0)
	require.Equal(t, image.Rect(0, 0, 2, 2), base.Bounds())
	for i := range 4 {
		require.Equal(t, color.RGBA{100, 100, 100, 255}, base.RGBAAt(i%2, i/2), "alpha 0 gives the image")
	}
	full := Overlay(img, m, 2, 2, 0, 1, 1)
	require.Equal(t, HeatmapImage(m, 2, 2, 0, 1).Pix, full.Pix, "alpha 1 gives the heat map")

	half := Overlay(img, m, 2, 2, 0, 1, 0.5)
	h := Heat(1)
	want := func(v uint8) uint8 { return uint8(math.Round((100 + float64(v)) / 2)) }
	require.Equal(t, color.RGBA{want(h.R), want(h.G), want(h.B), 255}, half.RGBAAt(1, 0))
	hot, cold := half.RGBAAt(1, 0), half.RGBAAt(0, 0)
	require.Greater(t, hot.R, cold.R)
	require.Greater(t, luminance(hot), luminance(cold))

	require.Equal(t, full.Pix, Overlay(img, m, 2, 2, 0, 1, 5).Pix, "alpha clamps")
	holes := Overlay(img, []float32{float32(math.NaN()), 1, 0.5, 0.25}, 2, 2, 0, 1, 1)
	require.Equal(t, color.RGBA{100, 100, 100, 255}, holes.RGBAAt(0, 0), "not inspected: the image alone")
	require.Equal(t, full.RGBAAt(1, 0), holes.RGBAAt(1, 0))
	require.Panics(t, func() { Overlay(img, m, 3, 3, 0, 1, 0.5) })
	require.Panics(t, func() { Overlay(image.NewRGBA(image.Rect(0, 0, 3, 3)), m, 2, 2, 0, 1, 0.5) })
}

func TestMaskImage(t *testing.T) {
	img := MaskImage([]bool{true, false, false, true}, 2, 2)
	require.Equal(t, image.Rect(0, 0, 2, 2), img.Bounds())
	require.Equal(t, []uint8{255, 0, 0, 255}, img.Pix)
	require.Panics(t, func() { MaskImage(make([]bool, 3), 2, 2) })
	tall := MaskImage([]bool{false, true, false, false, true, false}, 2, 3)
	require.Equal(t, image.Rect(0, 0, 2, 3), tall.Bounds())
	require.Equal(t, uint8(255), tall.GrayAt(1, 0).Y)
	require.Equal(t, uint8(255), tall.GrayAt(0, 2).Y)
}

// drawn lists the pixels of img that equal c, as "x,y" pairs.
func drawn(img *image.RGBA, c color.RGBA) [][2]int {
	var got [][2]int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.RGBAAt(x, y) == c {
				got = append(got, [2]int{x, y})
			}
		}
	}
	return got
}

func TestContourDrawsOnlyTheBoundary(t *testing.T) {
	const size = 7
	red := color.RGBA{255, 0, 0, 255}
	gray := image.NewGray(image.Rect(0, 0, size, size)) // black
	mask := make([]bool, size*size)
	for y := 2; y <= 4; y++ {
		for x := 1; x <= 4; x++ {
			mask[y*size+x] = true
		}
	}
	out := Contour(gray, mask, size, size, red)
	require.Equal(t, image.Rect(0, 0, size, size), out.Bounds())
	// The 4 x 3 block's ring; its two inner pixels (2,3) and (3,3) stay.
	want := [][2]int{
		{1, 2}, {2, 2}, {3, 2}, {4, 2},
		{1, 3}, {4, 3},
		{1, 4}, {2, 4}, {3, 4}, {4, 4},
	}
	require.Equal(t, want, drawn(out, red))
	require.Len(t, drawn(out, color.RGBA{0, 0, 0, 255}), size*size-len(want), "the rest is the image")
	require.Equal(t, uint8(0), gray.Pix[2*size+1], "the input is not changed")

	// A mask covering the image is outlined along the image's edge.
	for i := range mask {
		mask[i] = true
	}
	out = Contour(gray, mask, size, size, red)
	require.Len(t, drawn(out, red), 4*(size-1))
	require.Equal(t, color.RGBA{0, 0, 0, 255}, out.RGBAAt(1, 1))
	require.Equal(t, red, out.RGBAAt(0, 3))

	// A tall image: the outline follows its own width and height.
	tall := image.NewGray(image.Rect(0, 0, 3, 5))
	block := make([]bool, 15)
	for y := range 5 {
		for x := range 3 {
			block[y*3+x] = y >= 1
		}
	}
	out = Contour(tall, block, 3, 5, red)
	require.Equal(t, image.Rect(0, 0, 3, 5), out.Bounds())
	require.Equal(t, [][2]int{{0, 1}, {1, 1}, {2, 1}, {0, 2}, {2, 2}, {0, 3}, {2, 3}, {0, 4}, {1, 4}, {2, 4}}, drawn(out, red))
}
