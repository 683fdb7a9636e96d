package tensor_test

import (
	"testing"

	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/tensor/devicetest"
)

// TestCPUConformance runs the Device conformance suite on the pure-Go CPU.
func TestCPUConformance(t *testing.T) {
	devicetest.Run(t, tensor.CPU{}, devicetest.DefaultTolerance())
}
