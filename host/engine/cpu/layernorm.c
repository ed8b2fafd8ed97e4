/*
 * layernorm.c: the CPU LayerNorm over the last dimension (eps CLIP_LN_EPS), forward and
 * backward; the oracle of kernels/layernorm.cuh.
 *
 * Statistics are accumulated in double; the weight and bias gradients are sums over rows in
 * fixed chunks (cpu_common.h), so their bits do not depend on the thread count. The input
 * gradient is ACCUMULATED (+=): on the residual stream it adds the branch's gradient to the
 * one the residual path already carries.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>
#include <stdlib.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials
#include "util/common.h"           // defines: callocCheck

void OP(layernorm_forward)(real *out, real *mean, real *rstd, const real *inp, const real *weight,
                           const real *bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        double sum = 0;
        for (int c = 0; c < C; c++) sum += x[c];
        double mu = sum / C;
        double var = 0;
        for (int c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
        double rs = 1.0 / sqrt(var / C + CLIP_LN_EPS);
        real *y = out + (size_t)n * C;
        for (int c = 0; c < C; c++) y[c] = (real)((x[c] - mu) * rs) * weight[c] + bias[c];
        mean[n] = (real)mu;
        rstd[n] = (real)rs;
    }
}

void OP(layernorm_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                            const real *inp, const real *weight, const real *mean,
                            const real *rstd, int N, int C) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            double mu = mean[n], rs = rstd[n];
            double dnorm_mean = 0, dnorm_norm_mean = 0;
            for (int c = 0; c < C; c++) {
                double dnorm = (double)dy[c] * weight[c];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * (x[c] - mu) * rs;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            real *dx = dinp + (size_t)n * C;
            for (int c = 0; c < C; c++) {
                double norm = (x[c] - mu) * rs;
                double dnorm = (double)dy[c] * weight[c];
                dx[c] += (real)((dnorm - dnorm_mean - norm * dnorm_norm_mean) * rs);
            }
        }
    }
    /* parameter gradients: chunked sums over rows (see ROW_CHUNK) */
    int chunks = row_chunks(N);
    double *partial_w = callocCheck((size_t)chunks * C * 2, sizeof(double));
    double *partial_b = partial_w + (size_t)chunks * C;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < chunks; k++) {
        double *acc_w = partial_w + (size_t)k * C, *acc_b = partial_b + (size_t)k * C;
        int end = (k + 1) * ROW_CHUNK < N ? (k + 1) * ROW_CHUNK : N;
        for (int n = k * ROW_CHUNK; n < end; n++) {
            const real *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            double mu = mean[n], rs = rstd[n];
            for (int c = 0; c < C; c++) {
                acc_w[c] += (double)dy[c] * (x[c] - mu) * rs;
                acc_b[c] += dy[c];
            }
        }
    }
    if (dweight) add_partials(dweight, partial_w, chunks, C);
    if (dbias) add_partials(dbias, partial_b, chunks, C);
    free(partial_w);
}
