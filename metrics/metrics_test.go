package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// golden holds reference values computed independently with scikit-learn
// and SciPy by scripts/metrics_golden.py.
type golden struct {
	Image []struct {
		Name        string    `json:"name"`
		Labels      []bool    `json:"labels"`
		Scores      []float64 `json:"scores"`
		AUROC       float64   `json:"auroc"`
		FPR         []float64 `json:"fpr"`
		TPR         []float64 `json:"tpr"`
		Thresholds  []float64 `json:"thresholds"`
		F1Max       float64   `json:"f1max"`
		F1Threshold float64   `json:"f1threshold"`
	} `json:"image"`
	Pixel []struct {
		Name       string      `json:"name"`
		Width      int         `json:"width"`
		Maps       [][]float32 `json:"maps"`
		Masks      [][]int     `json:"masks"`
		PixelAUROC float64     `json:"pixel_auroc"`
		AUPRO03    float64     `json:"aupro_0.3"`
		AUPRO1     float64     `json:"aupro_1"`
		AUPRO005   float64     `json:"aupro_0.05"`
		Regions    int         `json:"regions"`
	} `json:"pixel"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	require.NoError(t, err, "regenerate with scripts/metrics_golden.py")
	var g golden
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Image)
	require.NotEmpty(t, g.Pixel)
	return g
}

func TestImageMetricsMatchScikitLearn(t *testing.T) {
	for _, c := range loadGolden(t).Image {
		t.Run(c.Name, func(t *testing.T) {
			auc, err := AUROC(c.Scores, c.Labels)
			require.NoError(t, err)
			require.InDelta(t, c.AUROC, auc, 1e-12, "AUROC")

			roc, err := ROC(c.Scores, c.Labels)
			require.NoError(t, err)
			require.Len(t, roc.FPR, len(c.FPR))
			for i := range c.FPR {
				require.InDelta(t, c.FPR[i], roc.FPR[i], 1e-12, "FPR[%d]", i)
				require.InDelta(t, c.TPR[i], roc.TPR[i], 1e-12, "TPR[%d]", i)
			}
			require.Equal(t, c.Thresholds, roc.Thresholds[1:])

			f1, thr, err := F1Max(c.Scores, c.Labels)
			require.NoError(t, err)
			require.InDelta(t, c.F1Max, f1, 1e-12, "F1-max")
			require.Equal(t, c.F1Threshold, thr, "F1-max threshold")
		})
	}
}

func addGolden(t *testing.T, p *Pixels, maps [][]float32, masks [][]int, width int) {
	t.Helper()
	for k, m := range maps {
		var mask []bool
		if masks[k] != nil {
			mask = make([]bool, len(masks[k]))
			for i, v := range masks[k] {
				mask[i] = v != 0
			}
		}
		require.NoError(t, p.Add(m, mask, width))
	}
}

func TestPixelMetricsMatchReference(t *testing.T) {
	for _, c := range loadGolden(t).Pixel {
		// Exact mode, and the histogram mode forced by a tiny limit.
		for _, limit := range []int{0, 100} {
			var p Pixels
			p.MaxExact = limit
			addGolden(t, &p, c.Maps, c.Masks, c.Width)
			require.Equal(t, c.Regions, p.regions, "%s: regions", c.Name)
			tol := 1e-12
			if limit > 0 {
				require.NotNil(t, p.hist, "histogram mode")
				tol = 1e-4
			}
			auc, err := p.AUROC()
			require.NoError(t, err)
			require.InDelta(t, c.PixelAUROC, auc, tol, "%s (limit %d): pixel AUROC", c.Name, limit)
			for _, lim := range []struct {
				fpr, want float64
			}{{0.3, c.AUPRO03}, {1, c.AUPRO1}, {0.05, c.AUPRO005}} {
				v, err := p.AUPRO(lim.fpr)
				require.NoError(t, err)
				require.InDelta(t, lim.want, v, tol, "%s (limit %d): AUPRO to FPR %g", c.Name, limit, lim.fpr)
			}
		}
	}
}

// TestHistogramAgreesWithExact checks the bounded-memory mode against the
// exact one on a larger set of continuous scores.
func TestHistogramAgreesWithExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const w, h = 64, 64
	var exact, hist Pixels
	hist.MaxExact = 1
	for k := range 40 {
		scores := make([]float32, w*h)
		mask := make([]bool, w*h)
		cx, cy := r.IntN(w), r.IntN(h)
		for i := range scores {
			x, y := i%w, i/w
			mask[i] = k%2 == 0 && (x-cx)*(x-cx)+(y-cy)*(y-cy) < 40
			scores[i] = float32(r.NormFloat64())
			if mask[i] {
				scores[i] += 1.5
			}
		}
		require.NoError(t, exact.Add(scores, mask, w))
		require.NoError(t, hist.Add(scores, mask, w))
	}
	a1, _ := exact.AUROC()
	a2, _ := hist.AUROC()
	require.InDelta(t, a1, a2, 1e-5)
	p1, _ := exact.AUPRO(0.3)
	p2, _ := hist.AUPRO(0.3)
	require.InDelta(t, p1, p2, 1e-5)
	require.Equal(t, exact.Count(), hist.Count())
}

func TestRegions(t *testing.T) {
	// Two blocks touching at a corner are one region; a separate pixel is
	// another.
	m := []bool{
		true, true, false, false, false,
		true, true, false, false, false,
		false, false, true, false, false,
		false, false, false, false, true,
	}
	of, sizes := Regions(m, 5)
	require.Equal(t, []int{5, 1}, sizes)
	require.Equal(t, of[0], of[12])
	require.NotEqual(t, of[0], of[19])
	require.Equal(t, int32(-1), of[2])

	// A V whose arms meet below the first pixel found: the fill must go
	// back up.
	v := []bool{
		true, false, true,
		false, true, false,
	}
	_, sizes = Regions(v, 3)
	require.Equal(t, []int{3}, sizes)
}

// TestF1MaxTies checks the rule for equal best F1 at several thresholds:
// the lowest threshold (the highest recall) wins, as with scikit-learn's
// argmax over its increasing thresholds.
func TestF1MaxTies(t *testing.T) {
	// At 0.9: tp 1, fp 0 -> F1 2/3; at 0.6: tp 2, fp 2 -> F1 2/3.
	f1, thr, err := F1Max([]float64{0.9, 0.8, 0.7, 0.6}, []bool{true, false, false, true})
	require.NoError(t, err)
	require.InDelta(t, 2.0/3, f1, 1e-15)
	require.Equal(t, 0.6, thr)
}

func TestMetricErrors(t *testing.T) {
	_, err := AUROC([]float64{1, 2}, []bool{true, true})
	require.ErrorIs(t, err, ErrOneClass)
	_, _, err = F1Max([]float64{1, 2}, []bool{false, false})
	require.ErrorIs(t, err, ErrOneClass)
	_, err = AUROC([]float64{1}, []bool{true, false})
	require.ErrorContains(t, err, "1 scores for 2 labels")
	_, err = AUROC([]float64{math.NaN(), 1}, []bool{true, false})
	require.ErrorContains(t, err, "NaN")

	var p Pixels
	require.ErrorContains(t, p.Add(make([]float32, 5), nil, 2), "rows of width 2")
	require.ErrorContains(t, p.Add(make([]float32, 4), make([]bool, 3), 2), "mask of 3 pixels")
	require.NoError(t, p.Add([]float32{1, 2, 3, 4}, nil, 2))
	_, err = p.AUROC()
	require.ErrorIs(t, err, ErrOneClass)
	_, err = p.AUPRO(0.3)
	require.ErrorContains(t, err, "without any ground-truth region")
	_, err = p.AUPRO(0)
	require.ErrorContains(t, err, "want (0, 1]")
}

func TestQuantile(t *testing.T) {
	v := []float64{3, 1, 4, 1, 5, 9, 2, 6}
	// numpy.quantile(v, q) for these q.
	for q, want := range map[float64]float64{0: 1, 1: 9, 0.5: 3.5, 0.99: 8.79, 0.25: 1.75} {
		got, err := Quantile(v, q)
		require.NoError(t, err)
		require.InDelta(t, want, got, 1e-12, "q=%g", q)
	}
	_, err := Quantile(nil, 0.5)
	require.Error(t, err)
	_, err = Quantile(v, 1.5)
	require.Error(t, err)
}
