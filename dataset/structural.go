package dataset

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"slices"
)

// structuralTries bounds the places CorruptStructural tries before it
// keeps a region whose edit changed little (a uniform patch turned round
// looks the same).
const structuralTries = 8

// CorruptStructural returns a copy of img with one synthetic defect of
// structure rather than colour, and its mask: the pixels the edit changed
// by more than 24 of 255 in some channel. Every pixel keeps colours that
// occur in the image; what is wrong is where they are, as with a part
// missing, turned or out of place. The defect is drawn among three kinds:
//   - a square of 3 - 10 % of the image turned in place by 90, 180 or 270
//     degrees;
//   - a rectangle of 3 - 10 % of the image mirrored left to right or top
//     to bottom;
//   - two rectangles of 2 - 5 % of the image each exchanged.
//
// A region whose edit changes under a fifth of its pixels is tried again
// elsewhere, up to structuralTries places. Regions keep 4 pixels from the
// borders. Corrupt draws photometric defects (colour, brightness).
func CorruptStructural(img image.Image, rng *rand.Rand) (*image.RGBA, *image.Gray) {
	return regionEdit(img, rng,
		func(out, src *image.RGBA, rng *rand.Rand) image.Rectangle {
			return turn(out, src, rng, 0.03+0.07*rng.Float64())
		},
		mirror, exchange)
}

// CorruptLogical returns a copy of img with one synthetic logical defect
// and its mask, drawn among two kinds that change what is where on a
// large scale, as a part missing or put in wrong:
//   - a rectangle of 10 - 30 % of the image filled with the colour of the
//     image's border (the background, where a part is), with a little
//     noise: a part missing;
//   - a square of 10 - 25 % of the image turned by a quarter, half or
//     three quarters: a part turned.
//
// The mask and the retries follow CorruptStructural.
func CorruptLogical(img image.Image, rng *rand.Rand) (*image.RGBA, *image.Gray) {
	return regionEdit(img, rng, missing, func(out, src *image.RGBA, rng *rand.Rand) image.Rectangle {
		return turn(out, src, rng, 0.1+0.15*rng.Float64())
	})
}

// An edit changes a region of src into out (a copy of src) and returns the
// region.
type edit func(out, src *image.RGBA, rng *rand.Rand) image.Rectangle

// regionEdit copies img, draws one of edits, and applies it; a region whose
// edit changes under a fifth of its pixels is tried again elsewhere, up to
// structuralTries places. The mask holds the pixels changed by more than
// 24 of 255 in some channel.
func regionEdit(img image.Image, rng *rand.Rand, edits ...edit) (*image.RGBA, *image.Gray) {
	b := img.Bounds()
	src := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(src, src.Bounds(), img, b.Min, draw.Src)
	w, h := b.Dx(), b.Dy()
	if w < 16 || h < 16 {
		return src, image.NewGray(src.Bounds())
	}
	do := edits[rng.IntN(len(edits))]
	var out *image.RGBA
	var mask *image.Gray
	for range structuralTries {
		out = image.NewRGBA(src.Rect)
		copy(out.Pix, src.Pix)
		region := do(out, src, rng)
		var changed int
		mask, changed = changedMask(out, src)
		if changed*5 >= region.Dx()*region.Dy() {
			break
		}
	}
	return out, mask
}

// missing fills a rectangle of 10 - 30 % of the image with the median
// colour of the image's 4-pixel border, plus or minus 6 levels of noise.
func missing(out, src *image.RGBA, rng *rand.Rand) image.Rectangle {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	r := rect(rng, w, h, 0.1+0.2*rng.Float64(), false)
	var ch [3][]uint8
	for y := range h {
		for x := range w {
			if x < 4 || y < 4 || x >= w-4 || y >= h-4 {
				c := src.RGBAAt(x, y)
				ch[0], ch[1], ch[2] = append(ch[0], c.R), append(ch[1], c.G), append(ch[2], c.B)
			}
		}
	}
	var bg [3]int
	for i := range ch {
		slices.Sort(ch[i])
		bg[i] = int(ch[i][len(ch[i])/2])
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			var c [3]uint8
			for i := range c {
				c[i] = uint8(max(0, min(255, bg[i]+rng.IntN(13)-6)))
			}
			out.SetRGBA(x, y, color.RGBA{c[0], c[1], c[2], 255})
		}
	}
	return r
}

