package dataset

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/draw"
)

// TestMaskNearestCrop works one case by hand: an 8x8 mask resized to 4
// and cropped to 2 keeps the source pixels 3 and 5 of each axis
// (resized positions 1 and 2, floor((2i+1)*8/8)).
func TestMaskNearestCrop(t *testing.T) {
	pre := Preprocess{Resize: 4, Crop: 2}
	for sy := range 8 {
		for sx := range 8 {
			m := image.NewGray(image.Rect(0, 0, 8, 8))
			m.SetGray(sx, sy, color.Gray{Y: 255})
			want := make([]bool, 4)
			kept := map[int]int{3: 0, 5: 1}
			if x, ok := kept[sx]; ok {
				if y, ok := kept[sy]; ok {
					want[y*2+x] = true
				}
			}
			assert.Equal(t, want, pre.Mask(m, MVTecMaskThreshold), "marked (%d,%d)", sx, sy)
		}
	}
}

// TestMaskMatchesNearestNeighbor compares Mask with x/image's
// NearestNeighbor resize followed by the crop, on random masks that are
// shrunk, enlarged and not square, and not anchored at the origin.
func TestMaskMatchesNearestNeighbor(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ w, h, resize, crop int }{
		{8, 8, 4, 2}, {37, 23, 16, 12}, {10, 30, 64, 50}, {300, 200, 256, 224}, {5, 5, 5, 5},
	} {
		m := image.NewGray(image.Rect(3, 7, 3+tc.w, 7+tc.h))
		for i := range m.Pix {
			m.Pix[i] = uint8(r.IntN(256))
		}
		full := image.NewGray(image.Rect(0, 0, tc.resize, tc.resize))
		draw.NearestNeighbor.Scale(full, full.Bounds(), m, m.Bounds(), draw.Src, nil)
		off := (tc.resize - tc.crop) / 2
		want := make([]bool, tc.crop*tc.crop)
		for y := range tc.crop {
			for x := range tc.crop {
				want[y*tc.crop+x] = full.GrayAt(x+off, y+off).Y > 127
			}
		}
		pre := Preprocess{Resize: tc.resize, Crop: tc.crop}
		assert.Equal(t, want, pre.Mask(m, 127), "%+v", tc)
		// The generic path (any image type) agrees with the *image.Gray one.
		assert.Equal(t, want, pre.Mask(grayOnly{m}, 127), "%+v generic", tc)
	}
}

// grayOnly hides the concrete type so Mask takes its generic path.
type grayOnly struct{ *image.Gray }

// TestMaskThresholdAndDepth checks the threshold on 8- and 16-bit and
// colour masks: a 16-bit level counts by its high byte.
func TestMaskThresholdAndDepth(t *testing.T) {
	pre := Preprocess{Resize: 2, Crop: 2}
	g16 := image.NewGray16(image.Rect(0, 0, 2, 1))
	g16.SetGray16(0, 0, color.Gray16{Y: 0x7fff})
	g16.SetGray16(1, 0, color.Gray16{Y: 0x8000})
	assert.Equal(t, []bool{false, true, false, true}, pre.Mask(g16, 127))
	assert.Equal(t, []bool{true, true, true, true}, pre.Mask(g16, 0))

	rgba := image.NewRGBA(image.Rect(0, 0, 2, 2))
	rgba.Set(1, 1, color.RGBA{255, 255, 255, 255})
	rgba.Set(0, 1, color.RGBA{1, 1, 1, 255})
	assert.Equal(t, []bool{false, false, false, true}, pre.Mask(rgba, 127))
	assert.Equal(t, []bool{false, false, true, true}, pre.Mask(rgba, 0))
}

// TestImageMaskAlign preprocesses an image with a bright square and its
// mask and checks that the square stays under the mask: the centroid of
// the brightness and of the mask agree within a fraction of a pixel.
func TestImageMaskAlign(t *testing.T) {
	const w, h = 96, 64
	sq := image.Rect(61, 13, 73, 25)
	img := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(img, sq, image.NewUniform(color.Gray{Y: 255}), image.Point{}, draw.Src)
	mask := fixtureMask(w, h, sq)
	for _, pre := range []Preprocess{{Resize: 64, Crop: 48}, {Resize: 256, Crop: 224}, {Resize: 40, Crop: 40}} {
		out := pre.Image(img)
		lab := pre.Mask(mask, MVTecMaskThreshold)
		var ix, iy, iw, mx, my, mw float64
		for y := range pre.Crop {
			for x := range pre.Crop {
				v := float64(out.Pix[out.PixOffset(x, y)])
				ix, iy, iw = ix+v*float64(x), iy+v*float64(y), iw+v
				if lab[y*pre.Crop+x] {
					mx, my, mw = mx+float64(x), my+float64(y), mw+1
					assert.Greater(t, v, 60.0, "%+v: masked pixel (%d,%d) is dark", pre, x, y) // corners blend 2x2 source pixels
				}
			}
		}
		require.NotZero(t, mw, "%+v", pre)
		assert.InDelta(t, ix/iw, mx/mw, 0.5, "%+v x", pre)
		assert.InDelta(t, iy/iw, my/mw, 0.5, "%+v y", pre)
	}
}

func TestPreprocessSizes(t *testing.T) {
	img := fixtureGray(30, 20)
	assert.Equal(t, image.Rect(0, 0, 224, 224), Preprocess{}.Image(img).Bounds())
	assert.Len(t, Preprocess{}.Mask(img, 127), 224*224)
	assert.Panics(t, func() { Preprocess{Resize: 10, Crop: 11}.Image(img) })
	assert.Panics(t, func() { Preprocess{Resize: 10}.Mask(img, 127) })
}
