/*
 * test_l2norm.cu: row L2 normalisation (kernels/l2norm.cuh) against the CPU op, forward and
 * backward, on the feature shape [N, 512].
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, check_scaled, TOL, gpu_test_init */

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

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_l2norm);
    return test_summary();
}
