/*
 * launch_plan.h: the launch shapes of the CUDA kernels, as plain C.
 *
 * Every choice of block size, tile size, grid size and shared-memory bytes lives here, in
 * functions with no CUDA in them, so that the CPU test suite (tests/test_cuda_plan.c) can
 * check them on a machine without a GPU, and the .cu files launch exactly what was tested.
 * A plan with ok == 0 means "this shape is not supported"; the caller reports it.
 *
 * Sizes are in elements unless a name says bytes. Everything is computed in size_t or
 * checked against INT limits, because B*T*C products overflow int at CLIP batch sizes.
 */
#ifndef TNG_LAUNCH_PLAN_H
#define TNG_LAUNCH_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* The opt-in shared memory one block may use on an H100/H200 (sm_90): 227 KB. */
#define PLAN_SMEM_LIMIT_SM90 ((size_t)227 * 1024)
/* Without the opt-in attribute, a block may use at most 48 KB. */
#define PLAN_SMEM_DEFAULT ((size_t)48 * 1024)
/* The grid's y and z dimensions are limited to 65535. */
#define PLAN_GRID_YZ_MAX 65535
#define PLAN_WARP 32

static inline size_t plan_ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* ----------------------------------------------------------------------------
 * Row-wise kernels (LayerNorm, L2 norm): one warp per row, several rows per block.
 * LayerNorm keeps its row in registers, each lane holding `per_lane` values strided by 32:
 * the kernel is instantiated for a few register budgets and the plan picks the smallest
 * that holds C. */

#define LN_ROWS_PER_BLOCK 8
#define LN_MAX_WIDTH 2048

typedef struct {
    int ok;
    int threads;   /* LN_ROWS_PER_BLOCK warps */
    int per_lane;  /* 8, 16, 32 or 64 values of the row per lane (register budget) */
    size_t blocks; /* ceil(N / LN_ROWS_PER_BLOCK) */
} RowPlan;

static inline RowPlan layernorm_plan(size_t N, int C) {
    RowPlan p = {0, LN_ROWS_PER_BLOCK * PLAN_WARP, 0, 0};
    if (C < 1 || C > LN_MAX_WIDTH || N < 1)
        return p;
    int need = (int)plan_ceil_div((size_t)C, PLAN_WARP);
    p.per_lane = need <= 8 ? 8 : need <= 16 ? 16 : need <= 32 ? 32 : 64;
    p.blocks = plan_ceil_div(N, LN_ROWS_PER_BLOCK);
    p.ok = 1;
    return p;
}

/* The 128-bit path: V = 16 / io_bytes values per load (4 fp32, 8 bf16; the fp32 gradients of a
 * bf16 row move as two packets) when C is a multiple of V and every row-major tensor starts on 16
 * bytes (`addresses`: their addresses OR-ed), so that every row does; otherwise V = 1, one value
 * per lane and load, any width and alignment. PER_LANE (8..64) is a multiple of either V. */
static inline int layernorm_vector(int C, size_t io_bytes, uintptr_t addresses) {
    int v = (int)(16 / io_bytes);
    return C > 0 && C % v == 0 && addresses % 16 == 0 ? v : 1;
}

/* The backward is one kernel for dinp and the parameter gradients: a block takes a fixed chunk
 * of LN_BWD_ROWS_PER_BLOCK rows (each warp every LN_ROWS_PER_BLOCK-th row of it, in order),
 * keeps its lanes' dweight/dbias sums in registers, adds its warps in order through shared
 * memory and writes one partial row per quantity; a second kernel adds the blocks' partials in
 * order (reduce.cuh's finish). The chunk depends on nothing but this constant, so the bits
 * are the same on every run; 64 rows keep the partials at 1/32 of dout's bytes at C = 768
 * fp32 while leaving ~3 waves of blocks at a ViT-B/32 batch (25600 rows, 132 SMs). */

#define LN_BWD_ROWS_PER_BLOCK 64
#define PLAN_GRID_X_MAX 2147483647u

typedef struct {
    int ok;
    int threads;          /* LN_ROWS_PER_BLOCK warps */
    int per_lane;         /* as layernorm_plan */
    size_t blocks;        /* ceil(N / LN_BWD_ROWS_PER_BLOCK): also the partial rows */
    size_t partial_elems; /* scratch floats per quantity (dweight, dbias): blocks * C */
} LayerNormBackwardPlan;

