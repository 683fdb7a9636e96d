package report

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// dpi is the resolution plots are rendered at: gonum/plot's default 12 pt
// text is then 16 px high, legible in an 800 x 600 picture.
const dpi = 96

// Curve is one line of a line plot: the points (X[i], Y[i]) joined in
// order, named Label in the legend (no legend entry when Label is empty).
type Curve struct {
	Label string
	X, Y  []float64
	// Mark, when set, is one point drawn as a dot in the curve's colour
	// and named MarkLabel in the legend: an operating point on a ROC.
	Mark      *[2]float64
	MarkLabel string
}

// PlotCurves draws curves as lines in distinct colours, with a legend, and
// writes the plot to path as a w x h pixel PNG. The axes are 0..1 when
// every value lies in [0, 1] (rates, ROC curves) and fit the data
// otherwise (loss curves). The legend sits bottom right on the unit square
// (out of the way of a ROC curve) and top right otherwise (out of the way
// of a falling loss). It returns an error for NaN or infinite values.
func PlotCurves(path, title, xlabel, ylabel string, curves []Curve, w, h int) error {
	return plotCurves(path, title, xlabel, ylabel, curves, w, h, false)
}

// ROC draws ROC curves (X the false-positive rates, Y the true-positive
// rates, from (0, 0) to (1, 1)) on the unit square with the chance
// diagonal dashed, and writes the plot to path as a w x h pixel PNG. Each
// legend label gets the curve's AUROC (trapezoids between the points, as
// metrics.AUROC computes it from the same curve) appended, as in
// "bottle (AUROC 0.987)".
func ROC(path, title string, curves []Curve, w, h int) error {
	labelled := make([]Curve, len(curves))
	for i, c := range curves {
		checkCurve("ROC", i, c)
		labelled[i] = c
		labelled[i].Label = rocLabel(c)
	}
	return plotCurves(path, title, "false positive rate", "true positive rate", labelled, w, h, true)
}

// rocLabel is c's legend label with its AUROC.
func rocLabel(c Curve) string {
	auroc := fmt.Sprintf("AUROC %.3f", trapezoid(c.X, c.Y))
	if c.Label == "" {
		return auroc
	}
	return c.Label + " (" + auroc + ")"
}

// trapezoid is the area under the polyline through (x[i], y[i]).
func trapezoid(x, y []float64) float64 {
	var a float64
	for i := 1; i < len(x); i++ {
		a += (x[i] - x[i-1]) * (y[i] + y[i-1]) / 2
	}
	return a
}

func checkCurve(fn string, i int, c Curve) {
	if len(c.X) != len(c.Y) {
		panic(fmt.Sprintf("anomnet/report: %s: curve %d (%q) has %d x and %d y values", fn, i, c.Label, len(c.X), len(c.Y)))
	}
}

