/*
 * mma.cuh: the one tensor-core instruction the kernels use, mma.sync m16n8k16 with bf16
 * inputs and fp32 accumulators, and the fragment loads around it.
 *
 * D[16x8] = A[16x16] B[16x8] + C[16x8], computed by a whole warp: every lane holds a fixed
 * part of each matrix (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point
 * type"). With g = lane / 4 (the lane's group) and t = lane % 4 (its place in the group):
 *   A (4 registers of 2 bf16): register 0 holds row g, columns 2t and 2t+1; register 1 the
 *     same columns of row g+8; registers 2 and 3 the same as 0 and 1 eight columns on
 *     (2t+8, 2t+9). In each register the lower 16 bits hold the lower column.
 *   B (2 registers of 2 bf16): column g; register 0 holds rows (k) 2t and 2t+1, register 1
 *     rows 2t+8 and 2t+9, lower row in the lower half.
 *   C and D (4 floats): element 0 and 1 are row g, columns 2t and 2t+1; elements 2 and 3 the
 *     same columns of row g+8.
 * A quad of lanes (one g) thus holds two whole rows of A, C and D, and one column of B: a C
 * fragment of two adjacent 8-column tiles is, converted to bf16, the A fragment of their 16
 * columns, which is how attention turns its scores into the probabilities' operand.
 *
 * Under nvcc the mma is the inline PTX. Under the CPU emulator (tests/emu/, where no PTX
 * runs) it is a warp-collective operation: the lanes exchange their fragments through the
 * emulator's all-gather (every lane of the warp must call it, as on a GPU, where the
 * instruction is .sync.aligned), and each lane computes its four outputs from the fragments
 * by the layout above. Each product of two bf16 values is exact in fp32; the emulator sums
 * them in k order onto the accumulator, d = c + a0 b0 + a1 b1 + ... + a15 b15, rounding
 * each addition to fp32. The hardware's order and internal precision are unspecified, so
 * tests hold tensor-core results to tolerances, never to bits.
 */
#ifndef TNG_KERNELS_MMA_CUH
#define TNG_KERNELS_MMA_CUH

#include <cuda_bf16.h>
#include <stdint.h>
#include <string.h>

/* Two floats rounded to bf16 and packed as one A or B register: lo in the lower half. */
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    __nv_bfloat16 l = __float2bfloat16_rn(lo), h = __float2bfloat16_rn(hi);
    uint16_t lb, hb;
    memcpy(&lb, &l, 2);
    memcpy(&hb, &h, 2);
    return (uint32_t)lb | ((uint32_t)hb << 16);
}

/* Two adjacent bf16 values in memory as one register (p 4-byte aligned): one 32-bit load on a
 * GPU; a memcpy for the host compiler, which may assume bf16 and uint32_t never alias. */
__device__ __forceinline__ uint32_t load_bf16x2(const __nv_bfloat16 *p) {
#ifdef __CUDACC__
    return *(const uint32_t *)(const void *)p;
#else
    uint32_t r;
    memcpy(&r, p, 4);
    return r;
#endif
}

#ifdef __CUDACC__
__device__ __forceinline__ void mma_bf16_m16n8k16(float d[4], const uint32_t a[4],
                                                  const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#else
/* The bf16 in the lower (half 0) or upper (half 1) 16 bits of a register, as a float. */
static inline float bf16_half(uint32_t r, int half) {
    uint32_t bits = half ? (r & 0xffff0000u) : (r << 16);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

__device__ inline void mma_bf16_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    struct Fragments {
        uint32_t a[4], b[2];
    } mine = {{a[0], a[1], a[2], a[3]}, {b[0], b[1]}}, all[32];
    EMU_WARP_ALL_GATHER(0xffffffffu, &mine, all, (int)sizeof mine);
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    for (int e = 0; e < 4; e++) {
        int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
        float acc = d[e];
        for (int k = 0; k < 16; k++) {
            /* A[row][k]: lane 4 (row % 8) + (k % 8) / 2, register (row >= 8) + 2 (k >= 8) */
            const Fragments &fa = all[4 * (row % 8) + (k % 8) / 2];
            float av = bf16_half(fa.a[(row >= 8) + 2 * (k >= 8)], k & 1);
            /* B[k][col]: lane 4 col + (k % 8) / 2, register (k >= 8) */
            const Fragments &fb = all[4 * col + (k % 8) / 2];
            float bv = bf16_half(fb.b[k >= 8], k & 1);
            acc += av * bv;
        }
        d[e] = acc;
    }
}
#endif

/* The A fragment of the 16x16 bf16 tile at `tile` (row-major, row pitch `pitch`). */
__device__ __forceinline__ void load_frag_a(uint32_t a[4], const __nv_bfloat16 *tile, int pitch) {
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    a[0] = load_bf16x2(tile + g * pitch + 2 * t);
    a[1] = load_bf16x2(tile + (g + 8) * pitch + 2 * t);
    a[2] = load_bf16x2(tile + g * pitch + 2 * t + 8);
    a[3] = load_bf16x2(tile + (g + 8) * pitch + 2 * t + 8);
}

/* The B fragment of a 16x8 (k x n) tile stored transposed, n rows of k contiguous values
 * (row pitch `pitch`): K as it sits in memory is B = K^T of S = Q K^T. */
__device__ __forceinline__ void load_frag_b_nk(uint32_t b[2], const __nv_bfloat16 *tile,
                                               int pitch) {
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    b[0] = load_bf16x2(tile + g * pitch + 2 * t);
    b[1] = load_bf16x2(tile + g * pitch + 2 * t + 8);
}

/* The B fragment of a 16x8 (k x n) tile stored row-major, k rows of n values: V of P V. */
__device__ __forceinline__ void load_frag_b_kn(uint32_t b[2], const __nv_bfloat16 *tile,
                                               int pitch) {
    int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    const __nv_bfloat16 *col = tile + g;
    b[0] = pack_bf16x2(__bfloat162float(col[(2 * t) * pitch]),
                       __bfloat162float(col[(2 * t + 1) * pitch]));
    b[1] = pack_bf16x2(__bfloat162float(col[(2 * t + 8) * pitch]),
                       __bfloat162float(col[(2 * t + 9) * pitch]));
}

/* The A fragment of 16 columns from the C fragments of two adjacent 8-column tiles (left,
 * right), rounded to bf16: see the layouts above. */
__device__ __forceinline__ void frag_a_from_c(uint32_t a[4], const float left[4],
                                              const float right[4]) {
    a[0] = pack_bf16x2(left[0], left[1]);
    a[1] = pack_bf16x2(left[2], left[3]);
    a[2] = pack_bf16x2(right[0], right[1]);
    a[3] = pack_bf16x2(right[2], right[3]);
}

#endif
