// rows.cu: ops on matrices of feature rows: Nearest, GatherRows,
// ScatterAddRows, NormalizeRows and its backward, CosineSimilarity and the
// fused NegativeHinge.
#include "tile.cuh"

namespace {

using namespace anc;

constexpr int kRowThreads = 256;     // one block per row
constexpr int kRefineThreads = 128;  // Nearest's second pass

// clamp_norm is max(sqrt(s), eps) rounded to float32, NaN kept (Go's max).
__device__ __forceinline__ float clamp_norm(double s, float eps) {
	float r = (float)sqrt(s);
	return (r != r || r > eps) ? r : eps;
}

// normalize_rows_kernel: norms[i] = max(||x[i]||, eps) (float64 sum), and
// z[i] = x[i]/norms[i]; either output may be null.
__global__ void __launch_bounds__(kRowThreads) normalize_rows_kernel(float *z, float *norms, const float *x,
	long long m, int d,
	float eps) {
	__shared__ double sh[kRowThreads];
	for (long long i = blockIdx.x; i < m; i += gridDim.x) {
		const float *xi = x + i * d;
		double s = 0;
		for (int e = threadIdx.x; e < d; e += kRowThreads) {
			double v = xi[e];
			s += v * v;
		}
		float n = clamp_norm(block_sum<kRowThreads>(s, sh), eps);
		if (norms != nullptr && threadIdx.x == 0) {
			norms[i] = n;
		}
		if (z != nullptr) {
			for (int e = threadIdx.x; e < d; e += kRowThreads) {
				z[i * d + e] = xi[e] / n;
			}
		}
	}
}

__global__ void __launch_bounds__(kRowThreads) normalize_rows_backward_kernel(float *dx, const float *dz, const float *z,
	const float *norms, long long m, int d, float eps) {
	__shared__ double sh[kRowThreads];
	for (long long i = blockIdx.x; i < m; i += gridDim.x) {
		const float *g = dz + i * d, *zi = z + i * d;
		float *out = dx + i * d;
		float n = norms[i];  // the same in every thread: the branch is uniform
		if (n <= eps) {
			for (int e = threadIdx.x; e < d; e += kRowThreads) {
				out[e] = g[e] / eps;
			}
			continue;
		}
		double p = 0;
		for (int e = threadIdx.x; e < d; e += kRowThreads) {
			p += (double)g[e] * (double)zi[e];
		}
		float pf = (float)block_sum<kRowThreads>(p, sh);
		for (int e = threadIdx.x; e < d; e += kRowThreads) {
			out[e] = (g[e] - pf * zi[e]) / n;
		}
	}
}

__global__ void __launch_bounds__(anc::kThreads) gather_rows_kernel(float *y, const float *x, const int *idx,
	long long m, int d, long long rows, int *fault) {
	long long total = m * d;
	for (long long e = gtid(); e < total; e += gstride()) {
		long long i = e / d;
		int t = (int)(e - i * d);
		int j = idx[i];
		if (j < 0 || j >= rows) {
			report(fault, ANC_FAULT_GATHER);
			continue;
		}
		y[e] = x[(long long)j * d + t];
	}
}

// scatter_add_rows_kernel adds row e of x to row idx[e] of y without
// atomics, so that every run sums in the same order: each block owns
// kScatterRows consecutive rows of y and walks the m indices in order, a
// chunk of kThreads at a time, compacting those that fall in its rows (a
// block-wide prefix sum keeps their order); then each thread adds its own
// columns of those rows of x. Every y[j][t] thus sums its rows in index
// order. Block 0, whose first rows start at 0, reports a bad index.
constexpr int kScatterRows = 32;

__global__ void __launch_bounds__(anc::kThreads) scatter_add_rows_kernel(float *y, const float *x, const int *idx,
	long long m, int d, long long rows, int *fault) {
	__shared__ int scan[kThreads];
	__shared__ long long hits[kThreads];
	int t = threadIdx.x;
	for (long long j0 = (long long)blockIdx.x * kScatterRows; j0 < rows; j0 += (long long)gridDim.x * kScatterRows) {
		long long j1 = j0 + kScatterRows < rows ? j0 + kScatterRows : rows;
		for (long long c0 = 0; c0 < m; c0 += kThreads) {
			long long e = c0 + t;
			int j = e < m ? idx[e] : -1;
			if (e < m && (j < 0 || j >= rows) && j0 == 0) {
				report(fault, ANC_FAULT_SCATTER);
			}
			int f = (e < m && j >= j0 && j < j1) ? 1 : 0;
			int n;
			int place = block_scan<kThreads>(f, scan, &n);
			if (f) {
				hits[place - 1] = e;
			}
			__syncthreads();
			for (int h = 0; h < n; h++) {
				long long src = hits[h];
				float *dst = y + (long long)idx[src] * d;
				const float *row = x + src * d;
				for (int c = t; c < d; c += kThreads) {
					dst[c] += row[c];
				}
			}
			__syncthreads();  // before the next chunk overwrites hits
		}
	}
}

// Scaled(i, l) = p[i*ld + l] / n[i]: the rows of x normalised on the fly,
// as CosineSimilarity's CPU version normalises them first.
struct Scaled {
	const float *p, *n;
	int ld;
	__device__ __forceinline__ float operator()(int i, int l) const { return p[(long long)i * ld + l] / n[i]; }
};
// ScaledT(l, j) = p[j*ld + l] / n[j].
struct ScaledT {
	const float *p, *n;
	int ld;
	__device__ __forceinline__ float operator()(int l, int j) const { return p[(long long)j * ld + l] / n[j]; }
};

struct MatStore {
	float *p;
	long long ld;
	__device__ __forceinline__ void operator()(int i, int j, float v) const { p[(long long)i * ld + j] = v; }
};

// NearStore keeps cn[j] - 2 x.c_j, the part of the squared distance
// |x|^2 - 2 x.c + |c|^2 that varies with j.
struct NearStore {
	float *e;
	const float *cn;
	int k;
	__device__ __forceinline__ void operator()(int i, int j, float dot) const { e[(long long)i * k + j] = cn[j] - 2.0f * dot; }
};

// sq_norms_kernel sets out[i] = |x[i]|^2, summed in float64.
__global__ void __launch_bounds__(kRowThreads) sq_norms_kernel(float *out, const float *x, long long m, int d) {
	__shared__ double sh[kRowThreads];
	for (long long i = blockIdx.x; i < m; i += gridDim.x) {
		double s = 0;
		for (int e = threadIdx.x; e < d; e += kRowThreads) {
			double v = x[i * d + e];
			s += v * v;
		}
		s = block_sum<kRowThreads>(s, sh);
		if (threadIdx.x == 0) {
			out[i] = (float)s;
		}
	}
}

// kFewCandidates is how many candidates nearest_refine_kernel finds one
// at a time (more: a chunk at a time).
constexpr int kFewCandidates = 16;

// kWindow is the width of Nearest's candidate window per unit of |x|^2 +
// |c|^2: the CPU's 3e-5 for float32 rounding, widened by what the tensor
// cores' 3xTF32 adds to the dot product x.c (kMmaErr of sum |x_l c_l|, at
// most (|x|^2 + |c|^2) / 2, counted twice in |c|^2 - 2 x.c).
constexpr float kWindow = 3e-5f + kMmaErr;

// Candidate says whether centroid j is a candidate of a row: its expanded
// squared distance within rounding of the best, or NaN.
struct Candidate {
	const float *e, *cn;
	float xn, best;
	__device__ __forceinline__ bool operator()(int j) const {
		float d2 = xn + e[j];
		return d2 <= best + kWindow * (xn + cn[j]) + 1e-30f || d2 != d2;
	}
};

// nearest_refine_kernel finishes Nearest for one row per block as the CPU
// does: the candidates are the centroids whose expanded squared distance
// is within rounding of the best; each is measured directly in float64,
// and the smallest wins, the lowest index on ties. The best is a block
// minimum over the threads' strided scans of the row's K distances, and so
// is the count of candidates. A few (the usual case) are then taken in
// index order, each the block minimum of the threads' next candidates;
// many (a NaN row, duplicated centroids) a chunk of kRefineThreads
// centroids at a time, compacted in index order by a block prefix sum.
// Each is measured by the whole block, in index order. All the row's
// decisions are the same in every thread, so the block reductions stay
// uniform.
__global__ void __launch_bounds__(kRefineThreads) nearest_refine_kernel(int *idx, float *dist, const float *x,
	const float *c,
	const float *e, const float *cn, long long n, int k, int d) {
	__shared__ double sh[kRefineThreads];
	__shared__ float shf[kRefineThreads];
	__shared__ int shi[kRefineThreads];
	__shared__ int cand[kRefineThreads];
	int t = threadIdx.x;
	for (long long i = blockIdx.x; i < n; i += gridDim.x) {
		const float *xi = x + i * d;
		double s = 0;
		for (int u = t; u < d; u += kRefineThreads) {
			double v = xi[u];
			s += v * v;
		}
		float xn = (float)block_sum<kRefineThreads>(s, sh);
		const float *ei = e + i * k;
		float best = INFINITY;
		for (int j = t; j < k; j += kRefineThreads) {
			float d2 = xn + ei[j];
			if (d2 < best || d2 != d2) {
				best = d2;  // NaN sticks, as with Go's min
			}
		}
		Candidate is{ei, cn, xn, block_min<kRefineThreads>(best, shf)};
		int mine = 0;
		for (int j = t; j < k; j += kRefineThreads) {
			mine += is(j) ? 1 : 0;
		}
		int total = block_sum<kRefineThreads, int>(mine, shi);
		int bi = -1;
		double bd = INFINITY;
		auto measure = [&](int jc) {
			const float *cj = c + (long long)jc * d;
			double q = 0;
			for (int u = t; u < d; u += kRefineThreads) {
				double df = (double)xi[u] - (double)cj[u];
				q += df * df;
			}
			q = block_sum<kRefineThreads>(q, sh);
			if (q < bd || bi < 0) {
				bi = jc;
				bd = q;
			}
		};
		if (total <= kFewCandidates) {
			int last = -1;
			for (int h = 0; h < total; h++) {
				int next = 0x7fffffff;
				for (int j = t; j < k; j += kRefineThreads) {
					if (j > last && is(j)) {
						next = j;  // this thread's first: its smallest
						break;
					}
				}
				last = block_min_int<kRefineThreads>(next, shi);
				measure(last);
			}
		} else {
			for (int j0 = 0; j0 < k; j0 += kRefineThreads) {
				int j = j0 + t, f = j < k && is(j) ? 1 : 0;
				int m;
				int place = block_scan<kRefineThreads>(f, shi, &m);
				if (f) {
					cand[place - 1] = j;
				}
				__syncthreads();
				for (int h = 0; h < m; h++) {
					measure(cand[h]);
				}
				__syncthreads();  // before the next chunk overwrites cand
			}
		}
		if (t == 0) {
			if (idx != nullptr) {
				idx[i] = bi;
			}
			if (dist != nullptr) {
				dist[i] = (float)sqrt(bd > 0 || bd != bd ? bd : 0.0);
			}
		}
	}
}

// Bits(i, l) is bit l of row i of a packed 0/1 matrix of w words per row.
struct Bits {
	const unsigned *mask;
	int w;
	__device__ __forceinline__ float operator()(int i, int l) const {
		return (mask[(long long)i * w + (l >> 5)] >> (l & 31)) & 1u ? 1.0f : 0.0f;
	}
};

constexpr int kHinge = 128;  // the hinge tiles are kHinge x kHinge

// hinge_tile_kernel computes one tile of s = z z^T in registers and reduces
// it at once: per row, the float64 sum of the active s_ij - margin (pairs
// with other labels and s_ij > margin) goes to partial[tile column][i], and,
// when mask is not null, the active pairs to the packed mask for the
// gradient pass. The M x M similarities never reach memory.
__global__ void __launch_bounds__(kTileThreads) hinge_tile_kernel(const float *z, const int *y, int M, int D, float margin,
	unsigned *mask, int W, double *partial) {
	__shared__ __align__(16) float As[kTileK][kHinge + kTilePad];
	__shared__ __align__(16) float Bs[kTileK][kHinge + kTilePad];
	__shared__ unsigned char fl[kHinge][kHinge];
	__shared__ double red[kHinge][16];
	float acc[kHinge / 16][kHinge / 16];
	const int bm = blockIdx.x * kHinge, bn = blockIdx.y * kHinge;
	tile_product<kHinge, kHinge, true, false>(M, M, D, bm, bn, RowMajor{z, D}, Transposed{z, D}, As, Bs, acc);
	int yc[kHinge / 16];
#pragma unroll
	for (int q = 0; q < kHinge / 16; q++) {
		int j = bn + tile_col<kHinge>(q);
		yc[q] = j < M ? y[j] : 0;
	}
#pragma unroll
	for (int r = 0; r < kHinge / 16; r++) {
		int lr = tile_row<kHinge>(r), i = bm + lr;
		int yi = i < M ? y[i] : 0;
		double l = 0;
#pragma unroll
		for (int q = 0; q < kHinge / 16; q++) {
			int lc = tile_col<kHinge>(q), j = bn + lc;
			bool active = i < M && j < M && yi != yc[q] && acc[r][q] > margin;
			if (active) {
				l += (double)(acc[r][q] - margin);
			}
			fl[lr][lc] = active ? 1 : 0;
		}
		red[lr][tile_slot()] = l;
	}
	__syncthreads();
	if (threadIdx.x < kHinge) {
		int i = bm + threadIdx.x;
		if (i < M) {
			double s = 0;
			for (int t = 0; t < 16; t++) {
				s += red[threadIdx.x][t];
			}
			partial[(long long)blockIdx.y * M + i] = s;
		}
	}
	if (mask != nullptr) {
		for (int wi = threadIdx.x; wi < kHinge * (kHinge / 32); wi += kTileThreads) {
			int lr = wi / (kHinge / 32), wc = wi % (kHinge / 32);
			int i = bm + lr, gw = bn / 32 + wc;
			if (i < M && gw < W) {
				unsigned bits = 0;
				for (int b = 0; b < 32; b++) {
					bits |= (unsigned)fl[lr][wc * 32 + b] << b;
				}
				mask[(long long)i * W + gw] = bits;
			}
		}
	}
}

// hinge_loss_kernel adds each row's partial sums in tile order.
__global__ void __launch_bounds__(anc::kThreads) hinge_loss_kernel(float *loss, const double *partial, int M, int tiles) {
	for (long long i = gtid(); i < M; i += gstride()) {
		double s = 0;
		for (int t = 0; t < tiles; t++) {
			s += partial[(long long)t * M + i];
		}
		loss[i] = (float)s;
	}
}

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

// row_blocks is the grid of a kernel that takes a row a block (threads
// threads), looping over the rest.
unsigned row_blocks(const anc_ctx *c, long long m, int threads = kRowThreads) { return grid_for(c, m, threads); }

}  // namespace

