package dataset

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
)

// CorruptLarge returns a copy of img with one large synthetic defect and
// its mask (255 inside): an elliptic region of 20 - 60 % of the image made
// darker or brighter, with a soft edge, as a stain, a worn coating or an
// uneven finish is. Corrupt's and CorruptStructural's defects cover at
// most a tenth of the image; real ones can cover most of it (the
// "uneven" defects of magnetic tiles), and a setting that only works
// while a defect is small must show it in validation too.
//
// The change fades linearly over the outer 15 % of the ellipse's radius;
// the mask holds the pixels changed at least half as much as the centre.
// The region may reach the borders.
func CorruptLarge(img image.Image, rng *rand.Rand) (*image.RGBA, *image.Gray) {
	out, mask, ok := canvas(img)
	if !ok {
		return out, mask
	}
	w, h := out.Rect.Dx(), out.Rect.Dy()
	// An ellipse of the target area, centred in the middle half of the
	// image (so that most of it lies inside).
	area := (0.2 + 0.4*rng.Float64()) * float64(w*h)
	aspect := math.Exp((rng.Float64()*2 - 1) * math.Log(2))
	ax := math.Sqrt(area * aspect / math.Pi)
	ay := math.Sqrt(area / aspect / math.Pi)
	cx := float64(w) * (0.25 + 0.5*rng.Float64())
	cy := float64(h) * (0.25 + 0.5*rng.Float64())
	gain := 0.6 + 0.2*rng.Float64()
	offset := -(15 + 20*rng.Float64())
	if rng.IntN(2) == 1 {
		gain, offset = 1.25+0.25*rng.Float64(), -offset
	}
	const fade = 0.15
	for y := range h {
		for x := range w {
			dx, dy := (float64(x)+0.5-cx)/ax, (float64(y)+0.5-cy)/ay
			r := math.Sqrt(dx*dx + dy*dy)
			wt := min(1, max(0, (1-r)/fade))
			if wt == 0 {
				continue
			}
			c := out.RGBAAt(x, y)
			g := 1 + (gain-1)*wt
			o := offset * wt
			out.SetRGBA(x, y, color.RGBA{shift8(c.R, g, o), shift8(c.G, g, o), shift8(c.B, g, o), c.A})
			if wt >= 0.5 {
				mask.SetGray(x, y, color.Gray{255})
			}
		}
	}
	return out, mask
}

// shift8 is v scaled by g plus o, rounded and clamped to a byte.
func shift8(v uint8, g, o float64) uint8 {
	return uint8(max(0, min(255, math.Round(float64(v)*g+o))))
}
