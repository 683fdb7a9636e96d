// emu.cpp: the CPU side of cuda_emu.h: fibers for the threads of a block, a
// small pool of OS threads for the blocks of a grid, and host memory for the
// runtime API's device memory.
#include "cuda_emu.h"

#include <sys/mman.h>
#include <ucontext.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace emu {

thread_local uint3 thread_idx, block_idx;
thread_local dim3 block_dim, grid_dim;

namespace {

enum { kRunnable, kBarrier, kDone };
constexpr size_t kStack = 128 << 10;
constexpr unsigned kMaxThreads = 1024;

std::atomic<int> last_error{0};

struct Fiber {
	ucontext_t ctx;
	int state;
};

// Worker runs blocks on its OS thread, each thread of a block a fiber.
struct Worker {
	ucontext_t sched;
	Fiber fibers[kMaxThreads];
	char *stacks = nullptr;
	Fiber *cur = nullptr;
	const std::function<void()> *body = nullptr;

	Worker() {
		void *p = mmap(nullptr, kStack * kMaxThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			std::fprintf(stderr, "anomnet/cuda emulation: cannot map fiber stacks\n");
			std::abort();
		}
		stacks = static_cast<char *>(p);
	}
	~Worker() { munmap(stacks, kStack * kMaxThreads); }

	// run executes one block; false if its threads did not all reach the
	// same barriers.
	bool run(dim3 grid, dim3 block, uint3 bidx, const std::function<void()> &f);
};

thread_local Worker *self;

// reverse (ANC_EMU_REVERSE=1) resumes a block's threads in reverse order
// between barriers: a missing barrier shows in one order or the other.
// ANC_EMU_ORDER=reverse, read at every launch (a test may change it between
// two runs), reverses the threads and the order in which blocks are taken:
// a kernel whose result depends on the order of its atomics shows it.
const bool reverse_env = [] {
	const char *s = std::getenv("ANC_EMU_REVERSE");
	return s != nullptr && s[0] == '1';
}();
thread_local bool reverse = reverse_env;  // this launch's, per worker thread

void fiber_entry() {
	Worker *w = self;
	(*w->body)();
	w->cur->state = kDone;  // returning resumes w->sched through uc_link
}

bool Worker::run(dim3 grid, dim3 block, uint3 bidx, const std::function<void()> &f) {
	self = this;
	body = &f;
	grid_dim = grid;
	block_dim = block;
	block_idx = bidx;
	unsigned n = block.x * block.y * block.z;
	for (unsigned i = 0; i < n; i++) {
		Fiber &fb = fibers[i];
		getcontext(&fb.ctx);
		fb.ctx.uc_stack.ss_sp = stacks + i * kStack;
		fb.ctx.uc_stack.ss_size = kStack;
		fb.ctx.uc_link = &sched;
		makecontext(&fb.ctx, fiber_entry, 0);
		fb.state = kRunnable;
	}
	for (;;) {
		unsigned done = 0, waiting = 0;
		for (unsigned k = 0; k < n; k++) {
			unsigned i = reverse ? n - 1 - k : k;
			Fiber &fb = fibers[i];
			if (fb.state == kDone) {
				done++;
				continue;
			}
			fb.state = kRunnable;
			cur = &fb;
			thread_idx = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
			swapcontext(&sched, &fb.ctx);
			if (fb.state == kDone) {
				done++;
			} else {
				waiting++;
			}
		}
		if (done == n) {
			return true;
		}
		if (done > 0 && waiting > 0) {
			return false;  // some threads exited while others wait at a barrier
		}
	}
}

// Pool is the set of OS threads that run the blocks of a launch.
struct Pool {
	std::mutex mu;
	std::condition_variable start, finish;
	std::vector<std::thread> threads;
	unsigned generation = 0, busy = 0;
	const std::function<void()> *body = nullptr;
	dim3 grid, block;
	std::atomic<unsigned long long> next{0};
	std::atomic<bool> diverged{false};
	bool backwards = false;  // this launch's ANC_EMU_ORDER

	explicit Pool(int n) {
		for (int i = 0; i < n; i++) {
			threads.emplace_back([this] { loop(); });
		}
	}

	void work() {
		thread_local Worker *w = new Worker;  // lives as long as the thread
		unsigned long long total = (unsigned long long)grid.x * grid.y * grid.z;
		reverse = reverse_env || backwards;
		for (;;) {
			unsigned long long b = next.fetch_add(1);
			if (b >= total) {
				return;
			}
			if (backwards) {
				b = total - 1 - b;
			}
			uint3 bi{unsigned(b % grid.x), unsigned((b / grid.x) % grid.y), unsigned(b / ((unsigned long long)grid.x * grid.y))};
			if (!w->run(grid, block, bi, *body)) {
				diverged = true;
			}
		}
	}

