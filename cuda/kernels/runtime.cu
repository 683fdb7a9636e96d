// runtime.cu: contexts, memory and transfers.
#include <cstdlib>
#include <cstring>

#include "common.cuh"
#include "mma.cuh"

extern "C" const char *anc_error_string(int status) {
	switch (status) {
	case ANC_ERR_INDEX:
		return "index out of range";
	case ANC_ERR_ARG:
		return "invalid argument";
	case ANC_ERR_NOMEM:
		return "host memory exhausted";
	}
	return cudaGetErrorString((cudaError_t)status);
}

extern "C" int anc_device_count(int *n) {
	*n = 0;
	cudaError_t e = cudaGetDeviceCount(n);
	if (e != cudaSuccess) {
		*n = 0;
		cudaGetLastError();  // not sticky: clear it
	}
	return (int)e;
}

namespace {

// dfree releases device memory in stream order where the device allows.
cudaError_t dfree(anc_ctx *c, void *p) {
	if (p == nullptr) {
		return cudaSuccess;
	}
	if (c->pools) {
		return cudaFreeAsync(p, c->stream);
	}
	cudaError_t e = cudaStreamSynchronize(c->stream);
	cudaError_t f = cudaFree(p);
	return e != cudaSuccess ? e : f;
}

cudaError_t dmalloc(anc_ctx *c, void **p, size_t bytes) {
	*p = nullptr;
	if (c->pools) {
		return cudaMallocAsync(p, bytes, c->stream);
	}
	return cudaMalloc(p, bytes);
}

}  // namespace

extern "C" int anc_create(int ordinal, anc_ctx **out) {
	*out = nullptr;
	anc_ctx *c = static_cast<anc_ctx *>(std::calloc(1, sizeof(anc_ctx)));
	if (c == nullptr) {
		return ANC_ERR_NOMEM;
	}
	c->device = ordinal;
	cudaError_t e = cudaSetDevice(ordinal);
	int pools = 0;
	if (e == cudaSuccess) {
		e = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, ordinal);
	}
	c->pools = pools != 0;
	c->sms = 1;
	if (e == cudaSuccess) {
		e = cudaDeviceGetAttribute(&c->sms, cudaDevAttrMultiProcessorCount, ordinal);
	}
#ifndef ANC_EMU
	if (e == cudaSuccess && c->pools) {
		// Keep freed memory in the pool between syncs instead of handing
		// it back to the driver at each one; anc_destroy trims it.
		cudaMemPool_t pool;
		e = cudaDeviceGetDefaultMemPool(&pool, ordinal);
		unsigned long long keep = ~0ULL;
		if (e == cudaSuccess) {
			e = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
		}
	}
#endif
	if (e == cudaSuccess) {
		e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
	}
	if (e == cudaSuccess) {
		e = cudaMalloc(reinterpret_cast<void **>(&c->fault), sizeof(int));
	}
	if (e == cudaSuccess) {
		e = cudaMalloc(reinterpret_cast<void **>(&c->red), (anc::kRedBlocks + 1) * sizeof(double));
	}
	if (e == cudaSuccess) {
		e = cudaMemsetAsync(c->fault, 0, sizeof(int), c->stream);
	}
	if (e == cudaSuccess) {
		e = cudaStreamSynchronize(c->stream);
	}
	if (e != cudaSuccess) {
		cudaGetLastError();
		anc_destroy(c);
		return (int)e;
	}
	*out = c;
	return 0;
}

extern "C" void anc_destroy(anc_ctx *c) {
	if (c == nullptr) {
		return;
	}
	cudaSetDevice(c->device);
	if (c->stream != nullptr) {
		cudaStreamSynchronize(c->stream);
	}
	dfree(c, c->scratch);
	if (c->stream != nullptr) {
		cudaStreamSynchronize(c->stream);
	}
	cudaFree(c->fault);
	cudaFree(c->red);
	if (c->stream != nullptr) {
		cudaStreamDestroy(c->stream);
	}
#ifndef ANC_EMU
	if (c->pools) {
		cudaMemPool_t pool;
		if (cudaDeviceGetDefaultMemPool(&pool, c->device) == cudaSuccess) {
			cudaMemPoolTrimTo(pool, 0);
		}
	}
#endif
	cudaGetLastError();
	std::free(c);
}

extern "C" void anc_fast_div(int d, const int *n, int *q, long long count) {
	anc::FastDiv f(d);
	for (long long i = 0; i < count; i++) {
		q[i] = f.div(n[i]);
	}
}

extern "C" void anc_tf32(const float *x, float *y, long long count) {
	for (long long i = 0; i < count; i++) {
		y[i] = anc::tf32(x[i]);
	}
}

extern "C" const char *anc_last_error(anc_ctx *c) { return c ? c->msg : "no context"; }

