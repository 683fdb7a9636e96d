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
// taps, j = (n, oi, oj) the N*OH*OW output positions. The loaders divide
// by the divisors fixed at launch through FastDiv.
struct Geom {
	int C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw;
	FastDiv dKW, dKH, dOW, dOHW, dW, dHW, dsh, dsw;
};

inline Geom geom(const anc_conv_geom &g) {
	return Geom{g.c, g.h, g.w, g.o, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.ph, g.pw, FastDiv(g.kw), FastDiv(g.kh),
		FastDiv(g.ow), FastDiv(g.oh * g.ow), FastDiv(g.w), FastDiv(g.h * g.w), FastDiv(g.sh), FastDiv(g.sw)};
}

// Im2col(q, j) is element (q, j) of the batch's im2col matrix: the input
// value that tap q of the filter meets at output position j, 0 in padding.
// Its Fixed is output position j's image and top-left input corner; q's
// tap is found at each step.
struct Im2col {
	static constexpr bool kAddr = true;
	const float *x;
	Geom g;
	struct Fixed {
		const float *img;  // image n of x
		int i0, j0;        // oi*sh - ph, oj*sw - pw
	};
	__device__ __forceinline__ Fixed fix(int j) const {
		int n, oi;
		int p = g.dOHW.divmod(j, n);
		int oj = g.dOW.divmod(p, oi);
		return Fixed{x + (long long)n * g.C * g.H * g.W, oi * g.sh - g.ph, oj * g.sw - g.pw};
	}
	__device__ __forceinline__ const float *addr(const Fixed &f, int q) const {
		int t, ch;
		int kj = g.dKW.divmod(q, t);
		int ki = g.dKH.divmod(t, ch);
		int ii = f.i0 + ki, jj = f.j0 + kj;
		if (ii < 0 || ii >= g.H || jj < 0 || jj >= g.W) {
			return nullptr;
		}
		return f.img + ((long long)ch * g.H + ii) * g.W + jj;
	}
};

// Im2colT is Im2col transposed: (l, q) with l the output position. Its
// Fixed is tap q: the channel's plane and the tap's offset; l's position
// is found at each step.
struct Im2colT {
	static constexpr bool kAddr = true;
	Im2col f;
	struct Fixed {
		long long plane;  // ch*H*W
		int di, dj;       // ki - ph, kj - pw
	};
	__device__ __forceinline__ Fixed fix(int q) const {
		const Geom &g = f.g;
		int t, ch;
		int kj = g.dKW.divmod(q, t);
		int ki = g.dKH.divmod(t, ch);
		return Fixed{(long long)ch * g.H * g.W, ki - g.ph, kj - g.pw};
	}
	__device__ __forceinline__ const float *addr(const Fixed &x, int l) const {
		const Geom &g = f.g;
		int n, oi;
		int p = g.dOHW.divmod(l, n);
		int oj = g.dOW.divmod(p, oi);
		int ii = oi * g.sh + x.di, jj = oj * g.sw + x.dj;
		if (ii < 0 || ii >= g.H || jj < 0 || jj >= g.W) {
			return nullptr;
		}
		return f.x + (long long)n * g.C * g.H * g.W + x.plane + (long long)ii * g.W + jj;
	}
};

// Planes(q, j) reads channel q at position j = (n, p) of a map of nc
// channels of hw: the im2col matrix of a 1x1, stride 1, unpadded
// convolution is the input itself. Its Fixed is position j's element of
// channel 0.
struct Planes {
	static constexpr bool kAddr = true;
	const float *x;
	int nc, hw;
	FastDiv dhw;
	using Fixed = const float *;
	__device__ __forceinline__ Fixed fix(int j) const {
		int n;
		int p = dhw.divmod(j, n);
		return x + (long long)n * nc * hw + p;
	}
	__device__ __forceinline__ const float *addr(Fixed f, int q) const { return f + (long long)q * hw; }
};

inline Planes planes(const float *x, int nc, int hw) { return Planes{x, nc, hw, FastDiv(hw)}; }

