package report

import (
	"image"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlotCurvesWritesPNGOfTheSize(t *testing.T) {
	dir := t.TempDir()
	roc := []Curve{
		{Label: "good", X: []float64{0, 0, 0.1, 0.5, 1}, Y: []float64{0, 0.6, 0.9, 1, 1}},
		{Label: "weak", X: []float64{0, 0.3, 0.7, 1}, Y: []float64{0, 0.5, 0.8, 1}},
	}
	path := filepath.Join(dir, "rates.png")
	require.NoError(t, PlotCurves(path, "rates", "fpr", "tpr", roc, 401, 299))
	require.Equal(t, image.Rect(0, 0, 401, 299), readPNG(t, path).Bounds())

	path = filepath.Join(dir, "roc.png")
	require.NoError(t, ROC(path, "image ROC", roc, 320, 320))
	require.Equal(t, image.Rect(0, 0, 320, 320), readPNG(t, path).Bounds())

	loss := []Curve{{Label: "loss", X: []float64{1, 2, 3, 4}, Y: []float64{3.2, 1.5, 0.9, 0.7}}, {X: []float64{1, 4}, Y: []float64{2, 2}}}
	path = filepath.Join(dir, "loss.png")
	require.NoError(t, PlotCurves(path, "loss", "epoch", "", loss, 300, 200))
	require.Equal(t, image.Rect(0, 0, 300, 200), readPNG(t, path).Bounds())

	path = filepath.Join(dir, "empty.png")
	require.NoError(t, PlotCurves(path, "nothing yet", "", "", nil, 200, 150))
	require.Equal(t, image.Rect(0, 0, 200, 150), readPNG(t, path).Bounds())
}

func TestPlotCurvesErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.png")
	err := PlotCurves(path, "", "", "", []Curve{{Label: "nan", X: []float64{0, 1}, Y: []float64{1, math.NaN()}}}, 200, 100)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, PlotCurves(path, "", "", "", nil, 0, 100), path)
	require.Panics(t, func() { _ = PlotCurves(path, "", "", "", []Curve{{X: []float64{0}}}, 200, 100) })
}

func TestROCLabel(t *testing.T) {
	c := Curve{Label: "bottle", X: []float64{0, 0, 0.5, 1}, Y: []float64{0, 0.5, 1, 1}}
	require.Equal(t, "bottle (AUROC 0.875)", rocLabel(c))
	c.Label = ""
	require.Equal(t, "AUROC 0.875", rocLabel(c))
}

func TestTrapezoid(t *testing.T) {
	require.Equal(t, 1.0, trapezoid([]float64{0, 0, 1}, []float64{0, 1, 1}))
	require.Equal(t, 0.5, trapezoid([]float64{0, 1}, []float64{0, 1}))
	require.InDelta(t, 0.625, trapezoid([]float64{0, 0.5, 0.5, 1}, []float64{0, 0.5, 1, 1}), 1e-15)
}

func TestScatter2DWritesPNGOfTheSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pca.png")
	series := []Series{
		{Label: "features", X: []float64{0, 1, 2, 3}, Y: []float64{1, 0, 1, 3}},
		{Label: "centroids", X: []float64{1, 2}, Y: []float64{1, 2}, Big: true},
		{Label: "none"},
	}
	require.NoError(t, Scatter2D(path, "PCA", series, 360, 240))
	require.Equal(t, image.Rect(0, 0, 360, 240), readPNG(t, path).Bounds())

	err := Scatter2D(path, "", []Series{{X: []float64{math.Inf(1)}, Y: []float64{0}}}, 100, 100)
	require.ErrorContains(t, err, path)
}

func TestSeriesColorsDistinct(t *testing.T) {
	seen := map[[3]uint8]int{}
	for i := range 40 {
		c := seriesColor(i)
		require.Equal(t, uint8(255), c.A)
		k := [3]uint8{c.R, c.G, c.B}
		_, dup := seen[k]
		require.False(t, dup, "colour of %d repeats that of %d", i, seen[k])
		seen[k] = i
	}
}
