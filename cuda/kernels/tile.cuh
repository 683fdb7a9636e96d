// tile.cuh: the tiled matrix product every heavy kernel is built on (Gemm,
// the three convolutions as implicit GEMMs, CosineSimilarity, the two passes
// of NegativeHinge and the distances of Nearest).
//
// A block of 256 threads computes a BM x BN tile of op(A) op(B), A being
// M x K and B K x N, through shared memory in steps of kTileK along K, on
// the tensor cores (mma.cuh: 3xTF32, float32's accuracy). Its 8 warps
// stand 2 x 4 over the tile, each computing (BM/2) x (BN/4) as MI x NI
// products of 16 x 8; a thread holds (BM/16) x (BN/16) accumulators, at
// tile_row(r), tile_col(q) (the mma fragments' places). The operands
// come from loader functors, la(i, l) = A[i][l] and lb(l, j) = B[l][j],
// called only for indices in range (out of range reads as 0), which is how
// the convolutions gather their implicit im2col matrices. A loader whose
// index arithmetic divides splits it instead (Split, below): the part
// that depends on the thread's fixed row of A or column of B is done once
// per tile, not at every step along K. While one step is multiplied the
// next step's operands are on their way: copied by cp.async into a second
// shared buffer where both loaders give addresses (tile_product_async:
// Gemm, the convolutions, Nearest), else fetched into registers
// (tile_product: CosineSimilarity's scaled rows, the hinge).
#ifndef ANC_TILE_CUH
#define ANC_TILE_CUH

#include <type_traits>

#include "common.cuh"
#include "mma.cuh"

