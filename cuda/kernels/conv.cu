// conv.cu: Gemm, and the convolution forward, backward-data and
// backward-filter passes as implicit GEMMs over tile_product (tile.cuh):
// the im2col matrices are gathered by the loaders, never stored.
#include "tile.cuh"

namespace {

using namespace anc;

// GemmStore: c = alpha*acc + beta*c, c not read when beta == 0.
struct GemmStore {
	float *c;
	int ldc;
	float alpha, beta;
	__device__ __forceinline__ void operator()(int i, int j, float acc) const {
		float *p = c + (long long)i * ldc + j;
		*p = beta == 0.0f ? alpha * acc : alpha * acc + beta * *p;
	}
};

template <int BM, int BN, class LA, class LB, bool A_LFAST, bool B_JFAST>
int gemm_sized(anc_ctx *c, int m, int n, int k, LA la, LB lb, GemmStore st) {
	return launch_gemm<BM, BN, A_LFAST, B_JFAST>(c, "gemm_kernel (Gemm)", m, n, k, la, lb, st);
}

template <class LA, class LB, bool A_LFAST, bool B_JFAST>
int gemm_any(anc_ctx *c, int m, int n, int k, LA la, LB lb, GemmStore st) {
	if (big_tiles(m, n)) {
		return gemm_sized<128, 128, LA, LB, A_LFAST, B_JFAST>(c, m, n, k, la, lb, st);
	}
	return gemm_sized<64, 64, LA, LB, A_LFAST, B_JFAST>(c, m, n, k, la, lb, st);
}

// Geometry in the loaders: q = (ch, ki, kj) indexes the C*KH*KW filter
// taps, j = (n, oi, oj) the N*OH*OW output positions.
struct Geom {
	int C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw;
};

inline Geom geom(const anc_conv_geom &g) {
	return Geom{g.c, g.h, g.w, g.o, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.ph, g.pw};
}

// Im2col(q, j) is element (q, j) of the batch's im2col matrix: the input
// value that tap q of the filter meets at output position j, 0 in padding.
struct Im2col {
	const float *x;
	Geom g;
	__device__ __forceinline__ float operator()(int q, int j) const {
		int kj = q % g.KW, t = q / g.KW;
		int ki = t % g.KH, ch = t / g.KH;
		int ohw = g.OH * g.OW;
		int n = j / ohw, p = j - n * ohw;
		int oi = p / g.OW, oj = p - oi * g.OW;
		int ii = oi * g.sh - g.ph + ki, jj = oj * g.sw - g.pw + kj;
		if (ii < 0 || ii >= g.H || jj < 0 || jj >= g.W) {
			return 0.0f;
		}
		return x[(((long long)n * g.C + ch) * g.H + ii) * g.W + jj];
	}
};

// Im2colT is Im2col transposed: (l, q) with l the output position.
struct Im2colT {
	Im2col f;
	__device__ __forceinline__ float operator()(int l, int q) const { return f(q, l); }
};

// Planes(q, j) reads channel q at position j = (n, p) of a map of nc
// channels of hw: the im2col matrix of a 1x1, stride 1, unpadded
// convolution is the input itself.
struct Planes {
	const float *x;
	int nc, hw;
	__device__ __forceinline__ float operator()(int q, int j) const {
		int n = j / hw, p = j - n * hw;
		return x[((long long)n * nc + q) * hw + p];
	}
};

struct PlanesT {
	Planes f;
	__device__ __forceinline__ float operator()(int l, int q) const { return f(q, l); }
};

// ConvStore writes y[n, o, p] for j = (n, p): the product, plus y's old
// value if accumulating, plus the bias, then the ReLU, in the CPU's order.
struct ConvStore {
	float *y;
	const float *bias;
	int O, ohw;
	bool accumulate, relu;
	__device__ __forceinline__ void operator()(int o, int j, float v) const {
		int n = j / ohw, p = j - n * ohw;
		float *py = y + ((long long)n * O + o) * ohw + p;
		if (accumulate) {
			v = *py + v;
		}
		if (bias != nullptr) {
			v += bias[o];
		}
		if (relu) {
			v = v > 0.0f ? v : 0.0f;
		}
		*py = v;
	}
};

// WT(ch, l) is w^T: l = (o, ki, kj), w being O x C x KH x KW.
struct WT {
	const float *w;
	int C, KK;
	__device__ __forceinline__ float operator()(int ch, int l) const {
		int o = l / KK, kk = l - o * KK;
		return w[((long long)o * C + ch) * KK + kk];
	}
};

// DyGather(l, j) is the dy value that tap l = (o, ki, kj) carries back to
// input position j = (n, ii, jj): dy[n, o, oi, oj] where
// oi*sh - ph + ki = ii and oj*sw - pw + kj = jj, else 0.
struct DyGather {
	const float *dy;
	Geom g;
	__device__ __forceinline__ float operator()(int l, int j) const {
		int kj = l % g.KW, t = l / g.KW;
		int ki = t % g.KH, o = t / g.KH;
		int hw = g.H * g.W;
		int n = j / hw, p = j - n * hw;
		int ii = p / g.W, jj = p - ii * g.W;
		int ti = ii + g.ph - ki, tj = jj + g.pw - kj;
		if (ti < 0 || tj < 0) {
			return 0.0f;
		}
		int oi = ti / g.sh, oj = tj / g.sw;
		if (oi * g.sh != ti || oj * g.sw != tj || oi >= g.OH || oj >= g.OW) {
			return 0.0f;
		}
		return dy[(((long long)n * g.O + o) * g.OH + oi) * g.OW + oj];
	}
};

// MapStore writes x[n, ch, p] for j = (n, p) (dx of the backward pass).
struct MapStore {
	float *x;
	int C, hw;
	__device__ __forceinline__ void operator()(int ch, int j, float v) const {
		int n = j / hw, p = j - n * hw;
		x[((long long)n * C + ch) * hw + p] = v;
	}
};

// DyRows(o, l) reads dy[n, o, p] for l = (n, p).
struct DyRows {
	const float *dy;
	int O, ohw;
	__device__ __forceinline__ float operator()(int o, int l) const {
		int n = l / ohw, p = l - n * ohw;
		return dy[((long long)n * O + o) * ohw + p];
	}
};

struct MatStore {
	float *p;
	int ld;
	__device__ __forceinline__ void operator()(int i, int j, float v) const { p[(long long)i * ld + j] = v; }
};

// bias_grad_kernel sets db[o] to the float64 sum of dy over images and
// positions, one block per filter.
__global__ void __launch_bounds__(kThreads) bias_grad_kernel(float *db, const float *dy, int N, int O, int ohw) {
	__shared__ double sh[kThreads];
	long long total = (long long)N * ohw;
	for (int o = blockIdx.x; o < O; o += gridDim.x) {
		double s = 0;
		for (long long e = threadIdx.x; e < total; e += kThreads) {
			long long n = e / ohw, p = e - n * ohw;
			s += (double)dy[(n * O + o) * ohw + p];
		}
		s = block_sum<kThreads>(s, sh);
		if (threadIdx.x == 0) {
			db[o] = (float)s;
		}
	}
}

bool direct(const anc_conv_geom &g) {
	return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// conv_fits checks that the implicit GEMM's dimensions fit in int.
bool conv_fits(const anc_conv_geom &g) {
	long long cols = (long long)g.n * g.oh * g.ow, ins = (long long)g.n * g.h * g.w;
	long long taps = (long long)g.c * g.kh * g.kw, otaps = (long long)g.o * g.kh * g.kw;
	const long long lim = 0x7fffffffLL;
	return cols < lim && ins < lim && taps < lim && otaps < lim;
}

template <class LB, bool B_JFAST, class ST>
int conv_gemm(anc_ctx *c, const char *what, int M, int N, int K, RowMajor la, LB lb, ST st) {
	if (big_tiles(M, N)) {
		return launch_gemm<128, 128, true, B_JFAST>(c, what, M, N, K, la, lb, st);
	}
	return launch_gemm<64, 128, true, B_JFAST>(c, what, M, N, K, la, lb, st);
}

}  // namespace

extern "C" int anc_gemm(anc_ctx *c, int trans_a, int trans_b, int m, int n, int k, float alpha, anc_dptr a, int lda,
	anc_dptr b, int ldb, float beta, anc_dptr cc) {
	BEGIN(c);
	GemmStore st{ptr<float>(cc), n, alpha, beta};
	const float *pa = ptr<const float>(a), *pb = ptr<const float>(b);
	if (!trans_a && !trans_b) {
		return gemm_any<RowMajor, RowMajor, true, true>(c, m, n, k, RowMajor{pa, lda}, RowMajor{pb, ldb}, st);
	}
	if (!trans_a && trans_b) {
		return gemm_any<RowMajor, Transposed, true, false>(c, m, n, k, RowMajor{pa, lda}, Transposed{pb, ldb}, st);
	}
	if (trans_a && !trans_b) {
		return gemm_any<Transposed, RowMajor, false, true>(c, m, n, k, Transposed{pa, lda}, RowMajor{pb, ldb}, st);
	}
	return gemm_any<Transposed, Transposed, false, false>(c, m, n, k, Transposed{pa, lda}, Transposed{pb, ldb}, st);
}

extern "C" int anc_conv2d(anc_ctx *c, anc_dptr y, anc_dptr x, anc_dptr w, anc_dptr bias, anc_conv_geom g, int accumulate,
	int relu) {
	BEGIN(c);
	if (!conv_fits(g)) {
		return fail_arg(c, "Conv2D: dimensions too large");
	}
	int M = g.o, N = g.n * g.oh * g.ow, K = g.c * g.kh * g.kw;
	ConvStore st{ptr<float>(y), ptr<const float>(bias), g.o, g.oh * g.ow, accumulate != 0, relu != 0};
	RowMajor la{ptr<const float>(w), K};
	if (direct(g)) {
		return conv_gemm<Planes, true>(c, "gemm_kernel (Conv2D, 1x1)", M, N, K, la, Planes{ptr<const float>(x), g.c, g.h * g.w}, st);
	}
	return conv_gemm<Im2col, true>(c, "gemm_kernel (Conv2D)", M, N, K, la, Im2col{ptr<const float>(x), geom(g)}, st);
}

extern "C" int anc_conv2d_backward_data(anc_ctx *c, anc_dptr dx, anc_dptr dy, anc_dptr w, anc_conv_geom g) {
	BEGIN(c);
	if (!conv_fits(g)) {
		return fail_arg(c, "Conv2DBackwardData: dimensions too large");
	}
	int M = g.c, N = g.n * g.h * g.w, K = g.o * g.kh * g.kw;
	MapStore st{ptr<float>(dx), g.c, g.h * g.w};
	WT la{ptr<const float>(w), g.c, g.kh * g.kw};
	auto launch = [&](auto lb, const char *what) {
		if (big_tiles(M, N)) {
			return launch_gemm<128, 128, true, true>(c, what, M, N, K, la, lb, st);
		}
		return launch_gemm<64, 128, true, true>(c, what, M, N, K, la, lb, st);
	};
	if (direct(g)) {
		return launch(Planes{ptr<const float>(dy), g.o, g.h * g.w}, "gemm_kernel (Conv2DBackwardData, 1x1)");
	}
	return launch(DyGather{ptr<const float>(dy), geom(g)}, "gemm_kernel (Conv2DBackwardData)");
}

extern "C" int anc_conv2d_backward_filter(anc_ctx *c, anc_dptr dw, anc_dptr dbias, anc_dptr x, anc_dptr dy,
	anc_conv_geom g) {
	BEGIN(c);
	if (!conv_fits(g)) {
		return fail_arg(c, "Conv2DBackwardFilter: dimensions too large");
	}
	int M = g.o, N = g.c * g.kh * g.kw, K = g.n * g.oh * g.ow;
	int ohw = g.oh * g.ow;
	MatStore st{ptr<float>(dw), N};
	DyRows la{ptr<const float>(dy), g.o, ohw};
	int status;
	// Split along K (the batch's output positions), where the filters
	// alone fill few blocks: deterministic, slices summed in order.
	auto launch = [&](auto lb, const char *what) {
		if (big_tiles(M, N)) {
			return launch_gemm_split<128, 128, true, false>(c, what, M, N, K, la, lb, st);
		}
		return launch_gemm_split<64, 64, true, false>(c, what, M, N, K, la, lb, st);
	};
	if (direct(g)) {
		status = launch(PlanesT{Planes{ptr<const float>(x), g.c, g.h * g.w}}, "gemm_kernel (Conv2DBackwardFilter, 1x1)");
	} else {
		status = launch(Im2colT{Im2col{ptr<const float>(x), geom(g)}}, "gemm_kernel (Conv2DBackwardFilter)");
	}
	if (status != 0 || dbias == 0 || g.o == 0) {
		return status;
	}
	LAUNCH("bias_grad_kernel", bias_grad_kernel, dim3((unsigned)(g.o < 65535 ? g.o : 65535)), dim3(kThreads),
		ptr<float>(dbias), ptr<const float>(dy), g.n, g.o, ohw);
	return 0;
}
