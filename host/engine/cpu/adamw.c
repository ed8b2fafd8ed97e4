/*
 * adamw.c: the CPU AdamW update and the sum of squares behind gradient clipping; the oracle
 * of kernels/adamw.cuh.
 *
 * AdamW runs in PyTorch's operation order: decoupled decay first, then the bias-corrected
 * Adam step. The sum of squares goes over fixed 4096-element chunks summed in order, so it
 * gives the same bits whatever the thread count.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>
#include <stdlib.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials
#include "util/common.h"           // defines: mallocCheck

void OP(adamw_update)(real *param, const real *grad, real *m, real *v, size_t n,
                      const AdamWStep *hp) {
    real step_size = (real)((double)hp->lr / hp->bias_correction1);
    real inv_bc2_sqrt = (real)(1.0 / sqrt(hp->bias_correction2));
    real decay = (real)(1.0 - (double)hp->lr * hp->weight_decay);
    real beta1 = hp->beta1, beta2 = hp->beta2, eps = hp->eps, scale = hp->grad_scale;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real g = grad[i] * scale;
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        real denom = SQRT(v[i]) * inv_bc2_sqrt + eps;
        param[i] = param[i] * decay - step_size * (m[i] / denom);
    }
}

/* Sum of squares in fixed 4096-element chunks, summed in order: the same bits whatever
 * the thread count. */
double OP(sum_squares)(const real *x, size_t n) {
    enum { CHUNK = 4096 };
    size_t chunks = (n + CHUNK - 1) / CHUNK;
    double *partial = mallocCheck(sizeof(double) * (chunks ? chunks : 1));
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < chunks; k++) {
        double s = 0;
        size_t end = (k + 1) * CHUNK < n ? (k + 1) * CHUNK : n;
        for (size_t i = k * CHUNK; i < end; i++) s += (double)x[i] * x[i];
        partial[k] = s;
    }
    double total = 0;
    for (size_t k = 0; k < chunks; k++) total += partial[k];
    free(partial);
    return total;
}