extern "C" int anc_normalize_rows(anc_ctx *c, anc_dptr z, anc_dptr norms, anc_dptr x, long long m, int d, float eps) {
	BEGIN(c);
	if (m > 0) {
		LAUNCH("normalize_rows_kernel", normalize_rows_kernel, row_blocks(c, m), kRowThreads, ptr<float>(z), ptr<float>(norms),
			ptr<const float>(x), m, d, eps);
	}
	return 0;
}

extern "C" int anc_normalize_rows_backward(anc_ctx *c, anc_dptr dx, anc_dptr dz, anc_dptr z, anc_dptr norms, long long m, int d,
	float eps) {
	BEGIN(c);
	if (m > 0) {
		LAUNCH("normalize_rows_backward_kernel", normalize_rows_backward_kernel, row_blocks(c, m), kRowThreads, ptr<float>(dx),
			ptr<const float>(dz), ptr<const float>(z), ptr<const float>(norms), m, d, eps);
	}
	return 0;
}

extern "C" int anc_gather_rows(anc_ctx *c, anc_dptr y, anc_dptr x, anc_dptr idx, long long m, int d, long long rows) {
	BEGIN(c);
	long long n = m * d;
	if (n > 0) {
		LAUNCH("gather_rows_kernel", gather_rows_kernel, blocks_for(c, n), kThreads, ptr<float>(y), ptr<const float>(x),
			ptr<const int>(idx), m, d, rows, c->fault);
	}
	return 0;
}

