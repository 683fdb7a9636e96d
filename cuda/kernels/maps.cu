// maps.cu: the feature-map ops: padding, pooling, adaptive pooling,
// bilinear resizing, Gaussian blur, CoordConv's coordinates and the NCHW <->
// rows transposes. One thread per output element, with the CPU's order of
// summation wherever a sum is formed.
#include "common.cuh"

namespace {

using namespace anc;

__global__ void __launch_bounds__(anc::kThreads) zero_pad_kernel(float *y, const float *x, long long nc, int h, int w,
	int oh, int ow, int top, int left) {
	long long total = nc * oh * ow;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)oh * ow);
		int r = (int)(e - pl * oh * ow);
		int i = r / ow - top, j = r % ow - left;
		y[e] = (i >= 0 && i < h && j >= 0 && j < w) ? x[(pl * h + i) * w + j] : 0.0f;
	}
}

// max_pool_kernel takes the first NaN of a window, as the CPU does.
__global__ void __launch_bounds__(anc::kThreads) max_pool_kernel(float *y, const float *x, long long nc, int h, int w,
	int oh, int ow, int k, int s, int p) {
	long long total = nc * oh * ow;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)oh * ow);
		int r = (int)(e - pl * oh * ow);
		int i0 = (r / ow) * s - p, j0 = (r % ow) * s - p;
		const float *src = x + pl * h * w;
		float m = -INFINITY;
		for (int i = imax(i0, 0); i < imin(i0 + k, h); i++) {
			for (int j = imax(j0, 0); j < imin(j0 + k, w); j++) {
				float v = src[i * w + j];
				if (v > m || v != v) {
					m = v;
				}
			}
		}
		y[e] = m;
	}
}

__global__ void __launch_bounds__(anc::kThreads) avg_pool_kernel(float *y, const float *x, long long nc, int h, int w,
	int oh, int ow, int k, int s, int p) {
	long long total = nc * oh * ow;
	float inv = 1.0f / (float)(k * k);
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)oh * ow);
		int r = (int)(e - pl * oh * ow);
		int i0 = (r / ow) * s - p, j0 = (r % ow) * s - p;
		const float *src = x + pl * h * w;
		float sum = 0.0f;
		for (int i = imax(i0, 0); i < imin(i0 + k, h); i++) {
			for (int j = imax(j0, 0); j < imin(j0 + k, w); j++) {
				sum += src[i * w + j];
			}
		}
		y[e] = sum * inv;
	}
}

// first_window is the first output whose window [o*s - p, o*s - p + k)
// reaches input index i.
__device__ __forceinline__ int first_window(int i, int k, int s, int p) {
	int t = i + p - k + 1;
	return t <= 0 ? 0 : (t + s - 1) / s;
}

// avg_pool_backward_kernel gathers, for each input element, the gradients
// of the windows that cover it, in the CPU's (oi, oj) order.
__global__ void __launch_bounds__(anc::kThreads) avg_pool_backward_kernel(float *dx, const float *dy, long long nc,
	int h, int w, int oh, int ow, int k, int s,
	int p) {
	long long total = nc * h * w;
	float inv = 1.0f / (float)(k * k);
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)h * w);
		int r = (int)(e - pl * h * w);
		int i = r / w, j = r % w;
		const float *src = dy + pl * oh * ow;
		int oi1 = imin(oh - 1, (i + p) / s), oj1 = imin(ow - 1, (j + p) / s);
		float sum = 0.0f;
		for (int oi = first_window(i, k, s, p); oi <= oi1; oi++) {
			for (int oj = first_window(j, k, s, p); oj <= oj1; oj++) {
				sum += src[oi * ow + oj] * inv;
			}
		}
		dx[e] = sum;
	}
}

// PyTorch's adaptive windows: output o of m over an axis of n covers
// [floor(o*n/m), ceil((o+1)*n/m)).
__device__ __forceinline__ int win_lo(int o, int n, int m) { return (int)((long long)o * n / m); }
__device__ __forceinline__ int win_hi(int o, int n, int m) { return (int)(((long long)(o + 1) * n + m - 1) / m); }

__global__ void __launch_bounds__(anc::kThreads) adaptive_avg_pool_kernel(float *y, const float *x, long long nc,
	int h, int w, int oh, int ow) {
	long long total = nc * oh * ow;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)oh * ow);
		int r = (int)(e - pl * oh * ow);
		int oi = r / ow, oj = r % ow;
		int r0 = win_lo(oi, h, oh), r1 = win_hi(oi, h, oh), c0 = win_lo(oj, w, ow), c1 = win_hi(oj, w, ow);
		const float *src = x + pl * h * w;
		float sum = 0.0f;
		for (int i = r0; i < r1; i++) {
			for (int j = c0; j < c1; j++) {
				sum += src[i * w + j];
			}
		}
		y[e] = sum / (float)((r1 - r0) * (c1 - c0));
	}
}

