/*
 * attention.cuh: fused multi-head self-attention for CLIP's short sequences (T = 50, 77, 197,
 * 257 ...), forward and backward, reading the packed qkv [B,T,3C] directly (no permutes).
 *
 * At these lengths the flash-attention tiling of long sequences leaves its tiles mostly
 * empty. Instead one block owns (a tile of query rows, one head, one batch row) and keeps
 * the tile's whole score rows [q_tile, T] in shared memory, so the softmax is exact and
 * single-pass, and the saved softmax `att` [B,NH,T,T] that the interface asks for is written
 * straight from shared memory. K and V stream through one shared buffer in chunks; when the
 * plan (launch_plan.h, attention_plan) finds room, the chunk is the whole sequence and each
 * is loaded once. All math is fp32 (io_t may be bf16 for a bf16 backend).
 *
 * Backward, in two kernels so that every gradient element has exactly one writer (no
 * atomics, deterministic):
 *   query side, block per (query tile, head, batch): dP = dO V^T, then
 *       dS = P * (dP - rowsum(P * dP)) * scale, written to the datt scratch, then dQ += dS K;
 *   key side, block per (key tile, head, batch): dK += dS^T Q and dV += P^T dO, streaming
 *       the query rows in chunks.
 * Masked (causal) entries of att and dS are exact zeros, so the key side needs no mask.
 *
 * Thread mappings (256 threads): in score loops consecutive threads take consecutive keys
 * (K rows padded to hs+1 floats so they fall in different banks; the query value is a
 * broadcast); in output loops consecutive threads take consecutive head-dim columns (the
 * probability is a broadcast, V/K rows are read along their length). Each thread keeps at
 * most ATT_MAX_ACC output accumulators in registers.
 */
#ifndef TNG_KERNELS_ATTENTION_CUH
#define TNG_KERNELS_ATTENTION_CUH

#include "common.cuh"
#include "cuda/cuda_common.h"

/* Loads rows [row0, row0+rows) of one head's slice (hs values starting at col) of a
 * row-major [*, row_stride] tensor into shared memory with a row pitch of `pitch` floats. */
template <typename io_t>
__device__ void load_head_rows(float *dst, int pitch, const io_t *src, size_t row_stride, int row0,
                               int rows, int hs) {
    for (int idx = threadIdx.x; idx < rows * hs; idx += blockDim.x) {
        int r = idx / hs, d = idx % hs;
        dst[r * pitch + d] = load_f32(src[(size_t)(row0 + r) * row_stride + d]);
    }
}

/* scores[i][k0+j] = scale * dot(a[i], kv[j]) for the chunk's keys; -inf (or 0 when
 * masked_value says so) above the causal diagonal. */
static __device__ void chunk_scores(float *scores, int T, const float *a, const float *kv, int hs,
                                    int rows, int kc, int q0, int k0, int causal, float scale,
                                    float masked_value) {
    for (int idx = threadIdx.x; idx < rows * kc; idx += blockDim.x) {
        int i = idx / kc, j = idx % kc;
        float s;
        if (causal && k0 + j > q0 + i) {
            s = masked_value;
        } else {
            const float *ai = a + i * hs, *kj = kv + j * (hs + 1);
            float dot = 0.0f;
            for (int d = 0; d < hs; d++)
                dot += ai[d] * kj[d];
            s = dot * scale;
        }
        scores[i * T + k0 + j] = s;
    }
}

/* acc[a] += sum_j p[i][k0+j] * kv[j][d] for this thread's (i, d) outputs. */
__device__ __forceinline__ void chunk_weighted_sum(float *acc, const float *p, int T,
                                                   const float *kv, int hs, int rows, int kc,
                                                   int k0) {
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= rows * hs)
            break;
        int i = idx / hs, d = idx % hs;
        const float *pi = p + i * T + k0;
        float sum = 0.0f;
        for (int j = 0; j < kc; j++)
            sum += pi[j] * kv[j * (hs + 1) + d];
        acc[a] += sum;
    }
}

