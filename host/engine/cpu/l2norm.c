/*
 * l2norm.c: the CPU L2 normalisation of rows, out = inp / ||inp||, forward and backward; the
 * oracle of kernels/l2norm.cuh.
 *
 * No epsilon, as HF CLIPModel: a zero feature row is a bug upstream, not a case to smooth.
 * The norm is accumulated in double and saved for the backward.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials

void OP(l2norm_forward)(real *out, real *norm, const real *inp, int N, int C) {
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        double len = sqrt(ss);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (real)(x[c] / len);
        norm[n] = (real)len;
    }
}

void OP(l2norm_backward)(real *dinp, const real *dout, const real *out, const real *norm, int N,
                         int C) {
    for (int n = 0; n < N; n++) {
        const real *y = out + (size_t)n * C, *dy = dout + (size_t)n * C;
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)y[c] * dy[c];
        for (int c = 0; c < C; c++)
            dinp[(size_t)n * C + c] += (real)((dy[c] - y[c] * dot) / norm[n]);
    }
}
