package anomnet

import (
	"bytes"
	"context"
	"errors"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/metrics"
)

// synthSet is a training set of normal stripes and a test set with
// blotches, made in the test.
type synthSet struct {
	train []image.Image
	test  []image.Image
	masks [][]bool // nil for normal test images
}

func makeSynth(seed uint64, train, good, bad int) synthSet {
	rng := rand.New(rand.NewPCG(seed, 1))
	var s synthSet
	for range train {
		img, _ := stripes(rng, 64, false)
		s.train = append(s.train, img)
	}
	for i := range good + bad {
		img, mask := stripes(rng, 64, i >= good)
		s.test = append(s.test, img)
		if i < good {
			mask = nil
		}
		s.masks = append(s.masks, mask)
	}
	return s
}

// predictEach runs Predict on each image in turn: the sequential results
// that concurrent runs are compared with.
func predictEach(t *testing.T, m *Model, imgs []image.Image) []Result {
	t.Helper()
	out := make([]Result, len(imgs))
	for i, img := range imgs {
		var err error
		out[i], err = m.Predict(img)
		require.NoError(t, err)
	}
	return out
}

func fitTiny(t *testing.T, cfg Config, s synthSet) *Model {
	t.Helper()
	m, err := New(newTinyNet(3), cfg)
	require.NoError(t, err)
	require.NoError(t, m.Fit(context.Background(), s.train))
	return m
}

// TestEndToEnd trains on normal stripes and checks that blotched images
// score higher and that the heatmap peaks on the blotch.
func TestEndToEnd(t *testing.T) {
	s := makeSynth(11, 48, 16, 16)
	m := fitTiny(t, testConfig(), s)
	rs, err := m.PredictBatch(context.Background(), s.test)
	require.NoError(t, err)
	scores := make([]float64, len(rs))
	labels := make([]bool, len(rs))
	inside := 0
	for i, r := range rs {
		scores[i], labels[i] = r.Score, s.masks[i] != nil
		require.Len(t, r.Map, 64*64)
		// The grid's maximum bounds the map's: upsampling and blur average.
		require.GreaterOrEqual(t, r.Score, float64(slices.Max(r.Map))*(1-1e-6))
		if s.masks[i] != nil && s.masks[i][slices.Index(r.Map, slices.Max(r.Map))] {
			inside++
		}
	}
	auroc, err := metrics.AUROC(scores, labels)
	require.NoError(t, err)
	t.Logf("image AUROC %.3f, heatmap maximum inside the blotch for %d of 16", auroc, inside)
	require.Greater(t, auroc, 0.9)
	require.GreaterOrEqual(t, inside, 12)

	cal := m.Calibration()
	require.Less(t, cal.Min, cal.Max)
	require.Greater(t, cal.ImageThreshold, cal.Min)
	detected := 0
	for i, r := range rs {
		if r.Anomalous && s.masks[i] != nil {
			detected++
		}
	}
	require.Greater(t, detected, 8, "the calibrated image threshold flags most blotches")
}

// TestAblationsTrain runs each ablation switch end to end.
func TestAblationsTrain(t *testing.T) {
	s := makeSynth(12, 16, 4, 4)
	for name, mod := range map[string]func(*Config){
		"single stage":           func(c *Config) { c.SingleStage = true },
		"single stage no con":    func(c *Config) { c.SingleStage, c.NoCon = true, true },
		"no stage 2":             func(c *Config) { c.NoStage2 = true },
		"attraction only":        func(c *Config) { c.NoSep, c.NoEnt = true, true },
		"k-means++, 3x3, nopool": func(c *Config) { c.Init, c.Adapter.Kernel, c.Adapter.NoPool = InitKMeansPP, 3, true },
		"k-center":               func(c *Config) { c.Init = InitKCenter },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Epochs1, cfg.Epochs2 = 1, 1
			mod(&cfg)
			var stages []Stage
			cfg.Progress = func(p Progress) {
				if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
					stages = append(stages, p.Stage)
				}
			}
			m := fitTiny(t, cfg, s)
			want := []Stage{StageFeatures, StageInit, Stage1, Stage2, StageCalibrate}
			switch {
			case cfg.SingleStage:
				want = []Stage{StageFeatures, StageInit, StageJoint, StageCalibrate}
			case cfg.NoStage2:
				want = []Stage{StageFeatures, StageInit, Stage1, StageCalibrate}
			}
			if cfg.Init == InitKCenter {
				want = slices.Insert(want, 2, StageSeed)
			}
			require.Equal(t, want, stages)
			_, err := m.Predict(s.test[0])
			require.NoError(t, err)
		})
	}
}