template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_forward_kernel(io_t *out, io_t *att, const io_t *qkv, int T, int C, int NH,
                             int q_tile, int kv_chunk, int causal, float scale) {
    extern __shared__ float smem[];
    int hs = C / NH, b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * q_tile;
    int rows = min(q_tile, T - q0);
    int warp = threadIdx.x / PLAN_WARP, lane = threadIdx.x % PLAN_WARP;
    int warps = blockDim.x / PLAN_WARP;
    float *q_s = smem, *s_s = q_s + q_tile * hs, *kv_s = s_s + q_tile * T;
    size_t row_stride = (size_t)3 * C;
    const io_t *base = qkv + (size_t)b * T * row_stride + h * hs;
    /* a causal tile never looks past its last query */
    int kv_end = causal ? q0 + rows : T;

    load_head_rows(q_s, hs, base, row_stride, q0, rows, hs);
    for (int k0 = 0; k0 < kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, kv_end - k0);
        __syncthreads(); /* q_s is loaded / the previous chunk's scores are done */
        load_head_rows(kv_s, hs + 1, base + C, row_stride, k0, kc, hs);
        __syncthreads();
        chunk_scores(s_s, T, q_s, kv_s, hs, rows, kc, q0, k0, causal, scale, -INFINITY);
    }
    __syncthreads();

    /* softmax, one warp per row; att gets the whole row, zeros past the causal diagonal */
    for (int i = warp; i < rows; i += warps) {
        float *srow = s_s + i * T;
        int t_end = causal ? q0 + i + 1 : T;
        float m = -INFINITY;
        for (int j = lane; j < t_end; j += PLAN_WARP)
            m = fmaxf(m, srow[j]);
        m = warp_max(m);
        float sum = 0.0f;
        for (int j = lane; j < t_end; j += PLAN_WARP) {
            float e = expf(srow[j] - m);
            srow[j] = e;
            sum += e;
        }
        float inv = 1.0f / warp_sum(sum);
        io_t *arow = att + (((size_t)b * NH + h) * T + q0 + i) * T;
        for (int j = lane; j < T; j += PLAN_WARP) {
            float p = j < t_end ? srow[j] * inv : 0.0f;
            srow[j] = p;
            arow[j] = store_as<io_t>(p);
        }
    }

    /* out = P V, V streamed through the same buffer */
    float acc[ATT_MAX_ACC];
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++)
        acc[a] = 0.0f;
    for (int k0 = 0; k0 < kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, kv_end - k0);
        __syncthreads(); /* softmax rows are final / the previous V chunk is consumed */
        load_head_rows(kv_s, hs + 1, base + 2 * C, row_stride, k0, kc, hs);
        __syncthreads();
        chunk_weighted_sum(acc, s_s, T, kv_s, hs, rows, kc, k0);
    }
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= rows * hs)
            break;
        int i = idx / hs, d = idx % hs;
        out[((size_t)b * T + q0 + i) * C + h * hs + d] = store_as<io_t>(acc[a]);
    }
}

