/*
 * elementwise.c: the CPU one-value-at-a-time ops: GELU / QuickGELU forward and backward, the
 * residual add, accumulate and scale; the oracle of kernels/elementwise.cuh.
 *
 * No reductions, so no ordering question: every element is computed from its own inputs.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials

#define QUICK_GELU_ALPHA 1.702

void OP(activation_forward)(real *out, const real *inp, size_t n, ActKind act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i];
        out[i] = act == ACT_GELU ? (real)0.5 * x * (1 + ERF(x * (real)M_SQRT1_2))
                                 : x / (1 + EXP((real)-QUICK_GELU_ALPHA * x));
    }
}

void OP(activation_backward)(real *dinp, const real *inp, const real *dout, size_t n,
                             ActKind act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i], grad;
        if (act == ACT_GELU) {
            grad = (real)0.5 * (1 + ERF(x * (real)M_SQRT1_2)) +
                   x * EXP((real)-0.5 * x * x) * (real)(0.5 * M_2_SQRTPI * M_SQRT1_2);
        } else {
            real sig = 1 / (1 + EXP((real)-QUICK_GELU_ALPHA * x));
            grad = sig + (real)QUICK_GELU_ALPHA * x * sig * (1 - sig);
        }
        dinp[i] += grad * dout[i];
    }
}

void OP(residual_forward)(real *out, const real *a, const real *b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void OP(accumulate)(real *dst, const real *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

void OP(scale)(real *x, float factor, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= factor;
}