// TestFitDeterministic: one seed, one model.
func TestFitDeterministic(t *testing.T) {
	// The file records the fit's time: $SOURCE_DATE_EPOCH pins it.
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	s := makeSynth(13, 16, 2, 2)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	var files [2][]byte
	for i := range files {
		var buf bytes.Buffer
		require.NoError(t, fitTiny(t, cfg, s).Save(&buf))
		files[i] = buf.Bytes()
	}
	require.Equal(t, files[0], files[1])
	l, err := Load(bytes.NewReader(files[0]), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, time.Unix(1700000000, 0).UTC(), l.FitTime())
}

func TestSaveLoad(t *testing.T) {
	s := makeSynth(14, 16, 3, 3)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	m := fitTiny(t, cfg, s)
	path := filepath.Join(t.TempDir(), "model.anm")
	require.NoError(t, m.SaveFile(path))

	l, err := LoadFile(path, newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, m.Calibration(), l.Calibration())
	require.Equal(t, m.Delta(), l.Delta())
	for _, img := range s.test {
		a, err := m.Predict(img)
		require.NoError(t, err)
		b, err := l.Predict(img)
		require.NoError(t, err)
		require.Equal(t, a, b, "bit-identical after Save and Load")
	}

	good, err := os.ReadFile(path)
	require.NoError(t, err)
	_, err = Load(bytes.NewReader(good), newTinyNet(4))
	require.ErrorContains(t, err, "trained with backbone tiny")

	for _, tc := range []struct {
		name string
		bad  []byte
	}{
		{"empty", nil},
		{"truncated header", good[:20]},
		{"truncated tensors", good[:len(good)/2]},
		{"no checksum", good[:len(good)-32]},
		{"trailing data", append(slices.Clone(good), 0)},
		{"not a model", []byte("PNG\x89 certainly not a model file, but long enough to read")},
	} {
		_, err := Load(bytes.NewReader(tc.bad), newTinyNet(3))
		require.ErrorIs(t, err, ErrCorrupt, tc.name)
		t.Logf("%s: %v", tc.name, err)
	}
	// Flip one bit anywhere: header, tensors or checksum.
	for _, at := range []int{10, 40, len(good) / 2, len(good) - 40, len(good) - 1} {
		bad := slices.Clone(good)
		bad[at] ^= 0x10
		_, err := Load(bytes.NewReader(bad), newTinyNet(3))
		require.Error(t, err, "bit flip at %d", at)
		t.Logf("bit flip at byte %d of %d: %v", at, len(good), err)
	}

	_, err = LoadFile(filepath.Join(t.TempDir(), "missing.anm"), newTinyNet(3))
	require.ErrorContains(t, err, "missing.anm")
	require.NoError(t, os.WriteFile(path, good[:100], 0o644))
	_, err = LoadFile(path, newTinyNet(3))
	require.ErrorContains(t, err, path)
}

func TestSaveFileKeepsOldOnFailure(t *testing.T) {
	m, err := New(newTinyNet(3), testConfig())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "model.anm")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	require.ErrorIs(t, m.SaveFile(path), ErrNotFitted)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "old", string(got))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
}

