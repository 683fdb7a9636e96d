package anomnet

import (
	"fmt"
	"image"

	"github.com/org/anomnet/internal/report"
)

// HeatRange is the score range that pictures map onto their colour scale:
// from the normal training images' lowest pixel score to half as far again
// beyond the image threshold (at least their highest score), so that the
// threshold sits at two thirds of the scale: normal texture stays dark and
// an anomaly above the threshold glows. The command-line tool's overlays
// use it too.
func (c Calibration) HeatRange() (lo, hi float64) {
	return c.Min, max(c.Max, c.ImageThreshold+(c.ImageThreshold-c.Min)/2)
}

// Heatmap renders r's anomaly map as a colour image, Width x Height over
// the preprocessed input (resized and cropped, or the full frame), on the model's colour scale
// (Calibration.HeatRange).
func (m *Model) Heatmap(r Result) (*image.RGBA, error) {
	r = r.sized()
	if err := checkResult(r); err != nil {
		return nil, err
	}
	m.mu.RLock()
	fitted, cal := m.fitted, m.cal
	m.mu.RUnlock()
	if !fitted {
		return nil, ErrNotFitted
	}
	lo, hi := cal.HeatRange()
	return report.HeatmapImage(r.Map, r.Width, r.Height, lo, hi), nil
}

// Overlay blends r's heatmap (alpha 0.6) over img, the image r was
// predicted from, which it preprocesses as Predict does: the picture
// anomnet predict writes.
func (m *Model) Overlay(img image.Image, r Result) (*image.RGBA, error) {
	r = r.sized()
	if err := checkResult(r); err != nil {
		return nil, err
	}
	m.mu.RLock()
	fitted, cal := m.fitted, m.cal
	pre, err := preprocess(m.cfg, []image.Image{img}, 0)
	m.mu.RUnlock()
	if !fitted {
		return nil, ErrNotFitted
	}
	if err != nil {
		return nil, err
	}
	if b := pre[0].Bounds(); b.Dx() != r.Width || b.Dy() != r.Height {
		return nil, fmt.Errorf("anomnet: Overlay: the image becomes %dx%d, the result's map is %dx%d", b.Dx(), b.Dy(), r.Width, r.Height)
	}
	lo, hi := cal.HeatRange()
	return report.Overlay(pre[0], r.Map, r.Width, r.Height, lo, hi, 0.6), nil
}

// MaskImage renders r.Mask as a grey image: white where a pixel is above
// the model's pixel threshold.
func (r Result) MaskImage() (*image.Gray, error) {
	r = r.sized()
	if len(r.Mask) != r.Width*r.Height || r.Width <= 0 || r.Height <= 0 {
		return nil, fmt.Errorf("anomnet: MaskImage: %d mask values for a %dx%d map", len(r.Mask), r.Width, r.Height)
	}
	return report.MaskImage(r.Mask, r.Width, r.Height), nil
}

func checkResult(r Result) error {
	if r.Width <= 0 || r.Height <= 0 || len(r.Map) != r.Width*r.Height {
		return fmt.Errorf("anomnet: a result with %d map values for a %dx%d map (not from Predict?)", len(r.Map), r.Width, r.Height)
	}
	return nil
}

// sized returns r with Width and Height taken from Size where only Size
// is set (a Result built by hand in the square convention).
func (r Result) sized() Result {
	if r.Width == 0 && r.Height == 0 {
		r.Width, r.Height = r.Size, r.Size
	}
	return r
}
