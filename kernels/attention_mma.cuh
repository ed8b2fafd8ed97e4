/*
 * attention_mma.cuh: multi-head self-attention in bf16 on tensor cores, head size 64, in the
 * FlashAttention-2 manner; attention.cuh sends bf16 at head size 64 here and everything else
 * to its scalar kernels (the interface and the saved lse are the same: backend.h).
 *
 * Each warp owns 16 rows and the whole 64-wide head; the other side of the product streams
 * through shared memory in chunks of ATT_MMA_TILE rows (launch_plan.h, attention_mma_plan),
 * zero-filled past T. The products are mma.sync m16n8k16 (kernels/mma.cuh), bf16 inputs and
 * fp32 accumulators: a 16 x 64 score tile is 8 C fragments, and two adjacent ones, rounded to
 * bf16, are the A fragment of the next product, so probabilities never leave registers.
 *   forward, a warp per 16 queries: S = Q K^T, an online softmax in fp32 (running max m and
 *     sum l per row; O rescaled by e^(m_old - m_new) when the max grows), O += P V; at the
 *     end O / l and lse = m + log l.
 *   dQ, a warp per 16 queries: S and dP = dO V^T per key chunk, P = e^(S scale - lse),
 *     dS = P (dP - D), dQ += dS K.
 *   dK and dV, a warp per 16 keys: S^T = K Q^T and dP^T = V dO^T per query chunk, the same P
 *     and dS transposed, dV += P^T dO, dK += dS^T Q.
 * Every gradient element has one writer (no atomics: deterministic), and dQ, dK, dV are
 * stored to dqkv in fp32, overwriting it (the op's one writer: nothing zeroes it first). dO enters the products rounded to bf16, as P and dS do: the
 * price of the tensor cores, which the tests' bf16 tolerance covers. Rows past T and keys
 * past T or past the causal diagonal get P = 0 by an explicit mask, never by arithmetic on
 * the padding.
 */
#ifndef TNG_KERNELS_ATTENTION_MMA_CUH
#define TNG_KERNELS_ATTENTION_MMA_CUH

#include "common.cuh"
#include "mma.cuh" /* defines: mma_bf16_m16n8k16, load_frag_a, load_frag_b_nk, load_frag_b_kn */

/* lse_s[r] = lse of query row row0 + r, and d_s[r] = D = its rowsum(dO * O), for r < rows; a
 * warp per row. The three pointers are at this (batch row, head)'s row 0. (The scalar
 * kernels of attention.cuh use it too.) */
template <typename io_t>
__device__ void load_row_stats(float *lse_s, float *d_s, const float *lse, const float *dout,
                               const io_t *out, int C, int row0, int rows, int hs) {
    int lane = threadIdx.x % PLAN_WARP;
    for (int r = threadIdx.x / PLAN_WARP; r < rows; r += blockDim.x / PLAN_WARP) {
        size_t at = (size_t)(row0 + r) * C;
        float sum = 0.0f;
        for (int d = lane; d < hs; d += PLAN_WARP)
            sum += dout[at + d] * load_f32(out[at + d]);
        sum = warp_sum(sum);
        if (lane == 0) {
            d_s[r] = sum;
            lse_s[r] = lse[row0 + r];
        }
    }
}

/* Rows [row0, row0 + ATT_MMA_TILE) of one head's 64 columns of a [*, row_stride] tensor
 * (bf16 or fp32) into shared bf16 [ATT_MMA_TILE][ATT_MMA_PITCH]; rows at or past T zeros. */
template <typename src_t>
__device__ void stage_rows(__nv_bfloat16 *dst, const src_t *src, size_t row_stride, int row0,
                           int T) {
    for (int idx = threadIdx.x; idx < ATT_MMA_TILE * ATT_MMA_HEAD_DIM; idx += blockDim.x) {
        int r = idx / ATT_MMA_HEAD_DIM, d = idx % ATT_MMA_HEAD_DIM;
        float v = row0 + r < T ? load_f32(src[(size_t)(row0 + r) * row_stride + d]) : 0.0f;
        dst[r * ATT_MMA_PITCH + d] = __float2bfloat16_rn(v);
    }
}