// ConvStore writes y[n, o, p] for j = (n, p): the product, plus y's old
// value if accumulating, plus the bias, then the ReLU, in the CPU's order.
struct ConvStore {
	float *y;
	const float *bias;
	int O, ohw;
	FastDiv dohw;
	bool accumulate, relu;
	__device__ __forceinline__ void operator()(int o, int j, float v) const {
		int n;
		int p = dohw.divmod(j, n);
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

// Slices reads a tensor of outer x rows x inner as the rows x
// (outer*inner) matrix whose row i gathers slice i of every outer block:
// element (i, l), l = (o, r), is p[(o*rows + i)*inner + r]. It is w^T for
// the data gradient (O x C x KH*KW: i the channel, l the filter's tap), dy
// by filter for the filter gradient (N x O x OH*OW), and a 1x1
// convolution's input by channel, transposed (N x C x H*W), for its filter
// gradient. Its Fixed is row i's slice of the first block.
struct Slices {
	static constexpr bool kAddr = true;
	const float *p;
	int rows, inner;
	FastDiv dinner;
	using Fixed = const float *;
	__device__ __forceinline__ Fixed fix(int i) const { return p + (long long)i * inner; }
	__device__ __forceinline__ const float *addr(Fixed f, int l) const {
		int o;
		int r = dinner.divmod(l, o);
		return f + (long long)o * rows * inner + r;
	}
};

inline Slices slices(const float *p, int rows, int inner) { return Slices{p, rows, inner, FastDiv(inner)}; }

// DyGather(l, j) is the dy value that tap l = (o, ki, kj) carries back to
// input position j = (n, ii, jj): dy[n, o, oi, oj] where
// oi*sh - ph + ki = ii and oj*sw - pw + kj = jj, else 0. Its Fixed is
// position j's image of dy and ii + ph, jj + pw.
struct DyGather {
	static constexpr bool kAddr = true;
	const float *dy;
	Geom g;
	struct Fixed {
		const float *img;  // image n of dy
		int ti, tj;        // ii + ph, jj + pw
	};
	__device__ __forceinline__ Fixed fix(int j) const {
		int n, ii;
		int p = g.dHW.divmod(j, n);
		int jj = g.dW.divmod(p, ii);
		return Fixed{dy + (long long)n * g.O * g.OH * g.OW, ii + g.ph, jj + g.pw};
	}
	__device__ __forceinline__ const float *addr(const Fixed &f, int l) const {
		int t, o;
		int kj = g.dKW.divmod(l, t);
		int ki = g.dKH.divmod(t, o);
		int ti = f.ti - ki, tj = f.tj - kj;
		if (ti < 0 || tj < 0) {
			return nullptr;
		}
		int oi, oj;
		if (g.dsh.divmod(ti, oi) != 0 || g.dsw.divmod(tj, oj) != 0 || oi >= g.OH || oj >= g.OW) {
			return nullptr;
		}
		return f.img + ((long long)o * g.OH + oi) * g.OW + oj;
	}
};

// MapStore writes x[n, ch, p] for j = (n, p) (dx of the backward pass).
struct MapStore {
	float *x;
	int C, hw;
	FastDiv dhw;
	__device__ __forceinline__ void operator()(int ch, int j, float v) const {
		int n;
		int p = dhw.divmod(j, n);
		x[((long long)n * C + ch) * hw + p] = v;
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
	ConvStore st{ptr<float>(y), ptr<const float>(bias), g.o, g.oh * g.ow, FastDiv(g.oh * g.ow), accumulate != 0, relu != 0};
	RowMajor la{ptr<const float>(w), K};
	if (direct(g)) {
		Planes lb = planes(ptr<const float>(x), g.c, g.h * g.w);
		return conv_gemm<Planes, true>(c, "gemm_kernel (Conv2D, 1x1)", M, N, K, la, lb, st);
	}
	return conv_gemm<Im2col, true>(c, "gemm_kernel (Conv2D)", M, N, K, la, Im2col{ptr<const float>(x), geom(g)}, st);
}

extern "C" int anc_conv2d_backward_data(anc_ctx *c, anc_dptr dx, anc_dptr dy, anc_dptr w, anc_conv_geom g) {
	BEGIN(c);
	if (!conv_fits(g)) {
		return fail_arg(c, "Conv2DBackwardData: dimensions too large");
	}
	int M = g.c, N = g.n * g.h * g.w, K = g.o * g.kh * g.kw;
	MapStore st{ptr<float>(dx), g.c, g.h * g.w, FastDiv(g.h * g.w)};
	Slices la = slices(ptr<const float>(w), g.c, g.kh * g.kw);  // w^T
	auto launch = [&](auto lb, const char *what) {
		if (big_tiles(M, N)) {
			return launch_gemm<128, 128, true, true>(c, what, M, N, K, la, lb, st);
		}
		return launch_gemm<64, 128, true, true>(c, what, M, N, K, la, lb, st);
	};
	if (direct(g)) {
		return launch(planes(ptr<const float>(dy), g.o, g.h * g.w), "gemm_kernel (Conv2DBackwardData, 1x1)");
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
	Slices la = slices(ptr<const float>(dy), g.o, ohw);  // dy by filter
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
		status = launch(slices(ptr<const float>(x), g.c, g.h * g.w), "gemm_kernel (Conv2DBackwardFilter, 1x1)");
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