// rect draws a w x h rectangle's size for a share of the image's area
// (aspect ratio within 1:2 and 2:1, or square) and a place for it 4
// pixels from the borders.
func rect(rng *rand.Rand, w, h int, share float64, square bool) image.Rectangle {
	area := share * float64(w*h)
	aspect := 1.0
	if !square {
		aspect = math.Exp((rng.Float64()*2 - 1) * math.Log(2))
	}
	rw := max(2, min(w-8, int(math.Sqrt(area*aspect))))
	rh := max(2, min(h-8, int(math.Sqrt(area/aspect))))
	if square {
		rw, rh = min(rw, rh), min(rw, rh)
	}
	x, y := 4+rng.IntN(w-8-rw+1), 4+rng.IntN(h-8-rh+1)
	return image.Rect(x, y, x+rw, y+rh)
}

// turn turns a square of src covering share of the image by a quarter,
// half or three quarters into out.
func turn(out, src *image.RGBA, rng *rand.Rand, share float64) image.Rectangle {
	r := rect(rng, src.Rect.Dx(), src.Rect.Dy(), share, true)
	quarters := 1 + rng.IntN(3)
	s := r.Dx()
	for y := range s {
		for x := range s {
			sx, sy := x, y
			for range quarters { // (x, y) <- (y, s-1-x), a quarter turn
				sx, sy = sy, s-1-sx
			}
			out.SetRGBA(r.Min.X+x, r.Min.Y+y, src.RGBAAt(r.Min.X+sx, r.Min.Y+sy))
		}
	}
	return r
}

// mirror flips a rectangle of src left to right or top to bottom into out.
func mirror(out, src *image.RGBA, rng *rand.Rand) image.Rectangle {
	r := rect(rng, src.Rect.Dx(), src.Rect.Dy(), 0.03+0.07*rng.Float64(), false)
	across := rng.IntN(2) == 0
	for y := range r.Dy() {
		for x := range r.Dx() {
			sx, sy := r.Dx()-1-x, y
			if across {
				sx, sy = x, r.Dy()-1-y
			}
			out.SetRGBA(r.Min.X+x, r.Min.Y+y, src.RGBAAt(r.Min.X+sx, r.Min.Y+sy))
		}
	}
	return r
}

// exchange swaps two rectangles of the same size of src into out (they may
// overlap; each takes the other's pixels from src). It returns the first.
func exchange(out, src *image.RGBA, rng *rand.Rand) image.Rectangle {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	a := rect(rng, w, h, 0.02+0.03*rng.Float64(), false)
	bx, by := 4+rng.IntN(w-8-a.Dx()+1), 4+rng.IntN(h-8-a.Dy()+1)
	bb := image.Rect(bx, by, bx+a.Dx(), by+a.Dy())
	for y := range a.Dy() {
		for x := range a.Dx() {
			out.SetRGBA(a.Min.X+x, a.Min.Y+y, src.RGBAAt(bb.Min.X+x, bb.Min.Y+y))
		}
	}
	for y := range a.Dy() {
		for x := range a.Dx() {
			out.SetRGBA(bb.Min.X+x, bb.Min.Y+y, src.RGBAAt(a.Min.X+x, a.Min.Y+y))
		}
	}
	return a
}

// changedMask marks the pixels of out that differ from src by more than
// 24 in some channel, and counts them.
func changedMask(out, src *image.RGBA) (*image.Gray, int) {
	mask := image.NewGray(out.Rect)
	n := 0
	for y := range out.Rect.Dy() {
		for x := range out.Rect.Dx() {
			a, b := out.RGBAAt(x, y), src.RGBAAt(x, y)
			d := max(absDiff(a.R, b.R), absDiff(a.G, b.G), absDiff(a.B, b.B))
			if d > 24 {
				mask.SetGray(x, y, color.Gray{255})
				n++
			}
		}
	}
	return mask, n
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}