func plotCurves(path, title, xlabel, ylabel string, curves []Curve, w, h int, roc bool) error {
	p := newPlot(title, xlabel, ylabel)
	unit := true
	for i, c := range curves {
		checkCurve("PlotCurves", i, c)
		unit = unit && inUnit(c.X) && inUnit(c.Y)
	}
	if roc {
		unit = true
		diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
		if err != nil {
			return fmt.Errorf("anomnet/report: plot %s: %w", path, err)
		}
		diag.LineStyle = draw.LineStyle{Color: color.Gray{150}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
		p.Add(diag)
	}
	for i, c := range curves {
		l, err := plotter.NewLine(xys(c.X, c.Y))
		if err != nil {
			return fmt.Errorf("anomnet/report: plot %s: curve %q: %w", path, c.Label, err)
		}
		l.LineStyle = draw.LineStyle{Color: seriesColor(i), Width: vg.Points(1.5)}
		p.Add(l)
		if c.Label != "" {
			p.Legend.Add(c.Label, l)
		}
		if c.Mark != nil {
			m, err := plotter.NewScatter(plotter.XYs{{X: c.Mark[0], Y: c.Mark[1]}})
			if err != nil {
				return fmt.Errorf("anomnet/report: plot %s: mark of %q: %w", path, c.Label, err)
			}
			m.GlyphStyle = draw.GlyphStyle{Color: seriesColor(i), Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
			p.Add(m)
			if c.MarkLabel != "" {
				p.Legend.Add(c.MarkLabel, m)
			}
		}
	}
	if unit {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	} else {
		p.Legend.Top = true
	}
	return render(path, p, w, h, false)
}

func inUnit(v []float64) bool {
	for _, x := range v {
		if !(x >= 0 && x <= 1) {
			return false
		}
	}
	return true
}

func xys(x, y []float64) plotter.XYs {
	pts := make(plotter.XYs, len(x))
	for i := range x {
		pts[i].X, pts[i].Y = x[i], y[i]
	}
	return pts
}

// Series is one set of points of a scatter plot, named Label in the legend
// (no legend entry when Label is empty). Big series (centroids) are drawn
// as large crosses over the small dots of the others (features).
type Series struct {
	Label string
	X, Y  []float64
	Big   bool
}

// Scatter2D draws series as points in distinct colours, with a legend, and
// writes the plot to path as a w x h pixel PNG. The axes fit the data.
// Big series are drawn after the others, so that no dot hides a cross.
// The legend keeps the order of series and stands right of the plot,
// clear of the points (inside it, top right, when it is too wide for
// that). Series without points are left out. It returns an error for NaN
// or infinite values.
func Scatter2D(path, title string, series []Series, w, h int) error {
	p := newPlot(title, "", "")
	p.Legend.Top = true
	glyphs := make([]*plotter.Scatter, len(series))
	for _, big := range []bool{false, true} {
		for i, s := range series {
			if len(s.X) != len(s.Y) {
				panic(fmt.Sprintf("anomnet/report: Scatter2D: series %d (%q) has %d x and %d y values", i, s.Label, len(s.X), len(s.Y)))
			}
			if s.Big != big || len(s.X) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(xys(s.X, s.Y))
			if err != nil {
				return fmt.Errorf("anomnet/report: plot %s: series %q: %w", path, s.Label, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: seriesColor(i), Radius: vg.Points(1.2), Shape: draw.CircleGlyph{}}
			if big {
				sc.GlyphStyle = draw.GlyphStyle{Color: seriesColor(i), Radius: vg.Points(5), Shape: crossGlyph{}}
			}
			p.Add(sc)
			glyphs[i] = sc
		}
	}
	for i, s := range series {
		if glyphs[i] != nil && s.Label != "" {
			p.Legend.Add(s.Label, glyphs[i])
		}
	}
	return render(path, p, w, h, true)
}

// crossGlyph is a bold "x" with a white halo, to stand out over a cloud of
// dots; draw.CrossGlyph's hairline strokes get lost in one.
type crossGlyph struct{}

func (crossGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	r := sty.Radius * math.Sqrt2 / 2
	strokes := func(ls draw.LineStyle) {
		c.SetLineStyle(ls)
		c.Stroke(vg.Path{{Type: vg.MoveComp, Pos: vg.Point{X: pt.X - r, Y: pt.Y - r}}, {Type: vg.LineComp, Pos: vg.Point{X: pt.X + r, Y: pt.Y + r}}})
		c.Stroke(vg.Path{{Type: vg.MoveComp, Pos: vg.Point{X: pt.X - r, Y: pt.Y + r}}, {Type: vg.LineComp, Pos: vg.Point{X: pt.X + r, Y: pt.Y - r}}})
	}
	strokes(draw.LineStyle{Color: color.White, Width: vg.Points(3.5)})
	strokes(draw.LineStyle{Color: sty.Color, Width: vg.Points(2)})
}

// tab10 is matplotlib's default qualitative palette.
var tab10 = [10]color.RGBA{
	{0x1f, 0x77, 0xb4, 255}, {0xff, 0x7f, 0x0e, 255}, {0x2c, 0xa0, 0x2c, 255},
	{0xd6, 0x27, 0x28, 255}, {0x94, 0x67, 0xbd, 255}, {0x8c, 0x56, 0x4b, 255},
	{0xe3, 0x77, 0xc2, 255}, {0x7f, 0x7f, 0x7f, 255}, {0xbc, 0xbd, 0x22, 255},
	{0x17, 0xbe, 0xcf, 255},
}

// seriesColor is the colour of series or curve i in PlotCurves, ROC and
// Scatter2D: matplotlib's tab10 palette for the first ten, then hues a
// golden angle apart, so that every index gets its own colour.
func seriesColor(i int) color.RGBA {
	if i >= 0 && i < len(tab10) {
		return tab10[i]
	}
	hue := math.Mod(float64(i-len(tab10))*0.618033988749895+0.05, 1)
	return hsv(hue, 0.7, 0.8)
}

// hsv converts a colour from HSV (each in [0, 1]) to RGB.
func hsv(h, s, v float64) color.RGBA {
	h6 := h * 6
	k := math.Floor(h6)
	f := h6 - k
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	var r, g, b float64
	switch int(k) % 6 {
	case 0:
		r, g, b = v, t, p
	case 1:
		r, g, b = q, v, p
	case 2:
		r, g, b = p, v, t
	case 3:
		r, g, b = p, q, v
	case 4:
		r, g, b = t, p, v
	default:
		r, g, b = v, p, q
	}
	c := func(x float64) uint8 { return uint8(math.Round(255 * x)) }
	return color.RGBA{c(r), c(g), c(b), 255}
}

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	return p
}

// margin is the blank border around a plot, in points (8 px at 96 dpi):
// gonum/plot draws to the canvas edge, where it would clip the last tick
// label.
const margin = 6

// render draws p on a w x h pixel canvas and writes it to path. With
// legendOutside, p's legend goes in a strip right of the plot, level with
// the top of the data area, unless it would take more than 40% of the
// width; otherwise the legend is drawn where p.Legend says, offset a few
// points off the axes.
func render(path string, p *plot.Plot, w, h int, legendOutside bool) error {
	if w < 1 || h < 1 {
		return fmt.Errorf("anomnet/report: plot %s: size %d x %d", path, w, h)
	}
	// A canvas made from an image takes its pixel size exactly; UseWH would
	// go through lengths in points and could round a pixel off.
	c := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, w, h))), vgimg.UseDPI(dpi))
	dc := draw.Crop(draw.New(c), margin, -margin, margin, -margin)
	if legendOutside {
		leg := p.Legend
		leg.Top, leg.Left = true, true
		if lw := leg.Rectangle(dc).Size().X; lw > 0 && lw < 0.4*dc.Size().X {
			p.Legend = plot.NewLegend() // drawn here instead
			plotArea := draw.Crop(dc, 0, -(lw + 2*margin), 0, 0)
			p.Draw(plotArea)
			if p.Title.Text != "" {
				leg.YOffs = -(p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding)
			}
			leg.Draw(draw.Crop(dc, dc.Size().X-lw, 0, 0, 0))
			return WritePNG(path, c.Image())
		}
	}
	p.Legend.XOffs = -margin
	if p.Legend.Top {
		p.Legend.YOffs = -margin
	} else {
		p.Legend.YOffs = margin
	}
	p.Draw(dc)
	return WritePNG(path, c.Image())
}
