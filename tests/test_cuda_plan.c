/*
 * test_cuda_plan.c: the CUDA kernels' launch geometry (kernels/launch_plan.h), checked on
 * the CPU: no CUDA is needed, so CI runs it on every machine.
 *
 * A plan is correct when its grid covers every row/column exactly once past the edge
 * (ceil division, odd counts included), its shared memory fits the limit it was given, and
 * each thread's fixed register accumulators are enough for the tile the plan picked.
 */
#include <stddef.h>

#include "../kernels/launch_plan.h" /* defines: attention_plan, layernorm_plan, ... */
#include "harness.h"

static const int clip_lengths[] = {50, 77, 197, 257};
static const int head_dims[] = {32, 64, 128};

static const int passes[] = {ATT_FORWARD, ATT_BACKWARD};

/* Properties every usable attention plan must have. */
static void check_attention_plan(AttentionPlan p, int T, int hs, size_t limit, int pass) {
    CHECK(p.ok, "T=%d hs=%d pass %d has a plan", T, hs, pass);
    if (!p.ok)
        return;
    CHECK(p.smem_bytes <= limit, "T=%d hs=%d: %zu bytes > limit %zu", T, hs, p.smem_bytes, limit);
    CHECK(p.smem_bytes == attention_smem_bytes(T, hs, p.q_tile, p.kv_chunk, pass), "bytes formula");
    CHECK(p.q_tile >= 1 && p.q_tile <= ATT_MAX_Q_TILE, "q_tile %d", p.q_tile);
    CHECK(p.grid_x * (size_t)p.q_tile >= (size_t)T && (p.grid_x - 1) * (size_t)p.q_tile < (size_t)T,
          "T=%d: %zu tiles of %d rows cover it exactly", T, p.grid_x, p.q_tile);
    CHECK(p.resident == (p.kv_chunk >= T), "resident flag for chunk %d of T=%d", p.kv_chunk, T);
    CHECK((size_t)p.q_tile * hs <= (size_t)ATT_THREADS * ATT_MAX_ACC,
          "q_tile %d x hs %d outputs fit %d threads x %d accumulators", p.q_tile, hs, ATT_THREADS,
          ATT_MAX_ACC);
}

static void test_attention_clip_lengths_fit_h200(void) {
    for (size_t t = 0; t < sizeof clip_lengths / sizeof *clip_lengths; t++)
        for (size_t h = 0; h < sizeof head_dims / sizeof *head_dims; h++)
            for (int pass = 0; pass < 2; pass++) {
                int T = clip_lengths[t], hs = head_dims[h];
                AttentionPlan p = attention_plan(512, T, 12, hs, PLAN_SMEM_LIMIT_SM90, passes[pass]);
                check_attention_plan(p, T, hs, PLAN_SMEM_LIMIT_SM90, passes[pass]);
                /* full 32-row tiles everywhere; K and V whole on chip in the forward, and in the
                   backward (K and V side by side) up to head dim 64, CLIP's */
                CHECK(p.q_tile == ATT_MAX_Q_TILE, "T=%d hs=%d tile %d", T, hs, p.q_tile);
                CHECK(p.resident || (passes[pass] == ATT_BACKWARD && hs > 64),
                      "T=%d hs=%d pass %d resident (chunk %d)", T, hs, passes[pass], p.kv_chunk);
            }
    /* ViT-B/32 vision: 50 tokens, head dim 64: 27,592 bytes forward, 49,040 backward (worked
       by hand: Q tile, score rows, K chunk; then twice the tile and the chunk, and lse, D) */
    AttentionPlan p = attention_plan(1, 50, 12, 64, PLAN_SMEM_LIMIT_SM90, ATT_FORWARD);
    CHECK(p.smem_bytes == (size_t)(32 * 64 + 32 * 50 + 50 * 65) * 4 && p.smem_bytes == 27592,
          "T=50 hs=64: %zu bytes", p.smem_bytes);
    CHECK(p.grid_x == 2, "50 rows in 2 tiles of 32, got %zu", p.grid_x);
    p = attention_plan(1, 50, 12, 64, PLAN_SMEM_LIMIT_SM90, ATT_BACKWARD);
    CHECK(p.smem_bytes == (size_t)(2 * (32 * 64 + 50 * 65) + 32 * 50 + 2 * 32) * 4 &&
              p.smem_bytes == 49040,
          "T=50 hs=64 backward: %zu bytes", p.smem_bytes);
}

