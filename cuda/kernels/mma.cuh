// mma.cuh: the tensor-core step of the tile core (tile.cuh): a warp's
// block of mma.sync.m16n8k8 TF32 products, three of them per product
// (3xTF32) so that the result keeps float32's accuracy. Under ANC_EMU the
// same fragments go through an emulation of the instruction that follows
// the PTX ISA's fragment layout ("Matrix Fragments for mma.m16n8k8",
// .tf32), so that the conformance suite checks which lane holds which
// element without a GPU.
//
// Fragments (lane = threadIdx.x % 32, g = lane / 4, t = lane % 4), for a
// 16 x 8 A, an 8 x 8 B and a 16 x 8 accumulator C:
//   a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4]
//   b0 = B[t][g], b1 = B[t+4][g]
//   c0 = C[g][2t], c1 = C[g][2t+1], c2 = C[g+8][2t], c3 = C[g+8][2t+1]
//
// 3xTF32: x = hi + lo with hi = tf32(x) (round to nearest, ties away, to
// 10 stored mantissa bits) and lo = tf32(x - hi); a*b is taken as
// lo_a hi_b + hi_a lo_b + hi_a hi_b (the small terms first), dropping
// lo_a lo_b. Each input is then represented to within 2^-22 of its
// magnitude (lo rounds x - hi, at most 2^-11 |x|, to 11 bits) and the
// dropped term is at most 2^-22 |a b|, so a product carries at most
// 3 * 2^-22 = 12u of |a b| (u = 2^-24) beyond float32's own rounding of
// its sums. TF32 products of TF32 values are exact in float32 (11 x 11
// significant bits). An infinite input gives NaN, where float32 would
// give an infinity (inf - inf in its lo part).
#ifndef ANC_MMA_CUH
#define ANC_MMA_CUH

#include <cstring>

#include "common.cuh"

namespace anc {

// kMmaErr is what 3xTF32 adds to a product's error, per unit of sum |a b|.
constexpr float kMmaErr = 12.0f * 0x1p-24f;

// tf32 rounds x to TF32 (round to nearest, ties away from zero), as
// cvt.rna.tf32.f32 does; NaN and the infinities stay.
__host__ __device__ __forceinline__ float tf32(float x) {
#ifdef __CUDA_ARCH__
	unsigned u;
	asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(x));
	return __uint_as_float(u);
#else
	unsigned u;
	std::memcpy(&u, &x, sizeof u);
	if ((u & 0x7f800000u) != 0x7f800000u) {
		u = (u + 0x1000u) & 0xffffe000u;  // half an ulp of 10 bits up, then cut: ties away in magnitude
	}
	float r;
	std::memcpy(&r, &u, sizeof r);
	return r;
#endif
}

// split sets hi and lo of x for 3xTF32.
__device__ __forceinline__ void split(float x, float &hi, float &lo) {
	hi = tf32(x);
	lo = tf32(x - hi);
}

// warp_mma adds to acc, a warp's MI x NI block of 16 x 8 accumulators,
// the products of its A fragments (MI of 16 x 8, hi and lo) and B fragments
// (NI of 8 x 8, hi and lo), three mma.sync each. Every thread of the
// block, of WARPS warps, must call it at the same point (the emulation
// synchronises the block).
template <int MI, int NI, int WARPS>
__device__ __forceinline__ void warp_mma(float (&acc)[MI][NI][4], const float (&ah)[MI][4], const float (&al)[MI][4],
	const float (&bh)[NI][2], const float (&bl)[NI][2]) {
#ifdef ANC_EMU
	// Each lane leaves its fragments for the warp; after the barrier each
	// computes its accumulators from the warp's, in k order, in float32.
	__shared__ float sa[2][WARPS][32][MI][4];
	__shared__ float sb[2][WARPS][32][NI][2];
	const int w = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
	for (int mi = 0; mi < MI; mi++) {
		for (int r = 0; r < 4; r++) {
			sa[0][w][lane][mi][r] = ah[mi][r];
			sa[1][w][lane][mi][r] = al[mi][r];
		}
	}
	for (int ni = 0; ni < NI; ni++) {
		for (int r = 0; r < 2; r++) {
			sb[0][w][lane][ni][r] = bh[ni][r];
			sb[1][w][lane][ni][r] = bl[ni][r];
		}
	}
	__syncthreads();
	// A[row][k] is in lane (row % 8) * 4 + k % 4, register row / 8 + 2 (k / 4);
	// B[k][col] in lane col * 4 + k % 4, register k / 4.
	auto A = [&](int p, int mi, int row, int k) { return sa[p][w][(row % 8) * 4 + k % 4][mi][row / 8 + 2 * (k / 4)]; };
	auto B = [&](int p, int ni, int k, int col) { return sb[p][w][col * 4 + k % 4][ni][k / 4]; };
	const int pa[3] = {1, 0, 0}, pb[3] = {0, 1, 0};  // lo hi, hi lo, hi hi
	for (int mi = 0; mi < MI; mi++) {
		for (int ni = 0; ni < NI; ni++) {
			for (int c = 0; c < 4; c++) {
				int row = g + 8 * (c / 2), col = 2 * t + c % 2;
				float s = acc[mi][ni][c];
				for (int p = 0; p < 3; p++) {
					for (int k = 0; k < 8; k++) {
						s += A(pa[p], mi, row, k) * B(pb[p], ni, k, col);
					}
				}
				acc[mi][ni][c] = s;
			}
		}
	}
	__syncthreads();
#else
#pragma unroll
	for (int mi = 0; mi < MI; mi++) {
#pragma unroll
		for (int ni = 0; ni < NI; ni++) {
			float *d = acc[mi][ni];
			const float *a[3] = {al[mi], ah[mi], ah[mi]};
			const float *b[3] = {bh[ni], bl[ni], bh[ni]};
#pragma unroll
			for (int p = 0; p < 3; p++) {
				asm volatile(
					"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
					"{%0,%1,%2,%3};\n"
					: "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
					: "r"(__float_as_uint(a[p][0])), "r"(__float_as_uint(a[p][1])), "r"(__float_as_uint(a[p][2])),
					"r"(__float_as_uint(a[p][3])), "r"(__float_as_uint(b[p][0])), "r"(__float_as_uint(b[p][1])));
			}
		}
	}
#endif
}

}  // namespace anc

#endif