__global__ void __launch_bounds__(anc::kThreads) adaptive_avg_pool_backward_kernel(float *dx, const float *dy,
	long long nc, int h, int w, int oh, int ow) {
	long long total = nc * h * w;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)h * w);
		int r = (int)(e - pl * h * w);
		int i = r / w, j = r % w;
		const float *src = dy + pl * oh * ow;
		// Windows covering i: o in [floor(i*oh/h), ceil((i+1)*oh/h) - 1];
		// one more each side, checked exactly, guards the rounding.
		int oa = imax(0, (int)((long long)i * oh / h) - 1), ob = imin(oh - 1, (int)(((long long)(i + 1) * oh + h - 1) / h));
		int pa = imax(0, (int)((long long)j * ow / w) - 1), pb = imin(ow - 1, (int)(((long long)(j + 1) * ow + w - 1) / w));
		float sum = 0.0f;
		for (int oi = oa; oi <= ob; oi++) {
			int r0 = win_lo(oi, h, oh), r1 = win_hi(oi, h, oh);
			if (i < r0 || i >= r1) {
				continue;
			}
			for (int oj = pa; oj <= pb; oj++) {
				int c0 = win_lo(oj, w, ow), c1 = win_hi(oj, w, ow);
				if (j < c0 || j >= c1) {
					continue;
				}
				sum += src[oi * ow + oj] / (float)((r1 - r0) * (c1 - c0));
			}
		}
		dx[e] = sum;
	}
}

// Taps is PyTorch's align_corners=False linear interpolation along one
// axis, computed in float64 as the CPU does.
struct Taps {
	int i0, i1;
	float w0, w1;
};

__device__ __forceinline__ Taps taps(int o, int in, int out) {
	double scale = (double)in / (double)out;
	double src = scale * ((double)o + 0.5) - 0.5;
	if (src < 0) {
		src = 0;
	}
	int i0 = imin((int)src, in - 1);
	double lam = src - (double)i0;
	return Taps{i0, imin(i0 + 1, in - 1), (float)(1.0 - lam), (float)lam};
}

__global__ void __launch_bounds__(anc::kThreads) resize_bilinear_kernel(float *y, const float *x, long long nc, int h,
	int w, int oh, int ow) {
	long long total = nc * oh * ow;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)oh * ow);
		int r = (int)(e - pl * oh * ow);
		Taps rt = taps(r / ow, h, oh), ct = taps(r % ow, w, ow);
		const float *a = x + (pl * h + rt.i0) * w, *b = x + (pl * h + rt.i1) * w;
		y[e] = rt.w0 * (ct.w0 * a[ct.i0] + ct.w1 * a[ct.i1]) + rt.w1 * (ct.w0 * b[ct.i0] + ct.w1 * b[ct.i1]);
	}
}

// reach returns the outputs lo..hi (of out along an axis of in) whose taps
// may include input i: taps is monotone in o, and its taps reach i only
// from a source position in [i - 1, i + 1), so the window around that
// range, widened by one each way, holds them all (each is checked).
__device__ __forceinline__ void reach(int i, int in, int out, int *lo, int *hi) {
	double s = (double)out / (double)in;
	*lo = imax(0, (int)floor(((double)i - 0.5) * s - 0.5) - 1);
	*hi = imin(out - 1, (int)ceil(((double)i + 1.5) * s - 0.5) + 1);
}

// weight is the weight with which output o's taps reach input i.
__device__ __forceinline__ float weight(Taps t, int i) {
	return (t.i0 == i ? t.w0 : 0.0f) + (t.i1 == i ? t.w1 : 0.0f);
}

// resize_bilinear_backward_kernel gathers, for each input, the output
// gradients whose taps reach it, outputs in order: no atomics, so every run
// sums in the same order.
__global__ void __launch_bounds__(anc::kThreads) resize_bilinear_backward_kernel(float *dx, const float *dy,
	long long nc, int h, int w, int oh, int ow) {
	long long total = nc * h * w;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)h * w);
		int r = (int)(e - pl * h * w), i = r / w, j = r % w;
		int rlo, rhi, clo, chi;
		reach(i, h, oh, &rlo, &rhi);
		reach(j, w, ow, &clo, &chi);
		const float *g = dy + pl * oh * ow;
		float acc = 0;
		for (int o = rlo; o <= rhi; o++) {
			float wr = weight(taps(o, h, oh), i);
			if (wr == 0) {
				continue;
			}
			for (int p = clo; p <= chi; p++) {
				float wc = weight(taps(p, w, ow), j);
				if (wc != 0) {
					acc += (wr * g[(long long)o * ow + p]) * wc;
				}
			}
		}
		dx[e] = acc;
	}
}

