/*
 * probe.c: the linear probe's maths (probe.h): the AUC by ranks, and an L2-regularised
 * logistic regression fitted by Newton's method with a Cholesky solve, in double.
 *
 * The embeddings are small (d is the projection width, 128 to 768) and the probe sets a few
 * thousand images, so the exact Hessian (d + 1)^2 is cheap and Newton converges in a handful of
 * steps, without a learning rate to tune.
 */
#include "eval/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, callocCheck, die

typedef struct {
    double score;
    unsigned char label;
} Scored;

static int by_score(const void *a, const void *b) {
    double x = ((const Scored *)a)->score, y = ((const Scored *)b)->score;
    return (x > y) - (x < y);
}

double probe_auc(const double *score, const unsigned char *label, int n) {
    Scored *s = mallocCheck(sizeof(Scored) * (size_t)(n ? n : 1));
    long positives = 0;
    for (int i = 0; i < n; i++) s[i] = (Scored){score[i], label[i] != 0}, positives += label[i] != 0;
    long negatives = n - positives;
    if (!positives || !negatives) {
        free(s);
        return NAN;
    }
    qsort(s, (size_t)n, sizeof(Scored), by_score);
    /* the positives' ranks (1-based), a run of equal scores sharing its mean rank */
    double rank_sum = 0;
    for (int i = 0; i < n;) {
        int j = i, run_positives = 0;
        while (j < n && s[j].score == s[i].score) run_positives += s[j++].label;
        rank_sum += run_positives * (i + 1 + j) / 2.0;
        i = j;
    }
    free(s);
    double u = rank_sum - (double)positives * (positives + 1) / 2.0;
    return u / ((double)positives * negatives);
}

double probe_score(const double *w, const float *x, int d) {
    double z = w[d];
    for (int k = 0; k < d; k++) z += w[k] * x[k];
    return z;
}

/* Solves a x = b in place (b becomes x) for a symmetric positive definite [m, m] of which only
 * the lower triangle is read, and overwritten by its Cholesky factor. */
static void cholesky_solve(double *a, double *b, int m) {
    for (int j = 0; j < m; j++) {
        double diag = a[(size_t)j * m + j];
        for (int k = 0; k < j; k++) diag -= a[(size_t)j * m + k] * a[(size_t)j * m + k];
        if (!(diag > 0)) die("probe: the Hessian is not positive definite (l2 too small?)");
        double root = sqrt(diag);
        a[(size_t)j * m + j] = root;
        for (int i = j + 1; i < m; i++) {
            double v = a[(size_t)i * m + j];
            for (int k = 0; k < j; k++) v -= a[(size_t)i * m + k] * a[(size_t)j * m + k];
            a[(size_t)i * m + j] = v / root;
        }
    }
    for (int i = 0; i < m; i++) { /* L y = b */
        for (int k = 0; k < i; k++) b[i] -= a[(size_t)i * m + k] * b[k];
        b[i] /= a[(size_t)i * m + i];
    }
    for (int i = m - 1; i >= 0; i--) { /* L^T x = y */
        for (int k = i + 1; k < m; k++) b[i] -= a[(size_t)k * m + i] * b[k];
        b[i] /= a[(size_t)i * m + i];
    }
}

double probe_scored_auc(const double *w, const float *x, const unsigned char *y, int n, int d) {
    double *score = mallocCheck(sizeof(double) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) score[i] = probe_score(w, x + (size_t)i * d, d);
    double auc = probe_auc(score, y, n);
    free(score);
    return auc;
}

void probe_alternate(const void *items, int n, size_t size, void *even, void *odd) {
    for (int i = 0; i < n; i++)
        memcpy((char *)(i % 2 ? odd : even) + (size_t)(i / 2) * size, (const char *)items + (size_t)i * size, size);
}

static const double PROBE_L2_GRID[] = {1e-2, 1e-1, 1, 10, 100};
enum { PROBE_L2_GRID_SIZE = sizeof PROBE_L2_GRID / sizeof PROBE_L2_GRID[0] };

double probe_fit_validated(const float *x, const unsigned char *y, int n, int d, double *w) {
    int half[2] = {(n + 1) / 2, n / 2};
    float *rows[2];
    unsigned char *labels[2];
    for (int h = 0; h < 2; h++) {
        rows[h] = mallocCheck(sizeof(float) * (size_t)(half[h] ? half[h] : 1) * d);
        labels[h] = mallocCheck((size_t)(half[h] ? half[h] : 1));
    }
    probe_alternate(x, n, sizeof(float) * (size_t)d, rows[0], rows[1]);
    probe_alternate(y, n, 1, labels[0], labels[1]);
    double best_auc = -1, best_l2 = PROBE_L2_GRID[0];
    for (int g = 0; g < PROBE_L2_GRID_SIZE; g++) {
        double sum = 0;
        int folds = 0;
        for (int h = 0; h < 2; h++) {
            int other = 1 - h, positives = 0;
            for (int i = 0; i < half[h]; i++) positives += labels[h][i] != 0;
            if (positives == 0 || positives == half[h]) continue; /* a fold with one class fits nothing */
            probe_fit(rows[h], labels[h], half[h], d, PROBE_L2_GRID[g], w);
            double auc = probe_scored_auc(w, rows[other], labels[other], half[other], d);
            if (!isnan(auc)) sum += auc, folds++;
        }
        double mean = folds ? sum / folds : 0;
        if (mean >= best_auc) best_auc = mean, best_l2 = PROBE_L2_GRID[g];
    }
    probe_fit(x, y, n, d, best_l2, w);
    for (int h = 0; h < 2; h++) free(rows[h]), free(labels[h]);
    return best_l2;
}

int probe_fit(const float *x, const unsigned char *y, int n, int d, double l2, double *w) {
    int m = d + 1; /* the weights, then the bias */
    double *hessian = mallocCheck(sizeof(double) * (size_t)m * m), *step = mallocCheck(sizeof(double) * m);
    memset(w, 0, sizeof(double) * m);
    int iteration = 0;
    while (iteration < 100) {
        iteration++;
        /* gradient and Hessian of the objective at w (the bias column is x's implicit 1) */
        memset(hessian, 0, sizeof(double) * (size_t)m * m);
        for (int k = 0; k < d; k++) step[k] = l2 * w[k], hessian[(size_t)k * m + k] = l2;
        step[d] = 0;
        /* the bias is not penalised: a tiny ridge keeps its row positive when one class is
         * nearly empty, without moving the optimum measurably */
        hessian[(size_t)d * m + d] = 1e-12;
        for (int i = 0; i < n; i++) {
            const float *row = x + (size_t)i * d;
            double p = 1.0 / (1.0 + exp(-probe_score(w, row, d)));
            double residual = p - (y[i] != 0), weight = p * (1.0 - p);
            for (int a = 0; a < m; a++) {
                double xa = a < d ? row[a] : 1.0;
                step[a] += residual * xa;
                for (int b = 0; b <= a; b++) hessian[(size_t)a * m + b] += weight * xa * (b < d ? row[b] : 1.0);
            }
        }
        cholesky_solve(hessian, step, m);
        double largest = 0;
        for (int a = 0; a < m; a++) w[a] -= step[a], largest = fmax(largest, fabs(step[a]));
        if (largest <= 1e-10) break;
    }
    free(hessian), free(step);
    return iteration;
}
