/*
 * test_l2norm.cu: row L2 normalisation (kernels/l2norm.cuh) against the CPU op, forward and
 * backward, on the feature shape [N, 512]; and the bf16 backend's forward, which reads a bf16
 * projection (rounded on both sides) and writes fp32 features: TOL.
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

static void test_l2norm_bf16(void) {
    const int N = quick ? 67 : 1537, D = 512;
    Pair inp = pair_random((size_t)N * D, 1.0), out = pair_poisoned((size_t)N * D);
    Pair norm = pair_poisoned((size_t)N);
    __nv_bfloat16 *inp16 = pair_to_bf16(inp);
    cpu->l2norm_forward(out.host, norm.host, inp.host, N, D);
    gpu16->l2norm_forward(out.dev, norm.dev, inp16, N, D);
    check_scaled("l2norm_forward bf16 out", out, TOL);
    check_scaled("l2norm_forward bf16 norm", norm, TOL);
    cudaCheck(cudaFree(inp16));
    PAIRS_FREE(inp, out, norm);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_l2norm);
    RUN_TEST(test_l2norm_bf16);
    return test_summary();
}
