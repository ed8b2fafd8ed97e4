/*
 * layernorm.cuh: LayerNorm over the last dimension, forward and backward.
 *
 * One warp owns one row and keeps it in registers (PER_LANE values per lane, strided by 32
 * so that each load instruction is a coalesced 128-byte line): the row is read from memory
 * once, and the mean and the variance are two passes over registers. The variance is the
 * mean of squared deviations (not E[x^2]-E[x]^2), in fp32, which matches the CPU's double
 * statistics to ~1e-6. Any width up to LN_MAX_WIDTH and any row count work: every column
 * and row index is guarded, nothing assumes N or C is a multiple of anything.
 *
 * Templated on the activation type io_t (float, or __nv_bfloat16 for a bf16 backend) of inp
 * and out; weight, bias, the saved mean/rstd and every gradient (dout, dinp, dweight, dbias)
 * stay fp32, since an accumulation (+=) in bf16 would round at every add.
 *
 * The forward can also do the residual add in front of the norm (residual_layernorm_forward):
 * the transformer block's "x + branch, then LayerNorm" in one pass over the row.
 *
 * Gradients, as everywhere in the backend, accumulate: dinp += and dweight/dbias +=.
 * dweight/dbias are column sums over rows. The backward reads dout and inp once: its kernel
 * writes dinp and, per fixed chunk of rows, a partial row of each column sum (no atomics);
 * reduce.cuh's second stage adds the chunks in order. Same bits on every run.
 */
#ifndef TNG_KERNELS_LAYERNORM_CUH
#define TNG_KERNELS_LAYERNORM_CUH

#include "common.cuh"
#include "reduce.cuh"
extern "C" {
#include "engine/config.h" /* defines: CLIP_LN_EPS */
}

/* With add == NULL, out = LayerNorm(inp). With add, the residual add fused in front:
 * residual = inp + add (written, rounded to io_t), out = LayerNorm(residual) computed from the
 * rounded values, so the result is the unfused pair's, bit for bit, with one read of the
 * residual stream saved. */
template <typename io_t, int PER_LANE>
__global__ void layernorm_forward_kernel(io_t *out, float *mean, float *rstd, const io_t *inp,
                                         const io_t *add, io_t *residual, const float *weight,
                                         const float *bias, int N, int C) {
    int lane = threadIdx.x % PLAN_WARP, warp = threadIdx.x / PLAN_WARP;
    size_t row = (size_t)blockIdx.x * LN_ROWS_PER_BLOCK + warp;
    if (row >= (size_t)N)
        return; /* whole warps leave together; no block barrier below */
    const io_t *x = inp + row * C;
    float v[PER_LANE];
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < PER_LANE; k++) {
        int c = lane + k * PLAN_WARP;
        v[k] = c < C ? load_f32(x[c]) : 0.0f;
        if (add && c < C) {
            io_t r = store_as<io_t>(v[k] + load_f32(add[row * C + c]));
            residual[row * C + c] = r;
            v[k] = load_f32(r);
        }
        sum += v[k];
    }
    float mu = warp_sum(sum) / C;
    float sq = 0.0f;
#pragma unroll
    for (int k = 0; k < PER_LANE; k++) {
        int c = lane + k * PLAN_WARP;
        float d = c < C ? v[k] - mu : 0.0f;
        sq += d * d;
    }
    float rs = 1.0f / sqrtf(warp_sum(sq) / C + CLIP_LN_EPS);
    io_t *y = out + row * C;
#pragma unroll
    for (int k = 0; k < PER_LANE; k++) {
        int c = lane + k * PLAN_WARP;
        if (c < C)
            y[c] = store_as<io_t>((v[k] - mu) * rs * weight[c] + bias[c]);
    }
    if (lane == 0) {
        mean[row] = mu;
        rstd[row] = rs;
    }
}

/* The backward in one pass over dout and inp. Per row:
 *   dinp += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd, dnorm = dout * weight,
 * and the parameter gradients' terms dout * norm (dweight) and dout (dbias), which each lane
 * sums over the rows its warp takes in the block's chunk (layernorm_backward_plan). The warps'
 * sums are then added in warp order in shared memory, and the block writes one partial row per
 * quantity to partial[k][block][col] (reduce.cuh's stage-1 layout); colsum_finish adds the
 * chunks in order. dinp NULL: no dinp; partial NULL: no parameter gradients. */