static inline LayerNormBackwardPlan layernorm_backward_plan(size_t N, int C) {
    RowPlan rows = layernorm_plan(N, C);
    LayerNormBackwardPlan p = {0, rows.threads, rows.per_lane, 0, 0};
    p.blocks = plan_ceil_div(N, LN_BWD_ROWS_PER_BLOCK);
    p.partial_elems = p.blocks * (size_t)(C > 0 ? C : 0);
    p.ok = rows.ok && p.blocks <= PLAN_GRID_X_MAX;
    return p;
}

/* ----------------------------------------------------------------------------
 * Column reductions (bias, LayerNorm weight/bias and position gradients): a deterministic
 * two-stage sum. Stage 1: block (column tile, row chunk) sums its rows of 32 columns into
 * partial[chunk][col]; its 32x8 threads each take every 8th row, then combine in a fixed
 * order. Stage 2: one thread per column adds the chunks in order. The chunk count depends on
 * N only, never on timing, so the bits are the same on every run. */

#define COLSUM_TILE_COLS 32
#define COLSUM_ROW_GROUPS 8
#define COLSUM_ROWS_PER_CHUNK 256

typedef struct {
    int threads;          /* COLSUM_TILE_COLS x COLSUM_ROW_GROUPS */
    size_t col_tiles;     /* grid x of stage 1 */
    size_t row_chunks;    /* grid y of stage 1; also the partial rows */
    size_t partial_elems; /* scratch floats for stage 1's output: row_chunks * C */
    int ok;
} ColsumPlan;

static inline ColsumPlan colsum_plan(size_t N, size_t C) {
    ColsumPlan p;
    p.threads = COLSUM_TILE_COLS * COLSUM_ROW_GROUPS;
    p.col_tiles = plan_ceil_div(C, COLSUM_TILE_COLS);
    p.row_chunks = N ? plan_ceil_div(N, COLSUM_ROWS_PER_CHUNK) : 1;
    p.partial_elems = p.row_chunks * C;
    p.ok = C >= 1 && p.row_chunks <= PLAN_GRID_YZ_MAX;
    return p;
}

/* ----------------------------------------------------------------------------
 * Fused attention (kernels/attention.cuh), one block per (query tile, head, batch row).
 *
 * Shared memory of the forward kernel (ATT_FORWARD):
 *   Q tile           q_tile x hs
 *   score rows       q_tile x T        (the whole softmax row stays on chip)
 *   K or V chunk     kv_chunk x (hs+1) (the +1 pad puts consecutive keys in different banks)
 * and of the backward's query-side kernel (ATT_BACKWARD), which recomputes P and dS chunk by
 * chunk and so holds K and V chunks side by side, plus the tile's dO rows and each row's lse
 * and D: twice the Q tile and the chunk, plus 2 q_tile floats.
 * When kv_chunk >= T all of K (and V) sit on chip at once ("resident"); otherwise they stream
 * through in chunks ("tiled"). The plan tries the largest query tile and a resident K/V
 * first, then smaller K/V chunks, then smaller query tiles. */

#define ATT_THREADS 256
#define ATT_MAX_Q_TILE 32
#define ATT_MIN_KV_CHUNK 16
#define ATT_MAX_HEAD_DIM 128
/* Each thread accumulates ceil(q_tile*hs / ATT_THREADS) outputs in registers. */
#define ATT_MAX_ACC ((ATT_MAX_Q_TILE * ATT_MAX_HEAD_DIM) / ATT_THREADS)
enum { ATT_FORWARD = 0, ATT_BACKWARD = 1 };

typedef struct {
    int ok;
    int q_tile, kv_chunk;
    int resident; /* 1: kv_chunk >= T, K and V are each loaded once */
    size_t smem_bytes;
    size_t grid_x; /* query tiles: ceil(T / q_tile); grid y = NH, z = B */
} AttentionPlan;