namespace anc {

constexpr int kTileK = 8;
constexpr int kTileThreads = 256;
// kTilePad pads the shared rows so that a warp's fragment reads, lanes
// t*(row + pad) + g apart, fall in 32 different banks.
constexpr int kTilePad = 8;

// Loaders of row-major matrices: RowMajor(i, l) = p[i*ld + l] and
// Transposed(i, l) = p[l*ld + i].
struct RowMajor {
	static constexpr bool kAddr = true;
	const float *p;
	int ld;
	__device__ __forceinline__ const float *addr(int i, int l) const { return p + (long long)i * ld + l; }
	__device__ __forceinline__ float operator()(int i, int l) const { return *addr(i, l); }
};
struct Transposed {
	static constexpr bool kAddr = true;
	const float *p;
	int ld;
	__device__ __forceinline__ const float *addr(int i, int l) const { return p + (long long)l * ld + i; }
	__device__ __forceinline__ float operator()(int i, int l) const { return *addr(i, l); }
};

// Split is how the tile core calls a loader. A loader L that declares a
// type Fixed, with fix(i) (the work on A's row i, or B's column j, alone)
// and at(f, l) (the rest, along K), is called as at(fix(i), l) with fix
// done once per tile; any other is called as la(i, l) or lb(l, j). A
// loader that reads memory as it stands declares kAddr = true and gives
// the address of each element instead of its value, addr(f, l) (or
// addr(i, l)), null for an element that reads as 0: its tiles are copied
// to shared memory by cp.async (tile_product_async), and it needs no at.
template <class L, class = void>
struct Split {
	using Fixed = int;
	__device__ __forceinline__ static Fixed fix(const L &, int i) { return i; }
	__device__ __forceinline__ static float a(const L &f, const Fixed &i, int l) { return f(i, l); }
	__device__ __forceinline__ static float b(const L &f, const Fixed &j, int l) { return f(l, j); }
	__device__ __forceinline__ static const float *a_ptr(const L &f, const Fixed &i, int l) { return f.addr(i, l); }
	__device__ __forceinline__ static const float *b_ptr(const L &f, const Fixed &j, int l) { return f.addr(l, j); }
};
template <class L>
struct Split<L, std::void_t<typename L::Fixed>> {
	using Fixed = typename L::Fixed;
	__device__ __forceinline__ static Fixed fix(const L &f, int i) { return f.fix(i); }
	__device__ __forceinline__ static float a(const L &f, const Fixed &x, int l) { return f.at(x, l); }
	__device__ __forceinline__ static float b(const L &f, const Fixed &x, int l) { return f.at(x, l); }
	__device__ __forceinline__ static const float *a_ptr(const L &f, const Fixed &x, int l) { return f.addr(x, l); }
	__device__ __forceinline__ static const float *b_ptr(const L &f, const Fixed &x, int l) { return f.addr(x, l); }
};

// Addressable says whether loader L gives addresses (L::kAddr).
template <class L, class = void>
struct Addressable : std::false_type {};
template <class L>
struct Addressable<L, std::void_t<decltype(L::kAddr)>> : std::bool_constant<L::kAddr> {};

// kAsyncTiles says whether a product of loaders LA and LB copies its
// tiles with cp.async.
template <class LA, class LB>
constexpr bool kAsyncTiles = Addressable<LA>::value && Addressable<LB>::value;

// Which thread fetches which element of a tile: with LFAST (for A) or
// !JFAST (for B) consecutive threads take consecutive l, else consecutive
// i (or j), so that each loader reads memory where it is contiguous.
// Element t of a thread is tile row a_row(t) (or column b_col(t)) at step
// offset a_step(t) (b_step(t)), the same at every step.
template <int BM, bool LFAST>
__device__ __forceinline__ int a_row(int t) {
	int e = threadIdx.x + kTileThreads * t;
	return LFAST ? e / kTileK : e % BM;
}
template <int BM, bool LFAST>
__device__ __forceinline__ int a_step(int t) {
	int e = threadIdx.x + kTileThreads * t;
	return LFAST ? e % kTileK : e / BM;
}
template <int BN, bool JFAST>
__device__ __forceinline__ int b_col(int t) {
	int e = threadIdx.x + kTileThreads * t;
	return JFAST ? e % BN : e / kTileK;
}
template <int BN, bool JFAST>
__device__ __forceinline__ int b_step(int t) {
	int e = threadIdx.x + kTileThreads * t;
	return JFAST ? e / BN : e % kTileK;
}

// fix_a and fix_b do the loaders' fixed work for a thread's elements.
template <int BM, bool LFAST, class LA>
__device__ __forceinline__ void fix_a(const LA &la, int bm, typename Split<LA>::Fixed *fa) {
#pragma unroll
	for (int t = 0; t < BM / 32; t++) {
		fa[t] = Split<LA>::fix(la, bm + a_row<BM, LFAST>(t));
	}
}
template <int BN, bool JFAST, class LB>
__device__ __forceinline__ void fix_b(const LB &lb, int bn, typename Split<LB>::Fixed *fb) {
#pragma unroll
	for (int t = 0; t < BN / 32; t++) {
		fb[t] = Split<LB>::fix(lb, bn + b_col<BN, JFAST>(t));
	}
}

template <int BM, bool LFAST, class LA>
__device__ __forceinline__ void fetch_a(const LA &la, const typename Split<LA>::Fixed *fa, int M, int K, int bm, int k0,
	float *ra) {
#pragma unroll
	for (int t = 0; t < BM / 32; t++) {
		int gi = bm + a_row<BM, LFAST>(t), gl = k0 + a_step<BM, LFAST>(t);
		ra[t] = (gi < M && gl < K) ? Split<LA>::a(la, fa[t], gl) : 0.0f;
	}
}

template <int BM, bool LFAST>
__device__ __forceinline__ void store_a(float (*As)[BM + kTilePad], const float *ra) {
#pragma unroll
	for (int t = 0; t < BM / 32; t++) {
		As[a_step<BM, LFAST>(t)][a_row<BM, LFAST>(t)] = ra[t];
	}
}

template <int BN, bool JFAST, class LB>
__device__ __forceinline__ void fetch_b(const LB &lb, const typename Split<LB>::Fixed *fb, int N, int K, int bn, int k0,
	float *rb) {
#pragma unroll
	for (int t = 0; t < BN / 32; t++) {
		int gj = bn + b_col<BN, JFAST>(t), gl = k0 + b_step<BN, JFAST>(t);
		rb[t] = (gj < N && gl < K) ? Split<LB>::b(lb, fb[t], gl) : 0.0f;
	}
}

template <int BN, bool JFAST>
__device__ __forceinline__ void store_b(float (*Bs)[BN + kTilePad], const float *rb) {
#pragma unroll
	for (int t = 0; t < BN / 32; t++) {
		Bs[b_step<BN, JFAST>(t)][b_col<BN, JFAST>(t)] = rb[t];
	}
}

// tile_row, tile_col and tile_slot place a thread's accumulators in the
// tile: accumulator (r, q) is register (r % 2) * 2 + q % 2 of the mma
// product (r / 2, q / 2) of the thread's warp, whose place in the 2 x 4
// warps is (warp / 4, warp % 4). A row's elements lie in 16 threads, each
// with its own tile_slot (0 to 15).
template <int BM>
__device__ __forceinline__ int tile_row(int r) {
	const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4;
	return (warp / 4) * (BM / 2) + (r / 2) * 16 + (r % 2) * 8 + g;
}
template <int BN>
__device__ __forceinline__ int tile_col(int q) {
	const int warp = threadIdx.x / 32, t = threadIdx.x % 4;
	return (warp % 4) * (BN / 4) + (q / 2) * 8 + 2 * t + q % 2;
}
__device__ __forceinline__ int tile_slot() { return ((threadIdx.x / 32) % 4) * 4 + threadIdx.x % 4; }

// mma_zero clears a thread's accumulators of a warp's MI x NI products.
template <int MI, int NI>
__device__ __forceinline__ void mma_zero(float (&c)[MI][NI][4]) {
#pragma unroll
	for (int mi = 0; mi < MI; mi++) {
#pragma unroll
		for (int ni = 0; ni < NI; ni++) {
#pragma unroll
			for (int e = 0; e < 4; e++) {
				c[mi][ni][e] = 0.0f;
			}
		}
	}
}

// mma_step adds the product of one step's tiles in shared memory (As[l][i]
// and Bs[l][j], l < kTileK) to the thread's accumulators: its warp's
// fragments (mma.cuh), split for 3xTF32, then warp_mma.
template <int BM, int BN>
__device__ __forceinline__ void mma_step(const float (*As)[BM + kTilePad], const float (*Bs)[BN + kTilePad],
	float (&c)[BM / 32][BN / 32][4]) {
	static_assert(kTileK == 8 && kTileThreads == 256, "one mma step of k 8 per tile step, 8 warps");
	constexpr int MI = BM / 32, NI = BN / 32;  // a warp's 16 x 8 products
	const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
	const int wm = (warp / 4) * (BM / 2), wn = (warp % 4) * (BN / 4);
	float ah[MI][4], al[MI][4], bh[NI][2], bl[NI][2];
#pragma unroll
	for (int mi = 0; mi < MI; mi++) {
		const int row = wm + mi * 16 + g;
		split(As[t][row], ah[mi][0], al[mi][0]);
		split(As[t][row + 8], ah[mi][1], al[mi][1]);
		split(As[t + 4][row], ah[mi][2], al[mi][2]);
		split(As[t + 4][row + 8], ah[mi][3], al[mi][3]);
	}
#pragma unroll
	for (int ni = 0; ni < NI; ni++) {
		const int col = wn + ni * 8 + g;
		split(Bs[t][col], bh[ni][0], bl[ni][0]);
		split(Bs[t + 4][col], bh[ni][1], bl[ni][1]);
	}
	warp_mma<MI, NI, kTileThreads / 32>(c, ah, al, bh, bl);
}

// mma_out hands the accumulators over in tile_row, tile_col order.
template <int BM, int BN>
__device__ __forceinline__ void mma_out(const float (&c)[BM / 32][BN / 32][4], float (&acc)[BM / 16][BN / 16]) {
#pragma unroll
	for (int r = 0; r < BM / 16; r++) {
#pragma unroll
		for (int q = 0; q < BN / 16; q++) {
			acc[r][q] = c[r / 2][q / 2][(r % 2) * 2 + q % 2];
		}
	}
}

// tile_product sets acc to the thread's part of the (bm, bn) tile of
// op(A) op(B), the next step's operands fetched into registers while the
// current one is multiplied. Every thread of the block must call it (it
// synchronises).
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB>
__device__ __forceinline__ void tile_product(int M, int N, int K, int bm, int bn, const LA &la, const LB &lb,
	float (*As)[BM + kTilePad], float (*Bs)[BN + kTilePad], float (&acc)[BM / 16][BN / 16]) {
	static_assert(BM % 64 == 0 && BN % 64 == 0, "tiles are multiples of 64");
	float c[BM / 32][BN / 32][4];
	mma_zero(c);
	float ra[BM / 32], rb[BN / 32];
	typename Split<LA>::Fixed fa[BM / 32];
	typename Split<LB>::Fixed fb[BN / 32];
	fix_a<BM, A_LFAST>(la, bm, fa);
	fix_b<BN, B_JFAST>(lb, bn, fb);
	fetch_a<BM, A_LFAST>(la, fa, M, K, bm, 0, ra);
	fetch_b<BN, B_JFAST>(lb, fb, N, K, bn, 0, rb);
	store_a<BM, A_LFAST>(As, ra);
	store_b<BN, B_JFAST>(Bs, rb);
	__syncthreads();
	for (int k0 = 0; k0 < K; k0 += kTileK) {
		const bool more = k0 + kTileK < K;  // the same in every thread
		if (more) {
			fetch_a<BM, A_LFAST>(la, fa, M, K, bm, k0 + kTileK, ra);
			fetch_b<BN, B_JFAST>(lb, fb, N, K, bn, k0 + kTileK, rb);
		}
		mma_step<BM, BN>(As, Bs, c);
		__syncthreads();
		if (more) {
			store_a<BM, A_LFAST>(As, ra);
			store_b<BN, B_JFAST>(Bs, rb);
			__syncthreads();
		}
	}
	mma_out<BM, BN>(c, acc);
}

// cp_async copies the float at src to dst in shared memory without
// holding a register (cp.async, sm_80), or stores 0 for a null src;
// cp_commit closes a group of copies, cp_wait<N> waits until at most N
// groups are in flight. The emulation copies at once.
__device__ __forceinline__ void cp_async(float *dst, const float *src) {
#ifdef ANC_EMU
	*dst = src != nullptr ? *src : 0.0f;
#else
	if (src == nullptr) {
		*dst = 0.0f;
		return;
	}
	unsigned s = (unsigned)__cvta_generic_to_shared(dst);
	asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(src) : "memory");
#endif
}
__device__ __forceinline__ void cp_commit() {
#ifndef ANC_EMU
	asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void cp_wait() {
#ifndef ANC_EMU
	asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// copy_tiles starts the copies of step k0's tiles of A and B into As and
// Bs, each thread its elements (as fetch_a and fetch_b), as one group.
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB>
__device__ __forceinline__ void copy_tiles(int M, int N, int K, int bm, int bn, int k0, const LA &la, const LB &lb,
	const typename Split<LA>::Fixed *fa, const typename Split<LB>::Fixed *fb, float (*As)[BM + kTilePad],
	float (*Bs)[BN + kTilePad]) {
#pragma unroll
	for (int t = 0; t < BM / 32; t++) {
		int i = a_row<BM, A_LFAST>(t), l = a_step<BM, A_LFAST>(t);
		bool in = bm + i < M && k0 + l < K;
		cp_async(&As[l][i], in ? Split<LA>::a_ptr(la, fa[t], k0 + l) : nullptr);
	}
#pragma unroll
	for (int t = 0; t < BN / 32; t++) {
		int j = b_col<BN, B_JFAST>(t), l = b_step<BN, B_JFAST>(t);
		bool in = bn + j < N && k0 + l < K;
		cp_async(&Bs[l][j], in ? Split<LB>::b_ptr(lb, fb[t], k0 + l) : nullptr);
	}
	cp_commit();
}

// tile_product_async is tile_product for loaders that give addresses
// (kAsyncTiles): each step's tiles are copied by cp.async into one of two
// buffers while the other is multiplied, no register holding them.
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB>
__device__ __forceinline__ void tile_product_async(int M, int N, int K, int bm, int bn, const LA &la, const LB &lb,
	float (*As)[kTileK][BM + kTilePad], float (*Bs)[kTileK][BN + kTilePad], float (&acc)[BM / 16][BN / 16]) {
	static_assert(BM % 64 == 0 && BN % 64 == 0, "tiles are multiples of 64");
	float c[BM / 32][BN / 32][4];
	mma_zero(c);
	typename Split<LA>::Fixed fa[BM / 32];
	typename Split<LB>::Fixed fb[BN / 32];
	fix_a<BM, A_LFAST>(la, bm, fa);
	fix_b<BN, B_JFAST>(lb, bn, fb);
	copy_tiles<BM, BN, A_LFAST, B_JFAST>(M, N, K, bm, bn, 0, la, lb, fa, fb, As[0], Bs[0]);
	int buf = 0;
	for (int k0 = 0; k0 < K; k0 += kTileK) {
		// The other buffer was last read in the step before, which ended
		// with a barrier: it can be filled while this one is multiplied.
		if (k0 + kTileK < K) {
			copy_tiles<BM, BN, A_LFAST, B_JFAST>(M, N, K, bm, bn, k0 + kTileK, la, lb, fa, fb, As[buf ^ 1], Bs[buf ^ 1]);
			cp_wait<1>();  // this step's group is in, the next may still fly
		} else {
			cp_wait<0>();
		}
		__syncthreads();  // every thread's copies of this step are in
		mma_step<BM, BN>(As[buf], Bs[buf], c);
		__syncthreads();  // done reading buf before it is filled again
		buf ^= 1;
	}
	mma_out<BM, BN>(c, acc);
}

// any_product is tile_product_async where the loaders allow, else
// tile_product, with the shared memory each takes.
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB>
__device__ __forceinline__ void any_product(int M, int N, int K, int bm, int bn, const LA &la, const LB &lb,
	float (&acc)[BM / 16][BN / 16]) {
	if constexpr (kAsyncTiles<LA, LB>) {
		__shared__ __align__(16) float As[2][kTileK][BM + kTilePad];
		__shared__ __align__(16) float Bs[2][kTileK][BN + kTilePad];
		tile_product_async<BM, BN, A_LFAST, B_JFAST>(M, N, K, bm, bn, la, lb, As, Bs, acc);
	} else {
		__shared__ __align__(16) float As[kTileK][BM + kTilePad];
		__shared__ __align__(16) float Bs[kTileK][BN + kTilePad];
		tile_product<BM, BN, A_LFAST, B_JFAST>(M, N, K, bm, bn, la, lb, As, Bs, acc);
	}
}

// store_tile hands each element of a block's tile inside M x N to
// st(i, j, v).
template <int BM, int BN, class ST>
__device__ __forceinline__ void store_tile(int M, int N, int bm, int bn, const float (&acc)[BM / 16][BN / 16], const ST &st) {
#pragma unroll
	for (int r = 0; r < BM / 16; r++) {
		int i = bm + tile_row<BM>(r);
		if (i >= M) {
			continue;
		}
#pragma unroll
		for (int q = 0; q < BN / 16; q++) {
			int j = bn + tile_col<BN>(q);
			if (j < N) {
				st(i, j, acc[r][q]);
			}
		}
	}
}

// gemm_kernel stores every element of the product through st(i, j, v).
// Tiles of rows go along blockIdx.x (up to 2^31 - 1 of them), tiles of
// columns along blockIdx.y (up to 65535).
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB, class ST>
__global__ void __launch_bounds__(kTileThreads) gemm_kernel(int M, int N, int K, LA la, LB lb, ST st) {
	float acc[BM / 16][BN / 16];
	const int bm = blockIdx.x * BM, bn = blockIdx.y * BN;
	any_product<BM, BN, A_LFAST, B_JFAST>(M, N, K, bm, bn, la, lb, acc);
	store_tile<BM, BN>(M, N, bm, bn, acc, st);
}

// launch_gemm launches gemm_kernel over M x N (nothing when either is 0).
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB, class ST>
int launch_gemm(anc_ctx *c, const char *what, int M, int N, int K, LA la, LB lb, ST st) {
	if (M <= 0 || N <= 0) {
		return 0;
	}
	long long gx = ((long long)M + BM - 1) / BM, gy = ((long long)N + BN - 1) / BN;
	if (gy > 65535) {
		return fail_arg(c, "matrix product with too many columns for one launch");
	}
	auto kernel = gemm_kernel<BM, BN, A_LFAST, B_JFAST, LA, LB, ST>;
	LAUNCH(what, kernel, dim3((unsigned)gx, (unsigned)gy), dim3(kTileThreads), M, N, K, la, lb, st);
	return 0;
}

// ShiftA and ShiftB read a loader from k0 on along K: one slice of a
// split-K product. They split as the loader does.
template <class L>
struct ShiftA {
	using Fixed = typename Split<L>::Fixed;
	static constexpr bool kAddr = Addressable<L>::value;
	L f;
	int k0;
	__device__ __forceinline__ Fixed fix(int i) const { return Split<L>::fix(f, i); }
	__device__ __forceinline__ float at(const Fixed &x, int l) const { return Split<L>::a(f, x, l + k0); }
	__device__ __forceinline__ const float *addr(const Fixed &x, int l) const { return Split<L>::a_ptr(f, x, l + k0); }
};
template <class L>
struct ShiftB {
	using Fixed = typename Split<L>::Fixed;
	static constexpr bool kAddr = Addressable<L>::value;
	L f;
	int k0;
	__device__ __forceinline__ Fixed fix(int j) const { return Split<L>::fix(f, j); }
	__device__ __forceinline__ float at(const Fixed &x, int l) const { return Split<L>::b(f, x, l + k0); }
	__device__ __forceinline__ const float *addr(const Fixed &x, int l) const { return Split<L>::b_ptr(f, x, l + k0); }
};

// gemm_split_kernel computes slice blockIdx.z of a split-K product, K
// indices z*ks to (z+1)*ks, into part[z] (M x N).
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB>
__global__ void __launch_bounds__(kTileThreads) gemm_split_kernel(int M, int N, int K, int ks, LA la, LB lb, float *part) {
	float acc[BM / 16][BN / 16];
	const int bm = blockIdx.x * BM, bn = blockIdx.y * BN, k0 = blockIdx.z * ks;
	const int kz = K - k0 < ks ? K - k0 : ks;
	any_product<BM, BN, A_LFAST, B_JFAST>(M, N, kz, bm, bn, ShiftA<LA>{la, k0}, ShiftB<LB>{lb, k0}, acc);
	float *pz = part + (long long)blockIdx.z * M * N;
	store_tile<BM, BN>(M, N, bm, bn, acc, [=](int i, int j, float v) { pz[(long long)i * N + j] = v; });
}

// split_sum_kernel stores the sum of the slices, in slice order, through
// st: the same result on every run.
template <class ST>
__global__ void __launch_bounds__(anc::kThreads) split_sum_kernel(const float *part, int slices, int M, int N, ST st) {
	long long mn = (long long)M * N;
	for (long long e = gtid(); e < mn; e += gstride()) {
		float s = 0;
		for (int z = 0; z < slices; z++) {
			s += part[z * mn + e];
		}
		st((int)(e / N), (int)(e % N), s);
	}
}

// kSplitMinK is the shortest slice of K a split-K product takes.
constexpr int kSplitMinK = 64;

// split_slices is how many slices of K a product of tiles output tiles
// takes: enough blocks for two per multiprocessor, each slice at least
// kSplitMinK long, the slices' partial products within 256 MiB; 1 when
// the tiles fill the GPU already.
inline int split_slices(const anc_ctx *c, long long tiles, int M, int N, int K) {
	long long want = (2LL * (c->sms > 0 ? c->sms : 1) + tiles - 1) / tiles;
	long long s = want;
	if (s > K / kSplitMinK) {
		s = K / kSplitMinK;
	}
	long long cap = (64LL << 20) / ((long long)M * N > 0 ? (long long)M * N : 1);
	if (s > cap) {
		s = cap;
	}
	if (s > 64) {
		s = 64;
	}
	return s < 1 ? 1 : (int)s;
}

// launch_gemm_split computes the product as launch_gemm does, split along K
// into split_slices slices that run as blocks of their own, then summed in
// slice order (not with atomics): deterministic, and many more blocks when
// M x N is small and K long (a convolution's filter gradient).
template <int BM, int BN, bool A_LFAST, bool B_JFAST, class LA, class LB, class ST>
int launch_gemm_split(anc_ctx *c, const char *what, int M, int N, int K, LA la, LB lb, ST st) {
	if (M <= 0 || N <= 0) {
		return 0;
	}
	long long gx = ((long long)M + BM - 1) / BM, gy = ((long long)N + BN - 1) / BN;
	int slices = split_slices(c, gx * gy, M, N, K);
	if (slices <= 1) {
		return launch_gemm<BM, BN, A_LFAST, B_JFAST>(c, what, M, N, K, la, lb, st);
	}
	if (gy > 65535) {
		return fail_arg(c, "matrix product with too many columns for one launch");
	}
	void *sc = nullptr;
	int status = scratch(c, (size_t)slices * M * N * sizeof(float), &sc);
	if (status != 0) {
		return status;
	}
	float *part = static_cast<float *>(sc);
	int ks = (K + slices - 1) / slices;
	auto kernel = gemm_split_kernel<BM, BN, A_LFAST, B_JFAST, LA, LB>;
	LAUNCH(what, kernel, dim3((unsigned)gx, (unsigned)gy, (unsigned)slices), dim3(kTileThreads), M, N, K, ks, la, lb, part);
	LAUNCH("split_sum_kernel", split_sum_kernel<ST>, blocks_for(c, (long long)M * N), kThreads, part, slices, M, N, st);
	return 0;
}

// tile_size picks 128 when a dimension fills such tiles, else 64.
inline bool big_tiles(long long m, long long n) { return m >= 128 && n >= 128 && (m / 128) * (n / 128) >= 64; }

}  // namespace anc

#endif