static void test_attention_tiled_paths(void) {
    /* under the default 48 KB the larger shapes must stream K/V in chunks */
    for (int pass = 0; pass < 2; pass++) {
        AttentionPlan p = attention_plan(2, 257, 8, 128, PLAN_SMEM_DEFAULT, passes[pass]);
        check_attention_plan(p, 257, 128, PLAN_SMEM_DEFAULT, passes[pass]);
        CHECK(!p.resident, "T=257 hs=128 cannot be resident in 48 KB");
        for (size_t t = 0; t < sizeof clip_lengths / sizeof *clip_lengths; t++)
            for (size_t h = 0; h < sizeof head_dims / sizeof *head_dims; h++)
                check_attention_plan(attention_plan(1, clip_lengths[t], 1, head_dims[h],
                                                    PLAN_SMEM_DEFAULT, passes[pass]),
                                     clip_lengths[t], head_dims[h], PLAN_SMEM_DEFAULT, passes[pass]);
        /* a long sequence on the H200: tiled, still 32-row tiles */
        p = attention_plan(1, 1024, 1, 64, PLAN_SMEM_LIMIT_SM90, passes[pass]);
        check_attention_plan(p, 1024, 64, PLAN_SMEM_LIMIT_SM90, passes[pass]);
        CHECK(!p.resident && p.kv_chunk < 1024, "T=1024 hs=64 streams K/V (chunk %d)", p.kv_chunk);
        /* odd tiny shapes */
        p = attention_plan(3, 1, 3, 8, PLAN_SMEM_LIMIT_SM90, passes[pass]);
        check_attention_plan(p, 1, 8, PLAN_SMEM_LIMIT_SM90, passes[pass]);
        CHECK(p.q_tile == 1 && p.grid_x == 1, "T=1: one tile of one row");
    }
}

static void test_attention_rejects(void) {
    for (int pass = 0; pass < 2; pass++) {
        CHECK(!attention_plan(1, 77, 8, 129, PLAN_SMEM_LIMIT_SM90, passes[pass]).ok,
              "head dim 129 is unsupported");
        CHECK(!attention_plan(1, 77, 8, 0, PLAN_SMEM_LIMIT_SM90, passes[pass]).ok, "head dim 0");
        CHECK(!attention_plan(0, 77, 8, 64, PLAN_SMEM_LIMIT_SM90, passes[pass]).ok, "B = 0");
        CHECK(!attention_plan(70000, 77, 8, 64, PLAN_SMEM_LIMIT_SM90, passes[pass]).ok,
              "B past grid z");
        /* nothing fits 1 KB */
        CHECK(!attention_plan(1, 257, 1, 128, 1024, passes[pass]).ok, "no plan within 1 KB");
    }
}

