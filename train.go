package anomnet

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/centroid"
	"github.com/org/anomnet/contrastive"
	"github.com/org/anomnet/internal/tensor"
)

// initSampleRows is how many feature vectors initialisation keeps to
// measure delta and to seed k-means++.
const initSampleRows = 16384

// Fit trains the model on images of normal parts: backbone features once
// per image, centroid initialisation, stage 1 and stage 2 (or the ablation
// the Config selects), then the calibration of scores on the same images.
// It reports progress through Config.Progress and stops early, returning
// ctx's error, when ctx is cancelled. On error the model keeps its
// previous state.
func (m *Model) Fit(ctx context.Context, images []image.Image) error {
	if len(images) == 0 {
		return errors.New("anomnet: Fit without images")
	}
	sizes := make([]image.Point, 0, len(images))
	for _, img := range images {
		if img != nil {
			sizes = append(sizes, img.Bounds().Size())
		}
	}
	// The input, where it is auto, and the full input's frame, where none
	// is set: from these images.
	cfg := m.cfg.Frame(sizes)
	t := &trainer{m: m, cfg: cfg, d: m.dev, rng: rand.New(rand.NewPCG(m.cfg.Seed, 0x616e6f6d6e6574))}
	defer t.close()
	// Each step is labelled for the CPU profiler (fit: features, init,
	// train, refresh, index, calibrate).
	step := func(name string, f func(context.Context) error) error {
		var err error
		pprof.Do(ctx, pprof.Labels("fit", name), func(ctx context.Context) { err = f(ctx) })
		return err
	}
	n, get := len(images), func(lo, hi int) []image.Image { return images[lo:hi] }
	if cfg.Input == InputTile {
		src, groups, err := newTileSource(cfg, images)
		if err != nil {
			return err
		}
		n, get, t.groups = src.Len(), src.get, groups
	}
	if err := step("features", func(ctx context.Context) error { return t.extract(ctx, n, get) }); err != nil {
		return err
	}
	if err := step("init", t.init); err != nil {
		return err
	}
	for _, p := range m.cfg.Plans() {
		if err := step("train", func(ctx context.Context) error { return t.stage(ctx, p) }); err != nil {
			return err
		}
	}
	if err := step("refresh", t.refresh); err != nil {
		return err
	}
	step("index", func(context.Context) error { t.search = search(t.d, t.set, nil); return nil })
	var cal Calibration
	if err := step("calibrate", func(ctx context.Context) (err error) { cal, err = t.calibrate(ctx); return err }); err != nil {
		return err
	}
	m.mu.Lock()
	m.cfg.Input, m.cfg.Width, m.cfg.Height = cfg.Input, cfg.Width, cfg.Height
	m.fitted, m.channels, m.sizes, m.fitTime = true, t.channels, t.sizes, fitTime()
	m.ad, m.set, m.delta, m.cal = t.ad, t.search, t.delta, cal
	m.mu.Unlock()
	return nil
}

