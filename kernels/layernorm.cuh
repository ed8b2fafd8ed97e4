/*
 * layernorm.cuh: LayerNorm over the last dimension, forward and backward.
 *
 * One warp owns one row and keeps it in registers (PER_LANE values per lane, in groups of
 * V consecutive columns strided by 32 V, so that each load instruction is coalesced: 16 bytes a
 * lane on the 128-bit path, one value a lane otherwise, ln_column): the row is read from memory
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

/* The lane's columns: its values come in groups of V consecutive columns, group g at column
 * (lane + 32 g) V, so that one warp instruction moves 32 x 16 bytes when V = 16 / sizeof(T)
 * (the 128-bit path, layernorm_vector in launch_plan.h: C a multiple of V and every row-major
 * tensor on 16 bytes), or the plain layout c = lane + 32 g when V = 1 (any width). Either way a
 * group lies wholly inside or outside the row: the one guard is the group's first column. */
__device__ __forceinline__ int ln_column(int lane, int group, int V) { return (lane + group * PLAN_WARP) * V; }

/* 16 bytes of T: what one 128-bit load or store moves */
template <typename T> struct alignas(16) Packet16 {
    T v[16 / sizeof(T)];
};

/* dst[0..V) = src[0..V) in fp32: one scalar load (V = 1) or V * sizeof(T) / 16 packets */
template <int V, typename T> __device__ __forceinline__ void ln_load(float *dst, const T *src) {
    constexpr int per = 16 / sizeof(T);
    if constexpr (V == 1) {
        dst[0] = load_f32(src[0]);
    } else {
        static_assert(V % per == 0, "a group is whole packets");
#pragma unroll
        for (int p = 0; p < V / per; p++) {
            Packet16<T> packet = ((const Packet16<T> *)src)[p];
#pragma unroll
            for (int e = 0; e < per; e++)
                dst[p * per + e] = load_f32(packet.v[e]);
        }
    }
}

/* dst[0..V) = src[0..V) rounded to T, as ln_load reads */
template <int V, typename T> __device__ __forceinline__ void ln_store(T *dst, const float *src) {
    constexpr int per = 16 / sizeof(T);
    if constexpr (V == 1) {
        dst[0] = store_as<T>(src[0]);
    } else {
#pragma unroll
        for (int p = 0; p < V / per; p++) {
            Packet16<T> packet;
#pragma unroll
            for (int e = 0; e < per; e++)
                packet.v[e] = store_as<T>(src[p * per + e]);
            ((Packet16<T> *)dst)[p] = packet;
        }
    }
}

/* With add == NULL, out = LayerNorm(inp). With add, the residual add fused in front:
 * residual = inp + add (written, rounded to io_t), out = LayerNorm(residual) computed from the
 * rounded values, so the result is the unfused pair's (bit for bit where both take the same
 * V), with one read of the residual stream saved. */
