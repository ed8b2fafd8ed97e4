/*
 * test_embed.cu: the stems and the pooling (kernels/embed.cuh) against the CPU op: patch
 * im2col, the vision and token embeddings forward and backward, gathering and scattering one
 * row per sequence. Copies and the token-embedding gradient (added in the CPU's order) match
 * bit for bit; the column sums (position and class embeddings) to TOL. The bf16 backend's
 * forward ops write bf16: its copies and its single fp32 adds of bf16 or fp32 inputs are the
 * CPU's results rounded to bf16, bit for bit.
 */
#include "gpu_test_util.h" /* defines: Pair, IntPair, cpu, gpu, check_scaled, gpu_test_init */

static void test_vision_embed(void) {
    const int B = 3, R = 64, P = 16, C = 48, NP = (R / P) * (R / P), T = NP + 1;
    Pair images = pair_random((size_t)B * 3 * R * R, 1.0);
    Pair patches = pair_poisoned((size_t)B * NP * 3 * P * P);
    cpu->im2col_patches(patches.host, images.host, B, R, R, P);
    gpu->im2col_patches(patches.dev, images.dev, B, R, R, P);
    pair_check_exact("im2col_patches", patches);

    Pair patch_out = pair_random((size_t)B * NP * C, 1.0), cls = pair_random((size_t)C, 1.0);
    Pair pos = pair_random((size_t)T * C, 1.0), x = pair_poisoned((size_t)B * T * C);
    cpu->vision_embed_forward(x.host, patch_out.host, cls.host, pos.host, B, NP, C);
    gpu->vision_embed_forward(x.dev, patch_out.dev, cls.dev, pos.dev, B, NP, C);
    pair_check_exact("vision_embed_forward", x);

    Pair dx = pair_random((size_t)B * T * C, 1.0), dpatch = pair_random((size_t)B * NP * C, 1.0);
    Pair dcls = pair_random((size_t)C, 1.0), dpos = pair_random((size_t)T * C, 1.0);
    cpu->vision_embed_backward(dpatch.host, dcls.host, dpos.host, dx.host, B, NP, C);
    gpu->vision_embed_backward(dpatch.dev, dcls.dev, dpos.dev, dx.dev, B, NP, C);
    pair_check_exact("vision_embed_backward dpatch_out", dpatch);
    check_scaled("vision_embed_backward dclass", dcls, TOL);
    check_scaled("vision_embed_backward dpos", dpos, TOL);
    /* NULL gradients are skipped */
    cpu->vision_embed_backward(NULL, NULL, dpos.host, dx.host, B, NP, C);
    gpu->vision_embed_backward(NULL, NULL, dpos.dev, dx.dev, B, NP, C);
    check_scaled("vision_embed_backward dpos only", dpos, TOL);
    PAIRS_FREE(images, patches, patch_out, cls, pos, x, dx, dpatch, dcls, dpos);
}

static void test_token_embed(void) {
    const int B = 37, T = 23, C = 200, V = 300;
    size_t BT = (size_t)B * T;
    int *ids_host = (int *)mallocCheck(sizeof(int) * BT);
    /* many repeats: ids from a small range, and id 0 as padding after a random length */
    for (size_t i = 0; i < BT; i++)
        ids_host[i] = (int)(i % T) > (int)rng_below(&gpu_test_rng, (uint64_t)T)
                          ? 0
                          : (int)rng_below(&gpu_test_rng, 40) * 7;
    ids_host[BT - 1] = V - 1;
    IntPair ids = int_pair(ids_host, BT);
    Pair tok = pair_random((size_t)V * C, 1.0), pos = pair_random((size_t)T * C, 1.0);
    Pair x = pair_poisoned(BT * C);
    cpu->token_embed_forward(x.host, ids.host, tok.host, pos.host, B, T, C);
    gpu->token_embed_forward(x.dev, ids.dev, tok.dev, pos.dev, B, T, C);
    pair_check_exact("token_embed_forward", x);

    Pair dx = pair_random(BT * C, 1.0), dtok = pair_random((size_t)V * C, 1.0);
    Pair dpos = pair_random((size_t)T * C, 1.0);
    cpu->token_embed_backward(dtok.host, dpos.host, dx.host, ids.host, B, T, C);
    gpu->token_embed_backward(dtok.dev, dpos.dev, dx.dev, ids.dev, B, T, C);
    pair_check_exact("token_embed_backward dtok_emb (same add order as the CPU)", dtok);
    check_scaled("token_embed_backward dpos", dpos, TOL);
    cpu->token_embed_backward(NULL, dpos.host, dx.host, ids.host, B, T, C);
    gpu->token_embed_backward(NULL, dpos.dev, dx.dev, ids.dev, B, T, C);
    check_scaled("token_embed_backward dpos only", dpos, TOL);
    free(ids_host);
    int_pair_free(ids);
    PAIRS_FREE(tok, pos, x, dx, dtok, dpos);
}

