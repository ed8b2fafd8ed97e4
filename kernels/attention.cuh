/*
 * attention.cuh: fused multi-head self-attention for CLIP's short sequences (T = 50, 77, 197,
 * 257 ...), forward and backward, reading the packed qkv [B,T,3C] directly (no permutes):
 * the scalar fp32 kernels, which serve every precision and head size, and the dispatch that
 * sends bf16 at head size 64 to the tensor-core kernels of attention_mma.cuh instead.
 *
 * No [T, T] matrix leaves the chip. The forward saves the log-sum-exp lse [B,NH,T] of each
 * query row's scaled scores; the backward recomputes the softmax P = e^(S - lse) from Q, K
 * and lse, and takes D = rowsum(dO * O) from the forward's output (backend.h).
 *
 * At these lengths the flash-attention tiling of long sequences leaves its tiles mostly
 * empty. Instead one block owns (a tile of query rows, one head, one batch row) and keeps
 * the tile's whole score rows [q_tile, T] in shared memory, so the softmax is exact and
 * single-pass. K and V stream through shared buffers in chunks; when the plan (launch_plan.h,
 * attention_plan) finds room, the chunk is the whole sequence and each is loaded once. All
 * math is fp32; the activations qkv and out are io_t (float, or bf16 for a bf16 backend),
 * lse and the gradients always fp32, since backward ops accumulate (+=) and an accumulation
 * in bf16 would round at every add.
 *
 * Backward, in two kernels so that every gradient element has exactly one writer (no
 * atomics, deterministic), each recomputing the P and dS it needs:
 *   query side, block per (query tile, head, batch): per K/V chunk, S = Q K^T scale,
 *       P = e^(S - lse), dP = dO V^T, dS = P (dP - D) scale, all into the score rows; then
 *       dQ += dS K;
 *   key side, block per (key tile, head, batch): per chunk of query rows, the same P and dS
 *       for the tile's keys, then dK += dS^T Q and dV += P^T dO.
 * Masked (causal) entries of P and dS are exact zeros.
 *
 * Thread mappings (256 threads): in score loops consecutive threads take consecutive keys
 * (K rows padded to hs+1 floats so they fall in different banks; the query value is a
 * broadcast); in output loops consecutive threads take consecutive head-dim columns (the
 * probability is a broadcast, V/K rows are read along their length). Each thread keeps at
 * most ATT_MAX_ACC output accumulators in registers.
 */
#ifndef TNG_KERNELS_ATTENTION_CUH
#define TNG_KERNELS_ATTENTION_CUH

#include "attention_mma.cuh" /* defines: attention_mma_forward, attention_mma_backward */
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

/* scores[i][k0+j] = scale * dot(a[i], kv[j]) for the chunk's keys; -inf above the causal
 * diagonal. */