/* pass: ATT_FORWARD or ATT_BACKWARD */
static inline size_t attention_smem_bytes(int T, int hs, int q_tile, int kv_chunk, int pass) {
    size_t copies = pass == ATT_BACKWARD ? 2 : 1;
    return sizeof(float) * (copies * ((size_t)q_tile * hs + (size_t)kv_chunk * (hs + 1)) +
                            (size_t)q_tile * T + (pass == ATT_BACKWARD ? 2 * (size_t)q_tile : 0));
}

static inline AttentionPlan attention_plan(int B, int T, int NH, int hs, size_t smem_limit,
                                           int pass) {
    AttentionPlan p = {0, 0, 0, 0, 0, 0};
    if (B < 1 || T < 1 || NH < 1 || hs < 1 || hs > ATT_MAX_HEAD_DIM)
        return p;
    if (B > PLAN_GRID_YZ_MAX || NH > PLAN_GRID_YZ_MAX)
        return p;
    int first_tile = T < ATT_MAX_Q_TILE ? T : ATT_MAX_Q_TILE;
    for (int q_tile = first_tile; q_tile >= 1; q_tile /= 2) {
        for (int kv_chunk = T;; kv_chunk /= 2) {
            size_t bytes = attention_smem_bytes(T, hs, q_tile, kv_chunk, pass);
            if (bytes <= smem_limit) {
                p.ok = 1;
                p.q_tile = q_tile;
                p.kv_chunk = kv_chunk;
                p.resident = kv_chunk >= T;
                p.smem_bytes = bytes;
                p.grid_x = plan_ceil_div((size_t)T, (size_t)q_tile);
                return p;
            }
            if (kv_chunk <= ATT_MIN_KV_CHUNK)
                break;
        }
    }
    return p;
}

/* The backward's key-side kernel: one block per (key tile, head, batch row) owns dK and dV
 * of its keys (so no two blocks write the same gradient: no atomics). Its keys' K and V rows
 * stay on chip (k_tile x (hs+1) each) while the query rows stream in chunks: Q and dO chunks
 * (i_chunk x (hs+1) each), the recomputed P and dS (i_chunk x k_tile each), and each row's lse
 * and D. Within the default 48 KB (no opt-in): the query chunk halves first, then the key
 * tile, from 32 and 32 (both at 32 for hs <= 64; 16 and 16 at hs 128). */

#define ATT_K_TILE 32
#define ATT_I_CHUNK 32

typedef struct {
    int ok;
    int k_tile, i_chunk;
    size_t smem_bytes;
    size_t grid_x; /* ceil(T / k_tile) */
} AttentionKeyPlan;

static inline size_t attention_key_smem_bytes(int hs, int k_tile, int i_chunk) {
    return sizeof(float) * ((size_t)2 * (k_tile + i_chunk) * (hs + 1) +
                            (size_t)2 * i_chunk * k_tile + (size_t)2 * i_chunk);
}

static inline AttentionKeyPlan attention_key_plan(int B, int T, int NH, int hs) {
    AttentionKeyPlan p = {0, ATT_K_TILE, ATT_I_CHUNK, 0, 0};
    if (B < 1 || T < 1 || NH < 1 || hs < 1 || hs > ATT_MAX_HEAD_DIM)
        return p;
    if (B > PLAN_GRID_YZ_MAX || NH > PLAN_GRID_YZ_MAX)
        return p;
    while (attention_key_smem_bytes(hs, p.k_tile, p.i_chunk) > PLAN_SMEM_DEFAULT) {
        if (p.i_chunk >= p.k_tile)
            p.i_chunk /= 2;
        else
            p.k_tile /= 2;
    }
    p.smem_bytes = attention_key_smem_bytes(hs, p.k_tile, p.i_chunk);
    p.grid_x = plan_ceil_div((size_t)T, (size_t)p.k_tile);
    p.ok = 1;
    return p;
}

/* ----------------------------------------------------------------------------
 * Tensor-core attention (kernels/attention_mma.cuh): bf16, head size ATT_MMA_HEAD_DIM only.
 * A block of ATT_MMA_WARPS warps, each warp 16 rows (queries in the forward and the dQ
 * kernel, keys in the dK/dV kernel), so a block owns ATT_MMA_TILE rows; the other side
 * streams through shared memory in chunks of ATT_MMA_TILE rows, stored as bf16 with a row
 * pitch of ATT_MMA_PITCH elements (8 of padding: the fragment loads of consecutive rows fall
 * in different banks). Grid: (ceil(T / ATT_MMA_TILE), NH, B) for each of the three kernels;
 * shared memory: two chunks of ATT_MMA_TILE x ATT_MMA_PITCH bf16 (K and V, or Q and dO) and,
 * in the backward, two floats per streamed row (lse and D): under 48 KB, whatever T is. */

