package anomnet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/org/anomnet/centroid"
)

// ErrNoHeldScores is returned by SetFalseAlarmRate for a model whose file
// holds no scores of normal images (one saved by an anomnet before they
// were kept): refit it to re-threshold by rate.
var ErrNoHeldScores = errors.New("anomnet: the model keeps no scores of normal images (saved by an older anomnet); refit it to set thresholds by false-alarm rate")

// PixelRates are the upper-tail rates at which a Calibration keeps the
// pixel scores of the normal images: from one pixel in two down to one in
// a million, ten to a decade. A pixel threshold for a rate between two of
// them is interpolated in log rate.
var PixelRates = func() []float64 {
	var r []float64
	for i := 3; i <= 60; i++ {
		r = append(r, math.Pow(10, -float64(i)/10))
	}
	return r
}()

// imageThreshold is the conformal threshold of rate r over the normal
// images' scores (ascending): the k-th smallest with k = ceil((1 - r)(n +
// 1)), so that a new normal image scores above it with probability at most
// r when it is exchangeable with them. With too few scores for r (k > n)
// it is the largest, and resolved is 1/(n+1), the smallest rate n scores
// can promise; otherwise resolved is r.
func imageThreshold(scores []float64, r float64) (thr, resolved float64) {
	n := len(scores)
	k := int(math.Ceil((1 - r) * float64(n+1)))
	if k > n {
		return scores[n-1], 1 / float64(n+1)
	}
	return scores[max(k, 1)-1], r
}

// pixelThreshold interpolates the kept pixel tail at rate r (clamped to
// the range of PixelRates).
func pixelThreshold(tail []float64, r float64) float64 {
	if r >= PixelRates[0] {
		return tail[0]
	}
	last := len(PixelRates) - 1
	if r <= PixelRates[last] {
		return tail[last]
	}
	i := 1
	for PixelRates[i] > r {
		i++
	}
	a, b := math.Log(PixelRates[i-1]), math.Log(PixelRates[i])
	f := (math.Log(r) - a) / (b - a)
	return tail[i-1] + f*(tail[i]-tail[i-1])
}

// pixelTail returns the pixel scores at each of PixelRates: the (1 - rate)
// quantiles of a sample of normal pixel scores (sorted here).
func pixelTail(pixels []float64) []float64 {
	slices.Sort(pixels)
	tail := make([]float64, len(PixelRates))
	n := len(pixels)
	for i, r := range PixelRates {
		k := min(n-1, max(0, int(math.Ceil((1-r)*float64(n)))-1))
		tail[i] = pixels[k]
	}
	return tail
}

// setRate sets the thresholds of c for false-alarm rate r from its kept
// scores, unless fixed by hand (imageFixed, pixelFixed), and returns the
// image rate its scores resolve.
func (c *Calibration) setRate(r float64, imageFixed, pixelFixed float64) (float64, error) {
	if len(c.Scores) == 0 || len(c.PixelTail) != len(PixelRates) {
		return 0, ErrNoHeldScores
	}
	if !(r > 0 && r < 1) {
		return 0, fmt.Errorf("anomnet: false-alarm rate %g outside (0, 1)", r)
	}
	resolved := r
	if c.ImageThreshold = imageFixed; imageFixed == 0 {
		c.ImageThreshold, resolved = imageThreshold(c.Scores, r)
	}
	if c.PixelThreshold = pixelFixed; pixelFixed == 0 {
		c.PixelThreshold = pixelThreshold(c.PixelTail, r)
	}
	c.FalseAlarms = r
	return resolved, nil
}

// ResolvableRate is the smallest image false-alarm rate that the kept
// scores can promise: 1/(n+1) for n normal images (0 without scores).
func (c Calibration) ResolvableRate() float64 {
	if len(c.Scores) == 0 {
		return 0
	}
	return 1 / float64(len(c.Scores)+1)
}

// SetFalseAlarmRate re-thresholds the model for false-alarm rate r (0 < r
// < 1) without refitting: the image threshold becomes the conformal
// threshold of the normal images' kept scores, the pixel threshold the
// score that a share r of their pixels exceed. It returns the image rate
// the scores resolve: r, or 1/(n+1) when n images cannot resolve r (the
// threshold is then their highest score). It returns ErrNoHeldScores for
// a model from an older file.
func (m *Model) SetFalseAlarmRate(r float64) (float64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.fitted {
		return 0, ErrNotFitted
	}
	c := m.cal
	resolved, err := c.setRate(r, 0, 0)
	if err != nil {
		return 0, err
	}
	m.cal = c
	return resolved, nil
}

// leaveOut is a CentroidSet that searches an Index without the centroids
// taken from the image of each row: rows come image by image, locs per
// image, from the images numbered images; source is each centroid's image.
type leaveOut struct {
	*centroid.Index
	source []int32
	images []int
	locs   int
}

// Nearest implements CentroidSet.
func (l leaveOut) Nearest(d Device, idx, dist, x *Tensor) {
	rows := make([]int32, x.Dim(0))
	for r := range rows {
		rows[r] = int32(l.images[r/l.locs])
	}
	l.NearestExcept(d, idx, dist, x, l.source, rows)
}