extern "C" int anc_scatter_add_rows(anc_ctx *c, anc_dptr y, anc_dptr x, anc_dptr idx, long long m, int d, long long rows) {
	BEGIN(c);
	if (m > 0 && d > 0 && rows > 0) {
		LAUNCH("scatter_add_rows_kernel", scatter_add_rows_kernel, blocks_for(c, (rows + kScatterRows - 1) / kScatterRows, 1), kThreads,
			ptr<float>(y), ptr<const float>(x), ptr<const int>(idx), m, d, rows, c->fault);
	}
	return 0;
}

extern "C" int anc_cosine_similarity(anc_ctx *c, anc_dptr s, anc_dptr x, int m, int d, float eps) {
	BEGIN(c);
	if (m <= 0) {
		return 0;
	}
	void *sc = nullptr;
	int st = anc::scratch(c, (size_t)m * sizeof(float), &sc);
	if (st != 0) {
		return st;
	}
	float *norms = static_cast<float *>(sc);
	const float *px = ptr<const float>(x);
	LAUNCH("normalize_rows_kernel (norms)", normalize_rows_kernel, row_blocks(c, m), kRowThreads, (float *)nullptr, norms, px,
		(long long)m, d, eps);
	Scaled la{px, norms, d};
	ScaledT lb{px, norms, d};
	MatStore out{ptr<float>(s), m};
	if (big_tiles(m, m)) {
		return launch_gemm<128, 128, true, false>(c, "gemm_kernel (CosineSimilarity)", m, m, d, la, lb, out);
	}
	return launch_gemm<64, 64, true, false>(c, "gemm_kernel (CosineSimilarity)", m, m, d, la, lb, out);
}

