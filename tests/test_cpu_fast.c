/*
 * test_cpu_fast.c: the CPU ops that have a faster version (vectorised, or with independent
 * sums run side by side) against their plain reference loops, bit for bit, in float32.
 *
 * The faster versions promise the very same bits, not merely close ones: the engine's
 * determinism and its bit-exact resume rest on them, and the CUDA kernels are held to the
 * plain loops. So every comparison here is memcmp, on random inputs of sizes around every
 * boundary the fast paths have (vector width, chunk groups, leftover tails). The one
 * exceptions are QuickGELU and the attention softmax, whose vectorised e^x is a few ulp from
 * libm's expf: they are held to 4 ulp of the plain loop (the softmax through its log-sum-exp;
 * 8 for the attention output, a sum of such terms), which still catches a wrong formula or lane.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/ops_cpu.h" // declares: the ops and their _reference loops
#include "harness.h"
#include "util/common.h"        // defines: mallocCheck, callocCheck
#include "util/rng.h"           // defines: Rng, rng_seed, rng_normal, rng_below

static Rng rng;

static float *random_floats(size_t n, double scale) {
    float *x = mallocCheck(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * rng_normal(&rng));
    return x;
}

static float *copy_floats(const float *x, size_t n) {
    float *y = mallocCheck(sizeof(float) * (n ? n : 1));
    memcpy(y, x, sizeof(float) * n);
    return y;
}

static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, sizeof(float) * n) == 0;
}

/* ---------------------------------------------------------------- optimizer */

static void test_adamw_same_bits(void) {
    const size_t sizes[] = {1, 7, 8, 9, 63, 4096, 100003};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        for (int trial = 0; trial < 3; trial++) {
            /* second and third trials: moments from earlier steps, decay off, a grad scale */
            float *p = random_floats(n, 1), *g = random_floats(n, 0.1), *m = random_floats(n, 0.01);
            float *v = random_floats(n, 0.001);
            for (size_t i = 0; i < n; i++) v[i] = trial ? fabsf(v[i]) : 0, m[i] = trial ? m[i] : 0;
            for (size_t i = 0; i < n; i += 5) g[i] = 0; /* untouched rows of an embedding */
            float *p2 = copy_floats(p, n), *m2 = copy_floats(m, n), *v2 = copy_floats(v, n);
            int t = 1 + trial * 50;
            AdamWStep hp = {.lr = 5e-4f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f,
                            .weight_decay = trial == 1 ? 0.0f : 0.2f,
                            .bias_correction1 = (float)(1 - pow(0.9, t)),
                            .bias_correction2 = (float)(1 - pow(0.98, t)),
                            .grad_scale = trial == 2 ? 0.37f : 1.0f};
            adamw_update_f32(p, g, m, v, n, &hp);
            adamw_update_reference_f32(p2, g, m2, v2, n, &hp);
            CHECK(same_bits(p, p2, n) && same_bits(m, m2, n) && same_bits(v, v2, n),
                  "n %zu trial %d: AdamW differs from the plain loop", n, trial);
            free(p), free(g), free(m), free(v), free(p2), free(m2), free(v2);
        }
    }
}

static void test_sum_squares_same_bits(void) {
    /* 8 chunks of 4096 run side by side: sizes around one and several groups of them */
    const size_t sizes[] = {0, 1, 4095, 4096, 8 * 4096 - 1, 8 * 4096, 8 * 4096 + 1, 17 * 4096 + 123,
                            64 * 4096, 300007};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        float *x = random_floats(n, 3);
        double got = sum_squares_f32(x, n), want = sum_squares_reference_f32(x, n);
        CHECK(memcmp(&got, &want, sizeof got) == 0, "n %zu: %.17g, plain loop %.17g", n, got, want);
        free(x);
    }
}

/* ---------------------------------------------------------------- QuickGELU */

/* |got - want| in units of want's last place (float), the worst over n */
static double worst_ulps(const float *got, const float *want, size_t n, size_t *where) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double ulp = want[i] == 0 ? 1e-45 : ldexp(1.0, ilogb(want[i]) - 23);
        double e = fabs((double)got[i] - want[i]) / ulp;
        if (!(e <= worst)) worst = e, *where = i; /* a NaN is the worst */
    }
    return worst;
}