template <typename io_t, int PER_LANE>
__global__ void layernorm_backward_kernel(float *dinp, float *partial, const float *dout,
                                          const io_t *inp, const float *weight, const float *mean,
                                          const float *rstd, int N, int C) {
    __shared__ float block_sums[2][LN_MAX_WIDTH];
    int lane = threadIdx.x % PLAN_WARP, warp = threadIdx.x / PLAN_WARP;
    size_t first = (size_t)blockIdx.x * LN_BWD_ROWS_PER_BLOCK;
    size_t end = first + LN_BWD_ROWS_PER_BLOCK < (size_t)N ? first + LN_BWD_ROWS_PER_BLOCK : N;
    float dweight_sum[PER_LANE], dbias_sum[PER_LANE];
#pragma unroll
    for (int k = 0; k < PER_LANE; k++)
        dweight_sum[k] = dbias_sum[k] = 0.0f;
    for (size_t row = first + warp; row < end; row += LN_ROWS_PER_BLOCK) {
        const io_t *x = inp + row * C;
        const float *dy = dout + row * C;
        float mu = mean[row], rs = rstd[row];
        float norm[PER_LANE], dnorm[PER_LANE];
        float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
#pragma unroll
        for (int k = 0; k < PER_LANE; k++) {
            int c = lane + k * PLAN_WARP;
            float g = c < C ? dy[c] : 0.0f;
            norm[k] = c < C ? (load_f32(x[c]) - mu) * rs : 0.0f;
            dnorm[k] = c < C ? g * weight[c] : 0.0f;
            dnorm_sum += dnorm[k];
            dnorm_norm_sum += dnorm[k] * norm[k];
            dweight_sum[k] += g * norm[k];
            dbias_sum[k] += g;
        }
        if (!dinp)
            continue; /* the warp's lanes agree: the shuffles below stay converged */
        float dnorm_mean = warp_sum(dnorm_sum) / C;
        float dnorm_norm_mean = warp_sum(dnorm_norm_sum) / C;
        float *dx = dinp + row * C;
#pragma unroll
        for (int k = 0; k < PER_LANE; k++) {
            int c = lane + k * PLAN_WARP;
            if (c < C)
                dx[c] += (dnorm[k] - dnorm_mean - norm[k] * dnorm_norm_mean) * rs;
        }
    }
    if (!partial)
        return; /* the whole block: no barrier is skipped by some threads only */
    for (int w = 0; w < LN_ROWS_PER_BLOCK; w++) {
        if (warp == w) {
#pragma unroll
            for (int k = 0; k < PER_LANE; k++) {
                int c = lane + k * PLAN_WARP;
                if (c < C) {
                    block_sums[0][c] = w == 0 ? dweight_sum[k] : block_sums[0][c] + dweight_sum[k];
                    block_sums[1][c] = w == 0 ? dbias_sum[k] : block_sums[1][c] + dbias_sum[k];
                }
            }
        }
        __syncthreads();
    }
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        partial[(size_t)blockIdx.x * C + c] = block_sums[0][c];
        partial[((size_t)gridDim.x + blockIdx.x) * C + c] = block_sums[1][c];
    }
}

/* The kernels are instantiated for each register budget; this picks the one the plan chose. */
#define LN_DISPATCH_PER_LANE(per_lane, KERNEL, io_t, grid, block, stream, ...)                     \
    do {                                                                                           \
        switch (per_lane) {                                                                        \
        case 8:                                                                                    \
            TNG_LAUNCH((KERNEL<io_t, 8>), grid, block, 0, stream, __VA_ARGS__);                    \
            break;                                                                                 \
        case 16:                                                                                   \
            TNG_LAUNCH((KERNEL<io_t, 16>), grid, block, 0, stream, __VA_ARGS__);                   \
            break;                                                                                 \
        case 32:                                                                                   \
            TNG_LAUNCH((KERNEL<io_t, 32>), grid, block, 0, stream, __VA_ARGS__);                   \
            break;                                                                                 \
        default:                                                                                   \
            TNG_LAUNCH((KERNEL<io_t, 64>), grid, block, 0, stream, __VA_ARGS__);                   \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* residual = a + add, out = LayerNorm(residual); add NULL: out = LayerNorm(a), residual unused */
template <typename io_t>
void residual_layernorm_forward(io_t *residual, io_t *out, float *mean, float *rstd, const io_t *a,
                                const io_t *add, const float *weight, const float *bias, int N, int C,
                                cudaStream_t stream) {
    if (N == 0)
        return;
    RowPlan plan = layernorm_plan((size_t)N, C);
    shapeCheck(plan.ok, "layernorm over %d rows of width %d (width 1..%d)", N, C, LN_MAX_WIDTH);
    LN_DISPATCH_PER_LANE(plan.per_lane, layernorm_forward_kernel, io_t, (unsigned)plan.blocks,
                         plan.threads, stream, out, mean, rstd, a, add, residual, weight, bias, N,
                         C);
}

template <typename io_t>
void layernorm_forward(io_t *out, float *mean, float *rstd, const io_t *inp, const float *weight,
                       const float *bias, int N, int C, cudaStream_t stream) {
    residual_layernorm_forward<io_t>(NULL, out, mean, rstd, inp, NULL, weight, bias, N, C, stream);
}

template <typename io_t>
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const io_t *inp, const float *weight, const float *mean, const float *rstd,
                        int N, int C, cudaStream_t stream) {
    if (N == 0 || (!dinp && !dweight && !dbias))
        return;
    LayerNormBackwardPlan plan = layernorm_backward_plan((size_t)N, C);
    shapeCheck(plan.ok, "layernorm over %d rows of width %d (width 1..%d)", N, C, LN_MAX_WIDTH);
    float *partial = NULL;
    if (dweight || dbias)
        partial = (float *)tng_cuda_scratch(sizeof(float) * 2 * plan.partial_elems);
    LN_DISPATCH_PER_LANE(plan.per_lane, layernorm_backward_kernel, io_t, (unsigned)plan.blocks,
                         plan.threads, stream, dinp, partial, dout, inp, weight, mean, rstd, N, C);
    if (partial)
        colsum_finish<2>(dweight, dbias, partial, plan.blocks, (size_t)C, stream);
}

#endif
