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
 * is loaded once. All math is fp32; the activations qkv, att and out are io_t (float, or
 * bf16 for a bf16 backend), the gradients always fp32, since backward ops accumulate (+=) and
 * an accumulation in bf16 would round at every add.
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

/* What a block of the forward or of the query-side backward works on: one head of one
 * batch row, its query rows [q0, q0 + rows), and its shared memory cut into the tile's rows
 * of one operand (a_s: Q or dO, pitch hs), its whole score rows (s_s: [q_tile][T]) and the
 * buffer K or V streams through (kv_s: pitch hs + 1). */
struct QueryTile {
    int hs, b, h, q0, rows;
    int kv_end; /* keys [0, kv_end) are seen: a causal tile never looks past its last query */
    int warp, lane, warps;
    size_t row_stride; /* 3C: the row pitch of qkv and dqkv */
    size_t head;       /* offset of this (batch row, head)'s q columns in qkv and dqkv; k at
                          head + C, v at head + 2C */
    float *a_s, *s_s, *kv_s;
};

static __device__ __forceinline__ QueryTile query_tile(float *smem, int T, int C, int NH,
                                                       int q_tile, int causal) {
    QueryTile t;
    t.hs = C / NH;
    t.b = blockIdx.z;
    t.h = blockIdx.y;
    t.q0 = blockIdx.x * q_tile;
    t.rows = min(q_tile, T - t.q0);
    t.kv_end = causal ? t.q0 + t.rows : T;
    t.warp = threadIdx.x / PLAN_WARP;
    t.lane = threadIdx.x % PLAN_WARP;
    t.warps = blockDim.x / PLAN_WARP;
    t.row_stride = (size_t)3 * C;
    t.head = (size_t)t.b * T * t.row_stride + (size_t)t.h * t.hs;
    t.a_s = smem;
    t.s_s = t.a_s + q_tile * t.hs;
    t.kv_s = t.s_s + q_tile * T;
    return t;
}

/* s_s[i][j] = scale * dot(a_s[i], kv[j]) for every key j the tile sees, kv = the head's K
 * (kv_offset C) or V (2C) streamed through kv_s in chunks; masked_value above the causal
 * diagonal. a_s must be loaded; every score is final when this returns. */
template <typename io_t>
__device__ __forceinline__ void tile_scores(const QueryTile &t, const io_t *qkv, size_t kv_offset,
                                            int T, int kv_chunk, int causal, float scale,
                                            float masked_value) {
    for (int k0 = 0; k0 < t.kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, t.kv_end - k0);
        __syncthreads(); /* a_s is loaded / the previous chunk's scores are done */
        load_head_rows(t.kv_s, t.hs + 1, qkv + t.head + kv_offset, t.row_stride, k0, kc, t.hs);
        __syncthreads();
        chunk_scores(t.s_s, T, t.a_s, t.kv_s, t.hs, t.rows, kc, t.q0, k0, causal, scale,
                     masked_value);
    }
    __syncthreads();
}

/* acc = s_s kv for this thread's (row, column) outputs (see chunk_weighted_sum), kv = the
 * head's K or V streamed through kv_s in chunks. Inlined, so that acc stays in registers. */
template <typename io_t>
__device__ __forceinline__ void tile_weighted_sum(float *acc, const QueryTile &t, const io_t *qkv,
                                                  size_t kv_offset, int T, int kv_chunk) {
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++)
        acc[a] = 0.0f;
    for (int k0 = 0; k0 < t.kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, t.kv_end - k0);
        __syncthreads(); /* s_s is final / the previous chunk is consumed */
        load_head_rows(t.kv_s, t.hs + 1, qkv + t.head + kv_offset, t.row_stride, k0, kc, t.hs);
        __syncthreads();
        chunk_weighted_sum(acc, t.s_s, T, t.kv_s, t.hs, t.rows, kc, k0);
    }
}

template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_forward_kernel(io_t *out, io_t *att, const io_t *qkv, int T, int C, int NH,
                             int q_tile, int kv_chunk, int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    QueryTile t = query_tile(smem, T, C, NH, q_tile, causal);
    load_head_rows(t.a_s, t.hs, qkv + t.head, t.row_stride, t.q0, t.rows, t.hs);
    tile_scores(t, qkv, (size_t)C, T, kv_chunk, causal, scale, -INFINITY);

    /* softmax, one warp per row; att gets the whole row, zeros past the causal diagonal */
    for (int i = t.warp; i < t.rows; i += t.warps) {
        float *srow = t.s_s + i * T;
        int t_end = causal ? t.q0 + i + 1 : T;
        float m = -INFINITY;
        for (int j = t.lane; j < t_end; j += PLAN_WARP)
            m = fmaxf(m, srow[j]);
        m = warp_max(m);
        float sum = 0.0f;
        for (int j = t.lane; j < t_end; j += PLAN_WARP) {
            float e = expf(srow[j] - m);
            srow[j] = e;
            sum += e;
        }
        float inv = 1.0f / warp_sum(sum);
        io_t *arow = att + (((size_t)t.b * NH + t.h) * T + t.q0 + i) * T;
        for (int j = t.lane; j < T; j += PLAN_WARP) {
            float p = j < t_end ? srow[j] * inv : 0.0f;
            srow[j] = p;
            arow[j] = store_as<io_t>(p);
        }
    }

    /* out = P V */
    float acc[ATT_MAX_ACC];
    tile_weighted_sum(acc, t, qkv, (size_t)2 * C, T, kv_chunk);
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= t.rows * t.hs)
            break;
        int i = idx / t.hs, d = idx % t.hs;
        out[((size_t)t.b * T + t.q0 + i) * C + t.h * t.hs + d] = store_as<io_t>(acc[a]);
    }
}

