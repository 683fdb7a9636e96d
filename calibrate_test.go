package anomnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImageThresholdRate draws normal scores from a known distribution and
// checks that the conformal threshold keeps the false-alarm rate on new
// normal scores at the target (on average over many draws, within the
// Monte Carlo error), and what it says when the scores are too few.
func TestImageThresholdRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		n int
		r float64
	}{{200, 0.05}, {200, 0.01}, {1000, 0.01}, {60, 0.1}} {
		const trials = 3000
		var rate float64
		for range trials {
			s := make([]float64, c.n)
			for i := range s {
				s[i] = rng.NormFloat64()
			}
			slices.Sort(s)
			thr, resolved := imageThreshold(s, c.r)
			require.Equal(t, c.r, resolved)
			// The exact chance that a new normal score exceeds thr.
			rate += 0.5 * math.Erfc(thr/math.Sqrt2) / trials
		}
		// Conformal: the expected rate is 1 - k/(n+1) <= r, and within
		// one order statistic (1/(n+1)) of it.
		require.LessOrEqual(t, rate, c.r+0.002, "n %d, r %g: rate %.4f", c.n, c.r, rate)
		require.GreaterOrEqual(t, rate, c.r-1/float64(c.n+1)-0.002, "n %d, r %g: rate %.4f", c.n, c.r, rate)
	}
	s := []float64{1, 2, 3, 4}
	thr, resolved := imageThreshold(s, 0.01)
	require.Equal(t, 4.0, thr)
	require.Equal(t, 0.2, resolved)
	thr, resolved = imageThreshold(s, 0.5)
	require.Equal(t, 3.0, thr) // k = ceil(0.5 * 5) = 3
	require.Equal(t, 0.5, resolved)
}

// TestPixelTail checks the kept pixel quantiles and their interpolation on
// uniform scores, where the score a share r exceeds is 1 - r.
func TestPixelTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	px := make([]float64, 2_000_000)
	for i := range px {
		px[i] = rng.Float64()
	}
	tail := pixelTail(px)
	for i, r := range PixelRates {
		if r >= 1e-4 {
			require.InDelta(t, 1-r, tail[i], 0.1*r+2e-4, "rate %g", r)
		}
		if i > 0 {
			require.GreaterOrEqual(t, tail[i], tail[i-1])
		}
	}
	for _, r := range []float64{0.3, 0.0123, 0.002} {
		require.InDelta(t, 1-r, pixelThreshold(tail, r), 0.1*r, "rate %g", r)
	}
	require.Equal(t, tail[0], pixelThreshold(tail, 0.9))
	require.Equal(t, tail[len(tail)-1], pixelThreshold(tail, 1e-9))
}