/* Query side of the backward: dS into datt, dQ += dS K. */
template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_backward_query_kernel(io_t *dqkv, float *datt, const io_t *dout, const io_t *qkv,
                                    const io_t *att, int T, int C, int NH, int q_tile, int kv_chunk,
                                    int causal, float scale) {
    extern __shared__ float smem[];
    int hs = C / NH, b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * q_tile;
    int rows = min(q_tile, T - q0);
    int warp = threadIdx.x / PLAN_WARP, lane = threadIdx.x % PLAN_WARP;
    int warps = blockDim.x / PLAN_WARP;
    float *do_s = smem, *s_s = do_s + q_tile * hs, *kv_s = s_s + q_tile * T;
    size_t row_stride = (size_t)3 * C;
    const io_t *base = qkv + (size_t)b * T * row_stride + h * hs;
    int kv_end = causal ? q0 + rows : T;

    load_head_rows(do_s, hs, dout + (size_t)b * T * C + h * hs, (size_t)C, q0, rows, hs);
    /* dP = dO V^T (masked entries 0: they are multiplied by P = 0 below anyway) */
    for (int k0 = 0; k0 < kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, kv_end - k0);
        __syncthreads();
        load_head_rows(kv_s, hs + 1, base + 2 * C, row_stride, k0, kc, hs);
        __syncthreads();
        chunk_scores(s_s, T, do_s, kv_s, hs, rows, kc, q0, k0, causal, 1.0f, 0.0f);
    }
    __syncthreads();

    /* through the softmax: dS = P (dP - sum_j P dP) scale; the whole row goes to datt */
    for (int i = warp; i < rows; i += warps) {
        float *srow = s_s + i * T;
        int t_end = causal ? q0 + i + 1 : T;
        size_t row_offset = (((size_t)b * NH + h) * T + q0 + i) * T;
        const io_t *arow = att + row_offset;
        float weighted = 0.0f;
        for (int j = lane; j < t_end; j += PLAN_WARP)
            weighted += load_f32(arow[j]) * srow[j];
        weighted = warp_sum(weighted);
        float *drow = datt + row_offset;
        for (int j = lane; j < T; j += PLAN_WARP) {
            float ds = j < t_end ? load_f32(arow[j]) * (srow[j] - weighted) * scale : 0.0f;
            srow[j] = ds;
            drow[j] = ds;
        }
    }

    /* dQ += dS K */
    float acc[ATT_MAX_ACC];
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++)
        acc[a] = 0.0f;
    for (int k0 = 0; k0 < kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, kv_end - k0);
        __syncthreads();
        load_head_rows(kv_s, hs + 1, base + C, row_stride, k0, kc, hs);
        __syncthreads();
        chunk_weighted_sum(acc, s_s, T, kv_s, hs, rows, kc, k0);
    }
    io_t *dbase = dqkv + (size_t)b * T * row_stride + h * hs;
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= rows * hs)
            break;
        int i = idx / hs, d = idx % hs;
        io_t *dq = dbase + (size_t)(q0 + i) * row_stride + d;
        *dq = store_as<io_t>(load_f32(*dq) + acc[a]);
    }
}

/* Key side of the backward: this block's keys [j0, j0+k_tile) get dK += dS^T Q and
 * dV += P^T dO, summed over query rows in order. */
template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_backward_key_kernel(io_t *dqkv, const float *datt, const io_t *dout, const io_t *qkv,
                                  const io_t *att, int T, int C, int NH, int causal) {
    extern __shared__ float smem[];
    const int k_tile = ATT_K_TILE, i_chunk = ATT_I_CHUNK;
    int hs = C / NH, b = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * k_tile;
    int keys = min(k_tile, T - j0);
    float *q_s = smem, *do_s = q_s + i_chunk * (hs + 1);
    float *ds_s = do_s + i_chunk * (hs + 1), *p_s = ds_s + i_chunk * k_tile;
    size_t row_stride = (size_t)3 * C;
    const io_t *base = qkv + (size_t)b * T * row_stride + h * hs;
    const io_t *dout_base = dout + (size_t)b * T * C + h * hs;
    size_t head_offset = ((size_t)b * NH + h) * T * T;
    /* with a causal mask, queries before the first key of the tile see none of its keys */
    int i_begin = causal ? j0 : 0;

    float dk[ATT_MAX_ACC], dv[ATT_MAX_ACC];
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++)
        dk[a] = dv[a] = 0.0f;
    for (int i0 = i_begin; i0 < T; i0 += i_chunk) {
        int ic = min(i_chunk, T - i0);
        __syncthreads(); /* the previous chunk is consumed */
        load_head_rows(q_s, hs + 1, base, row_stride, i0, ic, hs);
        load_head_rows(do_s, hs + 1, dout_base, (size_t)C, i0, ic, hs);
        for (int idx = threadIdx.x; idx < ic * keys; idx += blockDim.x) {
            int r = idx / keys, jj = idx % keys;
            size_t at = head_offset + (size_t)(i0 + r) * T + j0 + jj;
            ds_s[r * k_tile + jj] = datt[at];
            p_s[r * k_tile + jj] = load_f32(att[at]);
        }
        __syncthreads();
#pragma unroll
        for (int a = 0; a < ATT_MAX_ACC; a++) {
            int idx = threadIdx.x + a * ATT_THREADS;
            if (idx >= keys * hs)
                break;
            int jj = idx / hs, d = idx % hs;
            float sum_k = 0.0f, sum_v = 0.0f;
            for (int r = 0; r < ic; r++) {
                sum_k += ds_s[r * k_tile + jj] * q_s[r * (hs + 1) + d];
                sum_v += p_s[r * k_tile + jj] * do_s[r * (hs + 1) + d];
            }
            dk[a] += sum_k;
            dv[a] += sum_v;
        }
    }
    io_t *dbase = dqkv + (size_t)b * T * row_stride + h * hs;
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= keys * hs)
            break;
        int jj = idx / hs, d = idx % hs;
        io_t *row = dbase + (size_t)(j0 + jj) * row_stride + d;
        row[C] = store_as<io_t>(load_f32(row[C]) + dk[a]);
        row[2 * C] = store_as<io_t>(load_f32(row[2 * C]) + dv[a]);
    }
}

