package anomnet

import (
	"fmt"
	"image"
	"math"

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

// InputMap returns r in the coordinates of the w x h image it was
// predicted from, each value on the input pixel it belongs to. With the
// full and tiled inputs that is r resampled to w x h (Result.Resized).
// With the crop input the map covers only the centred region that the crop
// kept, (Resize - Crop) / 2 to (Resize + Crop) / 2 of Resize along each
// side: there the map is resampled bilinearly (pixel centres aligned) and
// the mask by nearest neighbour; elsewhere Map is NaN, not inspected, and
// Mask false. Score and Anomalous are kept.
func (m *Model) InputMap(r Result, w, h int) (Result, error) {
	r = r.sized()
	if err := checkResult(r); err != nil {
		return Result{}, err
	}
	if w < 1 || h < 1 {
		return Result{}, fmt.Errorf("anomnet: InputMap to a %dx%d image", w, h)
	}
	cfg := m.Config()
	if cfg.Input != InputCrop {
		return r.Resized(w, h), nil
	}
	if r.Width != cfg.Crop || r.Height != cfg.Crop {
		return Result{}, fmt.Errorf("anomnet: InputMap: a %dx%d map from a model that crops %dx%d", r.Width, r.Height, cfg.Crop, cfg.Crop)
	}
	out := Result{Score: r.Score, Anomalous: r.Anomalous, Width: w, Height: h, Map: make([]float32, w*h)}
	if w == h {
		out.Size = w
	}
	if len(r.Mask) == len(r.Map) {
		out.Mask = make([]bool, w*h)
	}
	off := float64(cfg.Resize-cfg.Crop) / 2
	n := cfg.Crop
	// crop returns the crop coordinate of input pixel i of an l-long side,
	// its centre carried through the resize.
	crop := func(i, l int) float64 { return (float64(i)+0.5)*float64(cfg.Resize)/float64(l) - off }
	for y := range h {
		cy := crop(y, h)
		for x := range w {
			cx := crop(x, w)
			k := y*w + x
			if cx < 0 || cy < 0 || cx >= float64(n) || cy >= float64(n) {
				out.Map[k] = float32(math.NaN())
				continue
			}
			out.Map[k] = bilinearAt(r.Map, n, n, cx-0.5, cy-0.5)
			if out.Mask != nil {
				out.Mask[k] = r.Mask[int(cy)*n+int(cx)]
			}
		}
	}
	return out, nil
}

// bilinearAt samples the w x h map m at (x, y) in pixel-centre units,
// clamped to the edge.
func bilinearAt(m []float32, w, h int, x, y float64) float32 {
	x, y = max(0, min(x, float64(w-1))), max(0, min(y, float64(h-1)))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := float32(x-float64(x0)), float32(y-float64(y0))
	top := m[y0*w+x0]*(1-fx) + m[y0*w+x1]*fx
	bottom := m[y1*w+x0]*(1-fx) + m[y1*w+x1]*fx
	return top*(1-fy) + bottom*fy
}
