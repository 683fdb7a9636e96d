package dataset

import (
	"fmt"
	"image"
	"image/color"

	"golang.org/x/image/draw"
)

// Preprocess is METHOD.md's preprocessing (section 2): resize to Resize x
// Resize, aspect ratio not kept, then take the centred Crop x Crop square.
// Images are resized bilinearly; masks with nearest neighbour, then
// cropped identically (section 6), so that a mask pixel stays on the image
// pixel it marks. The zero value means DefaultPreprocess; otherwise
// 1 <= Crop <= Resize must hold, and the methods panic if it does not.
//
// With Width and Height set (both, at least 1) the whole image is resized
// to Width x Height and nothing is cut: the full frame (see Frame, which
// keeps an image's aspect ratio); Resize and Crop are then unused. With
// Native set an image keeps its own size (the tiled input cuts it later).
//
// With Turn as well (full frames only), an image that lies the other way
// from the frame, wide in a tall frame or tall in a wide one, is resized
// to the frame turned a quarter turn, Height x Width, and so is its mask
// (Turns): the image stays upright, and is stretched by no more than its
// own elongation differs from the frame's. The model turns its feature
// maps into the frame's layout, and its anomaly map back.
type Preprocess struct {
	Resize, Crop  int
	Width, Height int
	Native        bool
	Turn          bool
}

// Turns reports whether p resizes an image of w x h pixels to its frame
// turned a quarter turn (Height x Width): with Turn, in a full frame that
// is not square, when the image lies the other way.
func (p Preprocess) Turns(w, h int) bool {
	return p.Turn && p.full() && !p.Native && w != h && p.Width != p.Height && (w > h) != (p.Width > p.Height)
}

// SizeOf returns the width and height of what p makes of an image of w x h
// pixels: Size, or in a turned frame (Turns) Height x Width.
func (p Preprocess) SizeOf(w, h int) (int, int) {
	if p.Turns(w, h) {
		q := p.resolved()
		return q.Height, q.Width
	}
	return p.Size()
}

// Size returns the width and height of what p makes of an image (0, 0
// with Native: each keeps its own).
func (p Preprocess) Size() (w, h int) {
	if p.Native {
		return 0, 0
	}
	p = p.resolved()
	if p.full() {
		return p.Width, p.Height
	}
	return p.Crop, p.Crop
}

// full reports whether p resizes to a full frame.
func (p Preprocess) full() bool { return p.Width > 0 || p.Height > 0 }

// FrameAlign is the multiple that Frame rounds a frame's sides to: the
// backbone's coarsest tapped stride, so that every stage's map covers the
// frame without a padded border.
const FrameAlign = 16

// Frame returns the full frame for images of w x h pixels: the shorter
// side scaled to side, unless the longer side would then pass maxSide, in
// which case the longer side is scaled to maxSide; the aspect ratio is
// kept, and both sides are rounded to the nearest multiple of FrameAlign
// (at least FrameAlign). maxSide below side is taken as side.
func Frame(w, h, side, maxSide int) (fw, fh int) {
	if w < 1 || h < 1 || side < 1 {
		panic(fmt.Sprintf("anomnet/dataset: frame of a %dx%d image at side %d", w, h, side))
	}
	maxSide = max(maxSide, side)
	scale := float64(side) / float64(min(w, h))
	if long := float64(max(w, h)) * scale; long > float64(maxSide) {
		scale = float64(maxSide) / float64(max(w, h))
	}
	round := func(v int) int {
		return max(FrameAlign, int(float64(v)*scale/FrameAlign+0.5)*FrameAlign)
	}
	return round(w), round(h)
}

// DefaultPreprocess is METHOD.md's default: resize to 256, crop 224.
var DefaultPreprocess = Preprocess{Resize: 256, Crop: 224}

// resolved returns p with the zero value replaced by DefaultPreprocess,
// panicking on sizes that no caller can mean.
func (p Preprocess) resolved() Preprocess {
	if p.Native {
		return p
	}
	if p.full() {
		if p.Width < 1 || p.Height < 1 {
			panic(fmt.Sprintf("anomnet/dataset: preprocessing to a %dx%d frame", p.Width, p.Height))
		}
		return p
	}
	if p == (Preprocess{}) {
		p = DefaultPreprocess
	}
	if p.Crop < 1 || p.Crop > p.Resize {
		panic(fmt.Sprintf("anomnet/dataset: preprocessing crops %d of a %d image", p.Crop, p.Resize))
	}
	return p
}

