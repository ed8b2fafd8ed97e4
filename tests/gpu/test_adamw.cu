/*
 * test_adamw.cu: the multi-tensor AdamW step and the sum of squares behind gradient clipping
 * (kernels/adamw.cuh) against the CPU op. AdamW must equal the CPU op bit for bit (the
 * kernel rounds every operation as the CPU does), with its gradients scaled as given, or
 * clipped and skipped from a sum of squares on the device, and its clamp; on a GPU this also
 * catches a fused multiply-add that nvcc contracted, which the CPU emulator cannot show.
 */
#include "gpu_test_util.h" /* defines: Pair, cpu, gpu, pair_check_exact, gpu_test_init */

/* A table of tensors of awkward sizes (primes, ones, a large one), some frozen, some without
 * weight decay, some clamped, covering n floats; returns the count. */
static int make_table(AdamWTensor *table, size_t *total) {
    const size_t sizes[] = {1, 7, 100003, 1, 3, 65537, 31, 2, 400009, 5, 1, 29};
    int count = (int)(sizeof sizes / sizeof *sizes);
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
        table[i] = (AdamWTensor){offset, quick && sizes[i] > 70000 ? sizes[i] / 10 : sizes[i], i % 4 != 2, i % 3 != 1,
                                 i % 5 == 0};
        offset += table[i].numel;
    }
    *total = offset;
    return count;
}

/* How a step's gradients are scaled (engine/backend.h, AdamWStep): by grad_scale; from a sum of
 * squares on the backend, over two micro-batches, clipped; or skipped for a non-finite norm. */
enum { BY_GRAD_SCALE, CLIPPED, SKIPPED, MULTIPLIER_MODES };
static const char *const multiplier_names[] = {"grad_scale", "clipped", "skipped"};

/* adamw_step over a table of tensors, in each mode: the CPU's bits in params, m and v for the
 * tensors that train (clamped to [-0.05, 0.05] where they clamp), untouched ones elsewhere and
 * everywhere when the step is skipped, every gradient zeroed; in bf16 the compute copy is each
 * trained weight rounded, and untouched where a tensor is frozen. */
static void test_adamw_step(void) {
    AdamWTensor table[16];
    size_t n;
    int count = make_table(table, &n);
    AdamWTensor *dev_table = (AdamWTensor *)gpu->alloc(sizeof table);
    gpu->to_device(dev_table, table, sizeof(AdamWTensor) * (size_t)count);
    double *dev_sumsq = (double *)gpu->alloc(sizeof(double));
    for (int mode = 0; mode < MULTIPLIER_MODES; mode++)
        for (int bf16 = 0; bf16 <= 1; bf16++) {
            AdamWStep hp = {1e-3f, 0.9f, 0.98f, 1e-6f, 0.2f, 1 - 0.9f * 0.9f, 1 - 0.98f * 0.98f, 0.5f,
                            NULL, 2, 0.0f, -0.05f, 0.05f};
            Pair param = pair_random(n, 0.1), grad = pair_random(n, 0.01);
            Pair m = pair_random(n, 0.001), v = pair_random_away_from_zero(n);
            for (size_t i = 0; i < n; i++)
                v.host[i] = v.host[i] * v.host[i] * 1e-4f;
            pair_upload(v);
            double sumsq = 0;
            cpu->sum_squares(&sumsq, grad.host, n);
            /* the averaged norm is sqrt(sumsq) / 2: clipping to a third of it scales by 1/3 */
            hp.max_norm = mode == CLIPPED ? (float)(sqrt(sumsq) / 6) : 0.0f;
            if (mode == SKIPPED)
                sumsq = NAN;
            gpu->to_device(dev_sumsq, &sumsq, sizeof sumsq);
            AdamWStep gpu_hp = hp;
            if (mode != BY_GRAD_SCALE)
                hp.grad_sumsq = &sumsq, gpu_hp.grad_sumsq = dev_sumsq;
            __nv_bfloat16 *copy = bf16 ? bf16_poisoned(n) : NULL;
            float *before = (float *)mallocCheck(sizeof(float) * n);
            memcpy(before, param.host, sizeof(float) * n);
            cpu->adamw_step(param.host, grad.host, m.host, v.host, NULL, table, count, n, &hp);
            (bf16 ? gpu16 : gpu)->adamw_step(param.dev, grad.dev, m.dev, v.dev, copy, dev_table, count, n, &gpu_hp);
            /* the CPU op's float operations in its order, each rounded (no fused multiply-add) */
            char what[96];
            snprintf(what, sizeof what, "adamw_step %s%s param", multiplier_names[mode], bf16 ? " bf16" : "");
            pair_check_exact(what, param);
            pair_check_exact("adamw_step m", m);
            pair_check_exact("adamw_step v", v);
            pair_check_exact("adamw_step zeroes every gradient", grad);
            size_t kept_moved = 0, zeroed = 0, outside = 0;
            for (int t = 0; t < count; t++)
                for (size_t i = table[t].offset; i < table[t].offset + table[t].numel; i++) {
                    int moves = table[t].trains && mode != SKIPPED;
                    kept_moved += !moves && param.host[i] != before[i];
                    outside += moves && table[t].clamps && fabsf(param.host[i]) > 0.05f;
                    zeroed += grad.host[i] == 0.0f;
                }
            CHECK(kept_moved == 0 && zeroed == n && outside == 0,
                  "%s: frozen or skipped tensors moved (%zu), gradients left (%zu), clamped values outside (%zu)",
                  what, kept_moved, n - zeroed, outside);
            if (bf16) { /* trained: the new weight rounded; frozen or skipped: still the poison */
                float *got = bf16_download(copy, n);
                size_t bad = 0;
                for (int t = 0; t < count; t++)
                    for (size_t i = table[t].offset; i < table[t].offset + table[t].numel; i++)
                        bad += table[t].trains && mode != SKIPPED ? !(got[i] == bf16_round(param.host[i]))
                                                                  : !isnan(got[i]);
                CHECK(bad == 0, "%s compute copy: %zu of %zu elements wrong", what, bad, n);
                free(got);
                BF16_FREE(copy);
            }
            free(before);
            PAIRS_FREE(param, grad, m, v);
        }
    gpu->release(dev_table);
    gpu->release(dev_sumsq);
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
