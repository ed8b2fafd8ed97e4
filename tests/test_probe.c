/*
 * test_probe.c: the linear probe's maths (eval/probe.h).
 *
 * - AUC: against a brute-force count over every (positive, negative) pair, ties counting one
 *   half, on random scores rounded to a few levels (so that ties are common); a one-class set
 *   gives NaN; a perfect ranking 1 and its reverse 0.
 * - The fit: Newton's optimum is a stationary point of the penalised objective (its gradient
 *   below 1e-8 in every coordinate, computed here independently in double); on two Gaussian
 *   clouds apart along one direction, the probe fitted on one sample scores another within
 *   0.02 of the best rule's AUC; on labels independent of the rows, within 0.15 of a half.
 * - The validated fit returns a weight of its grid and the fit at that weight.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "eval/probe.h" // defines: probe_auc, probe_fit, probe_fit_validated, probe_scored_auc
#include "util/rng.h"   // defines: Rng, rng_seed, rng_normal, rng_below

static double brute_auc(const double *s, const unsigned char *y, int n) {
    double wins = 0;
    long pairs = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (y[i] && !y[j]) wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0, pairs++;
    return wins / (double)pairs;
}

static void test_auc_against_pairs(void) {
    Rng rng;
    rng_seed(&rng, 7);
    for (int trial = 0; trial < 20; trial++) {
        int n = 5 + (int)rng_below(&rng, 200);
        double *s = malloc(sizeof(double) * n);
        unsigned char *y = malloc((size_t)n);
        int positives = 0;
        for (int i = 0; i < n; i++) {
            y[i] = rng_below(&rng, 3) == 0;
            positives += y[i];
            s[i] = round(rng_normal(&rng) * 2) + 0.7 * y[i]; /* a few levels: many ties */
        }
        if (positives == 0) y[0] = 1, positives = 1;
        if (positives == n) y[0] = 0;
        double got = probe_auc(s, y, n), want = brute_auc(s, y, n);
        CHECK(fabs(got - want) <= 1e-12, "trial %d (n %d): AUC %.15f, pairs give %.15f", trial, n, got, want);
        free(s), free(y);
    }
    double s[4] = {0.1, 0.4, 0.35, 0.8};
    unsigned char up[4] = {0, 0, 1, 1}, down[4] = {1, 1, 0, 0}, none[4] = {0, 0, 0, 0};
    CHECK(probe_auc(s, up, 4) == 0.75, "hand case: %g, want 3/4", probe_auc(s, up, 4));
    CHECK(probe_auc(s, down, 4) == 0.25, "reversed hand case: %g, want 1/4", probe_auc(s, down, 4));
    CHECK(isnan(probe_auc(s, none, 4)), "one class: NaN");
}

/* n rows of d: label 1 with probability 1/2; a positive row moves by `shift` along e_0 */
static void clouds(Rng *rng, float *x, unsigned char *y, int n, int d, double shift) {
    for (int i = 0; i < n; i++) {
        y[i] = rng_below(rng, 2) == 1;
        for (int k = 0; k < d; k++) x[(size_t)i * d + k] = (float)(rng_normal(rng) + (k == 0 && y[i] ? shift : 0));
    }
}

/* the largest coordinate of the penalised objective's gradient at w */
static double gradient_norm(const float *x, const unsigned char *y, int n, int d, double l2, const double *w) {
    double *g = calloc((size_t)d + 1, sizeof(double)), worst = 0;
    for (int k = 0; k < d; k++) g[k] = l2 * w[k];
    for (int i = 0; i < n; i++) {
        double z = w[d];
        for (int k = 0; k < d; k++) z += w[k] * x[(size_t)i * d + k];
        double r = 1.0 / (1.0 + exp(-z)) - y[i];
        for (int k = 0; k < d; k++) g[k] += r * x[(size_t)i * d + k];
        g[d] += r;
    }
    for (int k = 0; k <= d; k++) worst = fmax(worst, fabs(g[k]));
    free(g);
    return worst;
}

static void test_fit(void) {
    enum { N = 400, D = 12 };
    Rng rng;
    rng_seed(&rng, 11);
    float *x = malloc(sizeof(float) * N * D), *x2 = malloc(sizeof(float) * N * D);
    unsigned char y[N], y2[N];
    double w[D + 1];
    for (int shift = 0; shift <= 1; shift++) {
        clouds(&rng, x, y, N, D, shift ? 3.0 : 0.0);
        clouds(&rng, x2, y2, N, D, shift ? 3.0 : 0.0);
        for (int g = 0; g < 3; g++) {
            double l2 = g == 0 ? 1e-2 : g == 1 ? 1 : 100;
            memset(w, 0xFF, sizeof w); /* NaN: the fit must set every weight */
            int iterations = probe_fit(x, y, N, D, l2, w);
            double grad = gradient_norm(x, y, N, D, l2, w);
            CHECK(iterations < 100 && grad < 1e-8, "shift %d l2 %g: %d iterations, gradient %.3g at the optimum",
                  shift, l2, iterations, grad);
        }
        double chosen = probe_fit_validated(x, y, N, D, w);
        CHECK(chosen == 1e-2 || chosen == 1e-1 || chosen == 1 || chosen == 10 || chosen == 100,
              "the validated weight %g is not one of the grid's", chosen);
        double grad = gradient_norm(x, y, N, D, chosen, w);
        CHECK(grad < 1e-8, "validated fit: gradient %.3g at its own weight", grad);
        double auc = probe_scored_auc(w, x2, y2, N, D);
        /* the best any rule can do: the shift over noise of unit variance in both classes */
        double bayes = 0.5 * erfc(-3.0 / 2.0);
        if (shift) CHECK(auc > bayes - 0.02, "separated clouds: held-out AUC %.4f, the best rule's %.4f", auc, bayes);
        else CHECK(fabs(auc - 0.5) < 0.15, "labels independent of the rows: held-out AUC %.4f", auc);
    }
    free(x), free(x2);
}

/* the halves: even items in order, then odd items in order */
static void test_alternate(void) {
    const int items[5] = {10, 11, 12, 13, 14};
    int even[3] = {-1, -1, -1}, odd[2] = {-1, -1};
    probe_alternate(items, 5, sizeof(int), even, odd);
    CHECK(even[0] == 10 && even[1] == 12 && even[2] == 14 && odd[0] == 11 && odd[1] == 13,
          "halves {%d %d %d} {%d %d}", even[0], even[1], even[2], odd[0], odd[1]);
}

int main(void) {
    RUN_TEST(test_auc_against_pairs);
    RUN_TEST(test_alternate);
    RUN_TEST(test_fit);
    return test_summary();
}