/* Query side of the backward: dS into datt, dQ += dS K. The gradients dout and dqkv are fp32
 * whatever io_t is (an accumulation in bf16 would round at every +=). */
template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_backward_query_kernel(float *dqkv, float *datt, const float *dout, const io_t *qkv,
                                    const io_t *att, int T, int C, int NH, int q_tile, int kv_chunk,
                                    int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    QueryTile t = query_tile(smem, T, C, NH, q_tile, causal);
    load_head_rows(t.a_s, t.hs, dout + (size_t)t.b * T * C + t.h * t.hs, (size_t)C, t.q0, t.rows,
                   t.hs);
    /* dP = dO V^T (masked entries 0: they are multiplied by P = 0 below anyway) */
    tile_scores(t, qkv, (size_t)2 * C, T, kv_chunk, causal, 1.0f, 0.0f);

    /* through the softmax: dS = P (dP - sum_j P dP) scale; the whole row goes to datt */
    for (int i = t.warp; i < t.rows; i += t.warps) {
        float *srow = t.s_s + i * T;
        int t_end = causal ? t.q0 + i + 1 : T;
        size_t row_offset = (((size_t)t.b * NH + t.h) * T + t.q0 + i) * T;
        const io_t *arow = att + row_offset;
        float weighted = 0.0f;
        for (int j = t.lane; j < t_end; j += PLAN_WARP)
            weighted += load_f32(arow[j]) * srow[j];
        weighted = warp_sum(weighted);
        float *drow = datt + row_offset;
        for (int j = t.lane; j < T; j += PLAN_WARP) {
            float ds = j < t_end ? load_f32(arow[j]) * (srow[j] - weighted) * scale : 0.0f;
            srow[j] = ds;
            drow[j] = ds;
        }
    }

    /* dQ += dS K */
    float acc[ATT_MAX_ACC];
    tile_weighted_sum(acc, t, qkv, (size_t)C, T, kv_chunk);
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= t.rows * t.hs)
            break;
        int i = idx / t.hs, d = idx % t.hs;
        dqkv[t.head + (size_t)(t.q0 + i) * t.row_stride + d] += acc[a];
    }
}

/* Key side of the backward: this block's keys [j0, j0+k_tile) get dK += dS^T Q and
 * dV += P^T dO, summed over query rows in order. */
template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_backward_key_kernel(float *dqkv, const float *datt, const float *dout,
                                  const io_t *qkv, const io_t *att, int T, int C, int NH,
                                  int causal) {
    TNG_DYNAMIC_SMEM(float, smem);
    const int k_tile = ATT_K_TILE, i_chunk = ATT_I_CHUNK;
    int hs = C / NH, b = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * k_tile;
    int keys = min(k_tile, T - j0);
    float *q_s = smem, *do_s = q_s + i_chunk * (hs + 1);
    float *ds_s = do_s + i_chunk * (hs + 1), *p_s = ds_s + i_chunk * k_tile;
    size_t row_stride = (size_t)3 * C;
    size_t head = (size_t)b * T * row_stride + (size_t)h * hs;
    const float *dout_base = dout + (size_t)b * T * C + h * hs;
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
        load_head_rows(q_s, hs + 1, qkv + head, row_stride, i0, ic, hs);
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
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= keys * hs)
            break;
        int jj = idx / hs, d = idx % hs;
        float *row = dqkv + head + (size_t)(j0 + jj) * row_stride + d;
        row[C] += dk[a];
        row[2 * C] += dv[a];
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
    TNG_LAUNCH(attention_forward_kernel<io_t>, grid, ATT_THREADS, plan.smem_bytes, stream, out,
               att, qkv, T, C, NH, plan.q_tile, plan.kv_chunk, causal, scale);
}

/* datt is fp32 scratch of att's size (it carries dS between the two kernels); the gradients
 * dqkv and dout are fp32 whatever io_t is. */
template <typename io_t>
void attention_backward(float *dqkv, float *datt, const float *dout, const io_t *qkv,
                        const io_t *att, int B, int T, int C, int NH, int causal,
                        cudaStream_t stream) {
    if (B == 0 || T == 0)
        return;
    AttentionPlan plan = attention_checked_plan(B, T, C, NH);
    AttentionKeyPlan key_plan = attention_key_plan(B, T, NH, C / NH);
    shapeCheck(key_plan.ok, "attention backward B=%d T=%d NH=%d", B, T, NH);
    static bool configured;
    allow_large_smem(attention_backward_query_kernel<io_t>, &configured);
    float scale = 1.0f / sqrtf((float)(C / NH));
    dim3 grid((unsigned)plan.grid_x, (unsigned)NH, (unsigned)B);
    TNG_LAUNCH(attention_backward_query_kernel<io_t>, grid, ATT_THREADS, plan.smem_bytes, stream,
               dqkv, datt, dout, qkv, att, T, C, NH, plan.q_tile, plan.kv_chunk, causal, scale);
    dim3 key_grid((unsigned)key_plan.grid_x, (unsigned)NH, (unsigned)B);
    TNG_LAUNCH(attention_backward_key_kernel<io_t>, key_grid, ATT_THREADS, key_plan.smem_bytes,
               stream, dqkv, datt, dout, qkv, att, T, C, NH, causal);
}

#endif
