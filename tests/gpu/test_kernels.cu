/*
 * test_kernels.cu: every CUDA op against the CPU backend's op (the oracle), on fresh random
 * inputs, with overwritten outputs poisoned (NaN) and accumulated gradients pre-filled with
 * random values (gpu_test_util.h). Then the bf16 instantiations of LayerNorm and attention,
 * and the determinism promise (two runs, the same bits).
 *
 * Tolerances (fp32): the CPU accumulates in double, the GPU in float, in another order.
 * A sum of K terms then differs by about sqrt(K) float ulps of the terms' size, so most
 * checks are "scaled": |gpu - cpu| <= tol * (max |cpu| over the tensor) + tol * |cpu|, with
 * tol = 1e-5 (about 100 float ulps), well below any formula error. Elementwise ops use
 * atol 1e-6 + rtol 1e-5 (float erff/expf against double erf/exp). The token-embedding
 * gradient must match bit for bit (same order of float adds as the CPU).
 *
 * Needs a GPU; built by `make cuda`, run by bench/gpu.sh. `test_kernels quick` runs a
 * few shapes per family (for compute-sanitizer, which slows kernels 10-100x).
 */
#include <stdio.h>
#include <stdlib.h>

#include "gpu_test_util.h"
#include "kernels/attention.cuh"
#include "kernels/layernorm.cuh"

#define TOL 1e-5

static const Backend *cpu, *gpu;
/* `test_kernels quick` (for the slow compute-sanitizer runs) keeps one shape per family
 * where the full run sweeps many */
static int quick;

static int check_scaled(const char *what, Pair p, double tol) {
    return pair_check(what, p, tol * max_abs(p.host, p.n), tol);
}

/* ---------------------------------------------------------------- linear layers */

