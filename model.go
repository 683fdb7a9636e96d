package anomnet

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/org/anomnet/centroid"
	"github.com/org/anomnet/internal/tensor"
)

// ErrNotFitted is returned by Predict, Save and the other methods that need
// a trained model, before Fit or Load.
var ErrNotFitted = errors.New("anomnet: the model is not fitted; call Fit or Load first")

// Model is an AnomNet anomaly detector: a frozen backbone, the trained
// adapter and centroids, and the calibration of its scores. Create one with
// New and train it with Fit, or Load a saved one. After that, Predict and
// PredictBatch are safe for concurrent use by many goroutines.
type Model struct {
	cfg Config
	bb  Backbone
	dev Device

	mu       sync.RWMutex // Fit and SetThresholds write; the rest read
	fitted   bool
	channels []int    // per tap
	sizes    [][2]int // per tap, at the crop size
	ad       Adapter
	set      CentroidSet
	delta    float64
	cal      Calibration
	fitTime  time.Time // when Fit finished (zero: a file from before it was kept)
}

// New returns an untrained model that uses backbone bb on the default
// Device, with cfg's settings (zero fields take DefaultConfig's values).
func New(bb Backbone, cfg Config) (*Model, error) {
	if bb == nil {
		return nil, errors.New("anomnet: New without a backbone")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Model{cfg: cfg, bb: bb, dev: tensor.Default()}, nil
}

// FitTime returns when the model's Fit finished, as its file records it
// (UTC, to the second); the zero time for an unfitted model or a file
// saved before anomnet kept it. With $SOURCE_DATE_EPOCH set (a Unix time,
// the reproducible-builds convention) Fit records that time instead, so
// that the same data and Config give the same file byte for byte.
func (m *Model) FitTime() time.Time {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.fitTime
}

// Config returns the model's settings, defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// Backbone returns the model's backbone.
func (m *Model) Backbone() Backbone { return m.bb }

// Adapter returns the trained adapter (nil before Fit or Load).
func (m *Model) Adapter() Adapter {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ad
}

// Centroids returns the trained centroids (nil before Fit or Load).
func (m *Model) Centroids() CentroidSet {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.set
}

// Scorer returns the scorer that Predict uses: Config.Scorer, or the
// NearestScorer of the model's crop size and blur.
func (m *Model) Scorer() Scorer {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.scorer()
}

// SetScorer makes Predict score with s from now on (nil: the default
// NearestScorer), for example on a loaded model, whose file does not keep
// a program's scorer. The calibration and thresholds stay those measured
// with the scorer of Fit: set new ones with SetThresholds if s scores on
// another scale.
func (m *Model) SetScorer(s Scorer) {
	m.mu.Lock()
	m.cfg.Scorer = s
	m.mu.Unlock()
}

// Calibration returns the score range of the normal training images and
// the thresholds in use.
func (m *Model) Calibration() Calibration {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cal
}

// SetThresholds replaces the image and pixel thresholds (raw score units).
func (m *Model) SetThresholds(image, pixel float64) {
	m.mu.Lock()
	m.cal.ImageThreshold, m.cal.PixelThreshold = image, pixel
	m.mu.Unlock()
}

// Delta returns the separation threshold that training used.
func (m *Model) Delta() float64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.delta
}

// Prepared marks an image that is already resized and cropped as the
// model's Config says, such as the Image of a dataset.Loader item loaded
// with Config.Preprocess: Fit and Predict pass it to the backbone as
// it is instead of preprocessing it again.
type Prepared struct{ *image.RGBA }

// InputSize returns the size of what the backbone sees of an image, and
// of its map: the crop, the full input's frame (once set) or a tile.
func (c Config) InputSize() (w, h int) {
	if c.Input == InputTile {
		return c.TileSize, c.TileSize
	}
	return c.Preprocess().Size()
}

// preprocess resizes and crops images as cfg says; errors number the
// images from first. In the tiled input images are tiles already.
func preprocess(cfg Config, imgs []image.Image, first int) ([]image.Image, error) {
	pre := cfg.Preprocess()
	out := make([]image.Image, len(imgs))
	for i, img := range imgs {
		if err := checkInput(cfg, img, first+i); err != nil {
			return nil, err
		}
		if p, ok := img.(Prepared); ok {
			out[i] = p.RGBA
			continue
		}
		out[i] = pre.Image(img)
	}
	return out, nil
}

// checkInput returns an error, naming image i, for an image that Predict
// cannot take: a prepared one of neither the frame's size nor the turned
// frame's (where cfg turns), or one that checkImage refuses.
func checkInput(cfg Config, img image.Image, i int) error {
	if p, ok := img.(Prepared); ok {
		w, h := cfg.InputSize()
		if b := p.Bounds(); (b.Dx() != w || b.Dy() != h) && !turnsInput(cfg, img) {
			return fmt.Errorf("anomnet: prepared image %d is %dx%d, the model's input is %dx%d", i, b.Dx(), b.Dy(), w, h)
		}
		return nil
	}
	return checkImage(cfg, img, i)
}

