/*
 * l2norm.cuh: row L2 normalisation out = inp / ||inp|| (no epsilon, as HF CLIPModel) and
 * its backward dinp += (dout - out * <out, dout>) / ||inp||. The input is the projection's
 * output, an activation (io_t: float, or bf16 in the bf16 backend); the features are fp32.
 *
 * One warp per row (rows are the D = 512-wide features of a batch: a few thousand rows at
 * most), lanes strided by 32 for coalesced reads, the row sum by a fixed shuffle tree.
 */
#ifndef TNG_KERNELS_L2NORM_CUH
#define TNG_KERNELS_L2NORM_CUH

#include "common.cuh"
#include "cuda/cuda_common.h"

template <typename io_t>
__global__ void l2norm_forward_kernel(float *out, float *norm, const io_t *inp, int N, int C) {
    int lane = threadIdx.x % PLAN_WARP;
    size_t row = (size_t)blockIdx.x * LN_ROWS_PER_BLOCK + threadIdx.x / PLAN_WARP;
    if (row >= (size_t)N)
        return;
    const io_t *x = inp + row * C;
    float ss = 0.0f;
    for (int c = lane; c < C; c += PLAN_WARP)
        ss += load_f32(x[c]) * load_f32(x[c]);
    float len = sqrtf(warp_sum(ss));
    for (int c = lane; c < C; c += PLAN_WARP)
        out[row * C + c] = load_f32(x[c]) / len;
    if (lane == 0)
        norm[row] = len;
}

static __global__ void l2norm_backward_kernel(float *dinp, const float *dout, const float *out,
                                              const float *norm, int N, int C) {
    int lane = threadIdx.x % PLAN_WARP;
    size_t row = (size_t)blockIdx.x * LN_ROWS_PER_BLOCK + threadIdx.x / PLAN_WARP;
    if (row >= (size_t)N)
        return;
    const float *y = out + row * C, *dy = dout + row * C;
    float dot = 0.0f;
    for (int c = lane; c < C; c += PLAN_WARP)
        dot += y[c] * dy[c];
    dot = warp_sum(dot);
    float inv = 1.0f / norm[row];
    for (int c = lane; c < C; c += PLAN_WARP)
        dinp[row * C + c] += (dy[c] - y[c] * dot) * inv;
}

template <typename io_t>
void l2norm_forward(float *out, float *norm, const io_t *inp, int N, int C, cudaStream_t stream) {
    if (N == 0)
        return;
    unsigned blocks = (unsigned)plan_ceil_div((size_t)N, LN_ROWS_PER_BLOCK);
    TNG_LAUNCH(l2norm_forward_kernel<io_t>, blocks, LN_ROWS_PER_BLOCK * PLAN_WARP, 0, stream, out, norm,
               inp, N, C);
}

static inline void l2norm_backward(float *dinp, const float *dout, const float *out,
                                   const float *norm, int N, int C, cudaStream_t stream) {
    if (N == 0)
        return;
    unsigned blocks = (unsigned)plan_ceil_div((size_t)N, LN_ROWS_PER_BLOCK);
    TNG_LAUNCH(l2norm_backward_kernel, blocks, LN_ROWS_PER_BLOCK * PLAN_WARP, 0, stream, dinp,
               dout, out, norm, N, C);
}

#endif
