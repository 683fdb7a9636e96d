package anomnet

import (
	"fmt"
	"math"
	"slices"

	"github.com/org/anomnet/internal/tensor"
)

// NearestScorer is METHOD.md's scoring (section 5): each location's score
// is its Euclidean distance to the nearest centroid; the score map is
// upsampled bilinearly to Size x Size (or Width x Height where set) and
// blurred with a Gaussian of
// standard deviation Sigma pixels (radius floor(4 Sigma + 0.5)); an
// image's score is the maximum of its map, or of the upsampled map blurred
// with ImageSigma instead where that is above 0 and not Sigma, or with
// Grid the maximum of its location scores before upsampling and blur.
//
// Power, when not 0 or 1, raises each location's distance to that power
// before the upsampling (2: the squared distance, the map of PatchCore's
// published code, whose search returns squared distances). A monotone
// change of the location scores, it reorders pixels only through the
// upsampling and blur that mix neighbours.
type NearestScorer struct {
	// Size is the side of a square map; Width and Height, when set, give
	// a map of any shape instead (Config.InputFull).
	Size          int
	Width, Height int
	Sigma         float64
	ImageSigma    float64
	Grid          bool
	Power         float64
	// Baseline, when in (0, 1], subtracts from each image's location
	// scores (after Power) their Baseline quantile, 0.5 the median, before
	// the upsampling: a location then scores how far it stands out from
	// the rest of its own image, and a part whose every location is a
	// little far from the centroids (lighting, a slightly different batch)
	// does not light up as a whole. 0: none.
	Baseline float64
	// Cap, when above 0, is the most that Baseline subtracts: the highest
	// baseline of the normal training images (Calibration.BaselineCap), so
	// that a defect covering much of an image, which raises its own
	// quantile, is lowered no more than a normal image can be.
	Cap float64

	// baselines, when set, receives each batch's subtracted baselines
	// (calibration measures Cap with it).
	baselines func([]float32)
}

// Score implements Scorer.
func (s *NearestScorer) Score(d Device, set CentroidSet, f *Tensor) (*Tensor, []float64) {
	sh := f.Shape()
	if len(sh) != 4 || sh[1] != set.D() {
		panic(fmt.Sprintf("anomnet: NearestScorer: features %v, want N x %d x H x W", sh, set.D()))
	}
	n, dim, h, w := sh[0], sh[1], sh[2], sh[3]
	rows := d.Zeros(n*h*w, dim)
	d.ChannelsLast(rows, f)
	return s.scoreRows(d, set, rows, n, h, w)
}

// scoreRows is Score on F's rows ((n*h*w) x D, channels last, as
// Adapter.Rows makes them), which it frees.
func (s *NearestScorer) scoreRows(d Device, set CentroidSet, rows *Tensor, n, h, w int) (*Tensor, []float64) {
	dist := d.Zeros(n * h * w)
	set.Nearest(d, nil, dist, rows)
	d.Free(rows)
	if (s.Power != 0 && s.Power != 1) || s.Baseline > 0 {
		// The location scores are few (N x H x W): one pass on the host.
		host := d.ToHost(dist)
		d.Free(dist)
		v := host.Float32s()
		powered(v, s.Power)
		if s.Baseline > 0 {
			b := baselined(v, n, s.Baseline, s.Cap)
			if s.baselines != nil {
				s.baselines(b)
			}
		}
		dist = d.FromHost(host)
	}
	var scores []float64 // the image scores, where the pixel map's maximum is not
	if s.Grid {
		scores = MapMax(d, dist.Reshape(n, 1, h, w))
	}
	mw, mh := s.Size, s.Size
	if s.Width > 0 || s.Height > 0 {
		mw, mh = s.Width, s.Height
	}
	up := d.Zeros(n, 1, mh, mw)
	d.ResizeBilinear(up, dist.Reshape(n, 1, h, w))
	d.Free(dist)
	if !s.Grid && s.ImageSigma > 0 && s.ImageSigma != s.Sigma {
		// The image score from its own blur of the same upsampled map.
		img := d.Zeros(n, 1, mh, mw)
		d.GaussianBlur(img, up, s.ImageSigma, tensor.GaussianRadius(s.ImageSigma))
		scores = MapMax(d, img)
		d.Free(img)
	}
	out := up
	if s.Sigma > 0 {
		out = d.Zeros(n, 1, mh, mw)
		d.GaussianBlur(out, up, s.Sigma, tensor.GaussianRadius(s.Sigma))
		d.Free(up)
	}
	if scores != nil {
		return out, scores
	}
	return out, MapMax(d, out)
}

// powered raises each element of v to the power p (0 and 1: unchanged).
func powered(v []float32, p float64) {
	if p == 0 || p == 1 {
		return
	}
	for i, e := range v {
		if p == 2 {
			v[i] = e * e
		} else {
			v[i] = float32(math.Pow(float64(e), p))
		}
	}
}

