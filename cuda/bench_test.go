//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// The H200's reference figures, as measured on such a machine (issue 8):
// a device-to-device copy moves about 4.3 TB/s counting bytes read and
// written, and bf16 matrix products reach about 790 TFLOP/s. The float32
// CUDA-core peak, which these kernels use, is about 67 TFLOP/s (16896
// cores x 2 x 1.98 GHz).
const (
	peakCopy  = 4.3e12
	peakBF16  = 790e12
	peakFP32  = 67e12
	gigaScale = 1e9
)

// pick returns full, or small under -short: a smoke test of the
// benchmarks, on the CPU emulation say.
func pick(full, small int) int {
	if testing.Short() {
		return small
	}
	return full
}

// random returns a host tensor of uniform values in [-1, 1) from a fast
// generator (the big inputs have hundreds of millions of elements).
func random(seed uint64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	s := seed*0x9E3779B97F4A7C15 + 1
	for i, x := 0, t.Float32s(); i < len(x); i++ {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		x[i] = float32(s>>40)/float32(1<<23) - 1
	}
	return t
}

// measure runs op b.N times after one warm-up and reports the rate of
// flops and bytes per op, each also as a percentage of the H200's peaks.
func measure(b *testing.B, d *Device, flops, bytes float64, op func()) {
	b.Helper()
	op()
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		op()
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	if flops > 0 {
		b.ReportMetric(flops/sec/gigaScale, "GFLOP/s")
		b.ReportMetric(100*flops/sec/peakFP32, "%fp32peak")
		b.ReportMetric(100*flops/sec/peakBF16, "%bf16peak")
	}
	if bytes > 0 {
		b.ReportMetric(bytes/sec/gigaScale, "GB/s")
		b.ReportMetric(100*bytes/sec/peakCopy, "%copypeak")
	}
}

// upload copies host tensors to d, freeing them when the benchmark ends.
func upload(b *testing.B, d *Device, hs ...*tensor.Tensor) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(hs))
	for i, h := range hs {
		out[i] = d.FromHost(h)
	}
	b.Cleanup(func() {
		for _, t := range out {
			d.Free(t)
		}
	})
	return out
}

func zeros(b *testing.B, d *Device, shape ...int) *tensor.Tensor {
	t := d.Zeros(shape...)
	b.Cleanup(func() { d.Free(t) })
	return t
}

// BenchmarkCopy measures device-to-device bandwidth on 1 GiB, counting
// bytes read and written as the reference figure does.
func BenchmarkCopy(b *testing.B) {
	d := open(b)
	n := pick(1<<28, 1<<12)
	x, y := zeros(b, d, n), zeros(b, d, n)
	measure(b, d, 0, 2*4*float64(n), func() { d.Copy(y, x) })
}

func BenchmarkAdd(b *testing.B) {
	d := open(b)
	n := pick(1<<28, 1<<12)
	x, y := zeros(b, d, n), zeros(b, d, n)
	measure(b, d, 0, 3*4*float64(n), func() { d.Add(y, x, y) })
}

func BenchmarkSum(b *testing.B) {
	d := open(b)
	n := pick(1<<28, 1<<12)
	x := zeros(b, d, n)
	measure(b, d, 0, 4*float64(n), func() { d.Sum(x) })
}

func BenchmarkGemm(b *testing.B) {
	d := open(b)
	for _, n := range []int{pick(1024, 32), pick(4096, 64)} {
		b.Run(fmt.Sprintf("M=N=K=%d", n), func(b *testing.B) {
			t := upload(b, d, random(1, n, n), random(2, n, n))
			c := zeros(b, d, n, n)
			measure(b, d, 2*float64(n)*float64(n)*float64(n), 0, func() { d.Gemm(false, false, 1, t[0], t[1], 0, c) })
		})
	}
}

// convCase is a convolution of the benchmarks: ResNet-50's stages 2 and 3
// (torchvision's layer1 at 56x56 and layer2 at 28x28) and the adapter's 1x1
// over the 1536 backbone channels plus CoordConv's two.
type convCase struct {
	name                 string
	n, c, hw, o, k, s, p int
}

var convCases = []convCase{
	{"resnet50.layer1.1x1,N=8,C=256,O=64,HW=56", 8, 256, 56, 64, 1, 1, 0},
	{"resnet50.layer1.3x3,N=8,C=64,O=64,HW=56", 8, 64, 56, 64, 3, 1, 1},
	{"resnet50.layer2.3x3s2,N=8,C=128,O=128,HW=56", 8, 128, 56, 128, 3, 2, 1},
	{"resnet50.layer2.3x3,N=8,C=128,O=128,HW=28", 8, 128, 28, 128, 3, 1, 1},
	{"adapter.1x1,N=32,C=1538,O=1536,HW=28", 32, 1538, 28, 1536, 1, 1, 0},
}

// cases returns convCases, shrunk under -short.
func cases() []convCase {
	if !testing.Short() {
		return convCases
	}
	out := make([]convCase, len(convCases))
	for i, g := range convCases {
		g.n, g.c, g.o, g.hw = 1, min(g.c, 5), min(g.o, 7), min(g.hw, 9)
		out[i] = g
	}
	return out
}

func (g convCase) setup(b *testing.B, d *Device) (x, w, bias, y *tensor.Tensor, p tensor.Conv2DParams, flops float64) {
	p = tensor.Conv2DParams{StrideH: g.s, StrideW: g.s, PadH: g.p, PadW: g.p}
	oh, ow := p.Out(g.hw, g.hw, g.k, g.k)
	t := upload(b, d, random(3, g.n, g.c, g.hw, g.hw), random(4, g.o, g.c, g.k, g.k), random(5, g.o))
	y = zeros(b, d, g.n, g.o, oh, ow)
	flops = 2 * float64(g.n*g.o*oh*ow) * float64(g.c*g.k*g.k)
	return t[0], t[1], t[2], y, p, flops
}