// Image resizes and crops img (any image type: gray, RGB, RGBA, 8 or
// 16 bits per channel) to a Crop x Crop opaque RGBA image, or resizes it
// to the Width x Height frame. Gray images come out with three equal
// channels; transparent pixels come out composited over black (the
// premultiplied colour with alpha 255).
func (p Preprocess) Image(img image.Image) *image.RGBA {
	p = p.resolved()
	var out *image.RGBA
	if p.Native {
		b := img.Bounds()
		out = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	} else if p.full() {
		b := img.Bounds()
		w, h := p.SizeOf(b.Dx(), b.Dy())
		out = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.BiLinear.Scale(out, out.Bounds(), img, b, draw.Src, nil)
	} else {
		out = ResizeCrop(img, p.Resize, p.Crop)
	}
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 0xff
	}
	return out
}

// Mask resizes m to Resize x Resize with nearest neighbour, crops it like
// Image and returns Crop x Crop labels (or resizes it to the Width x Height
// frame, or the turned one as Image does, and returns those), row-major:
// true where the pixel's
// gray level (0..255; 16-bit masks by their high byte) exceeds
// threshold.
//
// Nearest neighbour here takes, for output column x, source column
// floor((x+0.5)*W/Resize): pixel centres aligned, as in Pillow's NEAREST,
// torchvision's "nearest-exact" and golang.org/x/image/draw's
// NearestNeighbor, and consistent with the centre-aligned bilinear resize
// of Image. (PyTorch's legacy "nearest", floor(x*W/Resize), shifts the
// mask by up to half a source pixel.)
func (p Preprocess) Mask(m image.Image, threshold uint8) []bool {
	p = p.resolved()
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 1 || h < 1 {
		panic(fmt.Sprintf("anomnet/dataset: empty %dx%d mask", w, h))
	}
	var sx, sy []int
	if p.Native {
		sx, sy = nearestIndex(w, w, 0, w), nearestIndex(h, h, 0, h)
	} else if p.full() {
		fw, fh := p.SizeOf(w, h)
		sx, sy = nearestIndex(w, fw, 0, fw), nearestIndex(h, fh, 0, fh)
	} else {
		off := (p.Resize - p.Crop) / 2
		sx, sy = nearestIndex(w, p.Resize, off, p.Crop), nearestIndex(h, p.Resize, off, p.Crop)
	}
	ow := len(sx)
	out := make([]bool, ow*len(sy))
	if g, ok := m.(*image.Gray); ok {
		for y, srcY := range sy {
			row := g.Pix[srcY*g.Stride:]
			for x, srcX := range sx {
				out[y*ow+x] = row[srcX] > threshold
			}
		}
		return out
	}
	for y, srcY := range sy {
		for x, srcX := range sx {
			v := color.GrayModel.Convert(m.At(b.Min.X+srcX, b.Min.Y+srcY)).(color.Gray).Y
			out[y*ow+x] = v > threshold
		}
	}
	return out
}

// nearestIndex returns, for the n output positions off..off+n-1 of a
// src-long axis resized to dst, the source positions (0-based) that
// nearest neighbour takes: floor((2i+1)*src / (2*dst)).
func nearestIndex(src, dst, off, n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = (2*(i+off) + 1) * src / (2 * dst)
	}
	return idx
}

// Tiles returns the size x size tiles that cover a w x h image, row by
// row: along each axis as few as keep neighbours overlapping by at least
// the share overlap of a tile (0 to under 1), spread evenly from one edge
// to the other, the last flush with the far edge. An axis shorter than
// size gets one tile at 0 that runs past it (the caller enlarges such
// images first). It panics on a size below 1.
func Tiles(w, h, size int, overlap float64) []image.Rectangle {
	if size < 1 || !(overlap >= 0 && overlap < 1) {
		panic(fmt.Sprintf("anomnet/dataset: tiles of %d with overlap %g", size, overlap))
	}
	xs, ys := tileStarts(w, size, overlap), tileStarts(h, size, overlap)
	out := make([]image.Rectangle, 0, len(xs)*len(ys))
	for _, y := range ys {
		for _, x := range xs {
			out = append(out, image.Rect(x, y, x+size, y+size))
		}
	}
	return out
}

// tileStarts spreads the starts of tiles along an n-long axis.
func tileStarts(n, size int, overlap float64) []int {
	if n <= size {
		return []int{0}
	}
	step := max(1, int(float64(size)*(1-overlap)))
	k := (n-size+step-1)/step + 1 // tiles, the gaps at most step
	starts := make([]int, k)
	for i := range starts {
		starts[i] = int(float64(i)*float64(n-size)/float64(k-1) + 0.5)
	}
	return starts
}
