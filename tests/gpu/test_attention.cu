/*
 * test_attention.cu: multi-head self-attention (kernels/attention.cuh and, for bf16 at head
 * size 64, the tensor-core kernels of kernels/attention_mma.cuh) against the CPU op, forward
 * (out and the saved lse) and backward, causal or not, over CLIP's sequence lengths (text
 * 17..77 after the EOT cut, vision 50, 197, 257) and head sizes, both the resident and the
 * streamed (tiled) K/V paths of the scalar kernels; and the determinism of the backward (two
 * runs, the same bits) on both paths.
 *
 * fp32: the scaled tolerance TOL. Each side's backward reads its own forward's out and lse.
 *
 * bf16: qkv and out are bf16, lse and the gradients fp32; qkv is rounded to bf16 on both
 * sides, and the CPU backward reads the out and lse the kernel saved, so each comparison
 * judges one op. out carries bf16 rounding (check_bf16: 2^-8 of its scale + 2^-7 relative).
 * lse is fp32 arithmetic on the bf16 inputs on both paths: TOL. The gradient:
 *   scalar kernels (head sizes other than 64): fp32 arithmetic, TOL;
 *   tensor cores (head size 64): dO, P and dS enter the products rounded to bf16 (2^-9
 *     relative each), so dqkv is held to the bf16 tolerance of check_bf16, 2^-8 of the
 *     tensor's scale + 2^-7 relative (measured on the emulator: 2.3e-3 of the scale, T 77 causal),
 *     which a wrong term, transpose or mask (errors of the gradient's own size) still fails.
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, check_scaled, bf16_upload, gpu_test_init */
#include "kernels/attention.cuh"

static void attention_case(int B, int T, int NH, int hs, int causal) {
    char what[128];
    int C = NH * hs;
    size_t nqkv = (size_t)B * T * 3 * C, nlse = (size_t)B * NH * T, nout = (size_t)B * T * C;
    Pair qkv = pair_random(nqkv, 1.0), out = pair_poisoned(nout), lse = pair_poisoned(nlse);
    cpu->attention_forward(out.host, lse.host, qkv.host, B, T, C, NH, causal);
    gpu->attention_forward(out.dev, lse.dev, qkv.dev, B, T, C, NH, causal);
    snprintf(what, sizeof what, "attention_forward out B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH,
             hs, causal);
    check_scaled(what, out, TOL);
    snprintf(what, sizeof what, "attention_forward lse B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH,
             hs, causal);
    check_scaled(what, lse, TOL);

    Pair dout = pair_random(nout, 1.0), dqkv = pair_poisoned(nqkv); /* overwritten */
    cpu->attention_backward(dqkv.host, dout.host, qkv.host, out.host, lse.host, B, T, C, NH, causal);
    gpu->attention_backward(dqkv.dev, dout.dev, qkv.dev, out.dev, lse.dev, B, T, C, NH, causal);
    snprintf(what, sizeof what, "attention_backward dqkv B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH,
             hs, causal);
    check_scaled(what, dqkv, TOL);
    PAIRS_FREE(qkv, out, lse, dout, dqkv);
}

static void test_attention(void) {
    int lengths[] = {17, 50, 77, 197, 257};
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
    AttentionPlan plan = attention_plan(1, 1024, 1, 64, device_smem_optin(), ATT_FORWARD);
    CHECK(plan.ok && !plan.resident, "T=1024 hs=64 should take the tiled path");
    attention_case(1, 1024, 1, 64, 0);
    attention_case(1, 1024, 1, 64, 1);
}

/* |gpu - cpu| over a Pair's elements, in units of the CPU tensor's largest magnitude */
static double worst_of_scale(Pair p) {
    float *got = pair_download(p);
    double worst = 0, scale = max_abs(p.host, p.n);
    for (size_t i = 0; i < p.n; i++)
        worst = fmax(worst, fabs((double)got[i] - p.host[i]) / scale);
    free(got);
    return worst;
}

