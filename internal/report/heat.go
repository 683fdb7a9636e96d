package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// inferno holds 16 anchors of matplotlib's "inferno" colour map, sampled
// at k/15 (entries 0, 17, ..., 255 of its 256-entry table). Inferno is
// perceptually uniform with luminance rising monotonically from black to
// pale yellow, so hotter always reads brighter, also in grey print.
var inferno = [16][3]uint8{
	{0, 0, 4},
	{12, 8, 38},
	{36, 12, 79},
	{66, 10, 104},
	{93, 18, 110},
	{120, 28, 109},
	{147, 38, 103},
	{174, 48, 92},
	{199, 62, 76},
	{221, 81, 58},
	{237, 105, 37},
	{248, 133, 15},
	{252, 165, 10},
	{250, 198, 45},
	{242, 230, 97},
	{252, 255, 164},
}

// Heat maps v in [0, 1] to an opaque colour of the inferno colour map (16
// anchors of matplotlib's table, linearly interpolated in sRGB): 0 is
// black, 1 pale yellow. Values outside [0, 1] are clamped; NaN maps to 0.
func Heat(v float64) color.RGBA {
	if !(v > 0) { // also NaN
		v = 0
	}
	v = min(v, 1) * float64(len(inferno)-1)
	i := min(int(v), len(inferno)-2)
	t := v - float64(i)
	a, b := inferno[i], inferno[i+1]
	mix := func(x, y uint8) uint8 {
		return uint8(math.Round(float64(x) + t*(float64(y)-float64(x))))
	}
	return color.RGBA{mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]), 255}
}

// norm returns the function that normalises a score to (v - lo) / (hi -
// lo); when hi <= lo (a flat map) every score maps to 0.
func norm(lo, hi float64) func(float32) float64 {
	if !(hi > lo) {
		return func(float32) float64 { return 0 }
	}
	s := 1 / (hi - lo)
	return func(v float32) float64 { return (float64(v) - lo) * s }
}

func checkMap(fn string, n, w, h int) {
	if w < 1 || h < 1 || n != w*h {
		panic(fmt.Sprintf("anomnet/report: %s: %d values for a %d x %d map", fn, n, w, h))
	}
}

// HeatmapImage renders m, a w x h row-major score map, as an image
// of Heat colours of the normalised scores (v - lo) / (hi - lo), clamped
// to [0, 1]. When hi <= lo every pixel gets Heat(0). A NaN score (a pixel
// not inspected) is left transparent.
func HeatmapImage(m []float32, w, h int, lo, hi float64) *image.RGBA {
	checkMap("HeatmapImage", len(m), w, h)
	f := norm(lo, hi)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i, v := range m {
		if v != v {
			continue
		}
		c := Heat(f(v))
		p := img.Pix[4*i : 4*i+4 : 4*i+4]
		p[0], p[1], p[2], p[3] = c.R, c.G, c.B, c.A
	}
	return img
}

// Overlay blends the heat map of m (normalised as in HeatmapImage) over
// img with opacity alpha (clamped to [0, 1]; 0 gives img, 1 the heat map).
// img is any w x h image, whatever its bounds' origin; the result is
// opaque, with origin (0, 0). Translucent pixels of img count as drawn over
// black. Where m is NaN (not inspected) the image shows alone.
func Overlay(img image.Image, m []float32, w, h int, lo, hi, alpha float64) *image.RGBA {
	checkMap("Overlay", len(m), w, h)
	checkImage("Overlay", img, w, h)
	alpha = max(0, min(alpha, 1))
	if math.IsNaN(alpha) {
		alpha = 0
	}
	f := norm(lo, hi)
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			v := m[y*w+x]
			if v != v { // not inspected: the image alone
				out.SetRGBA(x, y, color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255})
				continue
			}
			c := Heat(f(v))
			mix := func(u uint32, v uint8) uint8 {
				return uint8(math.Round((1-alpha)*float64(u>>8) + alpha*float64(v)))
			}
			out.SetRGBA(x, y, color.RGBA{mix(r, c.R), mix(g, c.G), mix(bl, c.B), 255})
		}
	}
	return out
}

func checkImage(fn string, img image.Image, w, h int) {
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		panic(fmt.Sprintf("anomnet/report: %s: image is %d x %d, want %d x %d", fn, b.Dx(), b.Dy(), w, h))
	}
}

// MaskImage renders mask, a w x h row-major binary mask, as a gray
// image: white where true, black elsewhere.
func MaskImage(mask []bool, w, h int) *image.Gray {
	checkMap("MaskImage", len(mask), w, h)
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i, in := range mask {
		if in {
			img.Pix[i] = 255
		}
	}
	return img
}

// Contour returns a copy of img (w x h, any bounds' origin; the copy
// has origin (0, 0)) with the outline of mask drawn in c: the pixels of
// the mask with a 4-neighbour outside it. Beyond the image edge counts as
// outside, so a region touching the edge gets a closed outline.
func Contour(img image.Image, mask []bool, w, h int, c color.RGBA) *image.RGBA {
	checkMap("Contour", len(mask), w, h)
	checkImage("Contour", img, w, h)
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			out.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	in := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < w && y < h && mask[y*w+x]
	}
	for y := range h {
		for x := range w {
			if in(x, y) && !(in(x-1, y) && in(x+1, y) && in(x, y-1) && in(x, y+1)) {
				out.SetRGBA(x, y, c)
			}
		}
	}
	return out
}
