package tensor_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/org/anomnet/internal/tensor"
)

// The shapes below are the ones the pipeline runs: ResNet-50 at 224x224
// input (stages 1-3, the Caffe variant striding in the first 1x1), the
// adapter's 1x1 convolution over the 1538 CoordConv channels at 28x28, the
// nearest-centroid search over a batch of 32 images, and the contrastive
// stage's 4096 sampled vectors.

func randTensor(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i, d := 0, t.Float32s(); i < len(d); i++ {
		d[i] = float32(r.NormFloat64())
	}
	return t
}

// report adds a throughput metric: units per op (flops or bytes) divided by
// the time per op, in giga-units per second.
func report(b *testing.B, perOp float64, unit string) {
	b.ReportMetric(perOp*float64(b.N)/b.Elapsed().Seconds()/1e9, unit)
}

type convCase struct {
	name                  string
	n, c, h, o, k, s, pad int
}

var convCases = []convCase{
	{"stem7x7s2", 1, 3, 224, 64, 7, 2, 3},
	{"stage1_1x1_64to256", 1, 64, 56, 256, 1, 1, 0},
	{"stage1_1x1_256to64", 1, 256, 56, 64, 1, 1, 0},
	{"stage1_3x3_64", 1, 64, 56, 64, 3, 1, 1},
	{"stage2_1x1s2_256to128", 1, 256, 56, 128, 1, 2, 0},
	{"stage2_3x3_128", 1, 128, 28, 128, 3, 1, 1},
	{"stage3_3x3_256", 1, 256, 14, 256, 3, 1, 1},
	{"stage3_1x1_1024to256", 1, 1024, 14, 256, 1, 1, 0},
	{"adapter_1x1_1538to1536", 1, 1538, 28, 1536, 1, 1, 0},
}

func (cc convCase) String() string {
	return fmt.Sprintf("%s/N=%d,C=%d,HW=%d,O=%d,K=%d,S=%d", cc.name, cc.n, cc.c, cc.h, cc.o, cc.k, cc.s)
}

func (cc convCase) setup(r *rand.Rand) (x, w, bias, y *tensor.Tensor, p tensor.Conv2DParams, flops float64) {
	p = tensor.Conv2DParams{StrideH: cc.s, StrideW: cc.s, PadH: cc.pad, PadW: cc.pad}
	oh, ow := p.Out(cc.h, cc.h, cc.k, cc.k)
	x = randTensor(r, cc.n, cc.c, cc.h, cc.h)
	w = randTensor(r, cc.o, cc.c, cc.k, cc.k)
	bias = randTensor(r, cc.o)
	y = tensor.New(cc.n, cc.o, oh, ow)
	flops = 2 * float64(cc.n*cc.o*oh*ow*cc.c*cc.k*cc.k)
	return
}

func BenchmarkConv2D(b *testing.B) {
	d := tensor.CPU{}
	for _, cc := range convCases {
		b.Run(cc.String(), func(b *testing.B) {
			x, w, bias, y, p, flops := cc.setup(rand.New(rand.NewPCG(1, 2)))
			for b.Loop() {
				d.Conv2D(y, x, w, bias, p)
			}
			report(b, flops, "GFLOP/s")
		})
	}
}

// The adapter trains, so its convolution's two backward passes matter too.
func BenchmarkConv2DBackward(b *testing.B) {
	d := tensor.CPU{}
	for _, cc := range []convCase{convCases[len(convCases)-1], convCases[5]} {
		x, w, _, y, p, flops := cc.setup(rand.New(rand.NewPCG(1, 2)))
		b.Run("Data/"+cc.String(), func(b *testing.B) {
			dx := tensor.New(x.Shape()...)
			for b.Loop() {
				d.Conv2DBackwardData(dx, y, w, p)
			}
			report(b, flops, "GFLOP/s")
		})
		b.Run("Filter/"+cc.String(), func(b *testing.B) {
			dw, db := tensor.New(w.Shape()...), tensor.New(w.Dim(0))
			for b.Loop() {
				d.Conv2DBackwardFilter(dw, db, x, y, p)
			}
			report(b, flops, "GFLOP/s")
		})
	}
}

// gemmCases are the adapter's convolution as a GEMM (1536 x 1538 times
// 1538 x 784) and a square reference size.
var gemmCases = []struct{ m, n, k int }{
	{1536, 784, 1538},
	{1024, 1024, 1024},
}

func BenchmarkGemm(b *testing.B) {
	d := tensor.CPU{}
	r := rand.New(rand.NewPCG(3, 4))
	for _, gc := range gemmCases {
		b.Run(fmt.Sprintf("M=%d,N=%d,K=%d", gc.m, gc.n, gc.k), func(b *testing.B) {
			a, bb, c := randTensor(r, gc.m, gc.k), randTensor(r, gc.k, gc.n), tensor.New(gc.m, gc.n)
			for b.Loop() {
				d.Gemm(false, false, 1, a, bb, 0, c)
			}
			report(b, 2*float64(gc.m*gc.n*gc.k), "GFLOP/s")
		})
	}
}

