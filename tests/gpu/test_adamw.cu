/*
 * test_adamw.cu: the multi-tensor AdamW step and the sum of squares behind gradient clipping
 * (kernels/adamw.cuh) against the CPU op. AdamW must equal the CPU op bit for bit (the
 * kernel rounds every operation as the CPU does); on a GPU this also catches a fused
 * multiply-add that nvcc contracted, which the CPU emulator cannot show.
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, pair_check_exact, gpu_test_init */

/* A table of tensors of awkward sizes (primes, ones, a large one), some frozen, some without
 * weight decay, covering n floats; returns the count. */
static int make_table(AdamWTensor *table, size_t *total) {
    const size_t sizes[] = {1, 7, 100003, 1, 3, 65537, 31, 2, 400009, 5, 1, 29};
    int count = (int)(sizeof sizes / sizeof *sizes);
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
        table[i] = (AdamWTensor){offset, quick && sizes[i] > 70000 ? sizes[i] / 10 : sizes[i], i % 4 != 2, i % 3 != 1};
        offset += table[i].numel;
    }
    *total = offset;
    return count;
}

/* adamw_step over a table of tensors: the CPU's bits in params, m and v for the tensors that
 * train, untouched ones elsewhere, every gradient zeroed; in bf16 the compute copy is each
 * trained weight rounded, and untouched where a tensor is frozen. */
static void test_adamw_step(void) {
    AdamWTensor table[16];
    size_t n;
    int count = make_table(table, &n);
    AdamWTensor *dev_table = (AdamWTensor *)gpu->alloc(sizeof table);
    gpu->to_device(dev_table, table, sizeof(AdamWTensor) * (size_t)count);
    AdamWStep hp = {1e-3f, 0.9f, 0.98f, 1e-6f, 0.2f, 1 - 0.9f * 0.9f, 1 - 0.98f * 0.98f, 0.5f};
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        Pair param = pair_random(n, 0.1), grad = pair_random(n, 0.01);
        Pair m = pair_random(n, 0.001), v = pair_random_away_from_zero(n);
        for (size_t i = 0; i < n; i++)
            v.host[i] = v.host[i] * v.host[i] * 1e-4f;
        pair_upload(v);
        __nv_bfloat16 *copy = bf16 ? bf16_poisoned(n) : NULL;
        float *before = (float *)mallocCheck(sizeof(float) * n);
        memcpy(before, param.host, sizeof(float) * n);
        cpu->adamw_step(param.host, grad.host, m.host, v.host, NULL, table, count, n, &hp);
        (bf16 ? gpu16 : gpu)->adamw_step(param.dev, grad.dev, m.dev, v.dev, copy, dev_table, count, n, &hp);
        /* the CPU op's float operations in its order, each rounded (no fused multiply-add) */
        pair_check_exact(bf16 ? "adamw_step bf16 param" : "adamw_step param", param);
        pair_check_exact("adamw_step m", m);
        pair_check_exact("adamw_step v", v);
        pair_check_exact("adamw_step zeroes every gradient", grad);
        size_t frozen_moved = 0, zeroed = 0;
        for (int t = 0; t < count; t++)
            for (size_t i = table[t].offset; i < table[t].offset + table[t].numel; i++) {
                frozen_moved += !table[t].trains && param.host[i] != before[i];
                zeroed += grad.host[i] == 0.0f;
            }
        CHECK(frozen_moved == 0 && zeroed == n, "frozen tensors moved (%zu) or gradients left (%zu)", frozen_moved,
              n - zeroed);
        if (bf16) { /* trained: the new weight rounded; frozen: still the poison */
            float *got = bf16_download(copy, n);
            size_t bad = 0;
            for (int t = 0; t < count; t++)
                for (size_t i = table[t].offset; i < table[t].offset + table[t].numel; i++)
                    bad += table[t].trains ? !(got[i] == bf16_round(param.host[i])) : !isnan(got[i]);
            CHECK(bad == 0, "adamw_step bf16 compute copy: %zu of %zu elements wrong", bad, n);
            free(got);
            BF16_FREE(copy);
        }
        free(before);
        PAIRS_FREE(param, grad, m, v);
    }
    gpu->release(dev_table);
}

static void test_sum_squares(void) {
    const size_t n = quick ? 100003 : 1000003; /* primes */
    Pair grad = pair_random(n, 0.01);
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
    pair_free(grad);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_adamw_step);
    RUN_TEST(test_sum_squares);
    return test_summary();
}
