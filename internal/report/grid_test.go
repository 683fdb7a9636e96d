package report

import (
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"
)

func tile(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

var white = color.RGBA{255, 255, 255, 255}

// requireTile checks that the w x h tile at (x, y) is all c and that the
// pixels just left of and above it are background.
func requireTile(t *testing.T, img *image.RGBA, x, y, w, h int, c color.RGBA) {
	t.Helper()
	for _, p := range [][2]int{{x, y}, {x + w - 1, y}, {x, y + h - 1}, {x + w - 1, y + h - 1}, {x + w/2, y + h/2}} {
		require.Equal(t, c, img.RGBAAt(p[0], p[1]), "tile at %d,%d: pixel %v", x, y, p)
	}
	require.Equal(t, white, img.RGBAAt(x-1, y+h/2), "left of tile at %d,%d", x, y)
	require.Equal(t, white, img.RGBAAt(x+w, y+h/2), "right of tile at %d,%d", x, y)
	require.Equal(t, white, img.RGBAAt(x+w/2, y+h), "below tile at %d,%d", x, y)
}

func TestGridLayout(t *testing.T) {
	const w, h = 10, 8
	cols := []color.RGBA{{200, 0, 0, 255}, {0, 200, 0, 255}, {0, 0, 200, 255}, {50, 50, 50, 255}, {90, 0, 90, 255}}
	rows := [][]image.Image{
		{tile(w, h, cols[0]), tile(w, h, cols[1]), tile(w, h, cols[2])},
		{tile(w, h, cols[3]), nil, tile(w, h, cols[4])},
		{tile(w, h, cols[0])}, // ragged
	}
	img := Grid(rows, nil, nil)
	require.Equal(t, image.Rect(0, 0, 4+3*(w+4), 4+3*(h+4)), img.Bounds())
	requireTile(t, img, 4, 4, w, h, cols[0])
	requireTile(t, img, 4+2*(w+4), 4, w, h, cols[2])
	requireTile(t, img, 4, 4+(h+4), w, h, cols[3])
	requireTile(t, img, 4+(w+4), 4+(h+4), w, h, white) // nil: blank
	requireTile(t, img, 4+2*(w+4), 4+(h+4), w, h, cols[4])
	requireTile(t, img, 4+(w+4), 4+2*(h+4), w, h, white) // past a ragged row's end
	require.Equal(t, white, img.RGBAAt(0, 0))

	// Captions and headers add a 15 px line above each row and one on top.
	img = Grid(rows, []string{"row zero", "", "row two"}, []string{"image", "heat", "mask"})
	require.Equal(t, image.Rect(0, 0, 4+3*(w+4), 4+15+3*(15+h+4)), img.Bounds())
	for i := range 3 {
		for j, c := range map[int]color.RGBA{0: cols[0], 2: cols[2]} {
			if i == 0 {
				requireTile(t, img, 4+j*(w+4), 4+15+15, w, h, c)
			}
		}
		y := 4 + 15 + i*(15+h+4) + 15
		require.NotEqual(t, white, img.RGBAAt(4, y), "row %d starts at y=%d", i, y)
		require.Equal(t, white, img.RGBAAt(4, y-1), "row %d: the line above the tile", i)
	}
	inkIn := func(r image.Rectangle) bool {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if img.RGBAAt(x, y) != white {
					return true
				}
			}
		}
		return false
	}
	require.True(t, inkIn(image.Rect(0, 4, img.Bounds().Dx(), 4+15)), "headers drawn")
	require.True(t, inkIn(image.Rect(0, 4+15, img.Bounds().Dx(), 4+30)), "caption of row 0 drawn")
	require.False(t, inkIn(image.Rect(0, 4+15+(15+h+4), img.Bounds().Dx(), 4+15+(15+h+4)+15)), "row 1 has no caption")
}

func TestGridPanics(t *testing.T) {
	require.Panics(t, func() { Grid(nil, nil, nil) }, "no tiles")
	require.Panics(t, func() { Grid([][]image.Image{{nil}}, nil, nil) }, "only nil tiles")
	require.Panics(t, func() {
		Grid([][]image.Image{{tile(4, 4, white), tile(5, 4, white)}}, nil, nil)
	}, "tiles of two sizes")
}