// TestHeldOutCalibration fits with farthest-point seeding and checks that
// each training image was scored without its own centroids (its kept
// score is at least its in-sample Predict score, and above it for some),
// that the thresholds are those of the target rate, and that
// SetFalseAlarmRate moves them, before and after Save/Load alike.
func TestHeldOutCalibration(t *testing.T) {
	s := makeSynth(31, 24, 4, 4)
	cfg := testConfig()
	cfg.K, cfg.Epochs1, cfg.Epochs2 = 0, 1, 1 // K from the data: every centroid a training vector
	cfg.FalseAlarms = 0.1
	m := fitTiny(t, cfg, s)
	cal := m.Calibration()
	require.True(t, cal.HeldOut)
	require.Len(t, cal.Scores, len(s.train))
	require.True(t, slices.IsSorted(cal.Scores))
	in := predictEach(t, m, s.train)
	inSample := make([]float64, len(in))
	higher := 0
	for i, r := range in {
		inSample[i] = r.Score
	}
	slices.Sort(inSample)
	for i := range inSample {
		require.GreaterOrEqual(t, cal.Scores[i], inSample[i]*(1-1e-6), "order statistic %d", i)
		if cal.Scores[i] > inSample[i]*(1+1e-3) {
			higher++
		}
	}
	require.Positive(t, higher, "no image scored higher without its own centroids")
	thr, _ := imageThreshold(cal.Scores, 0.1)
	require.Equal(t, thr, cal.ImageThreshold)
	require.Equal(t, 0.1, cal.FalseAlarms)
	require.Equal(t, pixelThreshold(cal.PixelTail, 0.1), cal.PixelThreshold)

	resolved, err := m.SetFalseAlarmRate(0.3)
	require.NoError(t, err)
	require.Equal(t, 0.3, resolved)
	thr, _ = imageThreshold(cal.Scores, 0.3)
	require.Equal(t, thr, m.Calibration().ImageThreshold)
	for i, r := range predictEach(t, m, s.train) {
		require.Equal(t, r.Score > thr, r.Anomalous, "image %d", i)
	}
	resolved, err = m.SetFalseAlarmRate(0.001)
	require.NoError(t, err)
	require.Equal(t, 1/float64(len(s.train)+1), resolved)
	require.Equal(t, slices.Max(cal.Scores), m.Calibration().ImageThreshold)
	for _, r := range []float64{0, 1, -0.5, math.NaN()} {
		_, err := m.SetFalseAlarmRate(r)
		require.Error(t, err, "rate %g", r)
	}

	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	l, err := Load(bytes.NewReader(buf.Bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, m.Calibration(), l.Calibration())
	_, err = l.SetFalseAlarmRate(0.3)
	require.NoError(t, err)
	_, err = m.SetFalseAlarmRate(0.3)
	require.NoError(t, err)
	require.Equal(t, m.Calibration(), l.Calibration())

	_, err = (&Model{}).SetFalseAlarmRate(0.1)
	require.ErrorIs(t, err, ErrNotFitted)
}

// TestOldModelFile loads a model file of format version 1, whose
// calibration kept no scores: it predicts with its thresholds, and
// re-thresholding by rate says why it cannot.
func TestOldModelFile(t *testing.T) {
	m, b := savedTiny(t)
	f := parseModelFile(t, b)
	var h map[string]any
	require.NoError(t, json.Unmarshal(f.header, &h))
	cal := h["calibration"].(map[string]any)
	for _, k := range []string{"scores", "pixel_tail", "false_alarms", "held_out"} {
		delete(cal, k)
	}
	cfg := h["config"].(map[string]any)
	delete(cfg, "false_alarms")
	require.Equal(t, InputCrop, cfg["input"])
	delete(cfg, "input") // written before the input was a choice: the crop
	require.Equal(t, false, cfg["no_turn"])
	delete(cfg, "no_turn") // written before images were turned: not turned
	cfg["image_quantile"], cfg["pixel_quantile"] = 0.99, 0.999
	var err error
	f.header, err = json.Marshal(h)
	require.NoError(t, err)
	f.version = 1
	old, err := Load(bytes.NewReader(f.bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, InputCrop, old.Config().Input)
	require.True(t, old.Config().NoTurn)
	require.False(t, m.Config().NoTurn)
	require.Equal(t, m.Calibration().ImageThreshold, old.Calibration().ImageThreshold)
	img := makeSynth(2, 0, 1, 0).test[0]
	want, err := m.Predict(img)
	require.NoError(t, err)
	got, err := old.Predict(img)
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = old.SetFalseAlarmRate(0.05)
	require.ErrorIs(t, err, ErrNoHeldScores)
	_, err = old.Predict(img)
	require.NoError(t, err)
}

// TestFinite checks the scan for NaN and infinite values that guards the
// training features and a model file's tensors: every finite float32
// passes (the largest, the smallest subnormal, -0), and a NaN or an
// infinity is found wherever it lies, at its index.
func TestFinite(t *testing.T) {
	v := make([]float32, 3*4096+17)
	for i := range v {
		v[i] = float32(i%7-3) * 1e-3
	}
	v[1], v[2], v[3] = math.MaxFloat32, -math.MaxFloat32, math.Float32frombits(1)
	v[4] = float32(math.Copysign(0, -1))
	require.NoError(t, finite(v))
	require.NoError(t, finite(nil))
	for _, i := range []int{0, 4095, 4096, 2*4096 + 5, len(v) - 1} {
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7fc00001), math.Float32frombits(0xff800001)} {
			w := slices.Clone(v)
			w[i] = bad
			err := finite(w)
			require.Error(t, err, "value %d = %g", i, bad)
			require.Contains(t, err.Error(), fmt.Sprintf("value %d is", i))
		}
	}
}