// baselined subtracts from each of the n images' location scores in v
// their q quantile, the order statistic at round(q (m-1)) of its m
// scores, at most limit when limit > 0, and returns the n values
// subtracted.
func baselined(v []float32, n int, q, limit float64) []float32 {
	per := len(v) / n
	tmp := make([]float32, per)
	out := make([]float32, n)
	for i := range n {
		img := v[i*per : (i+1)*per]
		copy(tmp, img)
		slices.Sort(tmp)
		b := tmp[min(per-1, int(q*float64(per-1)+0.5))]
		if limit > 0 {
			b = min(b, float32(limit))
		}
		for j := range img {
			img[j] -= b
		}
		out[i] = b
	}
	return out
}

// MapMax returns the maximum of each of the N maps of pix (N x 1 x H x W),
// the image score of METHOD.md's global max pooling.
func MapMax(d Device, pix *Tensor) []float64 {
	host := d.ToHost(pix).Float32s()
	n := pix.Dim(0)
	per := len(host) / max(n, 1)
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(slices.Max(host[i*per : (i+1)*per]))
	}
	return out
}

// Result is the verdict on one image.
type Result struct {
	// Score is the image anomaly score (with NearestScorer, the maximum
	// of Map).
	Score float64
	// Anomalous reports Score > the model's image threshold.
	Anomalous bool
	// Map is the pixel anomaly map, Width x Height, row-major, in raw score
	// units (with the defaults, the square root of the distance to the
	// nearest centroid less its median over the image's locations,
	// upsampled and blurred: see NearestScorer), over the preprocessed
	// (resized and cropped, or resized to the full frame) image. With a
	// baseline, normal pixels score near or below 0.
	Map           []float32
	Width, Height int
	// Size is Width where the map is square (the crop input), 0 otherwise.
	Size int
	// Mask marks the pixels of Map above the model's pixel threshold.
	Mask []bool
}

// Calibration holds what the model measured on its normal training images:
// the range of pixel scores, for normalisation, the thresholds, and the
// scores that set them, kept so that the thresholds can move to another
// false-alarm rate without refitting (Model.SetFalseAlarmRate).
type Calibration struct {
	// Min and Max are the smallest and largest pixel score over the normal
	// training images.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// ImageThreshold and PixelThreshold are the decision thresholds, in
	// raw score units.
	ImageThreshold float64 `json:"image_threshold"`
	PixelThreshold float64 `json:"pixel_threshold"`
	// FalseAlarms is the false-alarm rate the thresholds were set for (0:
	// set otherwise).
	FalseAlarms float64 `json:"false_alarms,omitempty"`
	// HeldOut reports that each normal image was scored without the
	// centroids taken from it (farthest-point seeding), as an image the
	// model never saw; otherwise the scores are in-sample and run low.
	HeldOut bool `json:"held_out,omitempty"`
	// Scores are the image scores of the normal training images, in
	// ascending order; PixelTail their pixel scores at PixelRates.
	Scores    []float64 `json:"scores,omitempty"`
	PixelTail []float64 `json:"pixel_tail,omitempty"`
	// BaselineCap is the highest median location score of the normal
	// training images, the most that Config.MapBaseline "capped"
	// subtracts from an image's scores (0: not measured).
	BaselineCap float64 `json:"baseline_cap,omitempty"`
}

// Normalize maps a raw score to the normal images' range: 0 at their
// smallest pixel score and 1 at their largest. Anomalies exceed 1; the
// result is not clamped.
func (c Calibration) Normalize(v float64) float64 {
	if c.Max <= c.Min {
		return v - c.Min
	}
	return (v - c.Min) / (c.Max - c.Min)
}

// Resized returns r with its map resampled to w x h pixels (bilinearly,
// pixel centres aligned, as the scorer upsamples) and its mask by nearest
// neighbour; Score and Anomalous are kept. With the full input
// (Config.InputFull) the map covers the whole image, so Resized to the
// image's own width and height puts each value on the input pixel it
// belongs to; with the crop input it stays over the crop. It panics on a
// size below 1 or a result whose map is not Width x Height.
func (r Result) Resized(w, h int) Result {
	r = r.sized()
	if w < 1 || h < 1 || r.Width < 1 || r.Height < 1 || len(r.Map) != r.Width*r.Height {
		panic(fmt.Sprintf("anomnet: Result.Resized: a %dx%d map of %d values to %dx%d", r.Width, r.Height, len(r.Map), w, h))
	}
	out := Result{Score: r.Score, Anomalous: r.Anomalous, Width: w, Height: h}
	if w == h {
		out.Size = w
	}
	dst := tensor.New(1, 1, h, w)
	tensor.CPU{}.ResizeBilinear(dst, tensor.FromFloat32s(r.Map, 1, 1, r.Height, r.Width))
	out.Map = dst.Float32s()
	if len(r.Mask) == len(r.Map) {
		out.Mask = make([]bool, w*h)
		for y := range h {
			sy := (2*y + 1) * r.Height / (2 * h)
			for x := range w {
				out.Mask[y*w+x] = r.Mask[sy*r.Width+(2*x+1)*r.Width/(2*w)]
			}
		}
	}
	return out
}
