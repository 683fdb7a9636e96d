package tensor_test

import (
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
