// cuda_emu.h: just enough of CUDA C++ and its runtime API to compile
// anomnet's kernels with a host C++ compiler and run them on the CPU, so that
// the conformance suite checks every kernel's indexing, barriers and
// reductions on machines without a GPU (make -C cuda/kernels emu; go test
// -tags 'cuda cudaemu' ./cuda/).
//
// Each block runs its threads as cooperative fibers on one OS thread:
// __syncthreads switches to the next fiber, and a block whose threads do not
// all reach the same barrier aborts with a message. Blocks run in parallel on
// ANC_EMU_THREADS OS threads (default 2), so __shared__ maps to a
// thread_local static. Between barriers a block's threads run one after
// another, in order, or in reverse order with ANC_EMU_REVERSE=1: a missing
// barrier shows as a wrong result in one order or the other. Atomics are real atomics. Warp-level intrinsics are
// not provided: the kernels do not use them.
#ifndef ANC_CUDA_EMU_H
#define ANC_CUDA_EMU_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

struct dim3 {
	unsigned x, y, z;
	constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
	unsigned x, y, z;
};
struct float4 {
	float x, y, z, w;
};

namespace emu {
extern thread_local uint3 thread_idx, block_idx;
extern thread_local dim3 block_dim, grid_dim;
void syncthreads();
// launch runs body for every thread of every block of grid; it returns 0 or
// a cudaError_t for a bad configuration.
int launch(dim3 grid, dim3 block, const std::function<void()> &body);
}  // namespace emu

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define __syncthreads() emu::syncthreads()
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __restrict__ __restrict

inline float atomicAdd(float *p, float v) {
	float old, sum;
	__atomic_load(p, &old, __ATOMIC_RELAXED);
	do {
		sum = old + v;
	} while (!__atomic_compare_exchange(p, &old, &sum, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	return old;
}
inline int atomicCAS(int *p, int cmp, int v) {
	__atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return cmp;
}

// The runtime API, as far as the kernels' host code uses it.
typedef int cudaError_t;
enum {
	cudaSuccess = 0,
	cudaErrorInvalidValue = 1,
	cudaErrorMemoryAllocation = 2,
	cudaErrorInvalidConfiguration = 9,
	cudaErrorInvalidDevice = 101,
	cudaErrorNoDevice = 100,
};
typedef struct emu_stream *cudaStream_t;
enum cudaMemcpyKind {
	cudaMemcpyHostToHost = 0,
	cudaMemcpyHostToDevice = 1,
	cudaMemcpyDeviceToHost = 2,
	cudaMemcpyDeviceToDevice = 3,
	cudaMemcpyDefault = 4
};
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMemoryPoolsSupported = 115 };
#define cudaStreamNonBlocking 0x01
struct cudaDeviceProp {
	char name[256];
	int major, minor;
};

const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s);
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
	cudaMemcpyKind k, cudaStream_t s);

#endif
