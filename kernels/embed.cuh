/*
 * embed.cuh: the stems and the pooling of the two towers: patch im2col, the vision and
 * token embeddings (forward and backward), and gathering / scattering one row per sequence.
 *
 * Forward ops are elementwise functors (elementwise.cuh), templated on the activation type
 * io_t of what they write (float, or bf16 in the bf16 backend). The backward sums that run over
 * the batch (position and class embeddings) are deterministic column sums (reduce.cuh).
 * The token-embedding gradient is a scatter-add with repeated ids; instead of atomics, thread
 * (vocabulary slice, channel) walks all tokens in order and adds those whose id falls in its
 * slice (id % TOKEMB_VOCAB_SLICES), so each dtok_emb element receives its terms in token
 * order from one thread: the CPU op's exact order, hence its exact bits.
 */
#ifndef TNG_KERNELS_EMBED_CUH
#define TNG_KERNELS_EMBED_CUH

#include "elementwise.cuh"
#include "reduce.cuh"

/* patches[b*np + p][(ch*P + y)*P + x] = images[b][ch][py*P + y][px*P + x] */
template <typename io_t> struct Im2colPatches {
    io_t *patches;
    const float *images;
    int H, W, P;
    __device__ void operator()(size_t i) const {
        int cols = 3 * P * P, grid_w = W / P, np = (H / P) * grid_w;
        size_t patch = i / cols;
        int col = (int)(i % cols);
        size_t b = patch / np;
        int p = (int)(patch % np), py = p / grid_w, px = p % grid_w;
        int ch = col / (P * P), y = (col / P) % P, x = col % P;
        patches[i] = store_as<io_t>(images[((b * 3 + ch) * H + (size_t)py * P + y) * W + (size_t)px * P + x]);
    }
};

/* x[b, 0] = class_emb + pos[0]; x[b, 1+p] = patch_out[b*NP + p] + pos[1+p] */
template <typename io_t> struct VisionEmbedForward {
    io_t *x;
    const io_t *patch_out;
    const float *class_emb, *pos;
    int NP, C;
    __device__ void operator()(size_t i) const {
        int T = NP + 1, c = (int)(i % C);
        size_t bt = i / C;
        int t = (int)(bt % T);
        size_t b = bt / T;
        float v = t == 0 ? class_emb[c] : load_f32(patch_out[(b * NP + t - 1) * C + c]);
        x[i] = store_as<io_t>(v + pos[(size_t)t * C + c]);
    }
};

/* dpatch_out[b*NP + p] += dx[b, 1+p] */
struct VisionEmbedPatchGrad {
    float *dpatch_out;
    const float *dx;
    int NP, C;
    __device__ void operator()(size_t i) const {
        size_t bp = i / C, b = bp / NP;
        int p = (int)(bp % NP), c = (int)(i % C);
        dpatch_out[i] += dx[(b * (NP + 1) + p + 1) * C + c];
    }
};

/* x[b, t] = tok_emb[ids[b*T + t]] + pos[t] */
template <typename io_t> struct TokenEmbedForward {
    io_t *x;
    const int *ids;
    const float *tok_emb, *pos;
    int T, C;
    __device__ void operator()(size_t i) const {
        size_t bt = i / C;
        int c = (int)(i % C), t = (int)(bt % T);
        x[i] = store_as<io_t>(tok_emb[(size_t)ids[bt] * C + c] + pos[(size_t)t * C + c]);
    }
};

/* The ids of each TOKEMB_ID_CHUNK tokens are staged in shared memory; all threads of a warp
 * share one slice and read the same id, so the branch below never diverges in a warp. */
static __global__ void __launch_bounds__(TOKEMB_THREADS)
    token_embed_backward_kernel(float *dtok_emb, const float *dx, const int *ids, size_t BT,
                                int C) {
    __shared__ int chunk_ids[TOKEMB_ID_CHUNK];
    int c = blockIdx.x * blockDim.x + threadIdx.x, slice = blockIdx.y;
    for (size_t start = 0; start < BT; start += TOKEMB_ID_CHUNK) {
        size_t len = BT - start < TOKEMB_ID_CHUNK ? BT - start : TOKEMB_ID_CHUNK;
        __syncthreads(); /* the previous chunk's ids are consumed */
        for (size_t k = threadIdx.x; k < len; k += blockDim.x)
            chunk_ids[k] = ids[start + k];
        __syncthreads();
        if (c >= C)
            continue;
        for (size_t k = 0; k < len; k++) {
            int id = chunk_ids[k];
            if (id % TOKEMB_VOCAB_SLICES != slice)
                continue;
            dtok_emb[(size_t)id * C + c] += dx[(start + k) * C + c];
        }
    }
}

/* out[b] = x[b, rows[b]] (rows NULL: row 0) */
template <typename io_t> struct GatherRows {
    io_t *out;
    const io_t *x;
    const int *rows;
    int T, C;
    __device__ void operator()(size_t i) const {
        size_t b = i / C;
        int c = (int)(i % C);
        out[i] = x[(b * T + (rows ? rows[b] : 0)) * C + c];
    }
};

/* dx[b, rows[b]] += dout[b]: one row per sequence, so no two threads share a target */
struct ScatterRows {
    float *dx;
    const float *dout;
    const int *rows;
    int T, C;
    __device__ void operator()(size_t i) const {
        size_t b = i / C;
        int c = (int)(i % C);
        dx[(b * T + (rows ? rows[b] : 0)) * C + c] += dout[i];
    }
};

/* dpos[t, c] += sum_b dx[b, t, c]: a column sum over B rows of T*C columns */
static inline void position_grad(float *dpos, const float *dx, int B, int T, int C,
                                 cudaStream_t stream) {
    size_t cols = (size_t)T * C;
    colsum_accumulate<1>(dpos, (float *)NULL, StridedRows<float>{dx, cols}, (size_t)B, cols,
                         stream);
}

static inline void vision_embed_backward(float *dpatch_out, float *dclass_emb, float *dpos,
                                         const float *dx, int B, int NP, int C,
                                         cudaStream_t stream) {
    if (dpatch_out)
        launch_elementwise(VisionEmbedPatchGrad{dpatch_out, dx, NP, C}, (size_t)B * NP * C, stream);
    position_grad(dpos, dx, B, NP + 1, C, stream);
    /* the class embedding's gradient is the position-0 column sum again */
    size_t row_stride = (size_t)(NP + 1) * C;
    colsum_accumulate<1>(dclass_emb, (float *)NULL, StridedRows<float>{dx, row_stride}, (size_t)B,
                         (size_t)C, stream);
}

static inline void token_embed_backward(float *dtok_emb, float *dpos, const float *dx,
                                        const int *ids, int B, int T, int C, cudaStream_t stream) {
    size_t BT = (size_t)B * T;
    if (dtok_emb && BT > 0) {
        TokenEmbedPlan plan = token_embed_plan(C);
        dim3 grid((unsigned)plan.channel_blocks, (unsigned)plan.vocab_slices);
        TNG_LAUNCH(token_embed_backward_kernel, grid, plan.threads, 0, stream, dtok_emb, dx, ids,
                   BT, C);
    }
    position_grad(dpos, dx, B, T, C, stream);
}

#endif