#define ATT_MMA_HEAD_DIM 64
#define ATT_MMA_WARPS 4
#define ATT_MMA_TILE (16 * ATT_MMA_WARPS)
#define ATT_MMA_PITCH (ATT_MMA_HEAD_DIM + 8)

typedef struct {
    int ok;
    int threads;
    size_t smem_bytes; /* of the pass asked for */
    size_t grid_x;     /* ceil(T / ATT_MMA_TILE); grid y = NH, z = B */
} AttentionMmaPlan;

/* ok only where the tensor-core kernels apply: head size ATT_MMA_HEAD_DIM (the caller
 * checks the precision) */
static inline AttentionMmaPlan attention_mma_plan(int B, int T, int NH, int hs, int pass) {
    AttentionMmaPlan p = {0, ATT_MMA_WARPS * PLAN_WARP, 0, 0};
    if (B < 1 || T < 1 || NH < 1 || hs != ATT_MMA_HEAD_DIM)
        return p;
    if (B > PLAN_GRID_YZ_MAX || NH > PLAN_GRID_YZ_MAX)
        return p;
    p.smem_bytes = (size_t)2 * ATT_MMA_TILE * ATT_MMA_PITCH * 2 +
                   (pass == ATT_BACKWARD ? (size_t)2 * ATT_MMA_TILE * sizeof(float) : 0);
    p.grid_x = plan_ceil_div((size_t)T, ATT_MMA_TILE);
    p.ok = 1;
    return p;
}

/* ----------------------------------------------------------------------------
 * InfoNCE on cos [Ni, Nt]:
 *   rows:    one block of INFONCE_THREADS per image row (online max/sum over Nt);
 *   columns: one block per INFONCE_COL_TILE columns, INFONCE_COL_GROUPS row groups of
 *            threads, combined in a fixed order;
 *   grads:   one block per image row (writes dcos and the row's dscale partial);
 *   final:   one block sums the per-row and per-column terms in a fixed order. */

#define INFONCE_THREADS 256
#define INFONCE_COL_TILE 32
#define INFONCE_COL_GROUPS 8

typedef struct {
    int ok;
    int threads;
    size_t row_blocks;     /* Ni */
    size_t col_blocks;     /* ceil(Nt / INFONCE_COL_TILE) */
    size_t scratch_floats; /* row lse, loss, dscale, positives, each-share (5*Ni) + col lse,
                              loss (2*Nt) */
} InfoncePlan;

static inline InfoncePlan infonce_plan(int Ni, int Nt) {
    InfoncePlan p = {0, INFONCE_THREADS, 0, 0, 0};
    if (Ni < 1 || Nt < 1)
        return p;
    p.row_blocks = (size_t)Ni;
    p.col_blocks = plan_ceil_div((size_t)Nt, INFONCE_COL_TILE);
    p.scratch_floats = (size_t)5 * Ni + (size_t)2 * Nt;
    p.ok = 1;
    return p;
}

/* ----------------------------------------------------------------------------
 * Elementwise kernels: a grid-stride loop over n elements with a capped grid, so any n up
 * to SIZE_MAX works and the grid never exceeds what 132 SMs can keep busy many times over. */

#define ELEM_THREADS 256
#define ELEM_MAX_BLOCKS ((size_t)132 * 32)

static inline size_t elementwise_blocks(size_t n) {
    size_t blocks = plan_ceil_div(n, ELEM_THREADS);
    if (blocks < 1)
        blocks = 1;
    return blocks < ELEM_MAX_BLOCKS ? blocks : ELEM_MAX_BLOCKS;
}

/* sum_squares: a fixed number of partial sums that depends on n alone (each block sums a
 * grid-stride share in double), then one block adds the partials in a fixed tree. */
#define SUMSQ_THREADS 256
#define SUMSQ_MAX_BLOCKS 1024

