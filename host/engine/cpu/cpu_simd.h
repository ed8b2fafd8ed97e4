/*
 * cpu_simd.h: vector helpers shared by the CPU op files (float32 build, AVX2 + FMA only):
 * e^x in eight float lanes, for QuickGELU (elementwise.c) and the attention softmax
 * (attention.c). Included only by the files of this folder, after cpu_common.h.
 *
 * The method: x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so n * ln2_hi is exact), a
 * degree-7 Taylor polynomial for e^r (its truncation error, r^8/8!, is under 2^-27), then
 * 2^n put into the exponent bits. It is within a few ulp of libm's expf but not bit-equal to
 * it, which is why the ops that use it keep their expf loops as the reference
 * (tests/test_cpu_fast.c holds them to 4 ulp). CPU_EXP_LANES is defined when it exists.
 */
#ifndef TNG_CPU_SIMD_H
#define TNG_CPU_SIMD_H

#if !TNG_REAL_DOUBLE && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CPU_EXP_LANES 1

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


#endif
