package tensor_test

import (
	"testing"

	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/tensor/devicetest"
)

// TestLargeShapes runs the suite's large and ragged shapes on the CPU
// Device (reduced sizes; -short skips them).
func TestLargeShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	devicetest.RunLarge(t, tensor.CPU{}, devicetest.DefaultTolerance(), devicetest.Reduced)
}