static inline size_t sum_squares_blocks(size_t n) {
    size_t blocks = plan_ceil_div(n, (size_t)SUMSQ_THREADS * 8);
    if (blocks < 1)
        blocks = 1;
    return blocks < SUMSQ_MAX_BLOCKS ? blocks : SUMSQ_MAX_BLOCKS;
}

/* Token-embedding backward: thread (vocabulary slice, channel) walks every token in order
 * and adds those whose id falls in its slice, so repeated ids add up in token order, as on
 * the CPU (bit-identical, and no atomics). Slices multiply the parallelism past C threads. */
#define TOKEMB_THREADS 128
#define TOKEMB_VOCAB_SLICES 128
#define TOKEMB_ID_CHUNK 1024

typedef struct {
    int threads;
    size_t channel_blocks; /* ceil(C / TOKEMB_THREADS): grid x */
    int vocab_slices;      /* grid y */
} TokenEmbedPlan;

static inline TokenEmbedPlan token_embed_plan(int C) {
    TokenEmbedPlan p = {TOKEMB_THREADS, plan_ceil_div((size_t)(C > 0 ? C : 1), TOKEMB_THREADS),
                        TOKEMB_VOCAB_SLICES};
    return p;
}

/* ----------------------------------------------------------------------------
 * The towers' linear layers on cuBLASLt (matmul.cuh): the algorithm is chosen once per GEMM
 * (shape, transposes, types, epilogue and the pointers' alignments) and kept in a table of
 * GEMM_LT_PLAN_SLOTS entries, the oldest replaced when it is full; its workspace is one buffer of
 * GEMM_LT_WORKSPACE_BYTES, allocated with the scratch (Backend.reserve_scratch). 32 MiB is the
 * workspace cuBLAS itself takes on Hopper. A model has a few dozen distinct GEMMs per text length
 * (4 layer shapes x forward, dinp, dweight, in two towers, and their alignments), and the text
 * tower's rows follow each batch's longest caption (up to 77 lengths): 1024 plans hold a whole
 * run's shapes for the common cases. */
#define GEMM_LT_PLAN_SLOTS 1024
#define GEMM_LT_WORKSPACE_BYTES ((size_t)32 << 20)

/* adamw_step keeps its tensor table in shared memory: 24 bytes a tensor, 24 KB at most
 * (ViT-B/32 has 398 tensors). */
#define ADAMW_MAX_TENSORS 1024

/* ----------------------------------------------------------------------------
 * The backend's scratch, sized once (Backend.reserve_scratch): the most any op asks for when
 * no batch has more than `batch` sequences of `tokens` positions, no matrix more than `width`
 * columns, and the loss no block beyond images x texts. Its users: the column sums (bias
 * gradients over batch x tokens rows; position embedding gradients over batch rows of
 * tokens x width), LayerNorm's backward partials (two quantities per block of rows),
 * InfoNCE's row and column statistics, the sum of squares' partials, and in the bf16 backend
 * (act_bytes 2; 0 otherwise) the linear backward's bf16 copy of dout, batch x tokens rows of
 * width, and the forward's bf16 copy of the bias (width values). Each plan grows with its
 * arguments, so the largest shapes give the largest need. */

static inline size_t scratch_plan_bytes(size_t batch, size_t tokens, size_t width, int images,
                                        int texts, size_t act_bytes) {
    size_t rows_sum = sizeof(float) * colsum_plan(batch * tokens, width).partial_elems;
    size_t position_sum = sizeof(float) * colsum_plan(batch, tokens * width).partial_elems;
    size_t colsum = rows_sum > position_sum ? rows_sum : position_sum;
    size_t ln_sum = sizeof(float) * 2 * layernorm_backward_plan(batch * tokens, (int)width).partial_elems;
    colsum = colsum > ln_sum ? colsum : ln_sum;
    size_t infonce = sizeof(float) * infonce_plan(images, texts).scratch_floats;
    size_t sumsq = sizeof(double) * SUMSQ_MAX_BLOCKS;
    size_t dout_copy = act_bytes * batch * tokens * width; /* >= the bias copy, act_bytes * width */
    size_t most = colsum > infonce ? colsum : infonce;
    most = most > sumsq ? most : sumsq;
    return most > dout_copy ? most : dout_copy;
}

#endif
