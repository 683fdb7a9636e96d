//go:build cuda && !cudaemu

package cuda

// The kernels (make -C cuda/kernels) and CUDA's runtime, linked statically;
// the driver (libcuda.so.1) is loaded at run time by the runtime itself.
// Debian's toolkit keeps libcudart_static.a in /usr/lib/x86_64-linux-gnu,
// NVIDIA's in /usr/local/cuda/lib64. With the cudastatic tag libstdc++ and
// libgcc are linked statically too, for a binary that runs on a machine
// without Go or a matching C++ library (scripts/gpu-check.sh).

// #cgo LDFLAGS: -L${SRCDIR}/kernels -lanomnet_cuda -L/usr/lib/x86_64-linux-gnu -L/usr/local/cuda/lib64 -lcudart_static -ldl -lpthread -lrt -lm
// #cgo !cudastatic LDFLAGS: -lstdc++
// #cgo cudastatic LDFLAGS: -Wl,-Bstatic -lstdc++ -Wl,-Bdynamic -static-libgcc
import "C"

// emulated reports that the kernels run on the CPU emulation.
const emulated = false
