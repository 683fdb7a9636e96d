package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// fixtureWrite encodes img into path by its extension, creating folders.
func fixtureWrite(t testing.TB, path string, img image.Image) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var b bytes.Buffer
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		require.NoError(t, png.Encode(&b, img))
	case ".jpg", ".jpeg":
		require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}))
	case ".bmp":
		require.NoError(t, bmp.Encode(&b, img))
	case ".tif", ".tiff":
		require.NoError(t, tiff.Encode(&b, img, nil))
	default:
		t.Fatalf("fixtureWrite: no encoder for %s", path)
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// fixtureTouch writes a small non-image file.
func fixtureTouch(t testing.TB, path, text string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}

// fixtureGray is a w x h gray image with a gradient, so that decoding
// errors show.
func fixtureGray(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 7)
	}
	return g
}

// fixtureMask is a w x h 0/255 mask marking the given rectangle.
func fixtureMask(w, h int, r image.Rectangle) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			m.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	return m
}

// fixtureCategory writes an MVTec AD category under root: train good
// images, test good images and, per defect, images with masks. Images
// are 32x24 gray PNGs.
func fixtureCategory(t testing.TB, root, name string, train, good int, defects map[string]int) string {
	t.Helper()
	dir := filepath.Join(root, name)
	for i := range train {
		fixtureWrite(t, filepath.Join(dir, "train", "good", fixtureStem(i)+".png"), fixtureGray(32, 24))
	}
	for i := range good {
		fixtureWrite(t, filepath.Join(dir, "test", "good", fixtureStem(i)+".png"), fixtureGray(32, 24))
	}
	for d, n := range defects {
		for i := range n {
			fixtureWrite(t, filepath.Join(dir, "test", d, fixtureStem(i)+".png"), fixtureGray(32, 24))
			fixtureWrite(t, filepath.Join(dir, "ground_truth", d, fixtureStem(i)+"_mask.png"),
				fixtureMask(32, 24, image.Rect(4, 4, 12, 10)))
		}
	}
	return dir
}

func fixtureStem(i int) string { return fmt.Sprintf("%03d", i) }
