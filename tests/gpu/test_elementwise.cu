/*
 * test_elementwise.cu: the elementwise ops (kernels/elementwise.cuh) against the CPU op:
 * GELU and QuickGELU forward and backward (float erff/expf against double erf/exp: atol 1e-6
 * + rtol 1e-5; the backward overwrites, and can take the bias gradient of the layer before:
 * that column sum within TOL), and the residual add, accumulate and scale, which must match bit
 * for bit;
 * then the bf16 backend's: bf16 activations in and out (inputs rounded to bf16 on both
 * sides), fp32 gradients. A residual add of two bf16 values is exact in fp32, so its bf16
 * result is the CPU's rounded, bit for bit; so is the fp32 -> bf16 cast (to_act).
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, pair_check_exact, gpu_test_init */

static void test_elementwise(void) {
    /* prime: no multiple of any block or vector size (quick: a smaller prime) */
    const size_t n = quick ? 100003 : 1000003;
    for (int act = ACT_QUICK_GELU; act <= ACT_GELU; act++) {
        Pair inp = pair_random(n, 3.0), out = pair_poisoned(n);
        cpu->activation_forward(out.host, inp.host, n, (ActKind)act);
        gpu->activation_forward(out.dev, inp.dev, n, (ActKind)act);
        pair_check(act == ACT_GELU ? "gelu forward" : "quick_gelu forward", out, 1e-6, 1e-5);
        Pair dout = pair_random(n, 1.0), dinp = pair_poisoned(n); /* overwritten */
        cpu->activation_backward(dinp.host, NULL, inp.host, dout.host, 1, (int)n, (ActKind)act);
        gpu->activation_backward(dinp.dev, NULL, inp.dev, dout.dev, 1, (int)n, (ActKind)act);
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

static void test_elementwise_bf16(void) {
    const size_t n = quick ? 10007 : 100003;
    for (int act = ACT_QUICK_GELU; act <= ACT_GELU; act++) {
        Pair inp = pair_random(n, 3.0), out = pair_poisoned(n);
        __nv_bfloat16 *inp16 = pair_to_bf16(inp), *out16 = bf16_poisoned(n);
        cpu->activation_forward(out.host, inp.host, n, (ActKind)act);
        gpu16->activation_forward(out16, inp16, n, (ActKind)act);
        check_bf16(act == ACT_GELU ? "gelu forward bf16" : "quick_gelu forward bf16", out16, out.host, n);
        Pair dout = pair_random(n, 1.0), dinp = pair_poisoned(n);
        cpu->activation_backward(dinp.host, NULL, inp.host, dout.host, 1, (int)n, (ActKind)act);
        gpu16->activation_backward(dinp.dev, NULL, inp16, dout.dev, 1, (int)n, (ActKind)act);
        pair_check(act == ACT_GELU ? "gelu backward bf16" : "quick_gelu backward bf16", dinp, 1e-6, 1e-5);
        BF16_FREE(inp16, out16);
        PAIRS_FREE(inp, out, dout, dinp);
    }
    Pair a = pair_random(n, 1.0), b = pair_random(n, 1.0), out = pair_poisoned(n);
    __nv_bfloat16 *a16 = pair_to_bf16(a), *b16 = pair_to_bf16(b), *out16 = bf16_poisoned(n);
    cpu->residual_forward(out.host, a.host, b.host, n);
    gpu16->residual_forward(out16, a16, b16, n);
    check_bf16_exact("residual_forward bf16", out16, out.host, n);
    Pair src = pair_random(n, 10.0);
    gpu16->to_act(out16, src.dev, n);
    check_bf16_exact("to_act bf16", out16, src.host, n);
    BF16_FREE(a16, b16, out16);
    PAIRS_FREE(a, b, out, src);
}

/* The backward that also takes the bias gradient of the layer before it: dinp overwritten
 * (poisoned first), dbias accumulated into random prior values, fp32 and bf16 inputs. */
static void test_activation_backward_bias(void) {
    const int N = quick ? 77 : 1001, C = quick ? 200 : 3072;
    size_t n = (size_t)N * C;
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        Pair inp = pair_random(n, 3.0), dout = pair_random(n, 1.0), dinp = pair_poisoned(n);
        Pair dbias = pair_random((size_t)C, 1.0);
        __nv_bfloat16 *inp16 = bf16 ? pair_to_bf16(inp) : NULL;
        cpu->activation_backward(dinp.host, dbias.host, inp.host, dout.host, N, C, ACT_QUICK_GELU);
        if (bf16)
            gpu16->activation_backward(dinp.dev, dbias.dev, inp16, dout.dev, N, C, ACT_QUICK_GELU);
        else
            gpu->activation_backward(dinp.dev, dbias.dev, inp.dev, dout.dev, N, C, ACT_QUICK_GELU);
        pair_check(bf16 ? "quick_gelu backward (bf16 input)" : "quick_gelu backward", dinp, 1e-6, 1e-5);
        check_scaled(bf16 ? "its bias gradient (bf16 input)" : "its bias gradient", dbias, TOL);
        if (inp16)
            BF16_FREE(inp16);
        PAIRS_FREE(inp, dout, dinp, dbias);
    }
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_elementwise);
    RUN_TEST(test_elementwise_bf16);
    RUN_TEST(test_activation_backward_bias);
    return test_summary();
}
