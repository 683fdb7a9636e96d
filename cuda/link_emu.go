//go:build cuda && cudaemu

package cuda

// The kernels compiled for the CPU emulation (make -C cuda/kernels emu):
// the conformance suite runs every kernel on a machine without a GPU.

// #cgo LDFLAGS: -L${SRCDIR}/kernels -lanomnet_cuda_emu -lstdc++ -lpthread -lm
import "C"

// emulated reports that the kernels run on the CPU emulation.
const emulated = true