template <typename io_t, int PER_LANE, int V>
__global__ void layernorm_forward_kernel(io_t *out, float *mean, float *rstd, const io_t *inp,
                                         const io_t *add, io_t *residual, const float *weight,
                                         const float *bias, int N, int C) {
    int lane = threadIdx.x % PLAN_WARP, warp = threadIdx.x / PLAN_WARP;
    size_t row = (size_t)blockIdx.x * LN_ROWS_PER_BLOCK + warp;
    if (row >= (size_t)N)
        return; /* whole warps leave together; no block barrier below */
    float v[PER_LANE];
    float sum = 0.0f;
#pragma unroll
    for (int g = 0; g < PER_LANE / V; g++) {
        int c = ln_column(lane, g, V);
        float *x = v + g * V;
        if (c < C) {
            ln_load<V>(x, inp + row * C + c);
            if (add) {
                float a[V];
                ln_load<V>(a, add + row * C + c);
#pragma unroll
                for (int e = 0; e < V; e++)
                    x[e] = load_f32(store_as<io_t>(x[e] + a[e]));
                ln_store<V>(residual + row * C + c, x); /* already rounded: stored exactly */
            }
        } else {
#pragma unroll
            for (int e = 0; e < V; e++)
                x[e] = 0.0f;
        }
#pragma unroll
        for (int e = 0; e < V; e++)
            sum += x[e];
    }
    float mu = warp_sum(sum) / C;
    float sq = 0.0f;
#pragma unroll
    for (int g = 0; g < PER_LANE / V; g++) {
        int c = ln_column(lane, g, V);
#pragma unroll
        for (int e = 0; e < V; e++) {
            float d = c < C ? v[g * V + e] - mu : 0.0f;
            sq += d * d;
        }
    }
    float rs = 1.0f / sqrtf(warp_sum(sq) / C + CLIP_LN_EPS);
#pragma unroll
    for (int g = 0; g < PER_LANE / V; g++) {
        int c = ln_column(lane, g, V);
        if (c < C) {
            float y[V];
#pragma unroll
            for (int e = 0; e < V; e++)
                y[e] = (v[g * V + e] - mu) * rs * weight[c + e] + bias[c + e];
            ln_store<V>(out + row * C + c, y);
        }
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
template <typename io_t, int PER_LANE, int V>
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
        float mu = mean[row], rs = rstd[row];
        float norm[PER_LANE], dnorm[PER_LANE];
        float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
#pragma unroll
        for (int g = 0; g < PER_LANE / V; g++) {
            int c = ln_column(lane, g, V);
            float x[V], dy[V];
            if (c < C) {
                ln_load<V>(x, inp + row * C + c);
                ln_load<V>(dy, dout + row * C + c);
            } else {
#pragma unroll
                for (int e = 0; e < V; e++)
                    x[e] = dy[e] = 0.0f;
            }
#pragma unroll
            for (int e = 0; e < V; e++) {
                int k = g * V + e;
                norm[k] = c < C ? (x[e] - mu) * rs : 0.0f;
                dnorm[k] = c < C ? dy[e] * weight[c + e] : 0.0f;
                dnorm_sum += dnorm[k];
                dnorm_norm_sum += dnorm[k] * norm[k];
                if (c < C) {
                    dweight_sum[k] += dy[e] * norm[k];
                    dbias_sum[k] += dy[e];
                }
            }
        }
        if (!dinp)
            continue; /* the warp's lanes agree: the shuffles below stay converged */
        float dnorm_mean = warp_sum(dnorm_sum) / C;
        float dnorm_norm_mean = warp_sum(dnorm_norm_sum) / C;
#pragma unroll
        for (int g = 0; g < PER_LANE / V; g++) {
            int c = ln_column(lane, g, V);
            if (c < C) {
                float dx[V];
                ln_load<V>(dx, dinp + row * C + c);
#pragma unroll
                for (int e = 0; e < V; e++) {
                    int k = g * V + e;
                    dx[e] += (dnorm[k] - dnorm_mean - norm[k] * dnorm_norm_mean) * rs;
                }
                ln_store<V>(dinp + row * C + c, dx);
            }
        }
    }
    if (!partial)
        return; /* the whole block: no barrier is skipped by some threads only */
    for (int w = 0; w < LN_ROWS_PER_BLOCK; w++) {
        if (warp == w) {
#pragma unroll
            for (int g = 0; g < PER_LANE / V; g++) {
                int c = ln_column(lane, g, V);
                if (c >= C)
                    continue;
#pragma unroll
                for (int e = 0; e < V; e++) {
                    int k = g * V + e;
                    block_sums[0][c + e] = w == 0 ? dweight_sum[k] : block_sums[0][c + e] + dweight_sum[k];
                    block_sums[1][c + e] = w == 0 ? dbias_sum[k] : block_sums[1][c + e] + dbias_sum[k];
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

/* The kernels are instantiated for each register budget and for the two layouts (V = 1, or
 * the 128-bit path's 16 / sizeof(io_t)); this picks the one the plan chose. */
#define LN_LAUNCH_VEC(KERNEL, io_t, per_lane, vec, grid, block, stream, ...)                        \
    do {                                                                                           \
        if ((vec) == 1)                                                                            \
            TNG_LAUNCH((KERNEL<io_t, per_lane, 1>), grid, block, 0, stream, __VA_ARGS__);          \
        else                                                                                       \
            TNG_LAUNCH((KERNEL<io_t, per_lane, 16 / sizeof(io_t)>), grid, block, 0, stream,        \
                       __VA_ARGS__);                                                               \
    } while (0)
#define LN_DISPATCH(per_lane, vec, KERNEL, io_t, grid, block, stream, ...)                          \
    do {                                                                                           \
        switch (per_lane) {                                                                        \
        case 8:                                                                                    \
            LN_LAUNCH_VEC(KERNEL, io_t, 8, vec, grid, block, stream, __VA_ARGS__);                 \
            break;                                                                                 \
        case 16:                                                                                   \
            LN_LAUNCH_VEC(KERNEL, io_t, 16, vec, grid, block, stream, __VA_ARGS__);                \
            break;                                                                                 \
        case 32:                                                                                   \
            LN_LAUNCH_VEC(KERNEL, io_t, 32, vec, grid, block, stream, __VA_ARGS__);                \
            break;                                                                                 \
        default:                                                                                   \
            LN_LAUNCH_VEC(KERNEL, io_t, 64, vec, grid, block, stream, __VA_ARGS__);                \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* Every row-major tensor's start, OR-ed: the 128-bit path needs all of them on 16 bytes. */
static inline uintptr_t ln_addresses(const void *a, const void *b, const void *c, const void *d) {
    return (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d;
}

/* residual = a + add, out = LayerNorm(residual); add NULL: out = LayerNorm(a), residual unused */
template <typename io_t>
void residual_layernorm_forward(io_t *residual, io_t *out, float *mean, float *rstd, const io_t *a,
                                const io_t *add, const float *weight, const float *bias, int N, int C,
                                cudaStream_t stream) {
    if (N == 0)
        return;
    RowPlan plan = layernorm_plan((size_t)N, C);
    shapeCheck(plan.ok, "layernorm over %d rows of width %d (width 1..%d)", N, C, LN_MAX_WIDTH);
    int vec = layernorm_vector(C, sizeof(io_t), ln_addresses(out, a, add, residual));
    LN_DISPATCH(plan.per_lane, vec, layernorm_forward_kernel, io_t, (unsigned)plan.blocks, plan.threads,
                stream, out, mean, rstd, a, add, residual, weight, bias, N, C);
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
    int vec = layernorm_vector(C, sizeof(io_t), ln_addresses(dinp, dout, inp, NULL));
    LN_DISPATCH(plan.per_lane, vec, layernorm_backward_kernel, io_t, (unsigned)plan.blocks, plan.threads,
                stream, dinp, partial, dout, inp, weight, mean, rstd, N, C);
    if (partial)
        colsum_finish<2>(dweight, dbias, partial, plan.blocks, (size_t)C, stream);
}

#endif
