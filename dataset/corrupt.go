package dataset

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
)

// Corrupt returns a copy of img with one synthetic defect painted on it,
// and the defect's mask (255 inside): what a validation set made only of
// normal images needs to measure detection without touching test images.
// The defect is drawn at random among three kinds that need no knowledge
// of the part:
//   - a patch of the same image cut from elsewhere and pasted, its
//     brightness changed a little (CutPaste, Li et al. 2021);
//   - a thin straight scar of one colour across the surface;
//   - a blob of the image's mean colour shifted darker or brighter, with
//     noise.
//
// Each covers 0.5 - 4 % of the image and keeps 4 pixels from the borders.
func Corrupt(img image.Image, rng *rand.Rand) (*image.RGBA, *image.Gray) {
	out, mask, ok := canvas(img)
	if !ok {
		return out, mask
	}
	switch rng.IntN(3) {
	case 0:
		cutPaste(out, mask, rng)
	case 1:
		scar(out, mask, rng)
	default:
		blob(out, mask, rng)
	}
	return out, mask
}

// canvas returns an RGBA copy of img at the origin and an empty mask of
// its size; ok is false when the image is too small (under 16 pixels a
// side) for a synthetic defect.
func canvas(img image.Image) (out *image.RGBA, mask *image.Gray, ok bool) {
	b := img.Bounds()
	out = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out, image.NewGray(out.Bounds()), b.Dx() >= 16 && b.Dy() >= 16
}

// cutPaste copies a rectangle of 1 - 4 % of the area to another place.
func cutPaste(img *image.RGBA, mask *image.Gray, rng *rand.Rand) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	area := (0.01 + 0.03*rng.Float64()) * float64(w*h)
	aspect := math.Exp((rng.Float64()*2 - 1) * math.Log(3))
	pw := max(2, min(w-8, int(math.Sqrt(area*aspect))))
	ph := max(2, min(h-8, int(math.Sqrt(area/aspect))))
	sx, sy := 4+rng.IntN(w-8-pw+1), 4+rng.IntN(h-8-ph+1)
	dx, dy := 4+rng.IntN(w-8-pw+1), 4+rng.IntN(h-8-ph+1)
	gain := 0.8 + 0.4*rng.Float64()
	src := image.NewRGBA(image.Rect(0, 0, pw, ph))
	draw.Draw(src, src.Bounds(), img, image.Pt(sx, sy), draw.Src)
	for y := range ph {
		for x := range pw {
			c := src.RGBAAt(x, y)
			img.SetRGBA(dx+x, dy+y, color.RGBA{scale8(c.R, gain), scale8(c.G, gain), scale8(c.B, gain), 255})
			mask.SetGray(dx+x, dy+y, color.Gray{255})
		}
	}
}

// scar draws a straight line 2 - 5 pixels wide and 10 - 30 % of the
// shorter side long, in a random colour.
func scar(img *image.RGBA, mask *image.Gray, rng *rand.Rand) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	side := float64(min(w, h))
	length := (0.1 + 0.2*rng.Float64()) * side
	width := 2 + 3*rng.Float64()
	theta := math.Pi * rng.Float64()
	cx := 4 + length/2 + rng.Float64()*(float64(w)-8-length)
	cy := 4 + length/2 + rng.Float64()*(float64(h)-8-length)
	ux, uy := math.Cos(theta), math.Sin(theta)
	col := color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
	for y := 4; y < h-4; y++ {
		for x := 4; x < w-4; x++ {
			px, py := float64(x)+0.5-cx, float64(y)+0.5-cy
			along, across := px*ux+py*uy, -px*uy+py*ux
			if math.Abs(along) <= length/2 && math.Abs(across) <= width/2 {
				img.SetRGBA(x, y, col)
				mask.SetGray(x, y, color.Gray{255})
			}
		}
	}
}

// blob fills an ellipse of 0.5 - 3 % of the area with the image's mean
// colour shifted by 25 - 50 % of the range, darker or brighter, plus noise.
func blob(img *image.RGBA, mask *image.Gray, rng *rand.Rand) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	var mean [3]float64
	for y := range h {
		for x := range w {
			c := img.RGBAAt(x, y)
			mean[0], mean[1], mean[2] = mean[0]+float64(c.R), mean[1]+float64(c.G), mean[2]+float64(c.B)
		}
	}
	shift := (64 + 64*rng.Float64()) * float64(1-2*rng.IntN(2))
	area := (0.005 + 0.025*rng.Float64()) * float64(w*h)
	aspect := math.Exp((rng.Float64()*2 - 1) * math.Log(2.5))
	rx, ry := math.Sqrt(area*aspect/math.Pi), math.Sqrt(area/aspect/math.Pi)
	rx, ry = min(rx, float64(w)/2-5), min(ry, float64(h)/2-5)
	cx := 4 + rx + rng.Float64()*(float64(w)-8-2*rx)
	cy := 4 + ry + rng.Float64()*(float64(h)-8-2*ry)
	for y := 4; y < h-4; y++ {
		for x := 4; x < w-4; x++ {
			ex, ey := (float64(x)+0.5-cx)/rx, (float64(y)+0.5-cy)/ry
			if ex*ex+ey*ey > 1 {
				continue
			}
			var c [3]uint8
			noise := 12 * rng.NormFloat64()
			for k := range c {
				c[k] = uint8(max(0, min(255, mean[k]/float64(w*h)+shift+noise)))
			}
			img.SetRGBA(x, y, color.RGBA{c[0], c[1], c[2], 255})
			mask.SetGray(x, y, color.Gray{255})
		}
	}
}

func scale8(v uint8, g float64) uint8 { return uint8(max(0, min(255, math.Round(float64(v)*g)))) }
