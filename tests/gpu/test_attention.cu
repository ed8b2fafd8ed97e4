/*
 * test_attention.cu: multi-head self-attention (kernels/attention.cuh) against the CPU op,
 * forward and backward, causal or not, over CLIP's sequence lengths and head sizes, both the
 * resident and the streamed (tiled) K/V paths; its bf16 instantiation; and the determinism
 * of its backward (two runs, the same bits).
 *
 * bf16: qkv, out and att are bf16, the gradients and the datt scratch fp32. qkv is rounded to
 * bf16 on both sides; out and att carry bf16 rounding (atol 2^-8 of their scale + rtol
 * 2^-7). The CPU backward reads the very att the kernel saved (its bf16 values), so the
 * gradient, accumulated in fp32 into random prior values, meets the fp32 tolerance TOL.
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, check_scaled, bf16_upload, gpu_test_init */
#include "kernels/attention.cuh"

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
    PAIRS_FREE(qkv, out, att, dout, dqkv, datt);
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
        Pair qkv = pair_random(nqkv, 1.0), out = pair_poisoned(nout), att = pair_poisoned(natt);
        __nv_bfloat16 *qkv16 = pair_to_bf16(qkv);
        __nv_bfloat16 *out16 = bf16_poisoned(nout), *att16 = bf16_poisoned(natt);
        cpu->attention_forward(out.host, att.host, qkv.host, B, T, C, NH, causal);
        gpu16->attention_forward(out16, att16, qkv16, B, T, C, NH, causal);
        check_bf16(causal ? "attention bf16 out causal" : "attention bf16 out", out16, out.host, nout);
        check_bf16(causal ? "attention bf16 att causal" : "attention bf16 att", att16, att.host, natt);
        float *got_att = bf16_download(att16, natt);

        /* the backward from the att the kernel saved, on both sides */
        memcpy(att.host, got_att, sizeof(float) * natt);
        Pair dout = pair_random(nout, 1.0), dqkv = pair_random(nqkv, 1.0);
        Pair datt = pair_poisoned(natt);
        cpu->attention_backward(dqkv.host, datt.host, dout.host, qkv.host, att.host, B, T, C, NH,
                                causal);
        gpu16->attention_backward(dqkv.dev, datt.dev, dout.dev, qkv16, att16, B, T, C, NH, causal);
        check_scaled(causal ? "attention bf16 dqkv causal" : "attention bf16 dqkv", dqkv, TOL);
        free(got_att);
        BF16_FREE(qkv16, out16, att16);
        PAIRS_FREE(qkv, out, att, dout, dqkv, datt);
    }
}

/* attention's dK/dV sum over query rows: two runs from the same inputs, the same bits */
static void test_attention_determinism(void) {
    const int B = quick ? 1 : 4, T = 77, NH = quick ? 2 : 8, hs = 64, C = NH * hs, N = B * T;
    Pair qkv = pair_random((size_t)N * 3 * C, 1.0), dout = pair_random((size_t)N * C, 1.0);
    Pair att = pair_poisoned((size_t)B * NH * T * T), out = pair_poisoned((size_t)N * C);
    Pair datt = pair_poisoned(att.n);
    gpu->attention_forward(out.dev, att.dev, qkv.dev, B, T, C, NH, 1);
    Pair dqkv[2] = {pair_alloc(qkv.n), pair_alloc(qkv.n)};
    for (int r = 0; r < 2; r++)
        gpu->attention_backward(dqkv[r].dev, datt.dev, dout.dev, qkv.dev, att.dev, B, T, C, NH, 1);
    check_same_bits("attention dqkv", dqkv[0], dqkv[1]);
    PAIRS_FREE(qkv, dout, att, out, datt, dqkv[0], dqkv[1]);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_attention);
    RUN_TEST(test_attention_bf16);
    RUN_TEST(test_attention_determinism);
    return test_summary();
}