static void test_attention_key_side(void) {
    for (size_t h = 0; h < sizeof head_dims / sizeof *head_dims; h++) {
        int hs = head_dims[h];
        AttentionKeyPlan k = attention_key_plan(4, 257, 12, hs);
        CHECK(k.ok && k.smem_bytes <= PLAN_SMEM_DEFAULT, "hs=%d key plan %zu bytes", hs,
              k.smem_bytes);
        CHECK(k.smem_bytes == attention_key_smem_bytes(hs, k.k_tile, k.i_chunk), "bytes formula");
        /* 32 keys by 32 queries up to hs 64 (41,728 bytes at 64); 16 by 16 at 128 (35,200) */
        int want = hs <= 64 ? 32 : 16;
        CHECK(k.k_tile == want && k.i_chunk == want, "hs=%d: tile %d, chunk %d", hs, k.k_tile,
              k.i_chunk);
        CHECK(k.grid_x == (size_t)(257 + want - 1) / want, "257 keys in tiles of %d, got %zu",
              want, k.grid_x);
        CHECK((size_t)k.k_tile * hs <= (size_t)ATT_THREADS * ATT_MAX_ACC, "key accumulators");
    }
    CHECK(attention_key_plan(1, 77, 1, 64).smem_bytes == 41728, "hs 64 key plan bytes");
    CHECK(attention_key_plan(1, 77, 1, 128).smem_bytes == 35200, "hs 128 key plan bytes");
    CHECK(!attention_key_plan(1, 77, 1, 200).ok, "head dim 200 rejected");
}

/* The tensor-core plan: head size 64 only; blocks of 64 rows; 18,432 bytes of bf16 chunks
 * (two of 64 x 72), plus 512 of lse and D in the backward */
static void test_attention_mma_plan(void) {
    const int lengths[] = {1, 17, 50, 64, 65, 77, 197, 257};
    const size_t tiles[] = {1, 1, 1, 1, 2, 2, 4, 5};
    for (size_t t = 0; t < sizeof lengths / sizeof *lengths; t++) {
        AttentionMmaPlan f = attention_mma_plan(256, lengths[t], 12, 64, ATT_FORWARD);
        AttentionMmaPlan b = attention_mma_plan(256, lengths[t], 12, 64, ATT_BACKWARD);
        CHECK(f.ok && b.ok && f.grid_x == tiles[t] && b.grid_x == tiles[t],
              "T=%d: %zu tiles of 64 rows", lengths[t], f.grid_x);
        CHECK(f.threads == 128 && f.smem_bytes == 18432 && b.smem_bytes == 18944,
              "T=%d: %d threads, %zu / %zu bytes", lengths[t], f.threads, f.smem_bytes, b.smem_bytes);
    }
    for (size_t h = 0; h < sizeof head_dims / sizeof *head_dims; h++)
        CHECK(attention_mma_plan(1, 77, 1, head_dims[h], ATT_FORWARD).ok == (head_dims[h] == 64),
              "the tensor-core plan applies at head dim 64 only, not %d", head_dims[h]);
    CHECK(!attention_mma_plan(70000, 77, 8, 64, ATT_FORWARD).ok, "B past grid z");
}

static void test_layernorm_plan(void) {
    const int widths[] = {8, 40, 512, 768, 1024, 1280, 2048};
    const size_t rows[] = {1, 7, 1001, 25601};
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
            int C = widths[w];
            size_t N = rows[r];
            RowPlan p = layernorm_plan(N, C);
            CHECK(p.ok, "C=%d N=%zu", C, N);
            CHECK(p.per_lane * PLAN_WARP >= C, "C=%d fits %d per lane", C, p.per_lane);
            /* the smallest budget that holds the row (no wasted registers) */
            CHECK(p.per_lane == 8 || (p.per_lane / 2) * PLAN_WARP < C,
                  "C=%d: %d per lane is not minimal", C, p.per_lane);
            CHECK(p.blocks * LN_ROWS_PER_BLOCK >= N && (p.blocks - 1) * LN_ROWS_PER_BLOCK < N,
                  "N=%zu rows in %zu blocks of %d", N, p.blocks, LN_ROWS_PER_BLOCK);
            CHECK(p.threads == LN_ROWS_PER_BLOCK * PLAN_WARP, "one warp per row");
        }
    }
    CHECK(layernorm_plan(10, 512).per_lane == 16 && layernorm_plan(10, 768).per_lane == 32 &&
              layernorm_plan(10, 1024).per_lane == 32,
          "CLIP widths: 16, 32, 32 values per lane");
    CHECK(!layernorm_plan(10, LN_MAX_WIDTH + 8).ok, "width past the maximum is rejected");
    CHECK(!layernorm_plan(0, 512).ok, "no rows");
    /* the 128-bit path: whole packets per row, every tensor on 16 bytes */
    CHECK(layernorm_vector(768, 4, 0x1000) == 4 && layernorm_vector(768, 2, 0x1000) == 8,
          "CLIP widths: 4 fp32 or 8 bf16 per load");
    CHECK(layernorm_vector(36, 4, 0x1000) == 4 && layernorm_vector(36, 2, 0x1000) == 1,
          "36 columns: packets of 4 fp32, not of 8 bf16");
    CHECK(layernorm_vector(42, 4, 0x1000) == 1 && layernorm_vector(768, 4, 0x1004) == 1 &&
              layernorm_vector(768, 2, 0x1008) == 1,
          "a ragged width or a tensor off 16 bytes: one value per load");
    for (int per_lane = 8; per_lane <= 64; per_lane *= 2)
        CHECK(per_lane % 4 == 0 && per_lane % 8 == 0, "whole groups per lane");
}

