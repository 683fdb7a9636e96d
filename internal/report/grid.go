package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// gap is the space in pixels around and between the tiles of a Grid.
const gap = 4

// textBand is the height of a line of text in a Grid: basicfont's 13 px
// line and 2 px to keep the text off the tiles below it.
const textBand = 15

// Grid lays out rows of equally sized tiles on a white background, with 4
// pixels around and between them. Tile j of row i has its top-left corner at
//
//	x = 4 + j*(w+4)
//	y = 4 + H + i*(C+h+4) + C
//
// where w x h is the tile size, and H and C are 15 px (a 13 px line of
// text and 2 px) when there is a header line and caption lines
// respectively, 0 otherwise. captions[i] (if any)
// is drawn above row i, left-aligned; headers[j] (if any) on top of column
// j, centred when it fits the column and clipped to it otherwise. When any
// caption is non-empty every row gets a caption line, so that the rows are
// evenly spaced; likewise for the header line. Rows may be ragged and
// tiles nil (left blank); translucent tiles are drawn over white. Text is
// basicfont's 7x13 face (ASCII only). Grid panics if the tiles differ in
// size or there is none.
func Grid(rows [][]image.Image, captions []string, headers []string) *image.RGBA {
	var tw, th, cols int
	for i, row := range rows {
		cols = max(cols, len(row))
		for j, t := range row {
			if t == nil {
				continue
			}
			b := t.Bounds()
			if tw == 0 && th == 0 {
				tw, th = b.Dx(), b.Dy()
			} else if b.Dx() != tw || b.Dy() != th {
				panic(fmt.Sprintf("anomnet/report: Grid: tile %d of row %d is %d x %d, the first tile %d x %d", j, i, b.Dx(), b.Dy(), tw, th))
			}
		}
	}
	if tw == 0 || th == 0 {
		panic("anomnet/report: Grid: no tiles")
	}
	headerBand, captionBand := 0, 0
	if anyText(headers) {
		headerBand = textBand
	}
	if anyText(captions) {
		captionBand = textBand
	}
	w := gap + cols*(tw+gap)
	h := gap + headerBand + len(rows)*(captionBand+th+gap)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	y := gap
	if headerBand > 0 {
		for j, s := range headers[:min(len(headers), cols)] {
			x := gap + j*(tw+gap)
			// Clip to the column and half the gaps on either side.
			col := image.Rect(x-gap/2, y, x+tw+gap/2, y+textBand)
			if tx := font.MeasureString(basicfont.Face7x13, s).Ceil(); tx <= tw {
				x += (tw - tx) / 2
			}
			drawText(img, col, x, y, s)
		}
		y += headerBand
	}
	for i, row := range rows {
		if captionBand > 0 {
			if i < len(captions) {
				drawText(img, image.Rect(0, y, w, y+textBand), gap, y, captions[i])
			}
			y += captionBand
		}
		for j, t := range row {
			if t == nil {
				continue
			}
			x := gap + j*(tw+gap)
			draw.Draw(img, image.Rect(x, y, x+tw, y+th), t, t.Bounds().Min, draw.Over)
		}
		y += th + gap
	}
	return img
}

func anyText(s []string) bool {
	for _, t := range s {
		if t != "" {
			return true
		}
	}
	return false
}

// drawText draws s in black with its line's top-left corner at (x, y),
// clipped to clip.
func drawText(img *image.RGBA, clip image.Rectangle, x, y int, s string) {
	if s == "" {
		return
	}
	face := basicfont.Face7x13
	d := font.Drawer{
		Dst:  img.SubImage(clip).(*image.RGBA),
		Src:  image.NewUniform(color.Black),
		Face: face,
		Dot:  fixed.P(x, y+face.Ascent),
	}
	d.DrawString(s)
}
