// elementwise.cu: Fill, Add, Axpy, Scale, ReLU and its backward, Adam, and
// the float64 reductions Sum and Dot.
#include "common.cuh"

namespace {

using anc::gstride;
using anc::gtid;

__global__ void __launch_bounds__(anc::kThreads) fill_kernel(float *x, long long n, float v) {
	for (long long i = gtid(); i < n; i += gstride()) {
		x[i] = v;
	}
}

__global__ void __launch_bounds__(anc::kThreads) add_kernel(float *y, const float *a, const float *b, long long n) {
	for (long long i = gtid(); i < n; i += gstride()) {
		y[i] = a[i] + b[i];  // y may alias a or b: each element reads before it writes
	}
}

__global__ void __launch_bounds__(anc::kThreads) axpy_kernel(float alpha, const float *x, float *y, long long n) {
	for (long long i = gtid(); i < n; i += gstride()) {
		y[i] += alpha * x[i];
	}
}

__global__ void __launch_bounds__(anc::kThreads) scale_kernel(float alpha, float *x, long long n) {
	for (long long i = gtid(); i < n; i += gstride()) {
		x[i] *= alpha;
	}
}

// relu_kernel keeps NaN, as Go's max does.
__global__ void __launch_bounds__(anc::kThreads) relu_kernel(float *y, const float *x, long long n) {
	for (long long i = gtid(); i < n; i += gstride()) {
		float v = x[i];
		y[i] = (v > 0.0f || v != v) ? v : 0.0f;
	}
}

__global__ void __launch_bounds__(anc::kThreads) relu_backward_kernel(float *dx, const float *dy, const float *y,
	long long n) {
	for (long long i = gtid(); i < n; i += gstride()) {
		dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
	}
}

__global__ void __launch_bounds__(anc::kThreads) adam_kernel(float *w, const float *g, float *m, float *v, long long n,
	float step, float sqrt_bc2,
	float b1, float b2, float eps, float wd) {
	for (long long i = gtid(); i < n; i += gstride()) {
		float gi = g[i] + wd * w[i];
		float mi = b1 * m[i] + (1.0f - b1) * gi;
		float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
		m[i] = mi;
		v[i] = vi;
		float denom = (float)sqrt((double)vi) / sqrt_bc2 + eps;
		w[i] -= step * mi / denom;
	}
}

// sum_partials_kernel writes one float64 partial sum (of x, or of x*y when
// y is not null) per block; sum_final_kernel adds the partials in order.
__global__ void __launch_bounds__(anc::kThreads) sum_partials_kernel(const float *x, const float *y, long long n,
	double *partial) {
	__shared__ double sh[anc::kThreads];
	double s = 0;
	if (y == nullptr) {
		for (long long i = gtid(); i < n; i += gstride()) {
			s += (double)x[i];
		}
	} else {
		for (long long i = gtid(); i < n; i += gstride()) {
			s += (double)x[i] * (double)y[i];
		}
	}
	s = anc::block_sum<anc::kThreads>(s, sh);
	if (threadIdx.x == 0) {
		partial[blockIdx.x] = s;
	}
}

__global__ void __launch_bounds__(anc::kThreads) sum_final_kernel(double *partial, int parts, double *out) {
	__shared__ double sh[anc::kThreads];
	double s = 0;
	for (int i = threadIdx.x; i < parts; i += anc::kThreads) {
		s += partial[i];
	}
	s = anc::block_sum<anc::kThreads>(s, sh);
	if (threadIdx.x == 0) {
		*out = s;
	}
}

int reduce(anc_ctx *c, const float *x, const float *y, long long n, double *out) {
	*out = 0;
	if (n <= 0) {
		return 0;
	}
	long long parts = (n + anc::kThreads - 1) / anc::kThreads;
	if (parts > anc::kRedBlocks) {
		parts = anc::kRedBlocks;
	}
	LAUNCH("sum_partials_kernel", sum_partials_kernel, dim3((unsigned)parts), dim3(anc::kThreads), x, y, n, c->red);
	double *res = c->red + anc::kRedBlocks;
	LAUNCH("sum_final_kernel", sum_final_kernel, dim3(1), dim3(anc::kThreads), c->red, (int)parts, res);
	CK("cudaMemcpyAsync (sum)", cudaMemcpyAsync(out, res, sizeof(double), cudaMemcpyDeviceToHost, c->stream));
	CK("cudaStreamSynchronize", cudaStreamSynchronize(c->stream));
	return 0;
}

}  // namespace

using anc::blocks_for;
using anc::ptr;

extern "C" int anc_fill(anc_ctx *c, anc_dptr x, long long n, float v) {
	BEGIN(c);
	if (n > 0) {
		LAUNCH("fill_kernel", fill_kernel, blocks_for(c, n), anc::kThreads, ptr<float>(x), n, v);
	}
	return 0;
}

extern "C" int anc_add(anc_ctx *c, anc_dptr dst, anc_dptr a, anc_dptr b, long long n) {
	BEGIN(c);
	if (n > 0) {
		LAUNCH("add_kernel", add_kernel, blocks_for(c, n), anc::kThreads, ptr<float>(dst), ptr<const float>(a), ptr<const float>(b), n);
	}
	return 0;
}

extern "C" int anc_axpy(anc_ctx *c, float alpha, anc_dptr x, anc_dptr y, long long n) {
	BEGIN(c);
	if (n > 0) {
		LAUNCH("axpy_kernel", axpy_kernel, blocks_for(c, n), anc::kThreads, alpha, ptr<const float>(x), ptr<float>(y), n);
	}
	return 0;
}

extern "C" int anc_scale(anc_ctx *c, float alpha, anc_dptr x, long long n) {
	BEGIN(c);
	if (n > 0) {
		LAUNCH("scale_kernel", scale_kernel, blocks_for(c, n), anc::kThreads, alpha, ptr<float>(x), n);
	}
	return 0;
}

extern "C" int anc_relu(anc_ctx *c, anc_dptr y, anc_dptr x, long long n) {
	BEGIN(c);
	if (n > 0) {
		LAUNCH("relu_kernel", relu_kernel, blocks_for(c, n), anc::kThreads, ptr<float>(y), ptr<const float>(x), n);
	}
	return 0;
}

extern "C" int anc_relu_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, anc_dptr y, long long n) {
	BEGIN(c);
	if (n > 0) {
		LAUNCH("relu_backward_kernel", relu_backward_kernel, blocks_for(c, n), anc::kThreads, ptr<float>(dx), ptr<const float>(dy),
			ptr<const float>(y), n);
	}
	return 0;
}

extern "C" int anc_adam(anc_ctx *c, anc_dptr param, anc_dptr grad, anc_dptr m, anc_dptr v, long long n, float step_size,
	float sqrt_bc2, float beta1, float beta2, float eps, float weight_decay) {
	BEGIN(c);
	if (n > 0) {
		LAUNCH("adam_kernel", adam_kernel, blocks_for(c, n), anc::kThreads, ptr<float>(param), ptr<const float>(grad), ptr<float>(m),
			ptr<float>(v), n, step_size, sqrt_bc2, beta1, beta2, eps, weight_decay);
	}
	return 0;
}

extern "C" int anc_sum(anc_ctx *c, anc_dptr x, long long n, double *out) {
	BEGIN(c);
	return reduce(c, ptr<const float>(x), nullptr, n, out);
}

extern "C" int anc_dot(anc_ctx *c, anc_dptr x, anc_dptr y, long long n, double *out) {
	BEGIN(c);
	return reduce(c, ptr<const float>(x), ptr<const float>(y), n, out);
}