// fitTime is the time a Fit records: now, to the second, or, for files
// that must come out byte for byte the same from the same data, the Unix
// time in $SOURCE_DATE_EPOCH (the reproducible-builds convention).
func fitTime() time.Time {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

// trainer holds one Fit's state.
type trainer struct {
	m   *Model
	cfg Config
	d   Device
	rng *rand.Rand

	cache    *featureCache
	groups   []int // in the tiled input, the image of each cached tile
	channels []int
	sizes    [][2]int
	offsets  []int // per tap, within a cache record
	rec      []float32
	recMu    sync.Mutex // rec and the cache's reads
	locs     int        // feature vectors (locations) per image
	chosen   []int      // the seeded feature vectors (InitKCenter)

	ad     *adapter.Adapter
	set    *centroid.Set
	search CentroidSet // the trained set's search, for the calibration
	delta  float64
	opt    []adam    // adapter params, then the centroids
	start  []*Tensor // the adapter params at the start (DecayStart)
	step   int
}

func (t *trainer) close() {
	if t.cache != nil {
		t.cache.Close()
	}
}

func (t *trainer) progress(p Progress) {
	if t.cfg.Progress != nil {
		t.cfg.Progress(p)
	}
}

// image returns the training image of cached record k: k itself, or in
// the tiled input the image the tile was cut from.
func (t *trainer) image(k int) int32 {
	if t.groups != nil {
		return int32(t.groups[k])
	}
	return int32(k)
}

// extract runs the backbone over the n images (in the tiled input,
// tiles) that get returns, a batch at a time, once, and caches the maps.
func (t *trainer) extract(ctx context.Context, n int, get func(lo, hi int) []image.Image) error {
	bs := t.cfg.BackboneBatch
	for lo := 0; lo < n; lo += bs {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+bs, n)
		maps, _, err := t.m.backboneMaps(ctx, t.cfg, get(lo, hi), lo)
		if err != nil {
			return fmt.Errorf("anomnet: training images %d to %d: %w", lo, hi-1, err)
		}
		if t.cache == nil {
			record := 0
			for _, mp := range maps {
				t.channels = append(t.channels, mp.Dim(1))
				t.sizes = append(t.sizes, [2]int{mp.Dim(2), mp.Dim(3)})
				t.offsets = append(t.offsets, record)
				record += mp.Dim(1) * mp.Dim(2) * mp.Dim(3)
			}
			t.cache = newFeatureCache(record, t.cfg.CacheBytes, t.cfg.TempDir)
			t.rec = make([]float32, record)
		}
		host := make([][]float32, len(maps))
		for k, mp := range maps {
			host[k] = moveToHost(t.d, mp).Float32s()
		}
		for i := range hi - lo {
			for k := range maps {
				n := t.channels[k] * t.sizes[k][0] * t.sizes[k][1]
				copy(t.rec[t.offsets[k]:], host[k][i*n:(i+1)*n])
			}
			if err := t.cache.Append(t.rec); err != nil {
				return err
			}
		}
		t.progress(Progress{Stage: StageFeatures, Epoch: 1, Epochs: 1, Step: hi, Steps: n})
	}
	return nil
}

// batch returns the cached maps of images idx, on the device, in recycled
// host memory on the CPU: release hands it back.
func (t *trainer) batch(idx []int) ([]*Tensor, error) {
	maps := make([]*Tensor, len(t.channels))
	data := make([][]float32, len(t.channels))
	for k, c := range t.channels {
		h, w := t.sizes[k][0], t.sizes[k][1]
		maps[k] = tensor.FromFloat32s(getBuffer(len(idx)*c*h*w), len(idx), c, h, w)
		data[k] = maps[k].Float32s()
	}
	t.recMu.Lock()
	for j, i := range idx {
		if err := t.cache.Get(i, t.rec); err != nil {
			t.recMu.Unlock()
			return nil, err
		}
		for k := range maps {
			n := t.channels[k] * t.sizes[k][0] * t.sizes[k][1]
			copy(data[k][j*n:(j+1)*n], t.rec[t.offsets[k]:t.offsets[k]+n])
		}
	}
	t.recMu.Unlock()
	_, cpu := t.d.(tensor.CPU)
	for k, mp := range maps {
		maps[k] = moveFromHost(t.d, mp)
		if !cpu {
			putBuffer(data[k]) // copied to the device
		}
	}
	return maps, nil
}

// release hands back the host memory of maps from batch once they are no
// longer used (on the CPU; on another device batch has already).
func (t *trainer) release(maps []*Tensor) {
	if _, cpu := t.d.(tensor.CPU); cpu {
		for _, mp := range maps {
			putBuffer(mp.Float32s())
		}
	}
}

// moveToHost returns t on the host and frees it on d: t itself where d is
// the CPU, whose tensors are host memory already, not a copy.
func moveToHost(d Device, t *Tensor) *Tensor {
	if _, ok := d.(tensor.CPU); ok {
		return t
	}
	h := d.ToHost(t)
	d.Free(t)
	return h
}

// moveFromHost returns the host tensor t on d, which then owns it: t
// itself where d is the CPU.
func moveFromHost(d Device, t *Tensor) *Tensor {
	if _, ok := d.(tensor.CPU); ok {
		return t
	}
	return d.FromHost(t)
}

// rows returns F's feature vectors as rows ((N*H*W) x D).
func (t *trainer) rows(f *Tensor) *Tensor {
	sh := f.Shape()
	r := t.d.Zeros(sh[0]*sh[2]*sh[3], sh[1])
	t.d.ChannelsLast(r, f)
	return r
}