/* The fused backward: fixed chunks of LN_BWD_ROWS_PER_BLOCK rows, the last one partial, one
 * partial row per chunk; the register budget is the forward's. */
static void test_layernorm_backward_plan(void) {
    const size_t rows[] = {1, 7, 64, 65, 1001, 25600};
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        size_t N = rows[r];
        LayerNormBackwardPlan p = layernorm_backward_plan(N, 768);
        CHECK(p.ok && p.per_lane == layernorm_plan(N, 768).per_lane, "N=%zu", N);
        CHECK(p.blocks * LN_BWD_ROWS_PER_BLOCK >= N && (p.blocks - 1) * LN_BWD_ROWS_PER_BLOCK < N,
              "N=%zu rows in %zu chunks of %d", N, p.blocks, LN_BWD_ROWS_PER_BLOCK);
        CHECK(p.partial_elems == p.blocks * 768, "N=%zu: partials", N);
        CHECK(LN_BWD_ROWS_PER_BLOCK % LN_ROWS_PER_BLOCK == 0, "every warp gets the same row count");
    }
    CHECK(layernorm_backward_plan(25600, 768).blocks == 400, "a ViT-B/32 batch: 400 chunks");
    CHECK(!layernorm_backward_plan(10, LN_MAX_WIDTH + 8).ok && !layernorm_backward_plan(0, 512).ok,
          "too wide, or no rows");
}

static void test_colsum_plan(void) {
    ColsumPlan p = colsum_plan(25600, 768);
    CHECK(p.ok && p.row_chunks == 100 && p.col_tiles == 24, "25600 x 768: %zu chunks, %zu tiles",
          p.row_chunks, p.col_tiles);
    CHECK(p.partial_elems == 100 * 768, "partials");
    p = colsum_plan(1, 77 * 512);
    CHECK(p.ok && p.row_chunks == 1 && p.col_tiles == (77 * 512 + 31) / 32, "one row");
    p = colsum_plan(257, 33);
    CHECK(p.row_chunks == 2 && p.col_tiles == 2, "257 rows x 33 columns: %zu x %zu", p.row_chunks,
          p.col_tiles);
    CHECK(!colsum_plan((size_t)COLSUM_ROWS_PER_CHUNK * 70000, 8).ok, "chunks past grid y");
}

static void test_infonce_plan(void) {
    InfoncePlan p = infonce_plan(1024, 3072);
    CHECK(p.ok && p.row_blocks == 1024 && p.col_blocks == 96,
          "1024 x 3072: %zu rows, %zu col blocks", p.row_blocks, p.col_blocks);
    CHECK(p.scratch_floats == 5 * 1024 + 2 * 3072, "scratch %zu", p.scratch_floats);
    CHECK(infonce_plan(5, 3073).col_blocks == 97, "ragged last column tile");
    CHECK(!infonce_plan(0, 5).ok && !infonce_plan(5, 0).ok, "empty matrices rejected");
}