extern "C" int anc_nearest(anc_ctx *c, anc_dptr idx, anc_dptr dist, anc_dptr x, anc_dptr cent, long long n, int k, int d) {
	BEGIN(c);
	if (n <= 0) {
		return 0;
	}
	if (k <= 0 || n > 0x7fffffffLL) {
		return fail_arg(c, "Nearest: bad sizes");
	}
	// Rows go in chunks whose k partial distances fit in 256 MiB of scratch.
	long long chunk = (64LL << 20) / k;
	chunk = chunk < 128 ? 128 : chunk / 128 * 128;
	if (chunk > n) {
		chunk = n;
	}
	size_t cnBytes = align256((size_t)k * sizeof(float));
	void *sc = nullptr;
	int st = anc::scratch(c, cnBytes + (size_t)chunk * k * sizeof(float), &sc);
	if (st != 0) {
		return st;
	}
	float *cn = static_cast<float *>(sc);
	float *e = reinterpret_cast<float *>(static_cast<char *>(sc) + cnBytes);
	const float *px = ptr<const float>(x), *pc = ptr<const float>(cent);
	LAUNCH("sq_norms_kernel", sq_norms_kernel, row_blocks(c, k), kRowThreads, cn, pc, (long long)k, d);
	int *pidx = ptr<int>(idx);
	float *pdist = ptr<float>(dist);
	for (long long r0 = 0; r0 < n; r0 += chunk) {
		int rows = (int)(n - r0 < chunk ? n - r0 : chunk);
		RowMajor la{px + r0 * d, d};
		Transposed lb{pc, d};  // lb(l, j) = c[j*d + l]
		NearStore out{e, cn, k};
		st = k <= 64 ? launch_gemm<128, 64, true, false>(c, "gemm_kernel (Nearest)", rows, k, d, la, lb, out)
		             : launch_gemm<128, 128, true, false>(c, "gemm_kernel (Nearest)", rows, k, d, la, lb, out);
		if (st != 0) {
			return st;
		}
		LAUNCH("nearest_refine_kernel", nearest_refine_kernel, row_blocks(c, rows, kRefineThreads), kRefineThreads, pidx ? pidx + r0 : nullptr,
			pdist ? pdist + r0 : nullptr, px + r0 * d, pc, e, cn, (long long)rows, k, d);
	}
	return 0;
}