// TestConcurrentPredict runs Predict from many goroutines (run it with
// -race) and compares with sequential results.
func TestConcurrentPredict(t *testing.T) {
	s := makeSynth(15, 16, 4, 4)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	m := fitTiny(t, cfg, s)
	want := predictEach(t, m, s.test)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 {
				i := (g + k) % len(s.test)
				r, err := m.Predict(s.test[i])
				if err == nil && !slices.Equal(r.Map, want[i].Map) {
					err = errors.New("concurrent Predict differs from sequential")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestFitCancel(t *testing.T) {
	s := makeSynth(16, 16, 0, 0)
	cfg := testConfig()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Progress = func(p Progress) {
		if p.Stage == "stage1" {
			cancel()
		}
	}
	m, err := New(newTinyNet(3), cfg)
	require.NoError(t, err)
	require.ErrorIs(t, m.Fit(ctx, s.train), context.Canceled)
	_, err = m.Predict(s.train[0])
	require.ErrorIs(t, err, ErrNotFitted)
}

func TestFitGuards(t *testing.T) {
	s := makeSynth(17, 16, 0, 0)
	nan := newTinyNet(3)
	nan.NaN = true
	m, err := New(nan, testConfig())
	require.NoError(t, err)
	require.ErrorContains(t, m.Fit(context.Background(), s.train), "initial features of training images 0 to 7: value 0 is NaN")

	cfg := testConfig()
	cfg.LR = 1e36 // the first Adam step sends the weights to ~1e36: features overflow
	m, err = New(newTinyNet(3), cfg)
	require.NoError(t, err)
	err = m.Fit(context.Background(), s.train)
	require.Error(t, err)
	require.Regexp(t, `^anomnet: stage1, epoch \d+, step \d+: [a-z ]+ (loss is (NaN|[+-]Inf)|gradient is not finite)$`, err.Error())

	require.ErrorContains(t, m.Fit(context.Background(), nil), "without images")
	_, err = New(newTinyNet(3), Config{K: -1})
	require.ErrorContains(t, err, "K = -1")
	_, err = New(newTinyNet(3), Config{Init: "kmeans"})
	require.ErrorContains(t, err, `centroid initialisation "kmeans"`)
	_, err = New(nil, DefaultConfig())
	require.Error(t, err)
}

// TestFeatureCacheSpills trains with a cache budget of two images: the
// model must not change.
func TestFeatureCacheSpills(t *testing.T) {
	// The file records the fit's time: $SOURCE_DATE_EPOCH pins it, so that
	// two fits a second apart still compare byte for byte.
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	s := makeSynth(18, 16, 2, 2)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	var a, b bytes.Buffer
	require.NoError(t, fitTiny(t, cfg, s).Save(&a))
	cfg.CacheBytes = 2 * (16*16*16 + 32*8*8) * 4
	cfg.TempDir = t.TempDir()
	require.NoError(t, fitTiny(t, cfg, s).Save(&b))
	require.Equal(t, a.Bytes(), b.Bytes())
	entries, err := os.ReadDir(cfg.TempDir)
	require.NoError(t, err)
	require.Empty(t, entries, "the spill file is removed")
}

func TestFeatureCache(t *testing.T) {
	c := newFeatureCache(3, 8, t.TempDir()) // room for none in memory (12 bytes each)
	c2 := newFeatureCache(3, 24, t.TempDir())
	for i := range 5 {
		rec := []float32{float32(i), float32(i) + 0.5, -float32(i)}
		require.NoError(t, c.Append(rec))
		require.NoError(t, c2.Append(rec))
	}
	require.Equal(t, 5, c.Spilled())
	require.Equal(t, 3, c2.Spilled())
	for i := range 5 {
		got := make([]float32, 3)
		require.NoError(t, c.Get(i, got))
		require.Equal(t, []float32{float32(i), float32(i) + 0.5, -float32(i)}, got)
		require.NoError(t, c2.Get(i, got))
		require.Equal(t, []float32{float32(i), float32(i) + 0.5, -float32(i)}, got)
	}
	require.NoError(t, c.Close())
	require.NoError(t, c2.Close())
}

func TestSnapshots(t *testing.T) {
	s := makeSynth(19, 8, 0, 0)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 2, 1
	var snaps []Snapshot
	cfg.Snapshot = func(s Snapshot) { snaps = append(snaps, s) }
	m := fitTiny(t, cfg, s)
	require.Len(t, snaps, 3)
	for i, sn := range snaps {
		require.Equal(t, i, sn.Epoch)
		require.Equal(t, 48, sn.D)
		require.Len(t, sn.Centroids, cfg.K*48)
		require.Len(t, sn.Features, 4*16*16*48)
	}
	require.Equal(t, StageInit, snaps[0].Stage)
	require.Equal(t, Stage1, snaps[2].Stage)
	require.NotEqual(t, snaps[0].Centroids, snaps[2].Centroids, "the centroids moved")
	require.Equal(t, m.Centroids().D(), 48)
}

// offsetScorer is NearestScorer with every image score moved by off, so
// that a test can tell whose scores a Model used.
type offsetScorer struct {
	NearestScorer
	off   float64
	calls *atomic.Int64
}

func (s offsetScorer) Score(d Device, set CentroidSet, f *Tensor) (*Tensor, []float64) {
	s.calls.Add(1)
	maps, scores := s.NearestScorer.Score(d, set, f)
	for i := range scores {
		scores[i] += s.off
	}
	return maps, scores
}

// TestCustomScorer plugs a Scorer in through Config.Scorer (calibration
// and Predict use it) and Model.SetScorer (on a loaded model).
func TestCustomScorer(t *testing.T) {
	s := makeSynth(17, 16, 2, 2)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	plain := fitTiny(t, cfg, s)
	var calls atomic.Int64
	def := *configScorer(cfg).(*NearestScorer) // what the plain model scores with
	cfg.Scorer = offsetScorer{def, 100, &calls}
	m := fitTiny(t, cfg, s)
	require.Positive(t, calls.Load(), "Fit's calibration did not use Config.Scorer")
	require.InDelta(t, plain.Calibration().ImageThreshold+100, m.Calibration().ImageThreshold, 1e-9)
	require.Equal(t, plain.Calibration().PixelThreshold, m.Calibration().PixelThreshold)
	want := predictEach(t, plain, s.test)
	got := predictEach(t, m, s.test)
	for i := range got {
		require.Equal(t, want[i].Map, got[i].Map)
		require.Equal(t, want[i].Score+100, got[i].Score)
	}
	_, isOffset := m.Scorer().(offsetScorer)
	require.True(t, isOffset)

	// A saved model does not keep the scorer: Load gives the default,
	// SetScorer plugs it in again.
	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	l, err := Load(&buf, newTinyNet(3))
	require.NoError(t, err)
	_, isNearest := l.Scorer().(*NearestScorer)
	require.True(t, isNearest)
	require.Equal(t, want[0].Score, predictEach(t, l, s.test[:1])[0].Score)
	l.SetScorer(offsetScorer{def, 100, &calls})
	require.Equal(t, want[0].Score+100, predictEach(t, l, s.test[:1])[0].Score)
}

// TestMapPower checks NearestScorer.Power against the plain distances, and
// that Config.MapPower is what a fitted and a loaded model score with; a
// file written before the setting existed scores plain distances.
func TestMapPower(t *testing.T) {
	s := makeSynth(23, 16, 2, 2)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2, cfg.MapBaseline = 0, 0, BaselineNone
	m := fitTiny(t, cfg, s)
	grid := func(p float64) []Result {
		m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: cfg.Sigma, Grid: true, Power: p})
		return predictEach(t, m, s.test)
	}
	plain, sq, root := grid(1), grid(2), grid(0.5)
	for i := range plain {
		d := plain[i].Score
		require.Positive(t, d)
		require.InEpsilon(t, d*d, sq[i].Score, 1e-6, "image %d", i)
		require.InEpsilon(t, math.Sqrt(d), root[i].Score, 1e-6, "image %d", i)
		require.NotEqual(t, plain[i].Map, sq[i].Map)
	}
	require.Equal(t, DefaultConfig().MapPower, m.Config().MapPower, "the default")

	cfg.MapPower = 2
	m2 := fitTiny(t, cfg, s)
	got := predictEach(t, m2, s.test)
	m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: cfg.Sigma, Power: 2})
	want := predictEach(t, m, s.test)
	for i := range got {
		require.Equal(t, want[i].Map, got[i].Map)
	}
	var buf bytes.Buffer
	require.NoError(t, m2.Save(&buf))
	l, err := Load(bytes.NewReader(buf.Bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, 2.0, l.Config().MapPower)
	require.Equal(t, got[0].Map, predictEach(t, l, s.test[:1])[0].Map)

	// Without the keys (an older file) the power is 1 and there is no
	// baseline, not the defaults.
	f := parseModelFile(t, buf.Bytes())
	old := bytes.Replace(f.header, []byte(`"map_power":2,`), nil, 1)
	old = bytes.Replace(old, []byte(`"map_baseline":"none",`), nil, 1)
	require.Len(t, old, len(f.header)-len(`"map_power":2,"map_baseline":"none",`), "the header names both")
	f.header = old
	l, err = Load(bytes.NewReader(f.bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, 1.0, l.Config().MapPower)
	require.Equal(t, BaselineNone, l.Config().MapBaseline)
}

// TestImageSigma checks NearestScorer.ImageSigma: the pixel map is that
// of Sigma and the image score the maximum of the map blurred with
// ImageSigma; Config.ImageSigma is what a fitted and a loaded model score
// with, and a file written before it existed takes the image score from
// the pixel map.
func TestImageSigma(t *testing.T) {
	s := makeSynth(29, 16, 2, 2)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 0, 0
	cfg.Sigma, cfg.ImageSigma = 2, 6
	m := fitTiny(t, cfg, s)
	require.Equal(t, 6.0, m.Config().ImageSigma)
	got := predictEach(t, m, s.test)
	m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: 2, Power: cfg.MapPower})
	pix := predictEach(t, m, s.test)
	m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: 6, Power: cfg.MapPower})
	wide := predictEach(t, m, s.test)
	differ := false
	for i := range got {
		require.Equal(t, pix[i].Map, got[i].Map, "image %d: the pixel map blurs with Sigma", i)
		require.Equal(t, wide[i].Score, got[i].Score, "image %d: the image score with ImageSigma", i)
		differ = differ || pix[i].Score != got[i].Score
	}
	require.True(t, differ, "the two blurs give other image scores")
	// The grid score ignores it.
	m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: 2, ImageSigma: 6, Grid: true, Power: cfg.MapPower})
	gridA := predictEach(t, m, s.test)
	m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: 2, Grid: true, Power: cfg.MapPower})
	gridB := predictEach(t, m, s.test)
	require.Equal(t, gridB, gridA)
	require.Equal(t, 8.0, DefaultConfig().ImageSigma, "the default")
	require.Equal(t, PaperConfig().Sigma, PaperConfig().ImageSigma, "METHOD.md blurs both alike")

	m.SetScorer(nil)
	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	f := parseModelFile(t, buf.Bytes())
	l, err := Load(bytes.NewReader(f.bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, got[0], predictEach(t, l, s.test[:1])[0])
	// Without the key (an older file): the image score of the pixel map.
	old := bytes.Replace(f.header, []byte(`"image_sigma":6,`), nil, 1)
	require.Len(t, old, len(f.header)-len(`"image_sigma":6,`), "the header names it")
	f.header = old
	l, err = Load(bytes.NewReader(f.bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, 2.0, l.Config().ImageSigma)
	require.Equal(t, pix[0].Score, predictEach(t, l, s.test[:1])[0].Score)
}

// TestBaselined pins the order statistic that NearestScorer.Baseline
// subtracts, image by image.
func TestBaselined(t *testing.T) {
	check := func(in []float32, n int, q, limit float64, want, wantB []float32) {
		t.Helper()
		y := slices.Clone(in)
		b := baselined(y, n, q, limit)
		require.Equal(t, want, y)
		require.Equal(t, wantB, b)
	}
	two := []float32{5, 1, 3, 2, 4, 10, 30, 20, 50, 40}
	check(two, 2, 0.5, 0, []float32{2, -2, 0, -1, 1, -20, 0, -10, 20, 10}, []float32{3, 30})
	check(two[:5], 1, 0.25, 0, []float32{3, -1, 1, 0, 2}, []float32{2})
	check(two[:5], 1, 1, 0, []float32{0, -4, -2, -3, -1}, []float32{5})
	// A cap limits what is subtracted, image by image.
	check(two, 2, 0.5, 7, []float32{2, -2, 0, -1, 1, 3, 23, 13, 43, 33}, []float32{3, 7})
}

// TestMapBaseline checks that the median baseline moves each image's map
// by one constant, the one that moves its grid score: upsampling and blur
// keep a constant, so the baseline reorders pixels only across images.
func TestMapBaseline(t *testing.T) {
	s := makeSynth(24, 16, 2, 2)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2, cfg.MapBaseline = 0, 0, BaselineNone
	m := fitTiny(t, cfg, s)
	score := func(b float64, grid bool) []Result {
		m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: cfg.Sigma, Grid: grid, Power: cfg.MapPower, Baseline: b})
		return predictEach(t, m, s.test)
	}
	plain, base := score(0, false), score(0.5, false)
	gplain, gbase := score(0, true), score(0.5, true)
	shifts := map[float64]bool{}
	for i := range plain {
		shift := gplain[i].Score - gbase[i].Score
		require.Positive(t, shift, "image %d: the median of positive distances", i)
		require.Less(t, shift, gplain[i].Score, "image %d: the median is below the maximum", i)
		shifts[math.Round(shift*1e4)] = true
		for j, v := range plain[i].Map {
			require.InDelta(t, shift, float64(v-base[i].Map[j]), 1e-4*gplain[i].Score, "image %d pixel %d", i, j)
		}
	}
	require.Greater(t, len(shifts), 1, "every image moved by the same amount")

	// The setting: median is the scorer's 0.5; the default is none.
	cfg.MapBaseline = BaselineMedian
	m = fitTiny(t, cfg, s)
	require.Equal(t, 0.5, m.Scorer().(*NearestScorer).Baseline)
	require.Equal(t, predictDigest(base), predictDigest(predictEach(t, m, s.test)))
	cfg.MapBaseline = ""
	m = fitTiny(t, cfg, s)
	require.Equal(t, BaselineNone, m.Config().MapBaseline)
	require.Zero(t, m.Scorer().(*NearestScorer).Baseline)
}