// adaptedRows returns the adapted feature vectors of the cached images idx
// on the host, one row per location ((len(idx)*H*W) x D; recycled memory
// that the caller may hand back with putBuffer), and, when proj
// (D x p, on the device) is given, their projections (len(idx)*H*W x p).
func (t *trainer) adaptedRows(idx []int, proj *Tensor) (rows, z []float32, err error) {
	maps, err := t.batch(idx)
	if err != nil {
		return nil, nil, err
	}
	r, _, _ := t.ad.Rows(t.d, maps, rowsBuffer(t.d, maps, t.ad.Dim()))
	freeAll(t.d, maps)
	t.release(maps)
	if proj != nil {
		zd := t.d.Zeros(r.Dim(0), proj.Dim(1))
		t.d.Gemm(false, false, 1, r, proj, 0, zd)
		z = moveToHost(t.d, zd).Float32s()
	}
	rows = moveToHost(t.d, r).Float32s()
	return rows, z, nil
}

// init builds the adapter and places the centroids: the global mean of the
// initial features plus jitter, k-means++ on a sample of them, or greedy
// farthest-point selection over all of them; it also measures the default
// delta on a sample.
func (t *trainer) init(ctx context.Context) error {
	t.ad = adapter.New(t.d, t.channels, t.cfg.Adapter)
	if p := map[string]float64{TapDims: 0.5, TapChannels: 1}[t.cfg.TapBalance]; p > 0 {
		cmin := slices.Min(t.channels)
		for i, l := range t.ad.Layers {
			t.d.Scale(float32(math.Pow(float64(cmin)/float64(t.channels[i]), p)), l.W)
		}
	}
	dim := t.ad.Dim()
	stats := centroid.NewStats(dim)
	n := t.cache.Len()
	perImage := max(1, initSampleRows/n)
	var sample, z []float32
	var proj *Tensor
	kcenter := t.cfg.Init == InitKCenter
	if kcenter && dim > centroid.ProjectionDim {
		// Features of no more dimensions than the projection are taken
		// as they are.
		proj = t.d.FromHost(tensor.FromFloat32s(centroid.Projection(dim, centroid.ProjectionDim, t.rng), dim, centroid.ProjectionDim))
		defer t.d.Free(proj)
	}
	for lo := 0; lo < n; lo += t.cfg.BackboneBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		idx := seq(lo, min(lo+t.cfg.BackboneBatch, n))
		host, zb, err := t.adaptedRows(idx, proj)
		if err != nil {
			return err
		}
		if err := finite(host); err != nil {
			return fmt.Errorf("anomnet: initial features of training images %d to %d: %w", idx[0], idx[len(idx)-1], err)
		}
		stats.Add(host)
		locs := len(host) / dim / len(idx)
		t.locs = locs
		if kcenter {
			if proj == nil {
				zb = host
			}
			if z == nil {
				z = make([]float32, 0, n*len(zb)/len(idx))
			}
			z = append(z, zb...)
		}
		for j := range idx {
			for _, p := range contrastive.Sample(t.rng, locs, perImage) {
				row := j*locs + int(p)
				sample = append(sample, host[row*dim:(row+1)*dim]...)
			}
		}
		putBuffer(host)
		t.progress(Progress{Stage: StageInit, Epoch: 1, Epochs: 1, Step: idx[len(idx)-1] + 1, Steps: n})
	}
	mean := stats.Mean()
	md := centroid.NewMeanDistance(mean)
	md.Add(sample)
	t.delta = t.cfg.Delta
	if t.delta == 0 {
		t.delta = md.Value()
	}
	k := t.cfg.numCentroids(n * t.locs)
	var c *Tensor
	var err error
	switch t.cfg.Init {
	case InitKMeansPP:
		c, err = centroid.InitKMeansPP(sample, dim, k, t.rng)
	case InitKCenter:
		c, err = t.seedFarthest(ctx, z, k)
	default:
		c = centroid.InitMean(mean, stats.MeanStd(), k, t.cfg.Jitter, t.rng)
	}
	if err != nil {
		return fmt.Errorf("anomnet: %s initialisation: %w", t.cfg.Init, err)
	}
	if kt := t.cfg.TrainK; t.chosen != nil && kt < c.Dim(0) && len(t.cfg.Plans()) > 0 {
		// Training moves the first TrainK seeds, themselves a coarser
		// farthest-point cover; refresh brings back all of them.
		c = tensor.FromFloat32s(c.Float32s()[:kt*dim], kt, dim)
	}
	t.set = centroid.NewSet(t.d.FromHost(c))
	t.optimisers()
	return t.snapshot(StageInit, 0)
}