extern "C" int anc_device_name(anc_ctx *c, char *buf, int len) {
	BEGIN(c);
	cudaDeviceProp p;
	CK("cudaGetDeviceProperties", cudaGetDeviceProperties(&p, c->device));
	std::snprintf(buf, len, "%s", p.name);
	return 0;
}

int anc::scratch(anc_ctx *c, size_t bytes, void **p) {
	if (bytes > c->scratch_bytes) {
		CK("cudaFree (scratch)", dfree(c, c->scratch));
		c->scratch = nullptr;
		c->scratch_bytes = 0;
		size_t grow = bytes + bytes / 4;  // room for slightly larger calls
		CK("cudaMalloc (scratch)", dmalloc(c, &c->scratch, grow));
		c->scratch_bytes = grow;
	}
	*p = c->scratch;
	return 0;
}

extern "C" int anc_malloc(anc_ctx *c, anc_dptr *p, long long bytes) {
	BEGIN(c);
	*p = 0;
	void *q = nullptr;
	CK("cudaMalloc", dmalloc(c, &q, (size_t)(bytes > 0 ? bytes : 1)));
	*p = (anc_dptr)(uintptr_t)q;
	return 0;
}

extern "C" int anc_free(anc_ctx *c, anc_dptr p) {
	BEGIN(c);
	CK("cudaFree", dfree(c, anc::ptr<void>(p)));
	return 0;
}

extern "C" int anc_memset0(anc_ctx *c, anc_dptr p, long long bytes) {
	BEGIN(c);
	if (bytes > 0) {
		CK("cudaMemsetAsync", cudaMemsetAsync(anc::ptr<void>(p), 0, (size_t)bytes, c->stream));
	}
	return 0;
}

extern "C" int anc_to_device(anc_ctx *c, anc_dptr dst, const void *src, long long bytes) {
	BEGIN(c);
	if (bytes > 0) {
		CK("cudaMemcpyAsync (host to device)",
			cudaMemcpyAsync(anc::ptr<void>(dst), src, (size_t)bytes, cudaMemcpyHostToDevice, c->stream));
		// The host buffer belongs to Go: it must not be read after return.
		CK("cudaStreamSynchronize", cudaStreamSynchronize(c->stream));
	}
	return 0;
}

extern "C" int anc_to_host(anc_ctx *c, void *dst, anc_dptr src, long long bytes) {
	BEGIN(c);
	if (bytes > 0) {
		CK("cudaMemcpyAsync (device to host)",
			cudaMemcpyAsync(dst, anc::ptr<void>(src), (size_t)bytes, cudaMemcpyDeviceToHost, c->stream));
		CK("cudaStreamSynchronize", cudaStreamSynchronize(c->stream));
	}
	return 0;
}

extern "C" int anc_copy(anc_ctx *c, anc_dptr dst, anc_dptr src, long long bytes) {
	BEGIN(c);
	if (bytes > 0) {
		CK("cudaMemcpyAsync (device to device)",
			cudaMemcpyAsync(anc::ptr<void>(dst), anc::ptr<void>(src), (size_t)bytes, cudaMemcpyDeviceToDevice, c->stream));
	}
	return 0;
}

extern "C" int anc_copy_channels(anc_ctx *c, anc_dptr dst, int dc, int dof, anc_dptr src, int sc, int so, int ch, int n, long long hw) {
	BEGIN(c);
	if (n <= 0 || ch <= 0 || hw <= 0) {
		return 0;
	}
	size_t plane = (size_t)hw * sizeof(float);
	CK("cudaMemcpy2DAsync", cudaMemcpy2DAsync(anc::ptr<float>(dst) + (long long)dof * hw, dc * plane,
		anc::ptr<float>(src) + (long long)so * hw, sc * plane, ch * plane, (size_t)n, cudaMemcpyDeviceToDevice, c->stream));
	return 0;
}

extern "C" int anc_sync(anc_ctx *c) {
	BEGIN(c);
	CK("cudaStreamSynchronize", cudaStreamSynchronize(c->stream));
	int fault = 0;
	CK("cudaMemcpyAsync (fault word)", cudaMemcpyAsync(&fault, c->fault, sizeof fault, cudaMemcpyDeviceToHost, c->stream));
	CK("cudaStreamSynchronize", cudaStreamSynchronize(c->stream));
	if (fault != 0) {
		CK("cudaMemsetAsync (fault word)", cudaMemsetAsync(c->fault, 0, sizeof(int), c->stream));
		const char *op = fault == ANC_FAULT_GATHER ? "GatherRows" : fault == ANC_FAULT_SCATTER ? "ScatterAddRows" : "a kernel";
		std::snprintf(c->msg, sizeof c->msg, "%s: an index was out of range (the rows it names were left alone)", op);
		return ANC_ERR_INDEX;
	}
	return 0;
}
