package anomnet

import (
	"context"
	"image"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRender checks the public pictures of a result: the heatmap on the
// model's colour scale (hotter where the score is higher, the threshold at
// two thirds), the overlay over the input as Predict preprocesses it, the
// mask, and the errors for results that are not Predict's.
func TestRender(t *testing.T) {
	s := makeSynth(21, 16, 2, 2)
	cfg := testConfig()
	m, err := New(newTinyNet(1), cfg)
	require.NoError(t, err)
	_, err = m.Heatmap(Result{Map: make([]float32, 4), Size: 2})
	require.ErrorIs(t, err, ErrNotFitted)
	require.NoError(t, m.Fit(context.Background(), s.train))

	raw := s.test[len(s.test)-1] // a defective image
	big := image.NewRGBA(image.Rect(0, 0, 100, 90))
	for i := range big.Pix {
		big.Pix[i] = 200
	}
	for _, img := range []image.Image{raw, big} {
		r, err := m.Predict(img)
		require.NoError(t, err)

		heat, err := m.Heatmap(r)
		require.NoError(t, err)
		require.Equal(t, image.Rect(0, 0, cfg.Crop, cfg.Crop), heat.Bounds())
		lo, hi := m.Calibration().HeatRange()
		require.Less(t, lo, hi)
		// Inferno's brightness rises with the score: the map's hottest
		// pixel is brighter than its coolest.
		imax, imin := 0, 0
		for i, v := range r.Map {
			if v > r.Map[imax] {
				imax = i
			}
			if v < r.Map[imin] {
				imin = i
			}
		}
		warmth := func(i int) int { return int(heat.Pix[4*i]) + int(heat.Pix[4*i+1]) + int(heat.Pix[4*i+2]) }
		if r.Map[imax] > r.Map[imin] {
			require.Greater(t, warmth(imax), warmth(imin))
		}

		over, err := m.Overlay(img, r)
		require.NoError(t, err)
		require.Equal(t, heat.Bounds(), over.Bounds())
		require.NotEqual(t, heat.Pix, over.Pix, "the input shows through")

		mask, err := r.MaskImage()
		require.NoError(t, err)
		for i, in := range r.Mask {
			require.Equal(t, in, mask.Pix[i] == 255, "pixel %d", i)
		}
	}
	// The scale: the threshold at two thirds, unless the normal images'
	// highest score lies beyond the top.
	lo, hi := Calibration{Min: 1, Max: 3, ImageThreshold: 4}.HeatRange()
	require.Equal(t, [2]float64{1, 5.5}, [2]float64{lo, hi})
	lo, hi = Calibration{Min: 1, Max: 9, ImageThreshold: 4}.HeatRange()
	require.Equal(t, [2]float64{1, 9}, [2]float64{lo, hi})

	_, err = m.Heatmap(Result{Map: make([]float32, 3), Size: 2})
	require.ErrorContains(t, err, "3 map values for a 2x2 map")
	_, err = m.Overlay(s.test[0], Result{Map: make([]float32, 4), Size: 2})
	require.ErrorContains(t, err, "the result's map is 2x2")
	_, err = Result{Mask: make([]bool, 5), Size: 2}.MaskImage()
	require.ErrorContains(t, err, "5 mask values")
}