// reflect maps i into [0, n) as tensor.Reflect does.
__device__ __forceinline__ int reflect(int i, int n) {
	if (n == 1) {
		return 0;
	}
	int period = 2 * (n - 1);
	i %= period;
	if (i < 0) {
		i += period;
	}
	if (i >= n) {
		i = period - i;
	}
	return i;
}

// blur_rows_kernel and blur_cols_kernel are the two passes of the
// separable blur, rows first as on the CPU.
__global__ void __launch_bounds__(anc::kThreads) blur_rows_kernel(float *tmp, const float *x, const float *k, int r,
	long long nc, int h, int w) {
	long long total = nc * h * w;
	for (long long e = gtid(); e < total; e += gstride()) {
		int j = (int)(e % w);
		const float *row = x + (e - j);
		float s = 0.0f;
		for (int t = 0; t <= 2 * r; t++) {
			s += k[t] * row[reflect(j + t - r, w)];
		}
		tmp[e] = s;
	}
}

__global__ void __launch_bounds__(anc::kThreads) blur_cols_kernel(float *y, const float *tmp, const float *k, int r,
	long long nc, int h, int w) {
	long long total = nc * h * w;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long pl = e / ((long long)h * w);
		int rem = (int)(e - pl * h * w);
		int i = rem / w, j = rem % w;
		const float *plane = tmp + pl * h * w;
		float s = 0.0f;
		for (int t = 0; t <= 2 * r; t++) {
			s += k[t] * plane[reflect(i + t - r, h) * w + j];
		}
		y[e] = s;
	}
}

// coord_kernel writes the x (along the width) and y coordinate planes after
// the ch channels of each image.
__global__ void __launch_bounds__(anc::kThreads) coord_kernel(float *y, int n, int ch, int h, int w) {
	long long hw = (long long)h * w, total = (long long)n * 2 * hw;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long img = e / (2 * hw);
		int rem = (int)(e - img * 2 * hw);
		int which = rem / (int)hw, pos = rem % (int)hw;
		int i = pos / w, j = pos % w;
		int idx = which == 0 ? j : i, len = which == 0 ? w : h;
		float v = len == 1 ? 0.0f : (float)(-1.0 + 2.0 * (double)idx / (double)(len - 1));
		y[(img * (ch + 2) + ch + which) * hw + pos] = v;
	}
}

// transpose_kernel transposes n matrices rows x cols through 32 x 32 tiles.
__global__ void __launch_bounds__(256) transpose_kernel(float *dst, const float *src, int n, int rows, int cols) {
	__shared__ float tile[32][33];
	const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
	for (int img = blockIdx.z; img < n; img += gridDim.z) {
		const float *s = src + (long long)img * rows * cols;
		float *d = dst + (long long)img * rows * cols;
		for (int k = threadIdx.y; k < 32; k += 8) {
			int r = r0 + k, cc = c0 + threadIdx.x;
			if (r < rows && cc < cols) {
				tile[k][threadIdx.x] = s[(long long)r * cols + cc];
			}
		}
		__syncthreads();
		for (int k = threadIdx.y; k < 32; k += 8) {
			int cc = c0 + k, r = r0 + threadIdx.x;
			if (cc < cols && r < rows) {
				d[(long long)cc * rows + r] = tile[threadIdx.x][k];
			}
		}
		__syncthreads();
	}
}

}  // namespace

extern "C" int anc_zero_pad2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow, int top, int left) {
	BEGIN(c);
	long long n = nc * oh * ow;
	if (n > 0) {
		LAUNCH("zero_pad_kernel", zero_pad_kernel, blocks_for(c, n), kThreads, ptr<float>(y), ptr<const float>(x), nc, h, w, oh, ow,
			top, left);
	}
	return 0;
}

extern "C" int anc_max_pool2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow, int k, int s, int p) {
	BEGIN(c);
	long long n = nc * oh * ow;
	if (n > 0) {
		LAUNCH("max_pool_kernel", max_pool_kernel, blocks_for(c, n), kThreads, ptr<float>(y), ptr<const float>(x), nc, h, w, oh, ow,
			k, s, p);
	}
	return 0;
}

extern "C" int anc_avg_pool2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow, int k, int s, int p) {
	BEGIN(c);
	long long n = nc * oh * ow;
	if (n > 0) {
		LAUNCH("avg_pool_kernel", avg_pool_kernel, blocks_for(c, n), kThreads, ptr<float>(y), ptr<const float>(x), nc, h, w, oh, ow,
			k, s, p);
	}
	return 0;
}

