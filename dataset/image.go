package dataset

import (
	"fmt"
	"image"
	_ "image/jpeg" // decoders for Open
	_ "image/png"
	"os"

	_ "golang.org/x/image/bmp" // KolektorSDD-style and other BMP files
	"golang.org/x/image/draw"
	_ "golang.org/x/image/tiff"
)

// Open decodes an image file (PNG, JPEG, BMP or TIFF), naming the file in
// any error.
func Open(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %s: cannot decode the image: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 1 || b.Dy() < 1 {
		return nil, fmt.Errorf("anomnet/dataset: %s: empty image (%dx%d)", path, b.Dx(), b.Dy())
	}
	return img, nil
}

// ResizeCrop resizes img to resize x resize (bilinear, antialiased when
// shrinking, aspect ratio not kept) and returns the centred crop x crop
// square as RGBA: METHOD.md's preprocessing (256 then 224 by default).
// Grayscale images come out with three equal channels.
func ResizeCrop(img image.Image, resize, crop int) *image.RGBA {
	if crop > resize || crop < 1 {
		panic(fmt.Sprintf("anomnet/dataset: crop %d of a %d image", crop, resize))
	}
	full := image.NewRGBA(image.Rect(0, 0, resize, resize))
	draw.BiLinear.Scale(full, full.Bounds(), img, img.Bounds(), draw.Src, nil)
	off := (resize - crop) / 2
	out := image.NewRGBA(image.Rect(0, 0, crop, crop))
	draw.Copy(out, image.Point{}, full, image.Rect(off, off, off+crop, off+crop), draw.Src, nil)
	return out
}