/* Raises a kernel's dynamic shared memory cap to the device's opt-in limit, once. */
template <typename Kernel> static void allow_large_smem(Kernel kernel, bool *done) {
    if (*done)
        return;
    cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   (int)device_smem_optin()));
    *done = true;
}

static inline AttentionPlan attention_checked_plan(int B, int T, int C, int NH) {
    shapeCheck(NH > 0 && C % NH == 0, "attention width %d with %d heads", C, NH);
    AttentionPlan plan = attention_plan(B, T, NH, C / NH, device_smem_optin());
    shapeCheck(plan.ok, "attention B=%d T=%d NH=%d head dim %d (head dim 1..%d)", B, T, NH, C / NH,
               ATT_MAX_HEAD_DIM);
    return plan;
}

template <typename io_t>
void attention_forward(io_t *out, io_t *att, const io_t *qkv, int B, int T, int C, int NH,
                       int causal, cudaStream_t stream) {
    if (B == 0 || T == 0)
        return;
    AttentionPlan plan = attention_checked_plan(B, T, C, NH);
    static bool configured;
    allow_large_smem(attention_forward_kernel<io_t>, &configured);
    dim3 grid((unsigned)plan.grid_x, (unsigned)NH, (unsigned)B);
    float scale = 1.0f / sqrtf((float)(C / NH));
    attention_forward_kernel<io_t><<<grid, ATT_THREADS, plan.smem_bytes, stream>>>(
        out, att, qkv, T, C, NH, plan.q_tile, plan.kv_chunk, causal, scale);
    kernelCheck();
}

/* datt is fp32 scratch of att's size (it carries dS between the two kernels). */
template <typename io_t>
void attention_backward(io_t *dqkv, float *datt, const io_t *dout, const io_t *qkv, const io_t *att,
                        int B, int T, int C, int NH, int causal, cudaStream_t stream) {
    if (B == 0 || T == 0)
        return;
    AttentionPlan plan = attention_checked_plan(B, T, C, NH);
    AttentionKeyPlan key_plan = attention_key_plan(B, T, NH, C / NH);
    shapeCheck(key_plan.ok, "attention backward B=%d T=%d NH=%d", B, T, NH);
    static bool configured;
    allow_large_smem(attention_backward_query_kernel<io_t>, &configured);
    float scale = 1.0f / sqrtf((float)(C / NH));
    dim3 grid((unsigned)plan.grid_x, (unsigned)NH, (unsigned)B);
    attention_backward_query_kernel<io_t><<<grid, ATT_THREADS, plan.smem_bytes, stream>>>(
        dqkv, datt, dout, qkv, att, T, C, NH, plan.q_tile, plan.kv_chunk, causal, scale);
    kernelCheck();
    dim3 key_grid((unsigned)key_plan.grid_x, (unsigned)NH, (unsigned)B);
    attention_backward_key_kernel<io_t><<<key_grid, ATT_THREADS, key_plan.smem_bytes, stream>>>(
        dqkv, datt, dout, qkv, att, T, C, NH, causal);
    kernelCheck();
}

#endif
