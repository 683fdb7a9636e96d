// common.cuh: what every kernel file shares: the context, error checks,
// launch helpers and block reductions. Under ANC_EMU the same code compiles
// with a host compiler against emu/cuda_emu.h (see there).
#ifndef ANC_COMMON_CUH
#define ANC_COMMON_CUH

#ifdef ANC_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "anomnet_cuda.h"

struct anc_ctx {
	int device;
	cudaStream_t stream;
	bool pools;           // stream-ordered allocation (cudaMallocAsync) works
	void *scratch;        // temporaries of one op at a time, in stream order
	size_t scratch_bytes;
	int *fault;           // device word where kernels report bad indices
	double *red;          // partial sums of anc_sum and anc_dot
	int sms;              // streaming multiprocessors (1 on the emulation)
	char msg[512];
};

namespace anc {

// Threads of the one-dimensional kernels, and the most blocks they launch
// (they loop over the rest). The emulation takes fewer, larger blocks.
constexpr int kThreads = 256;
#ifdef ANC_EMU
constexpr long long kMaxBlocks = 64;
#else
constexpr long long kMaxBlocks = 65535;
#endif
// Blocks of anc_sum's first pass; the second pass is one block.
constexpr int kRedBlocks = 1024;

inline int fail(anc_ctx *c, const char *what, cudaError_t e) {
	std::snprintf(c->msg, sizeof c->msg, "%s: %s", what, cudaGetErrorString(e));
	return (int)e;
}

inline int fail_arg(anc_ctx *c, const char *what) {
	std::snprintf(c->msg, sizeof c->msg, "%s", what);
	return ANC_ERR_ARG;
}

// kWaves is how many waves of resident blocks a grid-stride kernel's grid
// holds: enough that a wave's tail is small, few enough that each thread
// loops over several elements.
constexpr int kWaves = 4;
// kThreadsPerSM is how many threads a multiprocessor holds at once (sm_80
// and sm_90).
constexpr int kThreadsPerSM = 2048;

// grid_for caps a grid of blocks blocks of block_threads threads, each
// of which loops over its share when there are fewer (grid-stride), at
// kWaves waves of the blocks the context's multiprocessors hold at once,
// and at kMaxBlocks.
inline unsigned grid_for(const anc_ctx *c, long long blocks, int block_threads) {
	long long waves = (long long)kWaves * (c->sms > 0 ? c->sms : 1) * (kThreadsPerSM / block_threads);
	long long b = blocks < waves ? blocks : waves;
	if (b > kMaxBlocks) {
		b = kMaxBlocks;
	}
	return (unsigned)(b < 1 ? 1 : b);
}

// blocks_for is the grid of a grid-stride kernel of kThreads threads a
// block over n items, per items to a block.
inline unsigned blocks_for(const anc_ctx *c, long long n, int per = kThreads) {
	return grid_for(c, (n + per - 1) / per, kThreads);
}

// scratch returns at least bytes of the context's scratch memory, growing
// it (in stream order) when needed.
int scratch(anc_ctx *c, size_t bytes, void **p);

template <class T>
__host__ __device__ __forceinline__ T *ptr(anc_dptr p) {
	return reinterpret_cast<T *>(static_cast<uintptr_t>(p));
}

__device__ __forceinline__ long long gtid() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long gstride() { return (long long)gridDim.x * blockDim.x; }

__host__ __device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// FastDiv divides integers in [0, 2^31) by a divisor d >= 1 fixed at
// launch, with a multiply-high and a shift in place of a division (about
// twenty instructions in SASS): for d >= 2, with l = ceil(log2 d) and mul =
// ceil(2^(31+l) / d) (below 2^32), n / d = umulhi(n, mul) >> (l - 1). The
// rounding error n (mul d - 2^(31+l)) / (d 2^(31+l)) is below 2^31 / 2^(31+l)
// <= 1/d, which leaves the floor unchanged. d = 1 takes mul = 0.
struct FastDiv {
	int d;
	unsigned mul;
	int shr;

	FastDiv() = default;
	explicit FastDiv(int divisor) : d(divisor), mul(0), shr(0) {
		if (divisor > 1) {
			int l = 0;
			while ((1LL << l) < divisor) {
				l++;
			}
			mul = (unsigned)(((1ULL << (31 + l)) + (unsigned long long)divisor - 1) / (unsigned long long)divisor);
			shr = l - 1;
		}
	}

