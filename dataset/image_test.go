package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/testutil"
)

func TestOpenTruncatedPNG(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, fixtureGray(64, 64)))
	for _, keep := range []int{b.Len() / 2, 40, 10} { // cut in the data, in the header, in the signature
		path := filepath.Join(dir, "cut.png")
		require.NoError(t, os.WriteFile(path, b.Bytes()[:keep], 0o644))
		_, err := Open(path)
		require.Error(t, err, "kept %d bytes", keep)
		assert.Contains(t, err.Error(), "anomnet/dataset: "+path+": ")
		assert.Regexp(t, "unreadable (or truncated )?image", err.Error())
	}
	_, err := Open(filepath.Join(dir, "absent.png"))
	require.ErrorContains(t, err, filepath.Join(dir, "absent.png"))
}

func TestOpenDecompressionBomb(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bomb.png")
	require.NoError(t, os.WriteFile(path, testutil.PNGHeader(100000, 100000), 0o644))
	_, err := Open(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "100000x100000")
	assert.Contains(t, err.Error(), "exceeds the decoding cap")

	// A lower cap refuses an ordinary image the same way.
	small := filepath.Join(t.TempDir(), "small.png")
	fixtureWrite(t, small, fixtureGray(40, 30))
	_, err = OpenLimit(small, 40*30-1)
	require.ErrorContains(t, err, "40x30")
	_, err = OpenLimit(small, 40*30)
	require.NoError(t, err)
}

// TestOpenFormats decodes each supported format and pixel type and
// checks that preprocessing sees the same colours.
func TestOpenFormats(t *testing.T) {
	dir := t.TempDir()
	const w, h = 16, 12
	fill := func(img interface{ Set(x, y int, c color.Color) }, c color.Color) {
		for y := range h {
			for x := range w {
				img.Set(x, y, c)
			}
		}
	}
	gray := image.NewGray(image.Rect(0, 0, w, h))
	fill(gray, color.Gray{Y: 200})
	gray16 := image.NewGray16(image.Rect(0, 0, w, h))
	fill(gray16, color.Gray16{Y: 0x8080})
	rgb := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(rgb, color.RGBA{R: 250, G: 120, B: 10, A: 255})
	rgba64 := image.NewRGBA64(image.Rect(0, 0, w, h))
	fill(rgba64, color.RGBA64{R: 0xffff, G: 0x8000, B: 0x0100, A: 0xffff})
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h)) // half transparent: composited over black
	fill(nrgba, color.NRGBA{R: 200, G: 100, B: 50, A: 128})
	nrgba64 := image.NewNRGBA64(image.Rect(0, 0, w, h))
	fill(nrgba64, color.NRGBA64{R: 0x4000, G: 0xc000, B: 0xffff, A: 0xffff})

	cases := []struct {
		file    string
		img     image.Image
		want    [3]uint8
		lossy   bool
		typeOut string // the decoded type, to be sure the 16-bit path is taken
	}{
		{"gray.png", gray, [3]uint8{200, 200, 200}, false, "*image.Gray"},
		{"gray16.png", gray16, [3]uint8{0x80, 0x80, 0x80}, false, "*image.Gray16"},
		{"rgb.png", rgb, [3]uint8{250, 120, 10}, false, "*image.RGBA"},
		{"rgba64.png", rgba64, [3]uint8{0xff, 0x80, 0x01}, false, "*image.RGBA64"},
		{"nrgba.png", nrgba, [3]uint8{100, 50, 25}, false, "*image.NRGBA"},
		{"nrgba64.png", nrgba64, [3]uint8{0x40, 0xc0, 0xff}, false, "*image.RGBA64"},
		{"rgb.jpg", rgb, [3]uint8{250, 120, 10}, true, "*image.YCbCr"},
		{"gray.JPEG", gray, [3]uint8{200, 200, 200}, true, "*image.Gray"},
		{"rgb.bmp", rgb, [3]uint8{250, 120, 10}, false, "*image.RGBA"},
		{"gray.bmp", gray, [3]uint8{200, 200, 200}, false, "*image.Paletted"},
		{"rgb.tif", rgb, [3]uint8{250, 120, 10}, false, "*image.RGBA"},
		{"gray16.tiff", gray16, [3]uint8{0x80, 0x80, 0x80}, false, "*image.Gray16"},
	}
	pre := Preprocess{Resize: 8, Crop: 6}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			fixtureWrite(t, path, tc.img)
			img, err := Open(path)
			require.NoError(t, err)
			assert.Equal(t, tc.typeOut, fmt.Sprintf("%T", img))
			assert.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
			out := pre.Image(img)
			require.Equal(t, image.Rect(0, 0, 6, 6), out.Bounds())
			for i := 0; i < len(out.Pix); i += 4 {
				for c := range 3 {
					d := int(out.Pix[i+c]) - int(tc.want[c])
					if tc.lossy {
						assert.LessOrEqual(t, d*d, 4, "channel %d", c)
					} else {
						assert.Zero(t, d, "channel %d at %d", c, i/4)
					}
				}
				assert.Equal(t, uint8(255), out.Pix[i+3])
			}
		})
	}
}

func TestCheckHeader(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.png")
	fixtureWrite(t, small, fixtureGray(40, 30))
	w, h, err := CheckHeader(small, 0)
	require.NoError(t, err)
	require.Equal(t, [2]int{40, 30}, [2]int{w, h})
	_, _, err = CheckHeader(small, 40*30-1)
	require.ErrorContains(t, err, small+": png image of 40x30 pixels exceeds the decoding cap of 1199 pixels")
	bomb := filepath.Join(dir, "bomb.png")
	require.NoError(t, os.WriteFile(bomb, testutil.PNGHeader(20000, 20000), 0o644))
	_, _, err = CheckHeader(bomb, 0)
	require.ErrorContains(t, err, bomb+": png image of 20000x20000 pixels exceeds the decoding cap of 67108864 pixels")
	bad := filepath.Join(dir, "bad.png")
	require.NoError(t, os.WriteFile(bad, []byte("no image"), 0o644))
	_, _, err = CheckHeader(bad, 0)
	require.ErrorContains(t, err, bad+": unreadable image header")
}
