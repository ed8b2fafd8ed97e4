/*
 * test_matmul.cu: the linear layer (kernels/matmul.cuh: cuBLAS SGEMM, the bias kernel, the
 * bias gradient's column sum) against the CPU op, forward and backward, with and without
 * bias, up to the K = 3072 of c_proj.
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, check_scaled, TOL, gpu_test_init */

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
    PAIRS_FREE(inp, w, bias, out, dout, dinp, dw, db);
}

static void test_matmul(void) {
    matmul_case(7, 40, 72, 1);
    if (quick)
        return;
    matmul_case(231, 512, 1536, 1); /* 3 texts x 77 tokens into the qkv projection */
    matmul_case(1001, 768, 512, 0); /* the visual projection, no bias */
    matmul_case(600, 3072, 768, 1); /* c_proj: K = 3072 */
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_matmul);
    return test_summary();
}
