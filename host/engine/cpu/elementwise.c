/*
 * elementwise.c: the CPU one-value-at-a-time ops: GELU / QuickGELU forward and backward, the
 * residual add, accumulate and scale; the oracle of kernels/elementwise.cuh.
 *
 * No reductions, so no ordering question: every element is computed from its own inputs.
 *
 * QuickGELU (CLIP's activation) has two versions. The plain loops (_reference) call libm's
 * expf once per element, which the compiler cannot vectorise; they stay the reference and
 * serve GELU and the float64 build. The float32 op computes e^x eight lanes at a time
 * (cpu_simd.h): within a few ulp of expf, not bit-equal to it, so the op is held to the plain
 * loop by a tolerance (tests/test_cpu_fast.c), as the CUDA kernels are.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials
#include "engine/cpu/cpu_simd.h"   // defines: exp_lanes, CPU_EXP_LANES (float32 with AVX2+FMA)

#define QUICK_GELU_ALPHA 1.702

void OP(activation_forward_reference)(real *out, const real *inp, size_t n, ActKind act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i];
        out[i] = act == ACT_GELU ? (real)0.5 * x * (1 + ERF(x * (real)M_SQRT1_2))
                                 : x / (1 + EXP((real)-QUICK_GELU_ALPHA * x));
    }
}

void OP(activation_backward_reference)(real *dinp, const real *inp, const real *dout, size_t n,
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

void OP(activation_forward)(real *out, const real *inp, size_t n, ActKind act) {
#ifdef CPU_EXP_LANES
    if (act == ACT_QUICK_GELU) {
        size_t blocks = n / 8;
        const __m256 minus_alpha = _mm256_set1_ps((real)-QUICK_GELU_ALPHA), one = _mm256_set1_ps(1);
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < blocks; b++) {
            __m256 x = _mm256_loadu_ps(inp + 8 * b);
            __m256 e = exp_lanes(_mm256_mul_ps(minus_alpha, x));
            _mm256_storeu_ps(out + 8 * b, _mm256_div_ps(x, _mm256_add_ps(one, e)));
        }
        OP(activation_forward_reference)(out + 8 * blocks, inp + 8 * blocks, n - 8 * blocks, act);
        return;
    }
#endif
    OP(activation_forward_reference)(out, inp, n, act);
}

void OP(activation_backward)(real *dinp, const real *inp, const real *dout, size_t n,
                             ActKind act) {
#ifdef CPU_EXP_LANES
    if (act == ACT_QUICK_GELU) {
        size_t blocks = n / 8;
        const __m256 alpha = _mm256_set1_ps((real)QUICK_GELU_ALPHA), one = _mm256_set1_ps(1);
        const __m256 minus_alpha = _mm256_set1_ps((real)-QUICK_GELU_ALPHA);
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < blocks; b++) {
            size_t i = 8 * b;
            __m256 x = _mm256_loadu_ps(inp + i);
            __m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, exp_lanes(_mm256_mul_ps(minus_alpha, x))));
            /* sig + alpha x sig (1 - sig), in the plain loop's order */
            __m256 grad = _mm256_add_ps(sig, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(alpha, x), sig),
                                                           _mm256_sub_ps(one, sig)));
            __m256 d = _mm256_add_ps(_mm256_loadu_ps(dinp + i), _mm256_mul_ps(grad, _mm256_loadu_ps(dout + i)));
            _mm256_storeu_ps(dinp + i, d);
        }
        OP(activation_backward_reference)(dinp + 8 * blocks, inp + 8 * blocks, dout + 8 * blocks,
                                          n - 8 * blocks, act);
        return;
    }
#endif
    OP(activation_backward_reference)(dinp, inp, dout, n, act);
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