	// div returns n / d for 0 <= n < 2^31.
	__host__ __device__ __forceinline__ int div(int n) const {
#ifdef __CUDA_ARCH__
		unsigned hi = __umulhi((unsigned)n, mul);
#else
		unsigned hi = (unsigned)(((unsigned long long)(unsigned)n * mul) >> 32);
#endif
		return mul == 0 ? n : (int)(hi >> shr);
	}

	// divmod sets q = n / d and returns n % d, for 0 <= n < 2^31.
	__host__ __device__ __forceinline__ int divmod(int n, int &q) const {
		q = div(n);
		return n - q * d;
	}
};

// block_reduce returns op's reduction of v over the block's THREADS
// threads (a power of two, blockDim.x == THREADS) to every thread, in a
// fixed order (a tree over the thread numbers); sh holds THREADS values.
// Every thread must call it.
template <int THREADS, class T, class Op>
__device__ __forceinline__ T block_reduce(T v, T *sh, Op op) {
	int t = threadIdx.x;
	sh[t] = v;
	__syncthreads();
	for (int s = THREADS / 2; s > 0; s >>= 1) {
		if (t < s) {
			sh[t] = op(sh[t], sh[t + s]);
		}
		__syncthreads();
	}
	T r = sh[0];
	__syncthreads();
	return r;
}

// block_sum returns the sum of v over the block's THREADS threads to every
// thread, in a fixed order; sh holds THREADS values.
template <int THREADS, class T>
__device__ __forceinline__ T block_sum(T v, T *sh) {
	return block_reduce<THREADS>(v, sh, [](T a, T b) { return a + b; });
}

// block_min returns the minimum of v over the block's threads, NaN if any
// is NaN (as a sequential scan that keeps a NaN once met).
template <int THREADS>
__device__ __forceinline__ float block_min(float v, float *sh) {
	return block_reduce<THREADS>(v, sh, [](float a, float b) { return (a != a || b != b) ? NAN : (b < a ? b : a); });
}

// block_min_int returns the smallest v over the block's threads.
template <int THREADS>
__device__ __forceinline__ int block_min_int(int v, int *sh) {
	return block_reduce<THREADS>(v, sh, [](int a, int b) { return b < a ? b : a; });
}

// block_scan returns the inclusive prefix sum of v over the block's
// THREADS threads, thread t getting the sum of threads 0 to t, and the sum
// over all of them in *total; sh holds THREADS values. Every thread must
// call it. It compacts the threads that hold something (v = 1) in thread
// order: *total is their number, and thread t's result minus one its
// place.
template <int THREADS>
__device__ __forceinline__ int block_scan(int v, int *sh, int *total) {
	int t = threadIdx.x;
	sh[t] = v;
	__syncthreads();
	for (int off = 1; off < THREADS; off *= 2) {
		int u = t >= off ? sh[t - off] : 0;
		__syncthreads();
		sh[t] += u;
		__syncthreads();
	}
	int r = sh[t];
	*total = sh[THREADS - 1];
	__syncthreads();
	return r;
}

// report records the first fault code of the stream's kernels.
__device__ __forceinline__ void report(int *fault, int code) { atomicCAS(fault, 0, code); }

}  // namespace anc

// CK returns from the calling entry point with the status of a failed
// runtime call, after recording its name and CUDA's message.
#define CK(what, call)                              \
	do {                                            \
		cudaError_t e_ = (call);                    \
		if (e_ != cudaSuccess) {                    \
			return anc::fail(c, what, e_);          \
		}                                           \
	} while (0)

// BEGIN checks the context and makes its device current on this thread:
// cgo calls may come from any OS thread.
#define BEGIN(c)                                          \
	do {                                                  \
		if ((c) == nullptr) {                             \
			return ANC_ERR_ARG;                           \
		}                                                 \
		CK("cudaSetDevice", cudaSetDevice((c)->device)); \
	} while (0)

// LAUNCH launches kernel (a name, or a variable holding a template
// instance) on the context's stream and checks the launch.
#ifdef ANC_EMU
#define LAUNCH(what, kernel, grid, block, ...)                                          \
	do {                                                                                \
		emu::launch((grid), (block), [=] { kernel(__VA_ARGS__); });                     \
		CK(what, cudaGetLastError());                                                   \
	} while (0)
#else
#define LAUNCH(what, kernel, grid, block, ...)                  \
	do {                                                        \
		kernel<<<(grid), (block), 0, c->stream>>>(__VA_ARGS__); \
		CK(what, cudaGetLastError());                           \
	} while (0)
#endif

#endif
