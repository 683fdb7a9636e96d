package adapter_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/internal/tensor"
)

// BenchmarkAdapterStep times one training step of the adapter (ForwardTape
// and Backward) at ResNet-50's taps for 224 input: 512x28x28 and
// 1024x14x14, batch 4.
func BenchmarkAdapterStep(b *testing.B) {
	d := tensor.CPU{}
	chans := []int{512, 1024}
	sizes := [][2]int{{28, 28}, {14, 14}}
	const n = 4
	for _, k := range []int{1, 3} {
		b.Run(fmt.Sprintf("C=512+1024,HW=28+14,N=%d,k=%d", n, k), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			a := adapter.New(d, chans, adapter.Options{Kernel: k})
			maps := make([]*tensor.Tensor, len(chans))
			for i, c := range chans {
				x := tensor.New(n, c, sizes[i][0], sizes[i][1])
				for j := range x.Float32s() {
					x.Float32s()[j] = rng.Float32()
				}
				maps[i] = d.FromHost(x)
			}
			dF := d.Zeros(n, a.Dim(), 28, 28)
			d.Fill(dF, 1e-3)
			grads := a.NewGrads(d)
			var tape adapter.Tape
			defer tape.Free(d)
			for b.Loop() {
				f := a.ForwardTape(d, maps, &tape)
				a.Backward(d, &tape, dF, grads)
				d.Free(f)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