// TestMapBaselineCapped checks the capped baseline: Fit measures the cap
// as the highest median of the training images, a normal image loses its
// own median, and an image unlike every training image (noise: all its
// locations far) loses no more than the cap.
func TestMapBaselineCapped(t *testing.T) {
	s := makeSynth(25, 16, 2, 2)
	rng := rand.New(rand.NewPCG(9, 9))
	noise := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(rng.IntN(256))
	}
	imgs := append(slices.Clone(s.test), noise)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2, cfg.MapBaseline = 0, 0, BaselineCapped
	m := fitTiny(t, cfg, s)
	limit := m.Calibration().BaselineCap
	require.Positive(t, limit)
	require.Equal(t, limit, m.Scorer().(*NearestScorer).Cap)
	grid := func(b, c float64) []Result {
		m.SetScorer(&NearestScorer{Size: cfg.Crop, Sigma: cfg.Sigma, Grid: true, Power: cfg.MapPower, Baseline: b, Cap: c})
		return predictEach(t, m, imgs)
	}
	none, median, capped := grid(0, 0), grid(0.5, 0), grid(0.5, limit)
	for i := range imgs {
		shift, capShift := none[i].Score-median[i].Score, none[i].Score-capped[i].Score
		require.InDelta(t, min(shift, limit), capShift, 1e-5*none[i].Score, "image %d", i)
	}
	last := len(imgs) - 1
	require.Greater(t, none[last].Score-median[last].Score, limit, "the noise image's median is above the cap")
	require.InDelta(t, limit, none[last].Score-capped[last].Score, 1e-5*none[last].Score)

	// The file keeps the cap, and the loaded model scores with it.
	m.SetScorer(nil)
	want := predictEach(t, m, imgs)
	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	l, err := Load(&buf, newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, limit, l.Calibration().BaselineCap)
	require.Equal(t, want, predictEach(t, l, imgs))
}