func BenchmarkConv2D(b *testing.B) {
	d := open(b)
	for _, g := range cases() {
		b.Run(g.name, func(b *testing.B) {
			x, w, bias, y, p, flops := g.setup(b, d)
			p.ReLU = true
			measure(b, d, flops, 0, func() { d.Conv2D(y, x, w, bias, p) })
		})
	}
}

func BenchmarkConv2DBackwardData(b *testing.B) {
	d := open(b)
	for _, g := range cases() {
		b.Run(g.name, func(b *testing.B) {
			x, w, _, y, p, flops := g.setup(b, d)
			measure(b, d, flops, 0, func() { d.Conv2DBackwardData(x, y, w, p) })
		})
	}
}

func BenchmarkConv2DBackwardFilter(b *testing.B) {
	d := open(b)
	for _, g := range cases() {
		b.Run(g.name, func(b *testing.B) {
			x, w, bias, y, p, flops := g.setup(b, d)
			measure(b, d, flops, 0, func() { d.Conv2DBackwardFilter(w, bias, x, y, p) })
		})
	}
}

// simSize is the contrastive loss's batch: M = 16384 rows of D = 1536.
func simSize() (m, d int) { return pick(16384, 150), pick(1536, 24) }

func BenchmarkCosineSimilarity(b *testing.B) {
	d := open(b)
	simM, simD := simSize()
	x := upload(b, d, random(6, simM, simD))[0]
	s := zeros(b, d, simM, simM)
	measure(b, d, 2*float64(simM)*float64(simM*simD), 4*float64(simM)*float64(simM), func() { d.CosineSimilarity(s, x, 1e-8) })
}

// unitRows returns M random unit rows and labels from 0 to 63.
func unitRows(b *testing.B, d *Device) (z, y *tensor.Tensor) {
	simM, simD := simSize()
	h := random(7, simM, simD)
	f := h.Float32s()
	for i := range simM {
		row := f[i*simD : (i+1)*simD]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss))
		for e := range row {
			row[e] *= inv
		}
	}
	labels := make([]int32, simM)
	for i := range labels {
		labels[i] = int32(i % 64)
	}
	t := upload(b, d, h, tensor.FromInt32s(labels, simM))
	return t[0], t[1]
}

// BenchmarkNegativeHinge: the fused similarities and hinge (2 M^2 D
// flops), and with the gradient the product of the active-pair mask with z
// (another 2 M^2 D).
func BenchmarkNegativeHinge(b *testing.B) {
	d := open(b)
	simM, simD := simSize()
	z, y := unitRows(b, d)
	loss := zeros(b, d, simM)
	b.Run(fmt.Sprintf("loss,M=%d,D=%d", simM, simD), func(b *testing.B) {
		measure(b, d, 2*float64(simM)*float64(simM*simD), 0, func() { d.NegativeHinge(loss, nil, z, y, 0) })
	})
	b.Run(fmt.Sprintf("loss+grad,M=%d,D=%d", simM, simD), func(b *testing.B) {
		grad := zeros(b, d, simM, simD)
		measure(b, d, 4*float64(simM)*float64(simM*simD), 0, func() { d.NegativeHinge(loss, grad, z, y, 0) })
	})
}

// BenchmarkNearest: the scorer's search, 8 images of 56x56 = 25088 rows
// each against 64 centroids of 1536 (2 N K D flops; the bytes are x's,
// read once by the distances and once by the refinement).
func BenchmarkNearest(b *testing.B) {
	d := open(b)
	n, k, dim := pick(25088*8, 300), 64, pick(1536, 16)
	t := upload(b, d, random(8, n, dim), random(9, k, dim))
	idx := d.ZerosInt32(n)
	dist := zeros(b, d, n)
	b.Cleanup(func() { d.Free(idx) })
	measure(b, d, 2*float64(n*k*dim), 2*4*float64(n*dim), func() { d.Nearest(idx, dist, t[0], t[1]) })
}

// The map ops of a Predict: features to rows, the anomaly map's upsampling
// and blur.
func BenchmarkChannelsLast(b *testing.B) {
	d := open(b)
	n, c, hw := pick(32, 2), pick(1536, 40), 28
	x := zeros(b, d, n, c, hw, hw)
	y := zeros(b, d, n*hw*hw, c)
	measure(b, d, 0, 2*4*float64(n*c*hw*hw), func() { d.ChannelsLast(y, x) })
}

func BenchmarkResizeBilinear(b *testing.B) {
	d := open(b)
	n := pick(32, 2)
	x := upload(b, d, random(10, n, 1, 28, 28))[0]
	y := zeros(b, d, n, 1, 224, 224)
	measure(b, d, 0, 4*float64(n*(28*28+224*224)), func() { d.ResizeBilinear(y, x) })
}

func BenchmarkGaussianBlur(b *testing.B) {
	d := open(b)
	n := pick(32, 2)
	x := upload(b, d, random(11, n, 1, 224, 224))[0]
	y := zeros(b, d, n, 1, 224, 224)
	// Both passes read and write a map.
	measure(b, d, 0, 4*4*float64(n*224*224), func() { d.GaussianBlur(y, x, 4, tensor.GaussianRadius(4)) })
}
