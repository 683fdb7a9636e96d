//go:build !cuda

package cuda

import (
	"errors"

	"github.com/org/anomnet/internal/tensor"
)

// errNoCUDA is what New returns in a build without the cuda tag.
var errNoCUDA = errors.New("anomnet/cuda: built without CUDA; rebuild with -tags cuda (after make -C cuda/kernels)")

var _ tensor.Device = (*Device)(nil)

// Device is the CUDA Device; without the cuda build tag none can be made,
// and its methods panic.
type Device struct{ _ [0]func() }

// Count returns 0 and the "built without CUDA" error.
func Count() (int, error) { return 0, errNoCUDA }

// Available reports false: this build has no CUDA support.
func Available() bool { return false }

// New returns the "built without CUDA" error.
func New(ordinal int) (*Device, error) { return nil, errNoCUDA }

// Use panics: there is no Device to use.
func Use(d *Device) { panic(errNoCUDA) }

// Close does nothing.
func (d *Device) Close() error { return nil }

// Allocated returns zeros.
func (d *Device) Allocated() (n int, bytes int64) { return 0, 0 }

// Name returns "cuda (not built)".
func (d *Device) Name() string { return "cuda (not built)" }

// The tensor.Device methods, which no Device of this build can run.

// Zeros panics: this build has no CUDA.
func (d *Device) Zeros(...int) *tensor.Tensor { panic(errNoCUDA) }

// ZerosInt32 panics: this build has no CUDA.
func (d *Device) ZerosInt32(...int) *tensor.Tensor { panic(errNoCUDA) }

// FromHost panics: this build has no CUDA.
func (d *Device) FromHost(*tensor.Tensor) *tensor.Tensor { panic(errNoCUDA) }

// ToHost panics: this build has no CUDA.
func (d *Device) ToHost(*tensor.Tensor) *tensor.Tensor { panic(errNoCUDA) }

// Copy panics: this build has no CUDA.
func (d *Device) Copy(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// Free does nothing.
func (d *Device) Free(*tensor.Tensor) {}

// Sync returns the "built without CUDA" error.
func (d *Device) Sync() error { return errNoCUDA }

// Fill panics: this build has no CUDA.
func (d *Device) Fill(*tensor.Tensor, float32) { panic(errNoCUDA) }

// Add panics: this build has no CUDA.
func (d *Device) Add(_, _, _ *tensor.Tensor) { panic(errNoCUDA) }

// Axpy panics: this build has no CUDA.
func (d *Device) Axpy(float32, *tensor.Tensor, *tensor.Tensor) { panic(errNoCUDA) }

// Scale panics: this build has no CUDA.
func (d *Device) Scale(float32, *tensor.Tensor) { panic(errNoCUDA) }

// Sum panics: this build has no CUDA.
func (d *Device) Sum(*tensor.Tensor) float64 { panic(errNoCUDA) }

// Dot panics: this build has no CUDA.
func (d *Device) Dot(_, _ *tensor.Tensor) float64 { panic(errNoCUDA) }

// ReLU panics: this build has no CUDA.
func (d *Device) ReLU(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// ReLUBackward panics: this build has no CUDA.
func (d *Device) ReLUBackward(_, _, _ *tensor.Tensor) { panic(errNoCUDA) }

// ZeroPad2D panics: this build has no CUDA.
func (d *Device) ZeroPad2D(_, _ *tensor.Tensor, _, _ int) { panic(errNoCUDA) }

// MaxPool2D panics: this build has no CUDA.
func (d *Device) MaxPool2D(_, _ *tensor.Tensor, _ tensor.Pool2DParams) { panic(errNoCUDA) }

// AvgPool2D panics: this build has no CUDA.
func (d *Device) AvgPool2D(_, _ *tensor.Tensor, _ tensor.Pool2DParams) { panic(errNoCUDA) }

// AdaptiveAvgPool2D panics: this build has no CUDA.
func (d *Device) AdaptiveAvgPool2D(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// AdaptiveAvgPool2DBackward panics: this build has no CUDA.
func (d *Device) AdaptiveAvgPool2DBackward(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// ResizeBilinear panics: this build has no CUDA.
func (d *Device) ResizeBilinear(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// ResizeBilinearBackward panics: this build has no CUDA.
func (d *Device) ResizeBilinearBackward(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// GaussianBlur panics: this build has no CUDA.
func (d *Device) GaussianBlur(_, _ *tensor.Tensor, _ float64, _ int) { panic(errNoCUDA) }

// Concat panics: this build has no CUDA.
func (d *Device) Concat(*tensor.Tensor, ...*tensor.Tensor) { panic(errNoCUDA) }

// Split panics: this build has no CUDA.
func (d *Device) Split([]*tensor.Tensor, []int, *tensor.Tensor) { panic(errNoCUDA) }

// AppendCoords panics: this build has no CUDA.
func (d *Device) AppendCoords(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// ChannelsLast panics: this build has no CUDA.
func (d *Device) ChannelsLast(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// ChannelsFirst panics: this build has no CUDA.
func (d *Device) ChannelsFirst(_, _ *tensor.Tensor) { panic(errNoCUDA) }

// Nearest panics: this build has no CUDA.
func (d *Device) Nearest(_, _, _, _ *tensor.Tensor) { panic(errNoCUDA) }

// GatherRows panics: this build has no CUDA.
func (d *Device) GatherRows(_, _, _ *tensor.Tensor) { panic(errNoCUDA) }

// ScatterAddRows panics: this build has no CUDA.
func (d *Device) ScatterAddRows(_, _, _ *tensor.Tensor) { panic(errNoCUDA) }

// NormalizeRows panics: this build has no CUDA.
func (d *Device) NormalizeRows(_, _, _ *tensor.Tensor, _ float32) { panic(errNoCUDA) }

// NormalizeRowsBackward panics: this build has no CUDA.
func (d *Device) NormalizeRowsBackward(_, _, _, _ *tensor.Tensor, _ float32) { panic(errNoCUDA) }

// CosineSimilarity panics: this build has no CUDA.
func (d *Device) CosineSimilarity(_, _ *tensor.Tensor, _ float32) { panic(errNoCUDA) }

// NegativeHinge panics: this build has no CUDA.
func (d *Device) NegativeHinge(_, _, _, _ *tensor.Tensor, _ float32) { panic(errNoCUDA) }

// Adam panics: this build has no CUDA.
func (d *Device) Adam(_, _, _, _ *tensor.Tensor, _ tensor.AdamParams) { panic(errNoCUDA) }

// AvgPool2DBackward panics: this build has no CUDA.
func (d *Device) AvgPool2DBackward(_, _ *tensor.Tensor, _ tensor.Pool2DParams) { panic(errNoCUDA) }

// Gemm panics: this build has no CUDA.
func (d *Device) Gemm(_, _ bool, _ float32, _, _ *tensor.Tensor, _ float32, _ *tensor.Tensor) {
	panic(errNoCUDA)
}

// Conv2D panics: this build has no CUDA.
func (d *Device) Conv2D(_, _, _, _ *tensor.Tensor, _ tensor.Conv2DParams) { panic(errNoCUDA) }

// Conv2DBackwardData panics: this build has no CUDA.
func (d *Device) Conv2DBackwardData(_, _, _ *tensor.Tensor, _ tensor.Conv2DParams) { panic(errNoCUDA) }

// Conv2DBackwardFilter panics: this build has no CUDA.
func (d *Device) Conv2DBackwardFilter(_, _, _, _ *tensor.Tensor, _ tensor.Conv2DParams) {
	panic(errNoCUDA)
}