static void test_rows(void) {
    const int B = 5, T = 11, C = 72;
    int rows_host[B] = {10, 0, 3, 10, 7};
    IntPair rows = int_pair(rows_host, B);
    Pair x = pair_random((size_t)B * T * C, 1.0);
    for (int with_rows = 0; with_rows <= 1; with_rows++) {
        Pair out = pair_poisoned((size_t)B * C), dx = pair_random((size_t)B * T * C, 1.0);
        Pair dout = pair_random((size_t)B * C, 1.0);
        cpu->gather_rows(out.host, x.host, with_rows ? rows.host : NULL, B, T, C);
        gpu->gather_rows(out.dev, x.dev, with_rows ? rows.dev : NULL, B, T, C);
        pair_check_exact(with_rows ? "gather_rows" : "gather_rows (row 0)", out);
        cpu->scatter_rows(dx.host, dout.host, with_rows ? rows.host : NULL, B, T, C);
        gpu->scatter_rows(dx.dev, dout.dev, with_rows ? rows.dev : NULL, B, T, C);
        pair_check_exact(with_rows ? "scatter_rows" : "scatter_rows (row 0)", dx);
        pair_free(out), pair_free(dx), pair_free(dout);
    }
    pair_free(x);
    int_pair_free(rows);
}

/* The bf16 backend's stems and pooling; every float the CPU reads is the bf16 kernel's. */
static void test_embed_bf16(void) {
    const int B = 3, R = 64, P = 16, C = 48, NP = (R / P) * (R / P), T = NP + 1;
    Pair images = pair_random((size_t)B * 3 * R * R, 1.0), patches = pair_poisoned((size_t)B * NP * 3 * P * P);
    __nv_bfloat16 *patches16 = bf16_poisoned(patches.n);
    cpu->im2col_patches(patches.host, images.host, B, R, R, P);
    gpu16->im2col_patches(patches16, images.dev, B, R, R, P);
    check_bf16_exact("im2col_patches bf16", patches16, patches.host, patches.n);

    Pair patch_out = pair_random((size_t)B * NP * C, 1.0), cls = pair_random((size_t)C, 1.0);
    Pair pos = pair_random((size_t)T * C, 1.0), x = pair_poisoned((size_t)B * T * C);
    __nv_bfloat16 *patch_out16 = pair_to_bf16(patch_out), *x16 = bf16_poisoned(x.n);
    cpu->vision_embed_forward(x.host, patch_out.host, cls.host, pos.host, B, NP, C);
    gpu16->vision_embed_forward(x16, patch_out16, cls.dev, pos.dev, B, NP, C);
    check_bf16_exact("vision_embed_forward bf16", x16, x.host, x.n);

    const int V = 300, Tt = 23;
    int ids_host[B * Tt];
    for (int i = 0; i < B * Tt; i++)
        ids_host[i] = (int)rng_below(&gpu_test_rng, V);
    IntPair ids = int_pair(ids_host, (size_t)B * Tt);
    Pair tok = pair_random((size_t)V * C, 1.0), tpos = pair_random((size_t)Tt * C, 1.0);
    Pair tx = pair_poisoned((size_t)B * Tt * C);
    __nv_bfloat16 *tx16 = bf16_poisoned(tx.n);
    cpu->token_embed_forward(tx.host, ids.host, tok.host, tpos.host, B, Tt, C);
    gpu16->token_embed_forward(tx16, ids.dev, tok.dev, tpos.dev, B, Tt, C);
    check_bf16_exact("token_embed_forward bf16", tx16, tx.host, tx.n);

    int rows_host[B] = {22, 0, 5};
    IntPair rows = int_pair(rows_host, B);
    Pair seq = pair_random((size_t)B * Tt * C, 1.0), pooled = pair_poisoned((size_t)B * C);
    __nv_bfloat16 *seq16 = pair_to_bf16(seq), *pooled16 = bf16_poisoned(pooled.n);
    cpu->gather_rows(pooled.host, seq.host, rows.host, B, Tt, C);
    gpu16->gather_rows(pooled16, seq16, rows.dev, B, Tt, C);
    check_bf16_exact("gather_rows bf16", pooled16, pooled.host, pooled.n);

    BF16_FREE(patches16, patch_out16, x16, tx16, seq16, pooled16);
    int_pair_free(ids), int_pair_free(rows);
    PAIRS_FREE(images, patches, patch_out, cls, pos, x, tok, tpos, tx, seq, pooled);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_vision_embed);
    RUN_TEST(test_token_embed);
    RUN_TEST(test_rows);
    RUN_TEST(test_embed_bf16);
    return test_summary();
}