extern "C" int anc_avg_pool2d_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, long long nc, int h, int w, int oh, int ow, int k,
	int s, int p) {
	BEGIN(c);
	long long n = nc * h * w;
	if (n > 0) {
		LAUNCH("avg_pool_backward_kernel", avg_pool_backward_kernel, blocks_for(c, n), kThreads, ptr<float>(dx), ptr<const float>(dy),
			nc, h, w, oh, ow, k, s, p);
	}
	return 0;
}

extern "C" int anc_adaptive_avg_pool2d(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow) {
	BEGIN(c);
	long long n = nc * oh * ow;
	if (n > 0) {
		LAUNCH("adaptive_avg_pool_kernel", adaptive_avg_pool_kernel, blocks_for(c, n), kThreads, ptr<float>(y), ptr<const float>(x),
			nc, h, w, oh, ow);
	}
	return 0;
}

extern "C" int anc_adaptive_avg_pool2d_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, long long nc, int h, int w, int oh, int ow) {
	BEGIN(c);
	long long n = nc * h * w;
	if (n > 0) {
		LAUNCH("adaptive_avg_pool_backward_kernel", adaptive_avg_pool_backward_kernel, blocks_for(c, n), kThreads, ptr<float>(dx),
			ptr<const float>(dy), nc, h, w, oh, ow);
	}
	return 0;
}

extern "C" int anc_resize_bilinear(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, int oh, int ow) {
	BEGIN(c);
	long long n = nc * oh * ow;
	if (n > 0) {
		LAUNCH("resize_bilinear_kernel", resize_bilinear_kernel, blocks_for(c, n), kThreads, ptr<float>(y), ptr<const float>(x), nc,
			h, w, oh, ow);
	}
	return 0;
}

extern "C" int anc_resize_bilinear_backward(anc_ctx *c, anc_dptr dx, anc_dptr dy, long long nc, int h, int w, int oh, int ow) {
	BEGIN(c);
	long long n = nc * h * w;
	if (n > 0) {
		LAUNCH("resize_bilinear_backward_kernel", resize_bilinear_backward_kernel, blocks_for(c, n), kThreads, ptr<float>(dx),
			ptr<const float>(dy), nc, h, w, oh, ow);
	}
	return 0;
}

extern "C" int anc_gaussian_blur(anc_ctx *c, anc_dptr y, anc_dptr x, long long nc, int h, int w, const float *taps, int r) {
	BEGIN(c);
	long long n = nc * h * w;
	if (n <= 0) {
		return 0;
	}
	// Scratch: the 2r+1 weights, then the row pass, 256-byte aligned.
	size_t kbytes = ((size_t)(2 * r + 1) * sizeof(float) + 255) / 256 * 256;
	void *s = nullptr;
	int st = anc::scratch(c, kbytes + (size_t)n * sizeof(float), &s);
	if (st != 0) {
		return st;
	}
	float *k = static_cast<float *>(s);
	float *tmp = reinterpret_cast<float *>(static_cast<char *>(s) + kbytes);
	// From pageable memory the copy is staged before the call returns, so
	// Go's buffer is not read afterwards.
	CK("cudaMemcpyAsync (blur weights)",
		cudaMemcpyAsync(k, taps, (size_t)(2 * r + 1) * sizeof(float), cudaMemcpyHostToDevice, c->stream));
	LAUNCH("blur_rows_kernel", blur_rows_kernel, blocks_for(c, n), kThreads, tmp, ptr<const float>(x), k, r, nc, h, w);
	LAUNCH("blur_cols_kernel", blur_cols_kernel, blocks_for(c, n), kThreads, ptr<float>(y), tmp, k, r, nc, h, w);
	return 0;
}

extern "C" int anc_coord_channels(anc_ctx *c, anc_dptr y, int n, int ch, int h, int w) {
	BEGIN(c);
	long long total = (long long)n * 2 * h * w;
	if (total > 0) {
		LAUNCH("coord_kernel", coord_kernel, blocks_for(c, total), kThreads, ptr<float>(y), n, ch, h, w);
	}
	return 0;
}

extern "C" int anc_transpose(anc_ctx *c, anc_dptr dst, anc_dptr src, int n, int rows, int cols) {
	BEGIN(c);
	if (n <= 0 || rows <= 0 || cols <= 0) {
		return 0;
	}
	long long gx = ((long long)cols + 31) / 32, gy = ((long long)rows + 31) / 32;
	if (gy > 65535) {
		return fail_arg(c, "transpose: too many rows for one launch");
	}
	LAUNCH("transpose_kernel", transpose_kernel, dim3((unsigned)gx, (unsigned)gy, (unsigned)(n < 65535 ? n : 65535)), dim3(32, 8),
		ptr<float>(dst), ptr<const float>(src), n, rows, cols);
	return 0;
}