static void matmul_case(int N, int IC, int OC, int with_bias) {
    char what[96];
    Pair inp = pair_random((size_t)N * IC, 1.0), w = pair_random((size_t)OC * IC, 0.05);
    Pair bias = pair_random((size_t)OC, 1.0), out = pair_poisoned((size_t)N * OC);
    cpu->matmul_forward(out.host, inp.host, w.host, with_bias ? bias.host : NULL, N, IC, OC);
    gpu->matmul_forward(out.dev, inp.dev, w.dev, with_bias ? bias.dev : NULL, N, IC, OC);
    snprintf(what, sizeof what, "matmul_forward N=%d IC=%d OC=%d bias=%d", N, IC, OC, with_bias);
    check_scaled(what, out, TOL);

    Pair dout = pair_random((size_t)N * OC, 1.0);
    Pair dinp = pair_random((size_t)N * IC, 1.0), dw = pair_random((size_t)OC * IC, 1.0);
    Pair db = pair_random((size_t)OC, 1.0);
    cpu->matmul_backward(dinp.host, dw.host, with_bias ? db.host : NULL, dout.host, inp.host,
                         w.host, N, IC, OC);
    gpu->matmul_backward(dinp.dev, dw.dev, with_bias ? db.dev : NULL, dout.dev, inp.dev, w.dev, N,
                         IC, OC);
    snprintf(what, sizeof what, "matmul_backward dinp N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, dinp, TOL);
    snprintf(what, sizeof what, "matmul_backward dweight N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, dw, TOL);
    snprintf(what, sizeof what, "matmul_backward dbias N=%d IC=%d OC=%d", N, IC, OC);
    check_scaled(what, db, TOL);
    Pair all[] = {inp, w, bias, out, dout, dinp, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pair_free(all[i]);
}

static void test_matmul(void) {
    matmul_case(7, 40, 72, 1);
    if (quick)
        return;
    matmul_case(231, 512, 1536, 1); /* 3 texts x 77 tokens into the qkv projection */
    matmul_case(1001, 768, 512, 0); /* the visual projection, no bias */
    matmul_case(600, 3072, 768, 1); /* c_proj: K = 3072 */
}

/* ---------------------------------------------------------------- layer norm */

static void layernorm_case(int N, int C) {
    char what[96];
    Pair inp = pair_random((size_t)N * C, 2.0), w = pair_random((size_t)C, 1.0);
    Pair b = pair_random((size_t)C, 1.0);
    for (size_t i = 0; i < inp.n; i++)
        inp.host[i] += 3.0f; /* a mean far from 0 */
    pair_upload(inp);
    Pair out = pair_poisoned((size_t)N * C), mean = pair_poisoned((size_t)N);
    Pair rstd = pair_poisoned((size_t)N);
    cpu->layernorm_forward(out.host, mean.host, rstd.host, inp.host, w.host, b.host, N, C);
    gpu->layernorm_forward(out.dev, mean.dev, rstd.dev, inp.dev, w.dev, b.dev, N, C);
    snprintf(what, sizeof what, "layernorm_forward out N=%d C=%d", N, C);
    check_scaled(what, out, TOL);
    snprintf(what, sizeof what, "layernorm_forward mean N=%d C=%d", N, C);
    check_scaled(what, mean, TOL);
    snprintf(what, sizeof what, "layernorm_forward rstd N=%d C=%d", N, C);
    check_scaled(what, rstd, TOL);

    Pair dout = pair_random((size_t)N * C, 1.0), dinp = pair_random((size_t)N * C, 1.0);
    Pair dw = pair_random((size_t)C, 1.0), db = pair_random((size_t)C, 1.0);
    cpu->layernorm_backward(dinp.host, dw.host, db.host, dout.host, inp.host, w.host, mean.host,
                            rstd.host, N, C);
    gpu->layernorm_backward(dinp.dev, dw.dev, db.dev, dout.dev, inp.dev, w.dev, mean.dev, rstd.dev,
                            N, C);
    snprintf(what, sizeof what, "layernorm_backward dinp N=%d C=%d", N, C);
    check_scaled(what, dinp, TOL);
    snprintf(what, sizeof what, "layernorm_backward dweight N=%d C=%d", N, C);
    check_scaled(what, dw, TOL);
    snprintf(what, sizeof what, "layernorm_backward dbias N=%d C=%d", N, C);
    check_scaled(what, db, TOL);
    /* NULL gradients are skipped: dinp alone must leave nothing else touched */
    cpu->layernorm_backward(dinp.host, NULL, NULL, dout.host, inp.host, w.host, mean.host,
                            rstd.host, N, C);
    gpu->layernorm_backward(dinp.dev, NULL, NULL, dout.dev, inp.dev, w.dev, mean.dev, rstd.dev, N,
                            C);
    snprintf(what, sizeof what, "layernorm_backward dinp only N=%d C=%d", N, C);
    check_scaled(what, dinp, TOL);
    Pair all[] = {inp, w, b, out, mean, rstd, dout, dinp, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pair_free(all[i]);
}

static void test_layernorm(void) {
    int widths[] = {40, 512, 768, 1024, 2048};
    int rows[] = {1, 7, 1001};
    if (quick) {
        layernorm_case(7, 40);
        layernorm_case(33, 768);
        return;
    }
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
            layernorm_case(rows[r], widths[w]);
    layernorm_case(25600, 768); /* a ViT-B/32 batch of 512 x 50 tokens: 100 column chunks */
}

/* bf16 I/O: inputs rounded to bf16 on both sides; the CPU computes in fp32 from them. */
static void test_layernorm_bf16(void) {
    const int N = 333, C = 768;
    size_t n = (size_t)N * C;
    Pair inp = pair_random(n, 2.0), w = pair_random((size_t)C, 1.0),
         b = pair_random((size_t)C, 1.0);
    Pair dout = pair_random(n, 1.0);
    for (size_t i = 0; i < n; i++) {
        inp.host[i] = bf16_round(inp.host[i] + 1.0f);
        dout.host[i] = bf16_round(dout.host[i]);
    }
    __nv_bfloat16 *inp16 = bf16_upload(inp.host, n), *dout16 = bf16_upload(dout.host, n);
    __nv_bfloat16 *out16 = bf16_poisoned(n);
    Pair out = pair_poisoned(n), mean = pair_poisoned((size_t)N), rstd = pair_poisoned((size_t)N);
    cpu->layernorm_forward(out.host, mean.host, rstd.host, inp.host, w.host, b.host, N, C);
    layernorm_forward<__nv_bfloat16>(out16, mean.dev, rstd.dev, inp16, w.dev, b.dev, N, C, 0);
    float *got = bf16_download(out16, n);
    /* atol: 2^-8 of the output scale covers values near 0 after the bf16 rounding */
    harness_allclose("layernorm bf16 out", got, out.host, n, max_abs(out.host, n) / 256, BF16_RTOL);
    free(got);
    check_scaled("layernorm bf16 mean (fp32)", mean, TOL);
    check_scaled("layernorm bf16 rstd (fp32)", rstd, TOL);

    /* backward: dinp starts at 0 (exact in bf16) so only the new gradient is rounded */
    Pair dinp = pair_alloc(n), dw = pair_random((size_t)C, 1.0), db = pair_random((size_t)C, 1.0);
    memset(dinp.host, 0, sizeof(float) * n);
    __nv_bfloat16 *dinp16 = bf16_upload(dinp.host, n);
    cpu->layernorm_backward(dinp.host, dw.host, db.host, dout.host, inp.host, w.host, mean.host,
                            rstd.host, N, C);
    layernorm_backward<__nv_bfloat16>(dinp16, dw.dev, db.dev, dout16, inp16, w.dev, mean.dev,
                                      rstd.dev, N, C, 0);
    got = bf16_download(dinp16, n);
    harness_allclose("layernorm bf16 dinp", got, dinp.host, n, max_abs(dinp.host, n) / 256,
                     BF16_RTOL);
    free(got);
    check_scaled("layernorm bf16 dweight (fp32)", dw, 1e-4);
    check_scaled("layernorm bf16 dbias (fp32)", db, 1e-4);
    cudaCheck(cudaFree(inp16));
    cudaCheck(cudaFree(dout16));
    cudaCheck(cudaFree(out16));
    cudaCheck(cudaFree(dinp16));
    Pair all[] = {inp, w, b, dout, out, mean, rstd, dinp, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pair_free(all[i]);
}

/* ---------------------------------------------------------------- attention */

static void attention_case(int B, int T, int NH, int hs, int causal) {
    char what[128];
    int C = NH * hs;
    size_t nqkv = (size_t)B * T * 3 * C, natt = (size_t)B * NH * T * T, nout = (size_t)B * T * C;
    Pair qkv = pair_random(nqkv, 1.0), out = pair_poisoned(nout), att = pair_poisoned(natt);
    cpu->attention_forward(out.host, att.host, qkv.host, B, T, C, NH, causal);
    gpu->attention_forward(out.dev, att.dev, qkv.dev, B, T, C, NH, causal);
    snprintf(what, sizeof what, "attention_forward out B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH,
             hs, causal);
    check_scaled(what, out, TOL);
    snprintf(what, sizeof what, "attention_forward att B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH,
             hs, causal);
    check_scaled(what, att, TOL);

    Pair dout = pair_random(nout, 1.0), dqkv = pair_random(nqkv, 1.0);
    Pair datt = pair_poisoned(natt); /* scratch: poisoned so a read-before-write shows */
    cpu->attention_backward(dqkv.host, datt.host, dout.host, qkv.host, att.host, B, T, C, NH,
                            causal);
    gpu->attention_backward(dqkv.dev, datt.dev, dout.dev, qkv.dev, att.dev, B, T, C, NH, causal);
    snprintf(what, sizeof what, "attention_backward dqkv B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH,
             hs, causal);
    check_scaled(what, dqkv, TOL);
    Pair all[] = {qkv, out, att, dout, dqkv, datt};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pair_free(all[i]);
}

static void test_attention(void) {
    int lengths[] = {50, 77, 197, 257};
    int head_dims[] = {32, 64, 128};
    if (quick) {
        attention_case(1, 50, 2, 64, 0);
        attention_case(1, 77, 2, 64, 1);
        attention_case(1, 257, 1, 128, 0);
        return;
    }
    for (size_t t = 0; t < sizeof lengths / sizeof *lengths; t++)
        for (size_t h = 0; h < sizeof head_dims / sizeof *head_dims; h++)
            for (int causal = 0; causal <= 1; causal++)
                attention_case(2, lengths[t], 2, head_dims[h], causal);
    attention_case(3, 1, 3, 8, 1); /* one token, tiny heads (the CPU tests' model) */
    attention_case(1, 13, 4, 16, 0);
    /* past 227 KB even a 32-row tile cannot hold K whole: the streamed ("tiled") path */
    AttentionPlan plan = attention_plan(1, 1024, 1, 64, device_smem_optin());
    CHECK(plan.ok && !plan.resident, "T=1024 hs=64 should take the tiled path");
    attention_case(1, 1024, 1, 64, 0);
    attention_case(1, 1024, 1, 64, 1);
}

static void test_attention_bf16(void) {
    const int B = quick ? 1 : 2, T = 77, NH = quick ? 2 : 4, hs = 64, C = NH * hs;
    for (int causal = 0; causal <= 1; causal++) {
        size_t nqkv = (size_t)B * T * 3 * C, natt = (size_t)B * NH * T * T,
               nout = (size_t)B * T * C;
        Pair qkv = pair_random(nqkv, 1.0), dout = pair_random(nout, 1.0);
        for (size_t i = 0; i < nqkv; i++)
            qkv.host[i] = bf16_round(qkv.host[i]);
        for (size_t i = 0; i < nout; i++)
            dout.host[i] = bf16_round(dout.host[i]);
        Pair out = pair_poisoned(nout), att = pair_poisoned(natt), datt = pair_poisoned(natt);
        Pair dqkv = pair_alloc(nqkv);
        memset(dqkv.host, 0, sizeof(float) * nqkv);
        cpu->attention_forward(out.host, att.host, qkv.host, B, T, C, NH, causal);
        cpu->attention_backward(dqkv.host, datt.host, dout.host, qkv.host, att.host, B, T, C, NH,
                                causal);
        __nv_bfloat16 *qkv16 = bf16_upload(qkv.host, nqkv), *dout16 = bf16_upload(dout.host, nout);
        __nv_bfloat16 *out16 = bf16_poisoned(nout), *att16 = bf16_poisoned(natt);
        __nv_bfloat16 *dqkv16 = bf16_upload(dqkv.host, nqkv); /* zeros */
        float *datt32 = NULL;
        cudaCheck(cudaMalloc(&datt32, sizeof(float) * natt));
        attention_forward<__nv_bfloat16>(out16, att16, qkv16, B, T, C, NH, causal, 0);
        attention_backward<__nv_bfloat16>(dqkv16, datt32, dout16, qkv16, att16, B, T, C, NH, causal,
                                          0);
        float *got_out = bf16_download(out16, nout), *got_att = bf16_download(att16, natt);
        float *got_dqkv = bf16_download(dqkv16, nqkv);
        /* atol 2^-8 of each tensor's scale: bf16 rounding of small values near zero */
        harness_allclose(causal ? "attention bf16 out causal" : "attention bf16 out", got_out,
                         out.host, nout, max_abs(out.host, nout) / 256, BF16_RTOL);
        harness_allclose(causal ? "attention bf16 att causal" : "attention bf16 att", got_att,
                         att.host, natt, max_abs(att.host, natt) / 256, BF16_RTOL);
        /* the backward reads the bf16-rounded att, so its error is a few bf16 ulps */
        harness_allclose(causal ? "attention bf16 dqkv causal" : "attention bf16 dqkv", got_dqkv,
                         dqkv.host, nqkv, max_abs(dqkv.host, nqkv) / 64, BF16_RTOL);
        free(got_out), free(got_att), free(got_dqkv);
        __nv_bfloat16 *dev16[] = {qkv16, dout16, out16, att16, dqkv16};
        for (size_t i = 0; i < sizeof dev16 / sizeof *dev16; i++)
            cudaCheck(cudaFree(dev16[i]));
        cudaCheck(cudaFree(datt32));
        Pair all[] = {qkv, dout, out, att, datt, dqkv};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            pair_free(all[i]);
    }
}

/* ---------------------------------------------------------------- elementwise */

static void test_elementwise(void) {
    const size_t n = 1000003; /* prime: no multiple of any block or vector size */
    for (int act = ACT_QUICK_GELU; act <= ACT_GELU; act++) {
        Pair inp = pair_random(n, 3.0), out = pair_poisoned(n);
        cpu->activation_forward(out.host, inp.host, n, (ActKind)act);
        gpu->activation_forward(out.dev, inp.dev, n, (ActKind)act);
        pair_check(act == ACT_GELU ? "gelu forward" : "quick_gelu forward", out, 1e-6, 1e-5);
        Pair dout = pair_random(n, 1.0), dinp = pair_random(n, 1.0);
        cpu->activation_backward(dinp.host, inp.host, dout.host, n, (ActKind)act);
        gpu->activation_backward(dinp.dev, inp.dev, dout.dev, n, (ActKind)act);
        pair_check(act == ACT_GELU ? "gelu backward" : "quick_gelu backward", dinp, 1e-6, 1e-5);
        pair_free(inp), pair_free(out), pair_free(dout), pair_free(dinp);
    }
    Pair a = pair_random(n, 1.0), b = pair_random(n, 1.0), out = pair_poisoned(n);
    cpu->residual_forward(out.host, a.host, b.host, n);
    gpu->residual_forward(out.dev, a.dev, b.dev, n);
    pair_check_exact("residual_forward", out);
    cpu->accumulate(a.host, b.host, n);
    gpu->accumulate(a.dev, b.dev, n);
    pair_check_exact("accumulate", a);
    cpu->scale(b.host, -0.37f, n);
    gpu->scale(b.dev, -0.37f, n);
    pair_check_exact("scale", b);
    pair_free(a), pair_free(b), pair_free(out);
}

/* ---------------------------------------------------------------- embeddings, pooling */

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
    Pair all[] = {images, patches, patch_out, cls, pos, x, dx, dpatch, dcls, dpos};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pair_free(all[i]);
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
    Pair all[] = {tok, pos, x, dx, dtok, dpos};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pair_free(all[i]);
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

/* ---------------------------------------------------------------- L2 norm, loss, optimizer */

static void test_l2norm(void) {
    const int N = 1537, D = 512;
    Pair inp = pair_random((size_t)N * D, 1.0), out = pair_poisoned((size_t)N * D);
    Pair norm = pair_poisoned((size_t)N);
    cpu->l2norm_forward(out.host, norm.host, inp.host, N, D);
    gpu->l2norm_forward(out.dev, norm.dev, inp.dev, N, D);
    check_scaled("l2norm_forward out", out, TOL);
    check_scaled("l2norm_forward norm", norm, TOL);
    Pair dout = pair_random((size_t)N * D, 1.0), dinp = pair_random((size_t)N * D, 1.0);
    cpu->l2norm_backward(dinp.host, dout.host, out.host, norm.host, N, D);
    gpu->l2norm_backward(dinp.dev, dout.dev, out.dev, norm.dev, N, D);
    check_scaled("l2norm_backward", dinp, TOL);
    pair_free(inp), pair_free(out), pair_free(norm), pair_free(dout), pair_free(dinp);
}

/* TNG's shape: each image has 3 texts; some images pick one text, the rest the mean.
 * The call is the block of a global batch of Ni * ranks images that rank `rank` computes
 * (InfonceTerms): with ranks == 1 the whole matrix; otherwise `rows` selects image->text on
 * [its images x all texts], else text->image on [all images x its texts]. With `contra`,
 * each image's first text is a contradiction negative (txt2img -1) of weight 0.5; with
 * `each`, the mean-target rows use terms.i2t_each. */
static void infonce_case(int Ni, int per_image, float scale, int ranks, int rank, int rows,
                         int contra, int each) {
    char what[128];
    int Ni_g = Ni * ranks, scored_per_image = per_image - (contra ? 1 : 0);
    int Nt_g = Ni_g * scored_per_image;
    InfonceTerms terms = infonce_whole(Ni, Ni * scored_per_image);
    int block_Ni = Ni, block_Nt = Ni * per_image, first_text = 0;
    if (ranks > 1) {
        terms = InfonceTerms{rows, !rows, rows ? rank * Ni : 0, Ni_g, Nt_g, 0.0f, 0};
        block_Ni = rows ? Ni : Ni_g;
        block_Nt = rows ? Nt_g : Ni * per_image;
        first_text = rows ? 0 : rank * Ni * per_image;
    }
    if (contra)
        terms.negative_log_weight = logf(0.5f);
    terms.i2t_each = each;
    int *txt2img = (int *)mallocCheck(sizeof(int) * block_Nt),
        *target = (int *)mallocCheck(sizeof(int) * block_Ni);
    for (int t = 0; t < block_Nt; t++)
        txt2img[t] = contra && (first_text + t) % per_image == 0 ? -1 /* targets skip text 0 */
                                                                 : (first_text + t) / per_image;
    for (int i = 0; i < block_Ni; i++) {
        int g = terms.first_image + i;
        int pick = contra ? 1 + g % (per_image - 1) : g % per_image; /* never a -1 text */
        target[i] = g % 3 == 0 ? -1 : g * per_image + pick;
    }
    IntPair t2i = int_pair(txt2img, block_Nt), i2t = int_pair(target, block_Ni);
    Pair cos = pair_random_away_from_zero((size_t)block_Ni * block_Nt);
    for (size_t k = 0; k < cos.n; k++)
        cos.host[k] *= 0.4f; /* |cos| in [0.2, 0.6) */
    pair_upload(cos);
    Pair stats = pair_poisoned(INFONCE_NSTATS);
    /* in place, as the model calls it: dcos overwrites cos */
    cpu->infonce_forward_backward(cos.host, stats.host, cos.host, t2i.host, i2t.host, scale,
                                  block_Ni, block_Nt, &terms);
    gpu->infonce_forward_backward(cos.dev, stats.dev, cos.dev, t2i.dev, i2t.dev, scale, block_Ni,
                                  block_Nt, &terms);
    const char *kind = ranks == 1 ? "whole" : rows ? "row block" : "column block";
    snprintf(what, sizeof what, "infonce dcos %d x %d scale %g (%s%s%s)", block_Ni, block_Nt, scale,
             kind, contra ? ", contradictions" : "", each ? ", each" : "");
    check_scaled(what, cos, TOL);
    snprintf(what, sizeof what, "infonce stats %d x %d scale %g (%s%s%s)", block_Ni, block_Nt, scale,
             kind, contra ? ", contradictions" : "", each ? ", each" : "");
    pair_check(what, stats, 1e-6, TOL);
    free(txt2img), free(target);
    int_pair_free(t2i), int_pair_free(i2t);
    pair_free(cos), pair_free(stats);
}

static void test_infonce(void) {
    for (int each = 0; each <= 1; each++)
        for (int contra = 0; contra <= 1; contra++) {
            infonce_case(5, 3, 14.285714f, 1, 0, 0, contra, each);
            infonce_case(5, 3, 14.285714f, 3, 1, 1, contra, each); /* rank 1 of 3: its rows */
            infonce_case(5, 3, 14.285714f, 3, 1, 0, contra, each);
        }
    if (quick)
        return;
    infonce_case(1024, 3, 14.285714f, 1, 0, 0, 0, 0); /* the 1024 x 3072 of a TNG batch */
    infonce_case(1024, 4, 14.285714f, 1, 0, 0, 1, 0); /* the same with one contradiction each */
    infonce_case(1024, 4, 14.285714f, 1, 0, 0, 1, 1); /* ... each positive against the negatives */
    infonce_case(333, 1, 100.0f, 1, 0, 0, 0, 0);      /* plain CLIP, the largest logit scale */
    infonce_case(256, 3, 14.285714f, 8, 5, 1, 0, 0);  /* 8 ranks of 256: 256 x 6144 */
    infonce_case(256, 3, 14.285714f, 8, 5, 0, 0, 0);  /* 2048 x 768 */
}

static void test_adamw_and_sum_squares(void) {
    const size_t n = 1000003;
    Pair param = pair_random(n, 0.1), grad = pair_random(n, 0.01);
    Pair m = pair_random(n, 0.001), v = pair_random_away_from_zero(n);
    for (size_t i = 0; i < n; i++)
        v.host[i] = v.host[i] * v.host[i] * 1e-4f;
    pair_upload(v);
    AdamWStep hp = {1e-3f, 0.9f, 0.98f, 1e-6f, 0.2f, 1 - 0.9f * 0.9f, 1 - 0.98f * 0.98f, 0.5f};
    cpu->adamw_update(param.host, grad.host, m.host, v.host, n, &hp);
    gpu->adamw_update(param.dev, grad.dev, m.dev, v.dev, n, &hp);
    /* the same float/double operations in the same order: a few ulps at most */
    pair_check("adamw param", param, 1e-9, 1e-6);
    pair_check("adamw m", m, 1e-12, 1e-6);
    pair_check("adamw v", v, 1e-14, 1e-6);
    double want = cpu->sum_squares(grad.host, n), got = gpu->sum_squares(grad.dev, n);
    /* both sum exact double squares, in different orders */
    CHECK(fabs(got - want) <= 1e-11 * want, "sum_squares %.17g vs %.17g", got, want);
    double again = gpu->sum_squares(grad.dev, n);
    CHECK(memcmp(&got, &again, sizeof got) == 0, "sum_squares not deterministic");
    CHECK(gpu->sum_squares(grad.dev, 0) == 0.0, "sum_squares of nothing");
    pair_free(param), pair_free(grad), pair_free(m), pair_free(v);
}

/* ---------------------------------------------------------------- determinism */

/* The reductions that could vary (column sums, attention's dK/dV, the loss) run twice from
 * the same inputs and must give the same bits. */
static void test_determinism(void) {
    const int B = quick ? 1 : 4, T = 77, NH = quick ? 2 : 8, hs = 64, C = NH * hs, N = B * T;
    Pair qkv = pair_random((size_t)N * 3 * C, 1.0), dout = pair_random((size_t)N * C, 1.0);
    Pair att = pair_poisoned((size_t)B * NH * T * T), out = pair_poisoned((size_t)N * C);
    Pair datt = pair_poisoned(att.n), ln_w = pair_random((size_t)C, 1.0);
    Pair mean = pair_random((size_t)N, 1.0), rstd = pair_random_away_from_zero((size_t)N);
    gpu->attention_forward(out.dev, att.dev, qkv.dev, B, T, C, NH, 1);
    float *runs[2][3];
    for (int r = 0; r < 2; r++) {
        Pair dqkv = pair_alloc(qkv.n), dw = pair_alloc((size_t)C), db = pair_alloc((size_t)C);
        gpu->attention_backward(dqkv.dev, datt.dev, dout.dev, qkv.dev, att.dev, B, T, C, NH, 1);
        gpu->layernorm_backward(NULL, dw.dev, db.dev, dout.dev, out.dev, ln_w.dev, mean.dev,
                                rstd.dev, N, C);
        runs[r][0] = pair_download(dqkv);
        runs[r][1] = pair_download(dw);
        runs[r][2] = pair_download(db);
        pair_free(dqkv), pair_free(dw), pair_free(db);
    }
    CHECK(memcmp(runs[0][0], runs[1][0], sizeof(float) * qkv.n) == 0, "attention dqkv differs");
    CHECK(memcmp(runs[0][1], runs[1][1], sizeof(float) * C) == 0, "layernorm dweight differs");
    CHECK(memcmp(runs[0][2], runs[1][2], sizeof(float) * C) == 0, "layernorm dbias differs");
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++)
            free(runs[r][k]);
    Pair all[] = {qkv, dout, att, out, datt, ln_w, mean, rstd};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        pair_free(all[i]);
}

int main(int argc, char **argv) {
    quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    rng_seed(&gpu_test_rng, 20261129);
    cpu = backend_cpu();
    gpu = backend_cuda();
    RUN_TEST(test_matmul);
    RUN_TEST(test_layernorm);
    RUN_TEST(test_layernorm_bf16);
    RUN_TEST(test_attention);
    RUN_TEST(test_attention_bf16);
    RUN_TEST(test_elementwise);
    RUN_TEST(test_vision_embed);
    RUN_TEST(test_token_embed);
    RUN_TEST(test_rows);
    RUN_TEST(test_l2norm);
    RUN_TEST(test_infonce);
    RUN_TEST(test_adamw_and_sum_squares);
    RUN_TEST(test_determinism);
    return test_summary();
}
