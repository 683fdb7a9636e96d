package dataset

import (
	"fmt"
	"image"
	"image/color"
)

// Preprocess is METHOD.md's preprocessing (section 2): resize to Resize x
// Resize, aspect ratio not kept, then take the centred Crop x Crop square.
// Images are resized bilinearly; masks with nearest neighbour, then
// cropped identically (section 6), so that a mask pixel stays on the image
// pixel it marks. The zero value means DefaultPreprocess; otherwise
// 1 <= Crop <= Resize must hold, and the methods panic if it does not.
type Preprocess struct {
	Resize, Crop int
}

// DefaultPreprocess is METHOD.md's default: resize to 256, crop 224.
var DefaultPreprocess = Preprocess{Resize: 256, Crop: 224}

// resolved returns p with the zero value replaced by DefaultPreprocess,
// panicking on sizes that no caller can mean.
func (p Preprocess) resolved() Preprocess {
	if p == (Preprocess{}) {
		p = DefaultPreprocess
	}
	if p.Crop < 1 || p.Crop > p.Resize {
		panic(fmt.Sprintf("anomnet/dataset: preprocessing crops %d of a %d image", p.Crop, p.Resize))
	}
	return p
}

// Image resizes and crops img (any image type: gray, RGB, RGBA, 8 or
// 16 bits per channel) to a Crop x Crop opaque RGBA image. Gray images
// come out with three equal channels; transparent pixels come out
// composited over black (the premultiplied colour with alpha 255).
func (p Preprocess) Image(img image.Image) *image.RGBA {
	p = p.resolved()
	out := ResizeCrop(img, p.Resize, p.Crop)
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 0xff
	}
	return out
}

// Mask resizes m to Resize x Resize with nearest neighbour, crops it like
// Image and returns Crop x Crop labels, row-major: true where the pixel's
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
	off := (p.Resize - p.Crop) / 2
	sx := nearestIndex(w, p.Resize, off, p.Crop)
	sy := nearestIndex(h, p.Resize, off, p.Crop)
	out := make([]bool, p.Crop*p.Crop)
	if g, ok := m.(*image.Gray); ok {
		for y, srcY := range sy {
			row := g.Pix[srcY*g.Stride:]
			for x, srcX := range sx {
				out[y*p.Crop+x] = row[srcX] > threshold
			}
		}
		return out
	}
	for y, srcY := range sy {
		for x, srcX := range sx {
			v := color.GrayModel.Convert(m.At(b.Min.X+srcX, b.Min.Y+srcY)).(color.Gray).Y
			out[y*p.Crop+x] = v > threshold
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