static __device__ void chunk_scores(float *scores, int T, const float *a, const float *kv, int hs,
                                    int rows, int kc, int q0, int k0, int causal, float scale) {
    for (int idx = threadIdx.x; idx < rows * kc; idx += blockDim.x) {
        int i = idx / kc, j = idx % kc;
        float s;
        if (causal && k0 + j > q0 + i) {
            s = -INFINITY;
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

/* P and dS of one (query, key) pair from their rows (hs values each): P = e^(scale q.k - lse),
 * dP = dO.v, dS = P (dP - D) scale, D = rowsum(dO * O) of the query. */
__device__ __forceinline__ void pair_p_ds(float *p, float *ds, const float *q, const float *dO,
                                          const float *k, const float *v, int hs, float lse,
                                          float D, float scale) {
    float s = 0.0f, dp = 0.0f;
    for (int d = 0; d < hs; d++) {
        s += q[d] * k[d];
        dp += dO[d] * v[d];
    }
    *p = expf(s * scale - lse);
    *ds = *p * (dp - D) * scale;
}

/* What a block of the forward or of the query-side backward works on: one head of one
 * batch row, its query rows [q0, q0 + rows), and its shared memory (attention_smem_bytes):
 * the tile's Q rows (a_s, pitch hs), its whole score rows (s_s: [q_tile][T]) and the buffer
 * K or V streams through (kv_s: pitch hs + 1); the backward adds the tile's dO rows (do_s),
 * a second buffer so that K and V chunks sit side by side (v_s), and each row's lse and D. */
struct QueryTile {
    int hs, b, h, q0, rows;
    int kv_end; /* keys [0, kv_end) are seen: a causal tile never looks past its last query */
    int warp, lane, warps;
    size_t row_stride; /* 3C: the row pitch of qkv and dqkv */
    size_t head;       /* offset of this (batch row, head)'s q columns in qkv and dqkv; k at
                          head + C, v at head + 2C */
    size_t head_out;   /* offset of its columns in out and dout ([B,T,C]) */
    size_t head_lse;   /* offset of its row 0 in lse ([B,NH,T]) */
    float *a_s, *s_s, *kv_s;
    float *do_s, *v_s, *lse_s, *d_s; /* backward only */
};

static __device__ __forceinline__ QueryTile query_tile(float *smem, int T, int C, int NH,
                                                       int q_tile, int kv_chunk, int causal) {
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
    t.head_out = (size_t)t.b * T * C + (size_t)t.h * t.hs;
    t.head_lse = ((size_t)t.b * NH + t.h) * T;
    t.a_s = smem;
    t.s_s = t.a_s + q_tile * t.hs;
    t.kv_s = t.s_s + q_tile * T;
    t.do_s = t.kv_s + kv_chunk * (t.hs + 1);
    t.v_s = t.do_s + q_tile * t.hs;
    t.lse_s = t.v_s + kv_chunk * (t.hs + 1);
    t.d_s = t.lse_s + q_tile;
    return t;
}

/* s_s[i][j] = scale * dot(a_s[i], K[j]) for every key j the tile sees, K streamed through
 * kv_s in chunks; -inf above the causal diagonal. a_s must be loaded; every score is final
 * when this returns. */
template <typename io_t>
__device__ __forceinline__ void tile_scores(const QueryTile &t, const io_t *qkv, int C, int T,
                                            int kv_chunk, int causal, float scale) {
    for (int k0 = 0; k0 < t.kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, t.kv_end - k0);
        __syncthreads(); /* a_s is loaded / the previous chunk's scores are done */
        load_head_rows(t.kv_s, t.hs + 1, qkv + t.head + C, t.row_stride, k0, kc, t.hs);
        __syncthreads();
        chunk_scores(t.s_s, T, t.a_s, t.kv_s, t.hs, t.rows, kc, t.q0, k0, causal, scale);
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
    attention_forward_kernel(io_t *out, float *lse, const io_t *qkv, int T, int C, int NH,
                             int q_tile, int kv_chunk, int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    QueryTile t = query_tile(smem, T, C, NH, q_tile, kv_chunk, causal);
    load_head_rows(t.a_s, t.hs, qkv + t.head, t.row_stride, t.q0, t.rows, t.hs);
    tile_scores(t, qkv, C, T, kv_chunk, causal, scale);

    /* softmax, one warp per row; zeros past the causal diagonal; lse = max + log(sum) */
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
        sum = warp_sum(sum);
        float inv = 1.0f / sum;
        if (t.lane == 0)
            lse[t.head_lse + t.q0 + i] = m + logf(sum);
        for (int j = t.lane; j < t.kv_end; j += PLAN_WARP)
            srow[j] = j < t_end ? srow[j] * inv : 0.0f;
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
        out[t.head_out + (size_t)(t.q0 + i) * C + d] = store_as<io_t>(acc[a]);
    }
}

/* Query side of the backward: dS into the score rows, chunk by chunk of K and V, then
 * dQ = dS K. The gradients dout and dqkv are fp32 whatever io_t is. */
template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_backward_query_kernel(float *dqkv, const float *dout, const io_t *qkv,
                                    const io_t *out, const float *lse, int T, int C, int NH,
                                    int q_tile, int kv_chunk, int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    QueryTile t = query_tile(smem, T, C, NH, q_tile, kv_chunk, causal);
    load_head_rows(t.a_s, t.hs, qkv + t.head, t.row_stride, t.q0, t.rows, t.hs);
    load_head_rows(t.do_s, t.hs, dout + t.head_out, (size_t)C, t.q0, t.rows, t.hs);
    load_row_stats(t.lse_s, t.d_s, lse + t.head_lse, dout + t.head_out, out + t.head_out, C,
                   t.q0, t.rows, t.hs);
    for (int k0 = 0; k0 < t.kv_end; k0 += kv_chunk) {
        int kc = min(kv_chunk, t.kv_end - k0);
        __syncthreads(); /* the tile's rows and stats are loaded / the previous chunk is done */
        load_head_rows(t.kv_s, t.hs + 1, qkv + t.head + C, t.row_stride, k0, kc, t.hs);
        load_head_rows(t.v_s, t.hs + 1, qkv + t.head + 2 * C, t.row_stride, k0, kc, t.hs);
        __syncthreads();
        for (int idx = threadIdx.x; idx < t.rows * kc; idx += blockDim.x) {
            int i = idx / kc, j = idx % kc;
            float p = 0.0f, ds = 0.0f;
            if (!causal || k0 + j <= t.q0 + i)
                pair_p_ds(&p, &ds, t.a_s + i * t.hs, t.do_s + i * t.hs, t.kv_s + j * (t.hs + 1),
                          t.v_s + j * (t.hs + 1), t.hs, t.lse_s[i], t.d_s[i], scale);
            t.s_s[i * T + k0 + j] = ds;
        }
    }

    /* dQ = dS K */
    float acc[ATT_MAX_ACC];
    tile_weighted_sum(acc, t, qkv, (size_t)C, T, kv_chunk);
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++) {
        int idx = threadIdx.x + a * ATT_THREADS;
        if (idx >= t.rows * t.hs)
            break;
        int i = idx / t.hs, d = idx % t.hs;
        dqkv[t.head + (size_t)(t.q0 + i) * t.row_stride + d] = acc[a];
    }
}

/* Key side of the backward: this block's keys [j0, j0+k_tile) get dK = dS^T Q and
 * dV = P^T dO, summed over query rows in order, P and dS recomputed chunk by chunk of
 * query rows. */
template <typename io_t>
__global__ void __launch_bounds__(ATT_THREADS)
    attention_backward_key_kernel(float *dqkv, const float *dout, const io_t *qkv,
                                  const io_t *out, const float *lse, int T, int C, int NH,
                                  int k_tile, int i_chunk, int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    int hs = C / NH, b = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * k_tile;
    int keys = min(k_tile, T - j0);
    float *k_s = smem, *v_s = k_s + k_tile * (hs + 1);
    float *q_s = v_s + k_tile * (hs + 1), *do_s = q_s + i_chunk * (hs + 1);
    float *ds_s = do_s + i_chunk * (hs + 1), *p_s = ds_s + i_chunk * k_tile;
    float *lse_s = p_s + i_chunk * k_tile, *d_s = lse_s + i_chunk;
    size_t row_stride = (size_t)3 * C;
    size_t head = (size_t)b * T * row_stride + (size_t)h * hs;
    size_t head_out = (size_t)b * T * C + (size_t)h * hs, head_lse = ((size_t)b * NH + h) * T;
    /* with a causal mask, queries before the first key of the tile see none of its keys */
    int i_begin = causal ? j0 : 0;

    load_head_rows(k_s, hs + 1, qkv + head + C, row_stride, j0, keys, hs);
    load_head_rows(v_s, hs + 1, qkv + head + 2 * C, row_stride, j0, keys, hs);
    float dk[ATT_MAX_ACC], dv[ATT_MAX_ACC];
#pragma unroll
    for (int a = 0; a < ATT_MAX_ACC; a++)
        dk[a] = dv[a] = 0.0f;
    for (int i0 = i_begin; i0 < T; i0 += i_chunk) {
        int ic = min(i_chunk, T - i0);
        __syncthreads(); /* the previous chunk is consumed */
        load_head_rows(q_s, hs + 1, qkv + head, row_stride, i0, ic, hs);
        load_head_rows(do_s, hs + 1, dout + head_out, (size_t)C, i0, ic, hs);
        load_row_stats(lse_s, d_s, lse + head_lse, dout + head_out, out + head_out, C, i0, ic, hs);
        __syncthreads();
        for (int idx = threadIdx.x; idx < ic * keys; idx += blockDim.x) {
            int r = idx / keys, jj = idx % keys;
            float p = 0.0f, ds = 0.0f;
            if (!causal || j0 + jj <= i0 + r)
                pair_p_ds(&p, &ds, q_s + r * (hs + 1), do_s + r * (hs + 1), k_s + jj * (hs + 1),
                          v_s + jj * (hs + 1), hs, lse_s[r], d_s[r], scale);
            p_s[r * k_tile + jj] = p;
            ds_s[r * k_tile + jj] = ds;
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
        row[C] = dk[a];
        row[2 * C] = dv[a];
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

static inline AttentionPlan attention_checked_plan(int B, int T, int C, int NH, int pass) {
    shapeCheck(NH > 0 && C % NH == 0, "attention width %d with %d heads", C, NH);
    AttentionPlan plan = attention_plan(B, T, NH, C / NH, device_smem_optin(), pass);
    shapeCheck(plan.ok, "attention B=%d T=%d NH=%d head dim %d (head dim 1..%d)", B, T, NH, C / NH,
               ATT_MAX_HEAD_DIM);
    return plan;
}

/* lse is fp32 [B,NH,T] whatever io_t is. */
template <typename io_t>
void attention_forward(io_t *out, float *lse, const io_t *qkv, int B, int T, int C, int NH,
                       int causal, cudaStream_t stream) {
    if (B == 0 || T == 0)
        return;
    if (attention_mma_forward(out, lse, qkv, B, T, C, NH, causal, stream))
        return;
    AttentionPlan plan = attention_checked_plan(B, T, C, NH, ATT_FORWARD);
    static bool configured;
    allow_large_smem(attention_forward_kernel<io_t>, &configured);
    dim3 grid((unsigned)plan.grid_x, (unsigned)NH, (unsigned)B);
    float scale = 1.0f / sqrtf((float)(C / NH));
    TNG_LAUNCH(attention_forward_kernel<io_t>, grid, ATT_THREADS, plan.smem_bytes, stream, out,
               lse, qkv, T, C, NH, plan.q_tile, plan.kv_chunk, causal, scale);
}

/* dqkv = the gradient (overwritten); dout, dqkv and lse are fp32 whatever io_t is; out is the forward's. */
template <typename io_t>
void attention_backward(float *dqkv, const float *dout, const io_t *qkv, const io_t *out,
                        const float *lse, int B, int T, int C, int NH, int causal,
                        cudaStream_t stream) {
    if (B == 0 || T == 0)
        return;
    if (attention_mma_backward(dqkv, dout, qkv, out, lse, B, T, C, NH, causal, stream))
        return;
    AttentionPlan plan = attention_checked_plan(B, T, C, NH, ATT_BACKWARD);
    AttentionKeyPlan key_plan = attention_key_plan(B, T, NH, C / NH);
    shapeCheck(key_plan.ok, "attention backward B=%d T=%d NH=%d", B, T, NH);
    static bool configured;
    allow_large_smem(attention_backward_query_kernel<io_t>, &configured);
    float scale = 1.0f / sqrtf((float)(C / NH));
    dim3 grid((unsigned)plan.grid_x, (unsigned)NH, (unsigned)B);
    TNG_LAUNCH(attention_backward_query_kernel<io_t>, grid, ATT_THREADS, plan.smem_bytes, stream,
               dqkv, dout, qkv, out, lse, T, C, NH, plan.q_tile, plan.kv_chunk, causal, scale);
    dim3 key_grid((unsigned)key_plan.grid_x, (unsigned)NH, (unsigned)B);
    TNG_LAUNCH(attention_backward_key_kernel<io_t>, key_grid, ATT_THREADS, key_plan.smem_bytes,
               stream, dqkv, dout, qkv, out, lse, T, C, NH, key_plan.k_tile, key_plan.i_chunk,
               causal, scale);
}

#endif