extern "C" int anc_negative_hinge(anc_ctx *c, anc_dptr loss, anc_dptr grad, anc_dptr z, anc_dptr y, int m, int d, float margin) {
	BEGIN(c);
	if (m <= 0) {
		return 0;
	}
	int tiles = (m + kHinge - 1) / kHinge;
	if (tiles > 65535) {
		return fail_arg(c, "NegativeHinge: too many rows");
	}
	int w = (m + 31) / 32;
	size_t partBytes = align256((size_t)tiles * m * sizeof(double));
	size_t maskBytes = grad != 0 ? (size_t)m * w * sizeof(unsigned) : 0;
	void *sc = nullptr;
	int st = anc::scratch(c, partBytes + maskBytes, &sc);
	if (st != 0) {
		return st;
	}
	double *partial = static_cast<double *>(sc);
	unsigned *mask = grad != 0 ? reinterpret_cast<unsigned *>(static_cast<char *>(sc) + partBytes) : nullptr;
	const float *pz = ptr<const float>(z);
	LAUNCH("hinge_tile_kernel", hinge_tile_kernel, dim3((unsigned)tiles, (unsigned)tiles), dim3(kTileThreads), pz,
		ptr<const int>(y), m, d, margin, mask, w, partial);
	LAUNCH("hinge_loss_kernel", hinge_loss_kernel, blocks_for(c, m), kThreads, ptr<float>(loss), (const double *)partial, m, tiles);
	if (grad == 0) {
		return 0;
	}
	// grad = mask z: the sum of z_j over each row's active pairs.
	Bits la{mask, w};
	RowMajor lb{pz, d};
	MatStore out{ptr<float>(grad), d};
	if (big_tiles(m, d)) {
		return launch_gemm<128, 128, true, true>(c, "gemm_kernel (NegativeHinge gradient)", m, d, m, la, lb, out);
	}
	return launch_gemm<64, 64, true, true>(c, "gemm_kernel (NegativeHinge gradient)", m, d, m, la, lb, out);
}