static void test_elementwise_and_reductions(void) {
    CHECK(elementwise_blocks(0) == 1 && elementwise_blocks(1) == 1, "tiny n");
    CHECK(elementwise_blocks(1000003) == (1000003 + ELEM_THREADS - 1) / ELEM_THREADS, "prime n");
    CHECK(elementwise_blocks((size_t)1 << 34) == ELEM_MAX_BLOCKS, "huge n is capped");
    CHECK(sum_squares_blocks(0) == 1 && sum_squares_blocks(100) == 1, "small sums: one block");
    CHECK(sum_squares_blocks((size_t)151277313) == SUMSQ_MAX_BLOCKS,
          "ViT-B/32's parameters: capped");
    TokenEmbedPlan t = token_embed_plan(512);
    CHECK(t.channel_blocks == 4 && t.vocab_slices == TOKEMB_VOCAB_SLICES, "token embed 512 wide");
    CHECK(token_embed_plan(200).channel_blocks == 2, "token embed 200 wide");
}

/* The scratch a model reserves once covers every op at every shape up to the plan's: the
 * row sums over batch x tokens rows, LayerNorm's backward partials (two quantities), the
 * position sums over batch rows of tokens x C columns, InfoNCE's statistics, the sum of
 * squares' partials, and in bf16 the linear backward's copy of dout. */
static void test_scratch_plan_covers_every_op(void) {
    const size_t batches[] = {1, 3, 64, 1024}, tokens[] = {17, 50, 77, 257}, widths[] = {64, 3072};
    for (size_t bi = 0; bi < 4; bi++)
        for (size_t ti = 0; ti < 4; ti++)
            for (size_t wi = 0; wi < 2; wi++) {
                size_t B = batches[bi], T = tokens[ti], W = widths[wi];
                size_t plan = scratch_plan_bytes(B, T, W, (int)B, (int)(3 * B), 0);
                size_t plan_bf16 = scratch_plan_bytes(B, T, W, (int)B, (int)(3 * B), 2);
                CHECK(plan_bf16 >= plan && plan_bf16 >= 2 * B * T * W, "B %zu T %zu W %zu: bf16 dout copy %zu",
                      B, T, W, plan_bf16);
                for (size_t b = 1; b <= B; b = b * 2 + 1)
                    for (size_t c = 1; c <= W; c = c * 3 + 1) {
                        size_t rows = sizeof(float) * colsum_plan(b * T, c).partial_elems;
                        size_t position = sizeof(float) * colsum_plan(b, T * c).partial_elems;
                        size_t ln = 2 * sizeof(float) * layernorm_backward_plan(b * T, (int)c).partial_elems;
                        CHECK(rows <= plan && position <= plan && ln <= plan,
                              "B %zu T %zu W %zu: %zu, %zu and %zu > plan %zu", b, T, c, rows, position, ln, plan);
                    }
                CHECK(sizeof(float) * infonce_plan((int)B, (int)(3 * B)).scratch_floats <= plan &&
                          sizeof(double) * SUMSQ_MAX_BLOCKS <= plan,
                      "B %zu: the loss or the sum of squares outgrows the plan", B);
            }
}

int main(void) {
    RUN_TEST(test_attention_clip_lengths_fit_h200);
    RUN_TEST(test_attention_tiled_paths);
    RUN_TEST(test_attention_rejects);
    RUN_TEST(test_attention_key_side);
    RUN_TEST(test_attention_mma_plan);
    RUN_TEST(test_layernorm_plan);
    RUN_TEST(test_layernorm_backward_plan);
    RUN_TEST(test_colsum_plan);
    RUN_TEST(test_infonce_plan);
    RUN_TEST(test_elementwise_and_reductions);
    RUN_TEST(test_scratch_plan_covers_every_op);
    return test_summary();
}