/* The A fragments of this warp's 16 rows (all 64 columns: 4 k-steps) of a staged tile. */
__device__ __forceinline__ void warp_rows_frags(uint32_t frag[4][4], const __nv_bfloat16 *tile) {
    const __nv_bfloat16 *rows = tile + (threadIdx.x / PLAN_WARP) * 16 * ATT_MMA_PITCH;
    for (int kk = 0; kk < 4; kk++)
        load_frag_a(frag[kk], rows + kk * 16, ATT_MMA_PITCH);
}

/* acc[nt] = rows (A fragments) times the staged chunk's rows transposed: the 16 x 64 tile
 * of dot products of this warp's rows with the chunk's 64 rows, in 8 C fragments. */
__device__ __forceinline__ void warp_dots(float acc[8][4], const uint32_t rows[4][4],
                                          const __nv_bfloat16 *chunk) {
    for (int nt = 0; nt < 8; nt++) {
        acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
        for (int kk = 0; kk < 4; kk++) {
            uint32_t b[2];
            load_frag_b_nk(b, chunk + nt * 8 * ATT_MMA_PITCH + kk * 16, ATT_MMA_PITCH);
            mma_bf16_m16n8k16(acc[nt], rows[kk], b);
        }
    }
}

/* acc[nt] += weights (8 C fragments: 16 rows x the chunk's 64 rows, rounded to bf16) times the
 * staged chunk (64 rows x 64 columns). */
__device__ __forceinline__ void warp_weighted_rows(float acc[8][4], const float weights[8][4],
                                                   const __nv_bfloat16 *chunk) {
    for (int kk = 0; kk < 4; kk++) {
        uint32_t a[4];
        frag_a_from_c(a, weights[2 * kk], weights[2 * kk + 1]);
        for (int nt = 0; nt < 8; nt++) {
            uint32_t b[2];
            load_frag_b_kn(b, chunk + kk * 16 * ATT_MMA_PITCH + nt * 8, ATT_MMA_PITCH);
            mma_bf16_m16n8k16(acc[nt], a, b);
        }
    }
}

/* Where element e of C fragment nt of this lane sits: its row in the warp's 16 (g or g + 8)
 * and its column in the chunk's 64. */
__device__ __forceinline__ int frag_row(int e) { return (threadIdx.x % PLAN_WARP) / 4 + (e >= 2 ? 8 : 0); }
__device__ __forceinline__ int frag_col(int nt, int e) { return nt * 8 + 2 * (threadIdx.x % 4) + (e & 1); }

/* The max over a fragment row: the 4 lanes of a quad hold it */
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* What a block of the three kernels works on: one head of one batch row, its ATT_MMA_TILE
 * rows from tile0 (queries, or keys in the dK/dV kernel), this warp's 16 from warp0, and its
 * shared memory (attention_mma_plan): two staged chunks a_s and b_s, and in the backward the
 * streamed rows' lse and D. */
struct MmaTile {
    int tile0, warp0;
    size_t row_stride; /* 3C: the row pitch of qkv and dqkv */
    size_t head_qkv;   /* offset of this (batch row, head)'s q columns in qkv and dqkv; k at
                          + C, v at + 2C */
    size_t head_out;   /* offset of its columns in out and dout ([B,T,C]) */
    size_t head_lse;   /* offset of its row 0 in lse ([B,NH,T]) */
    __nv_bfloat16 *a_s, *b_s;
    float *lse_s, *d_s;
};

__device__ __forceinline__ MmaTile mma_tile(float *smem, int T, int C, int NH) {
    MmaTile t;
    int b = blockIdx.z, h = blockIdx.y;
    t.tile0 = blockIdx.x * ATT_MMA_TILE;
    t.warp0 = t.tile0 + (threadIdx.x / PLAN_WARP) * 16;
    t.row_stride = (size_t)3 * C;
    t.head_qkv = (size_t)b * T * t.row_stride + (size_t)h * ATT_MMA_HEAD_DIM;
    t.head_out = (size_t)b * T * C + (size_t)h * ATT_MMA_HEAD_DIM;
    t.head_lse = ((size_t)b * NH + h) * T;
    t.a_s = (__nv_bfloat16 *)(void *)smem;
    t.b_s = t.a_s + ATT_MMA_TILE * ATT_MMA_PITCH;
    t.lse_s = (float *)(void *)(t.b_s + ATT_MMA_TILE * ATT_MMA_PITCH);
    t.d_s = t.lse_s + ATT_MMA_TILE;
    return t;
}