// BenchmarkGonumSgemm calls gonum's pure-Go Sgemm directly, the baseline the
// CPU Device's Gemm starts from.
func BenchmarkGonumSgemm(b *testing.B) {
	impl := gonum.Implementation{}
	r := rand.New(rand.NewPCG(3, 4))
	for _, gc := range gemmCases {
		b.Run(fmt.Sprintf("M=%d,N=%d,K=%d", gc.m, gc.n, gc.k), func(b *testing.B) {
			a, bb, c := randTensor(r, gc.m, gc.k), randTensor(r, gc.k, gc.n), tensor.New(gc.m, gc.n)
			for b.Loop() {
				impl.Sgemm(blas.NoTrans, blas.NoTrans, gc.m, gc.n, gc.k, 1, a.Float32s(), gc.k, bb.Float32s(), gc.n, 0, c.Float32s(), gc.n)
			}
			report(b, 2*float64(gc.m*gc.n*gc.k), "GFLOP/s")
		})
	}
}

func BenchmarkNearest(b *testing.B) {
	d := tensor.CPU{}
	r := rand.New(rand.NewPCG(5, 6))
	const n, k, dim = 32 * 28 * 28, 64, 1536
	b.Run(fmt.Sprintf("N=%d,K=%d,D=%d", n, k, dim), func(b *testing.B) {
		x, c := randTensor(r, n, dim), randTensor(r, k, dim)
		idx, dist := tensor.NewInt32(n), tensor.New(n)
		for b.Loop() {
			d.Nearest(idx, dist, x, c)
		}
		report(b, 2*float64(n*k*dim), "GFLOP/s")
	})
}

func BenchmarkCosineSimilarity(b *testing.B) {
	d := tensor.CPU{}
	r := rand.New(rand.NewPCG(7, 8))
	const m, dim = 4096, 1536
	b.Run(fmt.Sprintf("M=%d,D=%d", m, dim), func(b *testing.B) {
		x, s := randTensor(r, m, dim), tensor.New(m, m)
		for b.Loop() {
			d.CosineSimilarity(s, x, 1e-8)
		}
		report(b, 2*float64(m*m*dim), "GFLOP/s")
	})
}

// BenchmarkNegativeHinge is the contrastive stage's O(M^2 D) step, loss and
// gradient (two M x M x D products).
func BenchmarkNegativeHinge(b *testing.B) {
	d := tensor.CPU{}
	r := rand.New(rand.NewPCG(9, 10))
	const m, dim, k = 4096, 1536, 64
	b.Run(fmt.Sprintf("M=%d,D=%d", m, dim), func(b *testing.B) {
		x, z := randTensor(r, m, dim), tensor.New(m, dim)
		d.NormalizeRows(z, nil, x, 1e-8)
		y := tensor.NewInt32(m)
		for i := range y.Int32s() {
			y.Int32s()[i] = int32(r.IntN(k))
		}
		loss, grad := tensor.New(m), tensor.New(m, dim)
		for b.Loop() {
			d.NegativeHinge(loss, grad, z, y, 0.1)
		}
		report(b, 4*float64(m*m*dim), "GFLOP/s")
	})
}

// The memory-bound ops report GB/s of input read plus output written.
func BenchmarkMaps(b *testing.B) {
	d := tensor.CPU{}
	r := rand.New(rand.NewPCG(11, 12))
	bytes := func(ts ...*tensor.Tensor) float64 {
		var n int
		for _, t := range ts {
			n += 4 * t.Len()
		}
		return float64(n)
	}
	x28 := randTensor(r, 1, 1536, 28, 28)
	b.Run("AvgPool3x3/C=1536,HW=28", func(b *testing.B) {
		y := tensor.New(x28.Shape()...)
		p := tensor.Pool2DParams{Kernel: 3, Stride: 1, Pad: 1}
		for b.Loop() {
			d.AvgPool2D(y, x28, p)
		}
		report(b, bytes(x28, y), "GB/s")
	})
	b.Run("AppendCoords/C=1536,HW=28", func(b *testing.B) {
		y := tensor.New(1, 1538, 28, 28)
		for b.Loop() {
			d.AppendCoords(y, x28)
		}
		report(b, bytes(x28, y), "GB/s")
	})
	b.Run("ChannelsLast/N=32,C=1536,HW=28", func(b *testing.B) {
		x := randTensor(r, 32, 1536, 28, 28)
		y := tensor.New(32*28*28, 1536)
		for b.Loop() {
			d.ChannelsLast(y, x)
		}
		report(b, bytes(x, y), "GB/s")
	})
	b.Run("ResizeBilinear/C=1024,HW=14to28", func(b *testing.B) {
		x, y := randTensor(r, 1, 1024, 14, 14), tensor.New(1, 1024, 28, 28)
		for b.Loop() {
			d.ResizeBilinear(y, x)
		}
		report(b, bytes(x, y), "GB/s")
	})
	b.Run("ResizeBilinear/N=32,C=1,HW=28to224", func(b *testing.B) {
		x, y := randTensor(r, 32, 1, 28, 28), tensor.New(32, 1, 224, 224)
		for b.Loop() {
			d.ResizeBilinear(y, x)
		}
		report(b, bytes(x, y), "GB/s")
	})
	b.Run("GaussianBlur/N=32,HW=224,sigma=4", func(b *testing.B) {
		x, y := randTensor(r, 32, 1, 224, 224), tensor.New(32, 1, 224, 224)
		for b.Loop() {
			d.GaussianBlur(y, x, 4, tensor.GaussianRadius(4))
		}
		report(b, bytes(x, y), "GB/s")
	})
	b.Run("AdaptiveAvgPool/C=512,HW=56to28", func(b *testing.B) {
		x, y := randTensor(r, 1, 512, 56, 56), tensor.New(1, 512, 28, 28)
		for b.Loop() {
			d.AdaptiveAvgPool2D(y, x)
		}
		report(b, bytes(x, y), "GB/s")
	})
}