// optimisers sets up Adam for the adapter's parameters and the centroids,
// and keeps the parameters' start where weight decay pulls towards it.
func (t *trainer) optimisers() {
	for _, p := range t.ad.Params() {
		t.opt = append(t.opt, newAdam(t.d, p))
		if t.cfg.DecayTo == DecayStart {
			t.start = append(t.start, t.d.FromHost(t.d.ToHost(p)))
		}
	}
	t.opt = append(t.opt, newAdam(t.d, t.set.C))
}

// numCentroids is K, or when K is 0 the share KFraction of n feature
// vectors within [KMin, KMax], never more than n.
func (c Config) numCentroids(n int) int {
	if c.K > 0 {
		return c.K
	}
	return min(n, max(c.KMin, min(c.KMax, int(math.Round(c.KFraction*float64(n))))))
}

// snapshotImages and snapshotRows bound the feature sample of a Snapshot.
const (
	snapshotImages = 4
	snapshotRows   = 2048
)

// snapshot reports the centroids and the adapted features of the first
// training images (a fixed subset of their locations) to Config.Snapshot.
func (t *trainer) snapshot(stage Stage, epoch int) error {
	if t.cfg.Snapshot == nil {
		return nil
	}
	rows, _, err := t.adaptedRows(seq(0, min(snapshotImages, t.cache.Len())), nil)
	if err != nil {
		return err
	}
	dim := t.ad.Dim()
	n := len(rows) / dim
	stride := (n + snapshotRows - 1) / snapshotRows
	var feats []float32
	for i := 0; i < n; i += stride {
		feats = append(feats, rows[i*dim:(i+1)*dim]...)
	}
	t.cfg.Snapshot(Snapshot{Stage: stage, Epoch: epoch, D: dim, Centroids: t.d.ToHost(t.set.C).Float32s(), Features: feats})
	return nil
}

// stage runs the epochs of one training stage as its plan says.
func (t *trainer) stage(ctx context.Context, p Plan) error {
	n := t.cache.Len()
	bs := min(t.cfg.BatchSize, n)
	steps := (n + bs - 1) / bs
	order := seq(0, n)
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		t.rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for s := range steps {
			if err := ctx.Err(); err != nil {
				return err
			}
			idx := order[s*bs : min((s+1)*bs, n)]
			l, err := t.trainStep(p, idx)
			if err != nil {
				return fmt.Errorf("anomnet: %s, epoch %d, step %d: %w", string(p.Stage), epoch, s+1, err)
			}
			t.progress(Progress{Stage: p.Stage, Epoch: epoch, Epochs: p.Epochs, Step: s + 1, Steps: steps, Losses: l})
		}
		if p.Centroids {
			if err := t.snapshot(p.Stage, epoch); err != nil {
				return err
			}
		}
	}
	return nil
}

// trainStep computes the plan's losses on one batch, their gradients, and
// takes one Adam step.
func (t *trainer) trainStep(p Plan, idx []int) (Losses, error) {
	maps, err := t.batch(idx)
	if err != nil {
		return Losses{}, err
	}
	return t.stepOn(p, maps)
}

