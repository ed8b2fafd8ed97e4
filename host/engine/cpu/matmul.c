/*
 * matmul.c: the CPU linear layer, out = inp @ weight^T + bias, forward and backward; the
 * oracle of kernels/matmul.cuh.
 *
 * The GEMMs go to BLAS (its sums are BLAS's own, the same run after run on one build); the
 * bias gradient is the one sum written here, over fixed row chunks (cpu_common.h) so that
 * its bits do not depend on the thread count.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <stdlib.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials
#include "util/common.h"           // defines: callocCheck

void OP(matmul_forward)(real *out, const real *inp, const real *weight, const real *bias, int N,
                        int IC, int OC) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1, inp, IC, weight, IC, 0, out, OC);
    if (!bias) return;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *row = out + (size_t)n * OC;
        for (int o = 0; o < OC; o++) row[o] += bias[o];
    }
}

/* The backward with dinp's BLAS beta: 1 accumulates (matmul_backward), 0 overwrites without
 * reading dinp (linear_backward: it may hold anything, NaN included) */
static void matmul_backward_into(real *dinp, real dinp_beta, real *dweight, real *dbias,
                                 const real *dout, const real *inp, const real *weight, int N,
                                 int IC, int OC) {
    if (dinp) /* dinp[N,IC] (+)= dout[N,OC] @ weight[OC,IC] */
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1, dout, OC, weight, IC,
             dinp_beta, dinp, IC);
    if (dweight) /* dweight[OC,IC] += dout^T @ inp */
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1, dout, OC, inp, IC, 1, dweight,
             IC);
    if (dbias) {
        int chunks = row_chunks(N);
        double *partial = callocCheck((size_t)chunks * OC, sizeof(double));
#pragma omp parallel for schedule(static)
        for (int k = 0; k < chunks; k++) {
            double *acc = partial + (size_t)k * OC;
            int end = (k + 1) * ROW_CHUNK < N ? (k + 1) * ROW_CHUNK : N;
            for (int n = k * ROW_CHUNK; n < end; n++)
                for (int o = 0; o < OC; o++) acc[o] += dout[(size_t)n * OC + o];
        }
        add_partials(dbias, partial, chunks, OC);
        free(partial);
    }
}

void OP(matmul_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                         const real *inp, const real *weight, int N, int IC, int OC) {
    matmul_backward_into(dinp, 1, dweight, dbias, dout, inp, weight, N, IC, OC);
}

void OP(linear_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                         const real *inp, const real *weight, int N, int IC, int OC) {
    matmul_backward_into(dinp, 0, dweight, dbias, dout, inp, weight, N, IC, OC);
}