	void loop() {
		unsigned seen = 0;
		for (;;) {
			std::unique_lock<std::mutex> l(mu);
			start.wait(l, [&] { return generation != seen; });
			seen = generation;
			l.unlock();
			work();
			l.lock();
			if (--busy == 0) {
				finish.notify_all();
			}
		}
	}

	bool launch(dim3 g, dim3 b, const std::function<void()> &f) {
		std::unique_lock<std::mutex> l(mu);
		grid = g;
		block = b;
		body = &f;
		next = 0;
		diverged = false;
		const char *order = std::getenv("ANC_EMU_ORDER");
		backwards = order != nullptr && std::strcmp(order, "reverse") == 0;
		busy = threads.size();
		generation++;
		start.notify_all();
		l.unlock();
		work();  // the calling thread helps
		l.lock();
		finish.wait(l, [&] { return busy == 0; });
		return !diverged;
	}
};

std::mutex launch_mu;  // one launch at a time, as on one stream

Pool &pool() {
	static Pool *p = [] {
		int n = 2;
		if (const char *s = std::getenv("ANC_EMU_THREADS")) {
			n = std::atoi(s);
		}
		return new Pool(n > 1 ? n - 1 : 0);
	}();
	return *p;
}

}  // namespace

void syncthreads() {
	Worker *w = self;
	w->cur->state = kBarrier;
	swapcontext(&w->cur->ctx, &w->sched);
}

int launch(dim3 grid, dim3 block, const std::function<void()> &body) {
	unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
	if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > kMaxThreads || grid.y > 65535 || grid.z > 65535) {
		last_error = cudaErrorInvalidConfiguration;
		return cudaErrorInvalidConfiguration;
	}
	std::lock_guard<std::mutex> l(launch_mu);
	if (!pool().launch(grid, block, body)) {
		last_error = 719;  // cudaErrorLaunchFailure
		return 719;
	}
	return 0;
}

}  // namespace emu

const char *cudaGetErrorString(cudaError_t e) {
	switch (e) {
	case cudaSuccess:
		return "no error";
	case cudaErrorInvalidValue:
		return "invalid argument";
	case cudaErrorMemoryAllocation:
		return "out of memory";
	case cudaErrorInvalidConfiguration:
		return "invalid configuration argument";
	case cudaErrorNoDevice:
		return "no CUDA-capable device is detected";
	case cudaErrorInvalidDevice:
		return "invalid device ordinal";
	case 719:
		return "unspecified launch failure (emulation: the threads of a block did not all reach the same __syncthreads)";
	}
	return "unknown error";
}

cudaError_t cudaGetLastError() { return emu::last_error.exchange(0); }

cudaError_t cudaGetDeviceCount(int *n) {
	*n = 1;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
	if (d != 0) {
		return cudaErrorInvalidDevice;
	}
	std::memset(p, 0, sizeof *p);
	std::snprintf(p->name, sizeof p->name, "CPU emulation");
	p->major = 0;
	return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int) {
	// Four multiprocessors: enough that the kernels sized by them (the
	// split-K filter gradient) take several slices on small products.
	*v = a == cudaDevAttrMultiProcessorCount ? 4 : 1;
	return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
	*s = nullptr;
	return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaMalloc(void **p, size_t n) {
	// Rounded up and aligned like cudaMalloc's; filled with a NaN pattern so
	// that reads of unwritten memory show.
	size_t r = (n + 255) / 256 * 256;
	*p = std::aligned_alloc(256, r ? r : 256);
	if (*p == nullptr) {
		return cudaErrorMemoryAllocation;
	}
	std::memset(*p, 0xff, r);
	return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
	std::free(p);
	return cudaSuccess;
}
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) { return cudaMalloc(p, n); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t) { return cudaFree(p); }

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
	std::memset(p, v, n);
	return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind, cudaStream_t) {
	std::memmove(dst, src, n);
	return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
	cudaMemcpyKind, cudaStream_t) {
	if (width > dpitch || width > spitch) {
		return cudaErrorInvalidValue;
	}
	for (size_t i = 0; i < height; i++) {
		std::memmove(static_cast<char *>(dst) + i * dpitch, static_cast<const char *>(src) + i * spitch, width);
	}
	return cudaSuccess;
}