// stepOn is trainStep on a batch's backbone maps, which it frees (and
// hands back, from batch).
func (t *trainer) stepOn(p Plan, maps []*Tensor) (Losses, error) {
	d, cfg := t.d, t.cfg
	tape := &adapter.Tape{}
	defer tape.Free(d)
	f := t.ad.ForwardTape(d, maps, tape)
	freeAll(d, maps)
	t.release(maps)
	rows := t.rows(f)
	defer d.Free(rows)
	dRows := d.Zeros(rows.Shape()...)
	defer d.Free(dRows)

	var dC *Tensor
	if p.Centroids {
		dC = t.opt[len(t.opt)-1].grad
		d.Fill(dC, 0)
	}
	var l Losses
	c := t.set.C
	l.Att = centroid.Attraction(d, rows, c, float32(cfg.LambdaAtt), dRows, dC)
	l.Total = cfg.LambdaAtt * l.Att
	if p.Sep {
		l.Sep = centroid.Separation(d, c, t.delta, float32(cfg.LambdaSep), dC)
		l.Total += cfg.LambdaSep * l.Sep
	}
	if p.Ent {
		l.Ent = centroid.Entropy(d, c, float32(cfg.LambdaEnt), dC)
		l.Total += cfg.LambdaEnt * l.Ent
	}
	if p.Con {
		l.Pos, l.Neg = t.contrastive(rows, dRows)
		l.Total += cfg.LambdaCon * (l.Pos + l.Neg)
	}
	for name, v := range map[string]float64{"attraction": l.Att, "separation": l.Sep, "entropy": l.Ent,
		"contrastive positive": l.Pos, "contrastive negative": l.Neg} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return l, fmt.Errorf("%s loss is %g", name, v)
		}
	}
	df := d.Zeros(f.Shape()...)
	d.ChannelsFirst(df, dRows)
	d.Free(f)
	grads := make([]*Tensor, len(t.ad.Params()))
	for i := range grads {
		grads[i] = t.opt[i].grad
	}
	t.ad.Backward(d, tape, df, grads)
	d.Free(df)
	t.step++
	wd := cfg.WeightDecay
	if t.start != nil {
		// Decay towards the start: the gradient of wd/2 |p - p0|^2.
		for i, p := range t.ad.Params() {
			d.Axpy(float32(wd), p, grads[i])
			d.Axpy(float32(-wd), t.start[i], grads[i])
		}
		wd = 0
	}
	for i, o := range t.opt[:len(grads)] {
		if err := o.step(d, fmt.Sprintf("adapter parameter %d", i), cfg.LR, wd, t.step); err != nil {
			return l, err
		}
	}
	if p.Centroids {
		// No decay for the centroids: it would pull them towards the
		// origin of the feature space, which means nothing there.
		if err := t.opt[len(grads)].step(d, "centroid", cfg.LRCentroids, 0, t.step); err != nil {
			return l, err
		}
	}
	return l, d.Sync()
}

// contrastive adds the weighted CCL gradient of a random sample of rows to
// dRows and returns the positive and negative terms.
func (t *trainer) contrastive(rows, dRows *Tensor) (pos, neg float64) {
	d := t.d
	n, dim := rows.Dim(0), rows.Dim(1)
	pick := contrastive.Sample(t.rng, n, t.cfg.Sample)
	idx := d.FromHost(tensor.FromInt32s(pick, len(pick)))
	defer d.Free(idx)
	sub := d.Zeros(len(pick), dim)
	defer d.Free(sub)
	d.GatherRows(sub, rows, idx)
	labels := d.ZerosInt32(len(pick))
	defer d.Free(labels)
	t.set.Nearest(d, labels, nil, sub)
	dSub := d.Zeros(len(pick), dim)
	defer d.Free(dSub)
	pos, neg = contrastive.Loss(d, sub, labels, t.set.K(), float32(t.cfg.Margin), float32(t.cfg.LambdaCon), dSub)
	d.ScatterAddRows(dRows, dSub, idx)
	return pos, neg
}

func seq(lo, hi int) []int {
	s := make([]int, hi-lo)
	for i := range s {
		s[i] = lo + i
	}
	return s
}

func freeAll(d Device, ts []*Tensor) {
	for _, t := range ts {
		d.Free(t)
	}
}

// finite returns an error for the first NaN or Inf in v.
func finite(v []float32) error {
	// A float32 is NaN or infinite when its exponent bits are all ones:
	// adding one to them carries into the sign bit only then. The scan
	// has no branch per value; the value is looked for only in a block
	// that holds one.
	const exp, one, sign = 0x7f800000, 0x00800000, 0x80000000
	const block = 4096
	for lo := 0; lo < len(v); lo += block {
		b := v[lo:min(lo+block, len(v))]
		var acc uint32
		for _, x := range b {
			acc |= math.Float32bits(x)&exp + one
		}
		if acc&sign == 0 {
			continue
		}
		for i, x := range b {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("value %d is %g", lo+i, x)
			}
		}
	}
	return nil
}
