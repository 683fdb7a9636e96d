// Package cuda is the GPU Device: hand-written CUDA kernels for every op of
// tensor.Device, linked through cgo when built with the cuda build tag. It
// is the only package that uses cgo.
//
// # Building
//
// The kernels (kernels/*.cu, behind the C header kernels/anomnet_cuda.h,
// which includes no CUDA header) are compiled by nvcc into a static
// library, and the Go package links it with CUDA's static runtime:
//
//	make -C cuda/kernels          # libanomnet_cuda.a: sm_80, sm_90 and compute_90 PTX
//	go build -tags cuda ./...
//	go test -tags cuda ./cuda/    # skips without a GPU
//
// nvcc 11.8 (Debian's nvidia-cuda-toolkit, in the non-free component) or
// newer will do. Without the cuda tag the package is a stub: New returns a
// "built without CUDA" error, Available reports false, and everything runs
// on tensor.CPU.
//
// The same kernels also compile for the CPU, against a small emulation of
// CUDA (kernels/emu: the threads of a block as fibers, __syncthreads as a
// switch between them), so that the conformance suite checks their
// indexing, barriers and reductions on machines without a GPU:
//
//	make -C cuda/kernels emu
//	go test -tags 'cuda cudaemu' ./cuda/
//
// scripts/gpu-check.sh builds a static test and benchmark binary for a GPU
// machine without Go and prints the command that runs it there.
//
// # What runs where
//
// With a Device installed (Use, or passing it where a tensor.Device is
// taken), every op runs on the GPU, so that a whole Predict and a whole
// training step stay there: the host is reached only by FromHost, ToHost,
// Sum, Dot and Sync. Ops are queued on one CUDA stream and return at once;
// Sync waits and returns the first failure (every CUDA call is checked, and
// a failure names the op and carries CUDA's message).
//
// The heavy ops are implicit GEMMs over one tiled, shared-memory kernel
// on the tensor cores (tile.cuh, mma.cuh: TF32 mma.sync, three products
// per product, 3xTF32, which keeps float32's accuracy; the next tiles come
// by cp.async while one is multiplied): Gemm; the convolution forward (with the bias,
// accumulation and ReLU fused), backward-data and backward-filter passes,
// whose im2col matrices are gathered on the fly; CosineSimilarity; the
// distances of Nearest, which then measures the candidates of each row
// directly in float64 as the CPU does; and NegativeHinge, which reduces
// each tile of similarities in registers (the M x M matrix is never
// stored; for the gradient, one bit per pair marks the active ones). Sums
// the CPU forms in float64 are float64 here too, so results agree with the
// CPU within devicetest.DefaultTolerance. The emulation computes mma.sync
// from the lanes' fragments as PTX lays them out, so the suite checks the
// fragments without a GPU. An infinite input to a product gives NaN (the
// CPU gives an infinity).
//
// No kernel adds floats with atomics: ScatterAddRows gives each block its
// own rows of the output and walks the indices in order,
// ResizeBilinearBackward gathers each input's gradient from its outputs
// in order, and the filter gradient, split along the batch's positions
// where the filters alone fill few blocks, sums its slices in order, so
// that two runs give the same bits and two fits the same model
// (TestFitDeterministic; on the emulation the second fit runs every
// kernel's blocks and threads in reverse order, ANC_EMU_ORDER=reverse).
// TestLargeShapes checks the large paths (128 x 128 tiles, Nearest over
// several chunks, many slices) at full size on a GPU and at reduced sizes
// that reach the same paths on the emulation.
package cuda
