/*
 * elementwise.c: the CPU one-value-at-a-time ops: GELU / QuickGELU forward and backward, the
 * residual add, accumulate and scale; the oracle of kernels/elementwise.cuh.
 *
 * No reductions, so no ordering question: every element is computed from its own inputs.
 *
 * QuickGELU (CLIP's activation) has two versions. The plain loops (_reference) call libm's
 * expf once per element, which the compiler cannot vectorise; they stay the reference and
 * serve GELU and the float64 build. The float32 op computes e^x eight lanes at a time with
 * AVX2 (x = n ln2 + r, |r| <= ln2/2, a degree-7 Taylor polynomial for e^r, then 2^n put in
 * the exponent bits): within a few ulp of expf, not bit-equal to it, so the op is held to
 * the plain loop by a tolerance (tests/test_cpu_fast.c), as the CUDA kernels are.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials

#define QUICK_GELU_ALPHA 1.702

#if !TNG_REAL_DOUBLE && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define QUICK_GELU_VECTOR 1

/* e^a in each lane, as expf: +inf above 88.72, and below -103.3 the result rounds to 0
   (the smallest subnormal float is e^-103.3). 2^n is applied as two factors, 2^(n/2) and
   2^(n - n/2), each a normal float, so that results near overflow and in the subnormal
   range take a single rounding, at the last multiply. */
static inline __m256 exp_lanes(__m256 a) {
    __m256 overflow = _mm256_cmp_ps(a, _mm256_set1_ps(88.72283f), _CMP_GT_OQ);
    a = _mm256_min_ps(_mm256_max_ps(a, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(88.72283f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = a - n ln2, ln2 split in two so that n * ln2_hi is exact */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    static const float taylor[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    for (int k = 0; k < 7; k++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(taylor[k]));
    __m256i ni = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(ni, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), bias), 23));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), overflow);
}
#endif

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
#ifdef QUICK_GELU_VECTOR
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
#ifdef QUICK_GELU_VECTOR
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
