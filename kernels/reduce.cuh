/*
 * reduce.cuh: deterministic column sums, dst[k][col] += sum_row f(row, col)[k].
 *
 * Every parameter gradient that sums over the rows of a batch (linear biases, LayerNorm
 * weight and bias, positional and class embeddings) is a column sum. Float atomics would
 * make the order of that sum, and so its bits, change run to run; instead (colsum_plan in
 * launch_plan.h):
 *   stage 1: block (32-column tile, 256-row chunk): each of its 8 warps takes every 8th row
 *            of the chunk; the 8 partials are added in warp order; one float per (k, chunk,
 *            column) goes to scratch;
 *   stage 2: one thread per column adds the chunks in order, in double, into dst.
 * The functor computes up to two quantities per element, summed from one read of the row.
 * Stage 2 (colsum_finish) also serves LayerNorm's backward, whose fused kernel writes stage
 * 1's partials itself (layernorm.cuh).
 */
#ifndef TNG_KERNELS_REDUCE_CUH
#define TNG_KERNELS_REDUCE_CUH

#include "common.cuh"
#include "cuda/cuda_common.h"

/* f(row, col, out) writes K values for one element. */
template <int K, typename F>
__global__ void colsum_partial_kernel(float *partial, F f, size_t N, size_t C) {
    __shared__ float group_sums[K][COLSUM_ROW_GROUPS][COLSUM_TILE_COLS];
    int lane = threadIdx.x % COLSUM_TILE_COLS, group = threadIdx.x / COLSUM_TILE_COLS;
    size_t col = (size_t)blockIdx.x * COLSUM_TILE_COLS + lane;
    size_t row_begin = (size_t)blockIdx.y * COLSUM_ROWS_PER_CHUNK;
    size_t row_end = row_begin + COLSUM_ROWS_PER_CHUNK < N ? row_begin + COLSUM_ROWS_PER_CHUNK : N;
    float acc[K];
    for (int k = 0; k < K; k++)
        acc[k] = 0.0f;
    if (col < C) {
        for (size_t row = row_begin + group; row < row_end; row += COLSUM_ROW_GROUPS) {
            float v[K];
            f(row, col, v);
            for (int k = 0; k < K; k++)
                acc[k] += v[k];
        }
    }
    for (int k = 0; k < K; k++)
        group_sums[k][group][lane] = acc[k];
    __syncthreads();
    /* warp 0 adds the 8 groups in a fixed order */
    if (group == 0 && col < C) {
        for (int k = 0; k < K; k++) {
            float sum = 0.0f;
            for (int g = 0; g < COLSUM_ROW_GROUPS; g++)
                sum += group_sums[k][g][lane];
            partial[((size_t)k * gridDim.y + blockIdx.y) * C + col] = sum;
        }
    }
}

template <int K>
__global__ void colsum_finish_kernel(float *dst0, float *dst1, const float *partial, size_t chunks,
                                     size_t C) {
    size_t col = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= C)
        return;
    float *dst[2] = {dst0, dst1};
    for (int k = 0; k < K; k++) {
        if (!dst[k])
            continue;
        double sum = 0.0;
        for (size_t chunk = 0; chunk < chunks; chunk++)
            sum += partial[((size_t)k * chunks + chunk) * C + col];
        dst[k][col] += (float)sum;
    }
}

/* Stage 2 on its own, for any kernel that leaves K rows of `chunks` partials in scratch, laid
 * out [k][chunk][col] (LayerNorm's fused backward too): dst_k[col] += their sum in order. */
template <int K>
void colsum_finish(float *dst0, float *dst1, const float *partial, size_t chunks, size_t C,
                   cudaStream_t stream) {
    TNG_LAUNCH(colsum_finish_kernel<K>, (unsigned)plan_ceil_div(C, 256), 256, 0, stream, dst0,
               dst1, partial, chunks, C);
}

/* dst_k[col] += sum over N rows of f(row, col)[k]; dst1 is used only when K == 2. A NULL dst
 * skips that quantity's write (the whole call is skipped when every dst is NULL). */
template <int K, typename F>
void colsum_accumulate(float *dst0, float *dst1, F f, size_t N, size_t C, cudaStream_t stream) {
    if (!dst0 && !dst1)
        return;
    if (N == 0 || C == 0)
        return;
    ColsumPlan plan = colsum_plan(N, C);
    shapeCheck(plan.ok, "column sum over %zu rows x %zu columns", N, C);
    float *partial = (float *)tng_cuda_scratch(sizeof(float) * K * plan.partial_elems);
    dim3 grid((unsigned)plan.col_tiles, (unsigned)plan.row_chunks);
    TNG_LAUNCH((colsum_partial_kernel<K, F>), grid, plan.threads, 0, stream, partial, f, N, C);
    colsum_finish<K>(dst0, dst1, partial, plan.row_chunks, C, stream);
}

/* The plainest functor: element (row, col) of a row-major matrix with a row stride. */
template <typename io_t> struct StridedRows {
    const io_t *base;
    size_t stride;
    __device__ void operator()(size_t row, size_t col, float *out) const {
        out[0] = load_f32(base[row * stride + col]);
    }
};

#endif
