package dataset

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoders for Open
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	_ "golang.org/x/image/bmp" // KolektorSDD-style and other BMP files
	"golang.org/x/image/draw"
	_ "golang.org/x/image/tiff"
)

// DefaultMaxPixels is the decoding cap that Open applies: 64 Mi pixels,
// 256 MiB as 8-bit RGBA, far above any inspection image but far below
// what a crafted "decompression bomb" header can claim.
const DefaultMaxPixels = 1 << 26

// imageExts are the file extensions the folder readers take for images
// (compared case-insensitively); the decoders registered above read them.
var imageExts = []string{".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}

// isImageName reports whether a file name has a supported image extension
// and is not hidden.
func isImageName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range imageExts {
		if ext == e {
			return true
		}
	}
	return false
}

// Open decodes an image file (PNG, JPEG, BMP or TIFF), naming the file in
// any error. It refuses images of more than DefaultMaxPixels pixels,
// judged from the header before any pixel is decoded.
func Open(path string) (image.Image, error) {
	return OpenLimit(path, DefaultMaxPixels)
}

// OpenLimit is Open with a cap of maxPixels (width times height) on the
// decoded size; maxPixels <= 0 means DefaultMaxPixels.
func OpenLimit(path string, maxPixels int) (image.Image, error) {
	h, err := openHeader(path, maxPixels)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.decode()
}

// CheckHeader reads the header of an image file and returns its size, or
// the error Open would give for an unreadable header or an image over the
// pixel cap (maxPixels <= 0 means DefaultMaxPixels), without decoding a
// pixel: a cheap check of many files before slow work starts.
func CheckHeader(path string, maxPixels int) (width, height int, err error) {
	h, err := openHeader(path, maxPixels)
	if err != nil {
		return 0, 0, err
	}
	h.Close()
	return h.cfg.Width, h.cfg.Height, nil
}

// header is an opened image file whose header has been read and checked.
type header struct {
	path string
	f    *os.File
	cfg  image.Config
}

// openHeader opens path and checks its header against the pixel cap,
// leaving the file ready for decode.
func openHeader(path string, maxPixels int) (*header, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}
	cfg, format, err := image.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("anomnet/dataset: %s: unreadable image header: %v", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 {
		f.Close()
		return nil, fmt.Errorf("anomnet/dataset: %s: empty image (%dx%d)", path, cfg.Width, cfg.Height)
	}
	// Compare in int64 terms so that two large sides cannot overflow.
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		f.Close()
		return nil, fmt.Errorf("anomnet/dataset: %s: %s image of %dx%d pixels exceeds the decoding cap of %d pixels",
			path, format, cfg.Width, cfg.Height, maxPixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}
	return &header{path: path, f: f, cfg: cfg}, nil
}

// Close closes the file; it may be called more than once.
func (h *header) Close() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// decodedBytes estimates the memory of the decoded image.
func (h *header) decodedBytes() int64 {
	return int64(h.cfg.Width) * int64(h.cfg.Height) * int64(bytesPerPixel(h.cfg))
}

// bytesPerPixel is the storage of one pixel in the image type that the
// standard decoders return for the header's colour model.
func bytesPerPixel(cfg image.Config) int {
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	return 4
}

// decode reads the pixels and closes the file. A decoder that panics on
// malformed data yields an error naming the file, not a crash.
func (h *header) decode() (img image.Image, err error) {
	defer h.Close()
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("anomnet/dataset: %s: cannot decode the image: decoder panic: %v", h.path, r)
		}
	}()
	img, _, err = image.Decode(bufio.NewReader(h.f))
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %s: unreadable or truncated image: %v", h.path, err)
	}
	if b := img.Bounds(); b.Dx() != h.cfg.Width || b.Dy() != h.cfg.Height {
		return nil, fmt.Errorf("anomnet/dataset: %s: decoded %dx%d pixels, the header says %dx%d",
			h.path, b.Dx(), b.Dy(), h.cfg.Width, h.cfg.Height)
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