static void attention_bf16_case(int B, int T, int NH, int hs, int causal) {
    char what[128];
    int C = NH * hs, tensor_cores = attention_mma_plan(B, T, NH, hs, ATT_FORWARD).ok;
    size_t nqkv = (size_t)B * T * 3 * C, nlse = (size_t)B * NH * T, nout = (size_t)B * T * C;
    Pair qkv = pair_random(nqkv, 1.0), out = pair_poisoned(nout), lse = pair_poisoned(nlse);
    __nv_bfloat16 *qkv16 = pair_to_bf16(qkv), *out16 = bf16_poisoned(nout);
    cpu->attention_forward(out.host, lse.host, qkv.host, B, T, C, NH, causal);
    gpu16->attention_forward(out16, lse.dev, qkv16, B, T, C, NH, causal);
    snprintf(what, sizeof what, "attention bf16 out B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH, hs,
             causal);
    check_bf16(what, out16, out.host, nout);
    snprintf(what, sizeof what, "attention bf16 lse B=%d T=%d NH=%d hs=%d causal=%d", B, T, NH, hs,
             causal);
    check_scaled(what, lse, TOL);

    /* the backward from the out and lse the kernel saved, on both sides */
    float *got_out = bf16_download(out16, nout);
    memcpy(out.host, got_out, sizeof(float) * nout);
    free(got_out);
    float *got_lse = pair_download(lse);
    memcpy(lse.host, got_lse, sizeof(float) * nlse);
    free(got_lse);
    Pair dout = pair_random(nout, 1.0), dqkv = pair_poisoned(nqkv); /* overwritten */
    cpu->attention_backward(dqkv.host, dout.host, qkv.host, out.host, lse.host, B, T, C, NH, causal);
    gpu16->attention_backward(dqkv.dev, dout.dev, qkv16, out16, lse.dev, B, T, C, NH, causal);
    snprintf(what, sizeof what, "attention bf16 dqkv B=%d T=%d NH=%d hs=%d causal=%d (%s)", B, T,
             NH, hs, causal, tensor_cores ? "tensor cores" : "scalar");
    if (tensor_cores) {
        pair_check(what, dqkv, max_abs(dqkv.host, nqkv) / 256, BF16_RTOL);
        if (T == 77 && causal)
            printf("  tensor cores, T 77 causal: dqkv within %.2e of its scale\n",
                   worst_of_scale(dqkv));
    } else {
        check_scaled(what, dqkv, TOL);
    }
    BF16_FREE(qkv16, out16);
    PAIRS_FREE(qkv, out, lse, dout, dqkv);
}

static void test_attention_bf16(void) {
    /* head size 64: the tensor cores; T 17..77 (text, one 64-row tile or two) and 197 (four
       tiles, the last one padded) */
    const int lengths[] = {17, 50, 77, 197};
    for (size_t t = 0; t < (quick ? 1 : sizeof lengths / sizeof *lengths); t++)
        for (int causal = 0; causal <= 1; causal++)
            attention_bf16_case(quick ? 1 : 2, quick ? 77 : lengths[t], quick ? 2 : 4, 64, causal);
    CHECK(attention_mma_plan(1, 77, 1, 64, ATT_FORWARD).ok, "head size 64 takes the tensor cores");
    /* other head sizes: the scalar kernels in bf16 */
    attention_bf16_case(1, 77, 2, 32, 1);
    if (!quick)
        attention_bf16_case(2, 50, 2, 128, 0);
}

/* attention's dK/dV sum over query rows: two runs from the same inputs, the same bits, on the
 * scalar (fp32) and the tensor-core (bf16, head size 64) kernels */
static void test_attention_determinism(void) {
    const int B = quick ? 1 : 4, T = 77, NH = quick ? 2 : 8, hs = 64, C = NH * hs, N = B * T;
    Pair qkv = pair_random((size_t)N * 3 * C, 1.0), dout = pair_random((size_t)N * C, 1.0);
    Pair lse = pair_poisoned((size_t)B * NH * T), out = pair_poisoned((size_t)N * C);
    __nv_bfloat16 *qkv16 = pair_to_bf16(qkv), *out16 = bf16_poisoned((size_t)N * C);
    gpu->attention_forward(out.dev, lse.dev, qkv.dev, B, T, C, NH, 1);
    Pair dqkv[2] = {pair_alloc(qkv.n), pair_alloc(qkv.n)};
    for (int r = 0; r < 2; r++) {
        cudaCheck(cudaMemset(dqkv[r].dev, 0, sizeof(float) * qkv.n));
        gpu->attention_backward(dqkv[r].dev, dout.dev, qkv.dev, out.dev, lse.dev, B, T, C, NH, 1);
    }
    check_same_bits("attention dqkv", dqkv[0], dqkv[1]);
    gpu16->attention_forward(out16, lse.dev, qkv16, B, T, C, NH, 1);
    for (int r = 0; r < 2; r++) {
        cudaCheck(cudaMemset(dqkv[r].dev, 0, sizeof(float) * qkv.n));
        gpu16->attention_backward(dqkv[r].dev, dout.dev, qkv16, out16, lse.dev, B, T, C, NH, 1);
    }
    check_same_bits("attention dqkv (tensor cores)", dqkv[0], dqkv[1]);
    BF16_FREE(qkv16, out16);
    PAIRS_FREE(qkv, dout, lse, out, dqkv[0], dqkv[1]);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_attention);
    RUN_TEST(test_attention_bf16);
    RUN_TEST(test_attention_determinism);
    return test_summary();
}
