package anomnet

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/centroid"
	"github.com/org/anomnet/internal/gemm"
	"github.com/org/anomnet/internal/tensor"
)

// BenchmarkTrainStep times one training step of each stage (trainStep on a
// batch of 32 images' maps at ResNet-50's default taps for a 224 input,
// 512 x 28 x 28 and 1024 x 14 x 14, K = the default TrainK), counts its
// floating-point operations (trainFLOPs) and, after every step, runs the
// FMA loop on every core for as many operations: it reports the step's
// GFLOP/s, the peak's, and their ratio (%peak), timed back to back so that
// a machine whose speed drifts compares like with like.
func BenchmarkTrainStep(b *testing.B) {
	cfg := DefaultConfig()
	for _, p := range []Plan{
		{Stage: Stage1, Centroids: true, Sep: true, Ent: true},
		{Stage: Stage2, Con: true},
	} {
		b.Run(string(p.Stage), func(b *testing.B) {
			t, maps := benchTrainer(b, cfg, 32)
			flops := trainFLOPs(t, p, maps[0].Dim(0))
			var step, peak time.Duration
			var peakFlops float64
			for b.Loop() {
				batch := make([]*Tensor, len(maps))
				for i, m := range maps {
					batch[i] = tensor.FromFloat32s(getBuffer(m.Len()), m.Shape()...)
					copy(batch[i].Float32s(), m.Float32s())
				}
				t0 := time.Now()
				if _, err := t.stepOn(p, batch); err != nil {
					b.Fatal(err)
				}
				step += time.Since(t0)
				if done, el, ok := gemm.Peak(flops); ok {
					peakFlops, peak = peakFlops+done, peak+el
				}
			}
			got := flops * float64(b.N) / step.Seconds() / 1e9
			b.ReportMetric(flops/1e9, "GFLOP/step")
			b.ReportMetric(got, "GFLOP/s")
			if peak > 0 {
				top := peakFlops / peak.Seconds() / 1e9
				b.ReportMetric(top, "peak-GFLOP/s")
				b.ReportMetric(100*got/top, "%peak")
			}
		})
	}
}

// benchTrainer returns a trainer as init leaves it, on the CPU, with cfg's
// adapter at ResNet-50's default taps and TrainK centroids taken from the
// adapted features, and n images' random maps.
func benchTrainer(b *testing.B, cfg Config, n int) (*trainer, []*Tensor) {
	b.Helper()
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(1, 2))
	t := &trainer{cfg: cfg, d: d, rng: rng, channels: []int{512, 1024}, sizes: [][2]int{{28, 28}, {14, 14}}}
	maps := make([]*Tensor, len(t.channels))
	for i, c := range t.channels {
		maps[i] = tensor.New(n, c, t.sizes[i][0], t.sizes[i][1])
		for j := range maps[i].Float32s() {
			// Non-negative and sparse-ish, as after a ReLU.
			maps[i].Float32s()[j] = max(0, rng.Float32()-0.3)
		}
	}
	t.ad = adapter.New(d, t.channels, cfg.Adapter)
	rows := t.rows(t.ad.Forward(d, maps))
	dim, k := rows.Dim(1), cfg.TrainK
	c := tensor.New(k, dim)
	for i := range k {
		r := rng.IntN(rows.Dim(0))
		copy(c.Float32s()[i*dim:(i+1)*dim], rows.Float32s()[r*dim:(r+1)*dim])
	}
	t.set = centroid.NewSet(c)
	t.delta = 1
	t.optimisers()
	return t, maps
}

// trainFLOPs counts the floating-point operations of one step of plan p on
// n images: the adapter's convolutions forward and their filter gradient
// (2 per multiply-add), the attraction's distances to all K centroids, the
// separation's pairs (3 per dimension and pair), the entropy's Gram
// matrix, Cholesky factor and solve, and the contrastive stage's nearest
// search and hinge (similarities and their gradient) over its sample.
// Element-wise work (pooling, resampling, Adam) is left out.
func trainFLOPs(t *trainer, p Plan, n int) float64 {
	var f float64
	kk := float64(max(1, t.cfg.Adapter.Kernel))
	rows := 0
	for i, c := range t.channels {
		h, w := t.sizes[i][0], t.sizes[i][1]
		conv := 2 * float64(n*h*w) * float64(c+2) * float64(c) * kk * kk
		f += 2 * conv // forward, filter gradient
		rows = max(rows, n*h*w)
	}
	k, dim := float64(t.set.K()), float64(t.ad.Dim())
	f += 2 * float64(rows) * k * dim
	if p.Sep {
		f += 3 * k * (k - 1) / 2 * dim
	}
	if p.Ent {
		f += k*(k+1)*dim + k*k*k/3 + 2*k*k*dim
	}
	if p.Con {
		s := float64(min(rows, t.cfg.Sample))
		f += 2*s*k*dim + 4*s*s*dim
	}
	return f
}
