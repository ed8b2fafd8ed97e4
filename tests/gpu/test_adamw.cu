/*
 * test_adamw.cu: the AdamW update and the sum of squares behind gradient clipping
 * (kernels/adamw.cuh) against the CPU op. AdamW must equal the CPU op bit for bit (the
 * kernel rounds every operation as the CPU does); on a GPU this also catches a fused
 * multiply-add that nvcc contracted, which the CPU emulator cannot show.
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, pair_check_exact, gpu_test_init */

static void test_adamw_and_sum_squares(void) {
    const size_t n = quick ? 100003 : 1000003; /* primes */
    Pair param = pair_random(n, 0.1), grad = pair_random(n, 0.01);
    Pair m = pair_random(n, 0.001), v = pair_random_away_from_zero(n);
    for (size_t i = 0; i < n; i++)
        v.host[i] = v.host[i] * v.host[i] * 1e-4f;
    pair_upload(v);
    AdamWStep hp = {1e-3f, 0.9f, 0.98f, 1e-6f, 0.2f, 1 - 0.9f * 0.9f, 1 - 0.98f * 0.98f, 0.5f};
    cpu->adamw_update(param.host, grad.host, m.host, v.host, n, &hp);
    gpu->adamw_update(param.dev, grad.dev, m.dev, v.dev, n, &hp);
    /* the CPU op's float operations in its order, each rounded (no fused multiply-add):
     * the same bits */
    pair_check_exact("adamw param", param);
    pair_check_exact("adamw m", m);
    pair_check_exact("adamw v", v);
    /* into accumulators that already hold a value: the op adds (acc += sum) */
    const double start = 0.25;
    double want = start, got = 0, again = 0, *acc = (double *)gpu->alloc(sizeof(double));
    cpu->sum_squares(&want, grad.host, n);
    gpu->to_device(acc, &start, sizeof start);
    gpu->sum_squares(acc, grad.dev, n);
    gpu->to_host(&got, acc, sizeof got);
    /* both sum exact double squares, in different orders */
    CHECK(fabs(got - want) <= 1e-11 * want, "sum_squares %.17g vs %.17g", got, want);
    gpu->to_device(acc, &start, sizeof start);
    gpu->sum_squares(acc, grad.dev, n);
    gpu->to_host(&again, acc, sizeof again);
    CHECK(memcmp(&got, &again, sizeof got) == 0, "sum_squares not deterministic");
    gpu->sum_squares(acc, grad.dev, 0);
    gpu->to_host(&again, acc, sizeof again);
    CHECK(memcmp(&got, &again, sizeof got) == 0, "sum_squares of nothing adds nothing");
    gpu->release(acc);
    pair_free(param), pair_free(grad), pair_free(m), pair_free(v);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_adamw_and_sum_squares);
    return test_summary();
}