static __global__ void __launch_bounds__(ATT_MMA_WARPS * PLAN_WARP)
    attention_mma_forward_kernel(__nv_bfloat16 *out, float *lse, const __nv_bfloat16 *qkv, int T,
                                 int C, int NH, int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    MmaTile t = mma_tile(smem, T, C, NH);
    const __nv_bfloat16 *head = qkv + t.head_qkv;

    uint32_t q[4][4];
    stage_rows(t.a_s, head, t.row_stride, t.tile0, T);
    __syncthreads();
    warp_rows_frags(q, t.a_s);

    float o[8][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    int kv_end = causal ? min(T, t.tile0 + ATT_MMA_TILE) : T;
    for (int k0 = 0; k0 < kv_end; k0 += ATT_MMA_TILE) {
        __syncthreads(); /* the Q fragments are loaded / the previous chunk is consumed */
        stage_rows(t.a_s, head + C, t.row_stride, k0, T);
        stage_rows(t.b_s, head + 2 * C, t.row_stride, k0, T);
        __syncthreads();
        float s[8][4];
        warp_dots(s, q, t.a_s);
        float chunk_max[2] = {-INFINITY, -INFINITY};
        for (int nt = 0; nt < 8; nt++)
            for (int e = 0; e < 4; e++) {
                int key = k0 + frag_col(nt, e), row = t.warp0 + frag_row(e);
                s[nt][e] = key < T && (!causal || key <= row) ? s[nt][e] * scale : -INFINITY;
                chunk_max[e / 2] = fmaxf(chunk_max[e / 2], s[nt][e]);
            }
        float shift[2], alpha[2], sum[2] = {0.0f, 0.0f};
        for (int r = 0; r < 2; r++) {
            float m_new = fmaxf(m[r], quad_max(chunk_max[r]));
            shift[r] = m_new == -INFINITY ? 0.0f : m_new; /* a row with no key yet: all zeros */
            alpha[r] = expf(m[r] - shift[r]);
            m[r] = m_new;
        }
        for (int nt = 0; nt < 8; nt++)
            for (int e = 0; e < 4; e++) {
                s[nt][e] = expf(s[nt][e] - shift[e / 2]);
                sum[e / 2] += s[nt][e];
                o[nt][e] *= alpha[e / 2];
            }
        for (int r = 0; r < 2; r++)
            l[r] = l[r] * alpha[r] + sum[r]; /* lane partials; quad_sum at the end */
        warp_weighted_rows(o, s, t.b_s);
    }

    for (int r = 0; r < 2; r++)
        l[r] = quad_sum(l[r]);
    for (int nt = 0; nt < 8; nt++)
        for (int e = 0; e < 4; e++) {
            int row = t.warp0 + frag_row(e);
            if (row < T)
                out[t.head_out + (size_t)row * C + frag_col(nt, e)] =
                    __float2bfloat16_rn(o[nt][e] / l[e / 2]);
        }
    for (int r = 0; r < 2; r++) {
        int row = t.warp0 + frag_row(2 * r);
        if (threadIdx.x % 4 == 0 && row < T)
            lse[t.head_lse + row] = m[r] + logf(l[r]);
    }
}

/* P and dS of a tile of dot products in place: s becomes P = e^(s scale - lse) and dp
 * becomes dS = P (dP - D) (scale left for the caller). pair(nt, e, &lse, &D) says whether
 * the (query, key) pair of fragment element (nt, e) is visible (else P = dS = 0) and gives
 * its query's lse and D. */
template <typename Pair>
__device__ __forceinline__ void tile_p_ds(float s[8][4], float dp[8][4], float scale, Pair pair) {
    for (int nt = 0; nt < 8; nt++)
        for (int e = 0; e < 4; e++) {
            float lse_row, d_row;
            bool visible = pair(nt, e, &lse_row, &d_row);
            float p = visible ? expf(s[nt][e] * scale - lse_row) : 0.0f;
            s[nt][e] = p;
            dp[nt][e] = visible ? p * (dp[nt][e] - d_row) : 0.0f;
        }
}

/* Rows [row0, row0 + ATT_MMA_TILE) of Q into a_s and of dO into b_s, and their lse and D */
__device__ __forceinline__ void stage_query_rows(const MmaTile &t, const __nv_bfloat16 *qkv,
                                                 const float *dout, const __nv_bfloat16 *out,
                                                 const float *lse, int T, int C, int row0) {
    stage_rows(t.a_s, qkv + t.head_qkv, t.row_stride, row0, T);
    stage_rows(t.b_s, dout + t.head_out, (size_t)C, row0, T);
    load_row_stats(t.lse_s, t.d_s, lse + t.head_lse, dout + t.head_out, out + t.head_out, C, row0,
                   min(ATT_MMA_TILE, T - row0), ATT_MMA_HEAD_DIM);
}

/* dQ: a warp per 16 queries, key chunks streamed; dqkv's q part = dS K scale */
static __global__ void __launch_bounds__(ATT_MMA_WARPS * PLAN_WARP)
    attention_mma_dq_kernel(float *dqkv, const float *dout, const __nv_bfloat16 *qkv,
                            const __nv_bfloat16 *out, const float *lse, int T, int C, int NH,
                            int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    MmaTile t = mma_tile(smem, T, C, NH);
    const __nv_bfloat16 *head = qkv + t.head_qkv;

    uint32_t q[4][4], d_o[4][4];
    stage_query_rows(t, qkv, dout, out, lse, T, C, t.tile0);
    __syncthreads();
    warp_rows_frags(q, t.a_s);
    warp_rows_frags(d_o, t.b_s);

    float dq[8][4] = {};
    int kv_end = causal ? min(T, t.tile0 + ATT_MMA_TILE) : T;
    for (int k0 = 0; k0 < kv_end; k0 += ATT_MMA_TILE) {
        __syncthreads(); /* the fragments are loaded / the previous chunk is consumed */
        stage_rows(t.a_s, head + C, t.row_stride, k0, T);
        stage_rows(t.b_s, head + 2 * C, t.row_stride, k0, T);
        __syncthreads();
        float s[8][4], ds[8][4];
        warp_dots(s, q, t.a_s);
        warp_dots(ds, d_o, t.b_s);
        tile_p_ds(s, ds, scale, [&](int nt, int e, float *lse_row, float *d_row) {
            int local = t.warp0 - t.tile0 + frag_row(e), query = t.tile0 + local;
            int key = k0 + frag_col(nt, e);
            *lse_row = t.lse_s[local];
            *d_row = t.d_s[local];
            return query < T && key < T && (!causal || key <= query);
        });
        warp_weighted_rows(dq, ds, t.a_s);
    }
    for (int nt = 0; nt < 8; nt++)
        for (int e = 0; e < 4; e++) {
            int row = t.warp0 + frag_row(e);
            if (row < T)
                dqkv[t.head_qkv + (size_t)row * t.row_stride + frag_col(nt, e)] = dq[nt][e] * scale;
        }
}

/* dK and dV: a warp per 16 keys, query chunks streamed; dqkv's k part = dS^T Q scale, its v
 * part = P^T dO */
static __global__ void __launch_bounds__(ATT_MMA_WARPS * PLAN_WARP)
    attention_mma_dkv_kernel(float *dqkv, const float *dout, const __nv_bfloat16 *qkv,
                             const __nv_bfloat16 *out, const float *lse, int T, int C, int NH,
                             int causal, float scale) {
    TNG_DYNAMIC_SMEM(float, smem);
    MmaTile t = mma_tile(smem, T, C, NH);
    const __nv_bfloat16 *head = qkv + t.head_qkv;

    uint32_t k[4][4], v[4][4];
    stage_rows(t.a_s, head + C, t.row_stride, t.tile0, T);
    stage_rows(t.b_s, head + 2 * C, t.row_stride, t.tile0, T);
    __syncthreads();
    warp_rows_frags(k, t.a_s);
    warp_rows_frags(v, t.b_s);

    float dk[8][4] = {}, dv[8][4] = {};
    /* with a causal mask, queries before the tile's first key see none of its keys */
    for (int i0 = causal ? t.tile0 : 0; i0 < T; i0 += ATT_MMA_TILE) {
        __syncthreads(); /* the fragments are loaded / the previous chunk is consumed */
        stage_query_rows(t, qkv, dout, out, lse, T, C, i0);
        __syncthreads();
        float p[8][4], ds[8][4]; /* transposed: rows are this warp's keys, columns queries */
        warp_dots(p, k, t.a_s);
        warp_dots(ds, v, t.b_s);
        tile_p_ds(p, ds, scale, [&](int nt, int e, float *lse_row, float *d_row) {
            int local = frag_col(nt, e), query = i0 + local, key = t.warp0 + frag_row(e);
            *lse_row = t.lse_s[local];
            *d_row = t.d_s[local];
            return query < T && key < T && (!causal || key <= query);
        });
        warp_weighted_rows(dv, p, t.b_s);
        warp_weighted_rows(dk, ds, t.a_s);
    }
    for (int nt = 0; nt < 8; nt++)
        for (int e = 0; e < 4; e++) {
            int key = t.warp0 + frag_row(e);
            if (key < T) {
                float *row = dqkv + t.head_qkv + (size_t)key * t.row_stride + frag_col(nt, e);
                row[C] = dk[nt][e] * scale;
                row[2 * C] = dv[nt][e];
            }
        }
}

/* The dispatch attention.cuh calls first: true when the tensor-core kernels took the call
 * (bf16 at head size 64), false for every other case, which the scalar kernels take. */
static inline bool attention_mma_forward(float *, float *, const float *, int, int, int, int, int,
                                         cudaStream_t) {
    return false;
}
static inline bool attention_mma_backward(float *, const float *, const float *, const float *,
                                          const float *, int, int, int, int, int, cudaStream_t) {
    return false;
}

static inline bool attention_mma_forward(__nv_bfloat16 *out, float *lse, const __nv_bfloat16 *qkv,
                                         int B, int T, int C, int NH, int causal,
                                         cudaStream_t stream) {
    if (NH < 1 || C % NH)
        return false; /* the scalar path reports the shape */
    AttentionMmaPlan plan = attention_mma_plan(B, T, NH, C / NH, ATT_FORWARD);
    if (!plan.ok)
        return false;
    dim3 grid((unsigned)plan.grid_x, (unsigned)NH, (unsigned)B);
    float scale = 1.0f / sqrtf((float)ATT_MMA_HEAD_DIM);
    TNG_LAUNCH(attention_mma_forward_kernel, grid, plan.threads, plan.smem_bytes, stream, out, lse,
               qkv, T, C, NH, causal, scale);
    return true;
}

static inline bool attention_mma_backward(float *dqkv, const float *dout, const __nv_bfloat16 *qkv,
                                          const __nv_bfloat16 *out, const float *lse, int B, int T,
                                          int C, int NH, int causal, cudaStream_t stream) {
    if (NH < 1 || C % NH)
        return false;
    AttentionMmaPlan plan = attention_mma_plan(B, T, NH, C / NH, ATT_BACKWARD);
    if (!plan.ok)
        return false;
    dim3 grid((unsigned)plan.grid_x, (unsigned)NH, (unsigned)B);
    float scale = 1.0f / sqrtf((float)ATT_MMA_HEAD_DIM);
    TNG_LAUNCH(attention_mma_dq_kernel, grid, plan.threads, plan.smem_bytes, stream, dqkv, dout,
               qkv, out, lse, T, C, NH, causal, scale);
    TNG_LAUNCH(attention_mma_dkv_kernel, grid, plan.threads, plan.smem_bytes, stream, dqkv, dout,
               qkv, out, lse, T, C, NH, causal, scale);
    return true;
}

#endif