// calBatch is a batch of the calibration: the cached images idx, their
// pixel maps and scores, or the error that stopped it.
type calBatch struct {
	idx    []int
	pix    [][]float32
	scores []float64
	err    error
}

// calibrate scores the training images with the trained model and sets
// the normalisation range and the thresholds for Config.FalseAlarms. With
// farthest-point seeding every centroid is a training feature vector, and
// each image is scored without the centroids taken from it: as an image
// the model never saw, so that the thresholds hold on new normal images.
// In the tiled input each tile is scored without the centroids of any
// tile of its image, and an image's score is the highest of its tiles'
// (its pixels are the tiles', not blended).
func (t *trainer) calibrate(ctx context.Context) (Calibration, error) {
	sc := configScorer(t.cfg)
	var caps []float32
	if ns, ok := sc.(*NearestScorer); ok && t.cfg.Scorer == nil && t.cfg.MapBaseline == BaselineCapped {
		// Uncapped, every training image loses its own median, as it
		// would under a cap at the highest of them: measure that cap.
		c := *ns
		var mu sync.Mutex // two batches are scored at once
		c.Cap, c.baselines = 0, func(b []float32) {
			mu.Lock()
			caps = append(caps, b...)
			mu.Unlock()
		}
		sc = &c
	}
	n := t.cache.Len()
	var pixels []float64
	cal := Calibration{Min: math.Inf(1), Max: math.Inf(-1)}
	var ix *centroid.Index
	var source []int32
	if t.chosen != nil && t.image(t.cache.Len()-1) > 0 { // two images at least
		var ok bool
		if ix, ok = t.search.(*centroid.Index); !ok {
			ix = centroid.NewIndex(t.d, t.set, rand.New(rand.NewPCG(t.cfg.Seed, 0x63616c)))
		}
		source = make([]int32, len(t.chosen))
		for j, v := range t.chosen {
			source[j] = t.image(v / t.locs)
		}
		cal.HeldOut = true
	}
	const stride = 7 // a pixel sample for the pixel tail
	w, h := t.cfg.InputSize()
	// score scores the cached images idx. Two batches are in flight: one
	// batch's serial parts (reading the cache, the maps' bookkeeping)
	// run while the other's search keeps the cores busy.
	score := func(idx []int) calBatch {
		maps, err := t.batch(idx)
		if err != nil {
			return calBatch{err: err}
		}
		set := t.search
		if ix != nil {
			rows := make([]int, len(idx))
			for i, k := range idx {
				rows[i] = int(t.image(k))
			}
			set = leaveOut{Index: ix, source: source, images: rows, locs: t.locs}
		}
		pix, scores := pixelMaps(ctx, t.d, t.ad, set, sc, w, h, maps)
		t.release(maps)
		return calBatch{idx: idx, pix: pix, scores: scores}
	}
	add := func(b calBatch) {
		for i, pix := range b.pix {
			lo, hi := slices.Min(pix), slices.Max(pix)
			cal.Min, cal.Max = min(cal.Min, float64(lo)), max(cal.Max, float64(hi))
			if t.groups == nil {
				cal.Scores = append(cal.Scores, b.scores[i])
			} else {
				// A tile: its image's score is the highest of its tiles'.
				g := t.groups[b.idx[i]]
				if len(cal.Scores) <= g {
					cal.Scores = append(cal.Scores, math.Inf(-1))
				}
				cal.Scores[g] = max(cal.Scores[g], b.scores[i])
			}
			for i := 0; i < len(pix); i += stride {
				pixels = append(pixels, float64(pix[i]))
			}
		}
		t.progress(Progress{Stage: StageCalibrate, Epoch: 1, Epochs: 1, Step: b.idx[len(b.idx)-1] + 1, Steps: n})
	}
	var pending chan calBatch
	for lo := 0; lo < n || pending != nil; lo += t.cfg.BackboneBatch {
		var next chan calBatch
		if lo < n && ctx.Err() == nil {
			next = make(chan calBatch, 1)
			idx := seq(lo, min(lo+t.cfg.BackboneBatch, n))
			go func() { next <- score(idx) }()
		}
		if pending != nil {
			b := <-pending
			if b.err != nil {
				if next != nil {
					<-next
				}
				return cal, b.err
			}
			add(b)
		}
		pending = next
	}
	if err := ctx.Err(); err != nil {
		return cal, err
	}
	if math.IsNaN(cal.Min) || math.IsInf(cal.Max, 0) || math.IsInf(cal.Min, 0) {
		return cal, fmt.Errorf("anomnet: calibration: training scores are not finite")
	}
	slices.Sort(cal.Scores)
	if len(caps) > 0 {
		cal.BaselineCap = float64(slices.Max(caps))
	}
	cal.PixelTail = pixelTail(pixels)
	_, err := cal.setRate(t.cfg.FalseAlarms, t.cfg.ImageThreshold, t.cfg.PixelThreshold)
	return cal, err
}
