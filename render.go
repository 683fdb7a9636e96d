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

// Heatmap renders r's anomaly map as a colour image, Size x Size over the
// resized and cropped input, on the model's colour scale
// (Calibration.HeatRange).
func (m *Model) Heatmap(r Result) (*image.RGBA, error) {
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
	return report.HeatmapImage(r.Map, r.Size, lo, hi), nil
}

// Overlay blends r's heatmap (alpha 0.6) over img, the image r was
// predicted from, which it resizes and crops as Predict does: the picture
// anomnet predict writes.
func (m *Model) Overlay(img image.Image, r Result) (*image.RGBA, error) {
	if err := checkResult(r); err != nil {
		return nil, err
	}
	m.mu.RLock()
	fitted, cal := m.fitted, m.cal
	pre, err := m.preprocess([]image.Image{img}, 0)
	m.mu.RUnlock()
	if !fitted {
		return nil, ErrNotFitted
	}
	if err != nil {
		return nil, err
	}
	if b := pre[0].Bounds(); b.Dx() != r.Size || b.Dy() != r.Size {
		return nil, fmt.Errorf("anomnet: Overlay: the image becomes %dx%d, the result's map is %dx%d", b.Dx(), b.Dy(), r.Size, r.Size)
	}
	lo, hi := cal.HeatRange()
	return report.Overlay(pre[0], r.Map, r.Size, lo, hi, 0.6), nil
}

// MaskImage renders r.Mask as a grey image: white where a pixel is above
// the model's pixel threshold.
func (r Result) MaskImage() (*image.Gray, error) {
	if len(r.Mask) != r.Size*r.Size || r.Size <= 0 {
		return nil, fmt.Errorf("anomnet: MaskImage: %d mask values for a %dx%d map", len(r.Mask), r.Size, r.Size)
	}
	return report.MaskImage(r.Mask, r.Size), nil
}

func checkResult(r Result) error {
	if r.Size <= 0 || len(r.Map) != r.Size*r.Size {
		return fmt.Errorf("anomnet: a result with %d map values for a %dx%d map (not from Predict?)", len(r.Map), r.Size, r.Size)
	}
	return nil
}