// turnsInput reports whether cfg's frame turns img (dataset.Preprocess.
// Turns): an image that lies the other way from the frame, or a Prepared
// one of the turned frame's size.
func turnsInput(cfg Config, img image.Image) bool {
	b := img.Bounds()
	if _, ok := img.(Prepared); ok {
		if w, h := cfg.InputSize(); b.Dx() != h || b.Dy() != w {
			return false
		}
	}
	return cfg.Preprocess().Turns(b.Dx(), b.Dy())
}

// checkImage returns an error, naming image i, for an image that is nil,
// empty or over cfg's pixel cap.
func checkImage(cfg Config, img image.Image, i int) error {
	if img == nil {
		return fmt.Errorf("anomnet: image %d is nil", i)
	}
	b := img.Bounds()
	if b.Empty() {
		return fmt.Errorf("anomnet: image %d is empty", i)
	}
	if px := int64(b.Dx()) * int64(b.Dy()); px > int64(cfg.MaxPixels) {
		return fmt.Errorf("anomnet: image %d is %dx%d = %d pixels, over the cap of %d (Config.MaxPixels)",
			i, b.Dx(), b.Dy(), px, cfg.MaxPixels)
	}
	return nil
}

// backboneMaps preprocesses images as cfg says (numbered from first in
// errors), runs them through the backbone and checks the maps against what
// the model was trained with (when it was).
func (m *Model) backboneMaps(ctx context.Context, cfg Config, raw []image.Image, first int) ([]*Tensor, []bool, error) {
	var imgs []image.Image
	var err error
	pprof.Do(ctx, pprof.Labels("stage", "preprocess"), func(context.Context) {
		imgs, err = preprocess(cfg, raw, first)
	})
	if err != nil {
		return nil, nil, err
	}
	// Images resized to the turned frame (dataset.Preprocess.Turns) go
	// through the backbone apart, upright; their maps are then turned a
	// quarter turn into the frame's layout.
	w, h := cfg.InputSize()
	var turned []bool
	var plain, turn []image.Image
	for i, img := range imgs {
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			if turned == nil {
				turned = make([]bool, len(imgs))
			}
			turned[i] = true
			turn = append(turn, img)
		} else {
			plain = append(plain, img)
		}
	}
	forward := func(imgs []image.Image) (maps []*Tensor) {
		var x *Tensor
		pprof.Do(ctx, pprof.Labels("stage", "preprocess"), func(context.Context) {
			x, err = m.bb.Input(imgs...)
		})
		if err != nil {
			return nil
		}
		pprof.Do(ctx, pprof.Labels("stage", "backbone"), func(context.Context) {
			xd := m.dev.FromHost(x)
			maps, err = m.bb.Forward(m.dev, xd, m.cfg.Taps...)
			m.dev.Free(xd)
		})
		return maps
	}
	var maps []*Tensor
	if turned == nil {
		maps = forward(imgs)
	} else {
		var pm, tm []*Tensor
		if len(plain) > 0 {
			pm = forward(plain)
		}
		if err == nil {
			tm = forward(turn)
		}
		if err == nil {
			maps = m.mergeTurned(pm, tm, turned)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if m.channels != nil {
		for i, t := range maps {
			if t.Dim(1) != m.channels[i] || t.Dim(2) != m.sizes[i][0] || t.Dim(3) != m.sizes[i][1] {
				return nil, nil, fmt.Errorf("anomnet: backbone tap %s gives %v, the model was trained on %d x %d x %d",
					m.cfg.Taps[i], t.Shape(), m.channels[i], m.sizes[i][0], m.sizes[i][1])
			}
		}
	}
	return maps, turned, nil
}

// mergeTurned returns the maps of a batch from those of its plain images
// (plain, none where nil) and of its turned ones (turn, upright), in the
// batch's order (turned), each turned image's maps turned a quarter turn
// clockwise into the frame's layout; it frees plain and turn.
func (m *Model) mergeTurned(plain, turn []*Tensor, turned []bool) []*Tensor {
	out := make([]*Tensor, len(turn))
	for k, t := range turn {
		tt := moveToHost(m.dev, t).Float32s()
		var pt []float32
		if plain != nil {
			pt = moveToHost(m.dev, plain[k]).Float32s()
		}
		c, uh, uw := t.Dim(1), t.Dim(2), t.Dim(3) // upright: uh x uw
		o := tensor.New(len(turned), c, uw, uh)
		os := o.Float32s()
		plane := uh * uw
		pi, ti := 0, 0
		for i, tu := range turned {
			dst := os[i*c*plane : (i+1)*c*plane]
			if !tu {
				copy(dst, pt[pi*c*plane:(pi+1)*c*plane])
				pi++
				continue
			}
			src := tt[ti*c*plane : (ti+1)*c*plane]
			for ch := range c {
				turnPlane(dst[ch*plane:(ch+1)*plane], src[ch*plane:(ch+1)*plane], uh, uw)
			}
			ti++
		}
		out[k] = moveFromHost(m.dev, o)
	}
	return out
}

// turnPlane writes to dst (w x h) the h x w plane src turned a quarter turn
// clockwise, as dataset turns images: src's (x, y) goes to (h-1-y, x).
func turnPlane(dst, src []float32, h, w int) {
	for y := range h {
		for x, v := range src[y*w : (y+1)*w] {
			dst[x*h+h-1-y] = v
		}
	}
}

// unturnPlane writes to dst (w x h) the h x w plane src turned a quarter
// turn counterclockwise: turnPlane's inverse.
func unturnPlane(dst, src []float32, h, w int) {
	for y := range h {
		for x := range w {
			dst[(w-1-x)*h+y] = src[y*w+x]
		}
	}
}

// pruneFrom is the number of centroids from which a model searches them
// through a centroid.Index: below it the brute-force GEMM is as fast.
const pruneFrom = 2048

// search returns the centroid search a fitted model scores with: set
// itself, or from pruneFrom centroids on, the pruning Index over it
// (exact too), over basis when one is given (a saved Index's, as Load
// reads it) and otherwise over a subspace found from the centroids.
func search(d Device, set *centroid.Set, basis []float32) CentroidSet {
	switch {
	case set.K() < pruneFrom:
		return set
	case basis != nil:
		return centroid.NewIndexBasis(d, set, basis)
	}
	return centroid.NewIndex(d, set, rand.New(rand.NewPCG(uint64(set.K()), 0x696e646578)))
}

// scorer returns Config.Scorer, or the default NearestScorer.
func (m *Model) scorer() Scorer {
	sc := configScorer(m.cfg)
	if ns, ok := sc.(*NearestScorer); ok && m.cfg.Scorer == nil && m.cfg.MapBaseline == BaselineCapped {
		ns.Cap = m.cal.BaselineCap
	}
	return sc
}

// configScorer is cfg's Scorer, or the NearestScorer of its crop size and
// blur.
func configScorer(cfg Config) Scorer {
	if cfg.Scorer != nil {
		return cfg.Scorer
	}
	sc := &NearestScorer{Sigma: cfg.Sigma, ImageSigma: cfg.ImageSigma, Grid: cfg.ImageScore == ScoreGrid, Power: cfg.MapPower}
	switch cfg.Input {
	case InputFull:
		sc.Width, sc.Height = cfg.Width, cfg.Height
	case InputTile:
		sc.Size = cfg.TileSize
	default:
		sc.Size = cfg.Crop
	}
	if cfg.MapBaseline == BaselineMedian || cfg.MapBaseline == BaselineCapped {
		sc.Baseline = 0.5
	}
	return sc
}

// Predict scores one image.
func (m *Model) Predict(img image.Image) (Result, error) {
	rs, err := m.PredictBatch(context.Background(), []image.Image{img})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// PredictBatch scores images, BackboneBatch at a time (in the tiled
// input, one image at a time, BackboneBatch tiles at a time).
func (m *Model) PredictBatch(ctx context.Context, imgs []image.Image) ([]Result, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.fitted {
		return nil, ErrNotFitted
	}
	if m.cfg.Input == InputTile {
		out := make([]Result, 0, len(imgs))
		for i, img := range imgs {
			r, err := m.predictTiled(ctx, img, i)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	out := make([]Result, len(imgs))
	w, h := m.cfg.InputSize()
	for i, img := range imgs {
		// Checked here, numbered as given, before the batches are formed.
		if err := checkInput(m.cfg, img, i); err != nil {
			return nil, fmt.Errorf("anomnet: predicting image %d: %w", i, err)
		}
	}
	// Images that lie the other way from the frame are batched together,
	// after the others, so that a batch runs the backbone once; the
	// results come back in the given order.
	order := m.byOrientation(imgs)
	batch := make([]image.Image, 0, m.cfg.BackboneBatch)
	for lo := 0; lo < len(imgs); lo += m.cfg.BackboneBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+m.cfg.BackboneBatch, len(imgs))
		batch = batch[:0]
		for _, i := range order[lo:hi] {
			batch = append(batch, imgs[i])
		}
		maps, turned, err := m.backboneMaps(ctx, m.cfg, batch, lo)
		if err != nil {
			return nil, fmt.Errorf("anomnet: predicting images %v: %w", order[lo:hi], err)
		}
		pix, scores := m.pixelMaps(ctx, maps)
		pprof.Do(ctx, pprof.Labels("stage", "masks"), func(context.Context) {
			for i, k := range order[lo:hi] {
				if turned != nil && turned[i] {
					// Back upright: h wide, w tall.
					up := make([]float32, len(pix[i]))
					unturnPlane(up, pix[i], h, w)
					out[k] = m.result(up, h, w, scores[i])
					continue
				}
				out[k] = m.result(pix[i], w, h, scores[i])
			}
		})
	}
	return out, nil
}

// byOrientation returns the indices of imgs (checked by checkInput),
// those that the model's frame turns (turnsInput) after the others, each
// group in its order.
func (m *Model) byOrientation(imgs []image.Image) []int {
	var plain, turned []int
	for i, img := range imgs {
		if turnsInput(m.cfg, img) {
			turned = append(turned, i)
		} else {
			plain = append(plain, i)
		}
	}
	return append(plain, turned...)
}

// pixelMaps adapts and scores backbone maps, freeing them, and returns
// one host pixel map and one score per image.
func (m *Model) pixelMaps(ctx context.Context, maps []*Tensor) ([][]float32, []float64) {
	w, h := m.cfg.InputSize()
	return pixelMaps(ctx, m.dev, m.ad, m.set, m.scorer(), w, h, maps)
}

// rowsAdapter is an Adapter that gives F's rows directly
// (adapter.Adapter.Rows).
type rowsAdapter interface {
	Rows(d Device, maps []*Tensor, buf []float32) (rows *Tensor, h, w int)
}

// rowsBuffer returns recycled memory (getBuffer) for the rows of F for
// maps on the CPU, nil on another device: the batch times the largest
// map's locations times dim values, at least what the adapter's grid needs
// where that grid is the largest tapped map (the default; otherwise the
// adapter allocates).
func rowsBuffer(d Device, maps []*Tensor, dim int) []float32 {
	if _, cpu := d.(tensor.CPU); !cpu {
		return nil
	}
	locs := 0
	for _, m := range maps {
		locs = max(locs, m.Dim(2)*m.Dim(3))
	}
	return getBuffer(maps[0].Dim(0) * locs * dim)
}

// pixelMaps runs backbone maps through the adapter ad and the scorer sc
// with the centroids set on d, freeing them, and returns one host pixel
// map (w x h) and one score per image: what Predict and the
// calibration after training share. The work is labelled for the CPU
// profiler (stage adapter, score).
func pixelMaps(ctx context.Context, d Device, ad Adapter, set CentroidSet, sc Scorer, w, h int, maps []*Tensor) ([][]float32, []float64) {
	var f, rows *Tensor
	var fh, fw int
	ra, hasRows := ad.(rowsAdapter)
	ns, nearest := sc.(*NearestScorer)
	pprof.Do(ctx, pprof.Labels("stage", "adapter"), func(context.Context) {
		if hasRows && nearest {
			// The rows at once, without F's maps.
			rows, fh, fw = ra.Rows(d, maps, rowsBuffer(d, maps, ad.Dim()))
		} else {
			f = ad.Forward(d, maps)
		}
		for _, t := range maps {
			d.Free(t)
		}
	})
	var pix, host *Tensor
	var scores []float64
	pprof.Do(ctx, pprof.Labels("stage", "score"), func(context.Context) {
		if rows != nil {
			pix, scores = ns.scoreRows(d, set, rows, rows.Dim(0)/(fh*fw), fh, fw)
			if rows.IsHost() {
				putBuffer(rows.Float32s())
			}
		} else {
			pix, scores = sc.Score(d, set, f)
			d.Free(f)
		}
		host = moveToHost(d, pix)
	})
	all := host.Float32s()
	n, s := pix.Dim(0), w*h
	if len(all) != n*s || len(scores) != n {
		panic(fmt.Sprintf("anomnet: the scorer returned maps %v and %d scores for %d images of %dx%d", pix.Shape(), len(scores), n, w, h))
	}
	out := make([][]float32, n)
	for i := range n {
		out[i] = all[i*s : (i+1)*s : (i+1)*s]
	}
	return out, scores
}

// result turns a pixel map and an image score into a Result with the
// model's thresholds.
func (m *Model) result(pix []float32, w, h int, score float64) Result {
	r := Result{Map: pix, Width: w, Height: h, Mask: make([]bool, len(pix)), Score: score}
	if w == h {
		r.Size = w
	}
	r.Anomalous = r.Score > m.cal.ImageThreshold
	for i, v := range pix {
		r.Mask[i] = float64(v) > m.cal.PixelThreshold
	}
	return r
}
