package tensor_test

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/org/anomnet/internal/gemm"
	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/tensor/devicetest"
)

// TestCPUConformance runs the Device conformance suite on the CPU with each
// GEMM micro-kernel this machine has (AVX-512, AVX2, Go; with the noasm tag
// only Go), so that every path of the matrix products is checked.
func TestCPUConformance(t *testing.T) {
	saved := gemm.Active().Name
	defer gemm.Use(saved)
	for _, k := range gemm.Kernels() {
		t.Run("gemm="+k.Name, func(t *testing.T) {
			if err := gemm.Use(k.Name); err != nil {
				t.Fatal(err)
			}
			devicetest.Run(t, tensor.CPU{}, devicetest.DefaultTolerance())
		})
	}
}

// otherBLAS stands for a BLAS a program installs with blas32.Use.
type otherBLAS struct{ gonum.Implementation }

// TestCPUConformanceWithInstalledBLAS checks that the CPU hands its
// products to a BLAS installed with blas32.Use, and is still right.
func TestCPUConformanceWithInstalledBLAS(t *testing.T) {
	saved := blas32.Implementation()
	defer blas32.Use(saved)
	blas32.Use(otherBLAS{})
	devicetest.Run(t, tensor.CPU{}, devicetest.DefaultTolerance())
}

// TestMaxPoolNaN: a NaN anywhere in a window makes that window's maximum
// NaN, on the 3x3 fast path (inner windows) and the general one (edges).
func TestMaxPoolNaN(t *testing.T) {
	const h, w = 7, 9
	for _, p := range []tensor.Pool2DParams{{Kernel: 3, Stride: 2}, {Kernel: 3, Stride: 2, Pad: 1}, {Kernel: 3, Stride: 1, Pad: 1}} {
		oh, ow := p.Out(h, w)
		for at := range h * w {
			x := tensor.New(1, 1, h, w)
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(i % 5)
			}
			x.Float32s()[at] = float32(math.NaN())
			y := tensor.New(1, 1, oh, ow)
			tensor.CPU{}.MaxPool2D(y, x, p)
			for oi := range oh {
				for oj := range ow {
					i0, j0 := oi*p.Stride-p.Pad, oj*p.Stride-p.Pad
					in := at/w >= i0 && at/w < i0+3 && at%w >= j0 && at%w < j0+3
					if got := y.Float32s()[oi*ow+oj]; math.IsNaN(float64(got)) != in {
						t.Fatalf("%+v, NaN at %d: output (%d, %d) = %g", p, at, oi, oj, got)
					}
				}
			}
		}
	}
}