static void test_quick_gelu_close(void) {
    const size_t n = 100003; /* not a multiple of the 8 lanes */
    float *x = random_floats(n, 4), *dout = random_floats(n, 1);
    /* the tails of e^(-1.702 x): underflow (x > 50.5) and overflow (x < -52.1) */
    const float edges[] = {-100, -60, -52.2f, -52.1f, -51, -20, -1e-30f, 0, 1e-30f, 20, 50.5f, 51, 60, 100};
    for (size_t k = 0; k < sizeof(edges) / sizeof(edges[0]); k++) x[k * 7] = edges[k];
    float *y = mallocCheck(sizeof(float) * n), *y_ref = mallocCheck(sizeof(float) * n);
    activation_forward_f32(y, x, n, ACT_QUICK_GELU);
    activation_forward_reference_f32(y_ref, x, n, ACT_QUICK_GELU);
    size_t at = 0;
    double ulps = worst_ulps(y, y_ref, n, &at);
    printf("  forward: worst %.2f ulp (x %g: %.9g, plain loop %.9g)\n", ulps, x[at], y[at], y_ref[at]);
    CHECK(ulps <= 4, "forward: %.2f ulp from the plain loop at x = %g", ulps, x[at]);
    /* backward, from zero (it accumulates): the gradient is sig + alpha x sig (1 - sig), whose
       second term is as large as alpha |x| and cancels against the first where QuickGELU
       turns (x ~ -1.28); so errors are measured in ulps of |dout| (1 + alpha |x|), the size of
       the terms, not of the result alone */
    float *d = callocCheck(n, sizeof(float)), *d_ref = callocCheck(n, sizeof(float));
    activation_backward_f32(d, x, dout, n, ACT_QUICK_GELU);
    activation_backward_reference_f32(d_ref, x, dout, n, ACT_QUICK_GELU);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double scale = fmax(fabs(dout[i]) * (1 + 1.702 * fabs(x[i])), fabs(d_ref[i]));
        double e = fabs((double)d[i] - d_ref[i]) / (scale ? ldexp(scale, -23) : 1e-45);
        if (!(e <= worst)) worst = e, at = i;
    }
    printf("  backward: worst %.2f ulp of |dout| (1 + alpha |x|) (x %g)\n", worst, x[at]);
    CHECK(worst <= 4, "backward: %.2f ulp from the plain loop at x = %g", worst, x[at]);
    /* GELU (erf) has no fast path: the very same bits */
    activation_forward_f32(y, x, n, ACT_GELU);
    activation_forward_reference_f32(y_ref, x, n, ACT_GELU);
    CHECK(same_bits(y, y_ref, n), "GELU differs from its plain loop");
    free(x), free(dout), free(y), free(y_ref), free(d), free(d_ref);
}

/* ---------------------------------------------------------------- attention softmax */

static void test_attention_close(void) {
    const int lengths[] = {5, 17, 50, 77};
    for (int li = 0; li < 4; li++)
        for (int causal = 0; causal < 2; causal++) {
            int B = 2, T = lengths[li], C = 64, NH = 2;
            size_t n_qkv = (size_t)B * T * 3 * C, n_out = (size_t)B * T * C, n_lse = (size_t)B * NH * T;
            float *qkv = random_floats(n_qkv, 2); /* scores of a few units: exps far from 1 */
            float *out = mallocCheck(sizeof(float) * n_out), *out_ref = mallocCheck(sizeof(float) * n_out);
            float *lse = mallocCheck(sizeof(float) * n_lse), *lse_ref = mallocCheck(sizeof(float) * n_lse);
            attention_forward_f32(out, lse, qkv, B, T, C, NH, causal);
            attention_forward_reference_f32(out_ref, lse_ref, qkv, B, T, C, NH, causal);
            /* lse = max + log(sum): a sum a few ulp off moves it by a few ulp of 1, so its error
               is measured in ulps of max(|lse|, 1) */
            double lse_ulps = 0;
            for (size_t i = 0; i < n_lse; i++)
                lse_ulps = fmax(lse_ulps, fabs((double)lse[i] - lse_ref[i]) / ldexp(1.0, ilogb(fmax(fabs(lse_ref[i]), 1)) - 23));
            /* the output is a weighted mean of v, so its error is measured in ulps of max |v| */
            double vmax = 0, out_err = 0;
            for (size_t i = 0; i < n_qkv; i++)
                if ((i / C) % 3 == 2) vmax = fmax(vmax, fabs(qkv[i]));
            for (size_t i = 0; i < n_out; i++) out_err = fmax(out_err, fabs((double)out[i] - out_ref[i]));
            double out_ulps = out_err / ldexp(vmax, -23);
            CHECK(lse_ulps <= 4 && out_ulps <= 8, "T %d causal %d: lse %.2f ulp, output %.2f ulp of max|v|",
                  T, causal, lse_ulps, out_ulps);
            if (T == 77 && causal) printf("  T 77 causal: lse %.2f ulp, output %.2f ulp of max|v|\n", lse_ulps, out_ulps);
            free(qkv), free(out), free(out_ref), free(lse), free(lse_ref);
        }
}

int main(void) {
    rng_seed(&rng, 2026);
    RUN_TEST(test_adamw_same_bits);
    RUN_TEST(test_sum_squares_same_bits);
    RUN_TEST(test_quick_gelu_close);
    RUN_TEST(test_attention_close);
    return test_summary();
}
