/*
 * test_elementwise.cu: the elementwise ops (kernels/elementwise.cuh) against the CPU op:
 * GELU and QuickGELU forward and backward (float erff/expf against double erf/exp: atol 1e-6
 * + rtol 1e-5), and the residual add, accumulate and scale, which must match bit for bit.
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

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_elementwise);
    return test_summary();
}
