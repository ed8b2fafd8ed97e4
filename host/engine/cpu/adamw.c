/*
 * adamw.c: the CPU AdamW update and the sum of squares behind gradient clipping; the oracle
 * of kernels/adamw.cuh.
 *
 * AdamW runs in PyTorch's operation order: decoupled decay first, then the bias-corrected
 * Adam step. The sum of squares goes over fixed 4096-element chunks summed in order, so it
 * gives the same bits whatever the thread count.
 *
 * Each op exists twice: the plain loop (the _reference entries, which the tests hold the
 * others to) and the one the engine runs, which gives the same bits faster. AdamW's float
 * loop is written with AVX2 intrinsics, the same operations lane by lane (IEEE sqrt and
 * division round exactly as the scalar ones; no FMA, as in the scalar code): the compiler
 * leaves the plain loop scalar because sqrtf may set errno. The sum of squares keeps each
 * chunk's in-order sum but runs eight chunks side by side, so that eight independent
 * chains hide the latency of the additions one chain waits on.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>
#include <stdlib.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials
#include "util/common.h"           // defines: mallocCheck

#if !TNG_REAL_DOUBLE && defined(__AVX2__)
#include <immintrin.h>
#define ADAMW_VECTOR 1
#endif

/* The step's constants, each rounded to `real` once, as the plain loop uses them. */
typedef struct {
    real step_size, inv_bc2_sqrt, decay, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, scale;
} AdamWConsts;

static AdamWConsts adamw_consts(const AdamWStep *hp) {
    AdamWConsts k;
    k.step_size = (real)((double)hp->lr / hp->bias_correction1);
    k.inv_bc2_sqrt = (real)(1.0 / sqrt(hp->bias_correction2));
    k.decay = (real)(1.0 - (double)hp->lr * hp->weight_decay);
    k.beta1 = hp->beta1, k.beta2 = hp->beta2, k.eps = hp->eps, k.scale = hp->grad_scale;
    k.one_minus_beta1 = 1 - k.beta1, k.one_minus_beta2 = 1 - k.beta2;
    return k;
}

/* Element i of the update. */
static inline void adamw_element(real *param, const real *grad, real *m, real *v, size_t i,
                                 const AdamWConsts *k) {
    real g = grad[i] * k->scale;
    m[i] = k->beta1 * m[i] + k->one_minus_beta1 * g;
    v[i] = k->beta2 * v[i] + k->one_minus_beta2 * g * g;
    real denom = SQRT(v[i]) * k->inv_bc2_sqrt + k->eps;
    param[i] = param[i] * k->decay - k->step_size * (m[i] / denom);
}

void OP(adamw_update_reference)(real *param, const real *grad, real *m, real *v, size_t n,
                                const AdamWStep *hp) {
    AdamWConsts k = adamw_consts(hp);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) adamw_element(param, grad, m, v, i, &k);
}

void OP(adamw_update)(real *param, const real *grad, real *m, real *v, size_t n,
                      const AdamWStep *hp) {
#ifdef ADAMW_VECTOR
    AdamWConsts k = adamw_consts(hp);
    const __m256 scale = _mm256_set1_ps(k.scale), beta1 = _mm256_set1_ps(k.beta1);
    const __m256 beta2 = _mm256_set1_ps(k.beta2), one_minus_beta1 = _mm256_set1_ps(k.one_minus_beta1);
    const __m256 one_minus_beta2 = _mm256_set1_ps(k.one_minus_beta2), eps = _mm256_set1_ps(k.eps);
    const __m256 inv_bc2_sqrt = _mm256_set1_ps(k.inv_bc2_sqrt), decay = _mm256_set1_ps(k.decay);
    const __m256 step_size = _mm256_set1_ps(k.step_size);
    size_t blocks = n / 8;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks; b++) {
        size_t i = 8 * b;
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(grad + i), scale);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(beta1, _mm256_loadu_ps(m + i)),
                                  _mm256_mul_ps(one_minus_beta1, g));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(beta2, _mm256_loadu_ps(v + i)),
                                  _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, g), g));
        __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), inv_bc2_sqrt), eps);
        __m256 p = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(param + i), decay),
                                 _mm256_mul_ps(step_size, _mm256_div_ps(mi, denom)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(param + i, p);
    }
    for (size_t i = 8 * blocks; i < n; i++) adamw_element(param, grad, m, v, i, &k);
#else
    OP(adamw_update_reference)(param, grad, m, v, n, hp);
#endif
}

/* Sum of squares in fixed 4096-element chunks, summed in order: the same bits whatever
 * the thread count. */
enum { SUMSQ_CHUNK = 4096, SUMSQ_SIDE_BY_SIDE = 8 };

static double chunk_sum_squares(const real *x, size_t n, size_t k) {
    double s = 0;
    size_t end = (k + 1) * SUMSQ_CHUNK < n ? (k + 1) * SUMSQ_CHUNK : n;
    for (size_t i = k * SUMSQ_CHUNK; i < end; i++) s += (double)x[i] * x[i];
    return s;
}

/* The chunk partials added in chunk order. */
static double add_chunk_partials(double *partial, size_t chunks) {
    double total = 0;
    for (size_t k = 0; k < chunks; k++) total += partial[k];
    free(partial);
    return total;
}

double OP(sum_squares_reference)(const real *x, size_t n) {
    size_t chunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *partial = mallocCheck(sizeof(double) * (chunks ? chunks : 1));
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < chunks; k++) partial[k] = chunk_sum_squares(x, n, k);
    return add_chunk_partials(partial, chunks);
}

double OP(sum_squares)(const real *x, size_t n) {
    size_t chunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    size_t full = n / SUMSQ_CHUNK, groups = full / SUMSQ_SIDE_BY_SIDE;
    double *partial = mallocCheck(sizeof(double) * (chunks ? chunks : 1));
#pragma omp parallel for schedule(static)
    for (size_t group = 0; group < groups; group++) {
        const real *first = x + group * SUMSQ_SIDE_BY_SIDE * SUMSQ_CHUNK;
        double s[SUMSQ_SIDE_BY_SIDE] = {0};
        for (size_t i = 0; i < SUMSQ_CHUNK; i++)
            for (int j = 0; j < SUMSQ_SIDE_BY_SIDE; j++) {
                double xi = first[(size_t)j * SUMSQ_CHUNK + i];
                s[j] += xi * xi;
            }
        for (int j = 0; j < SUMSQ_SIDE_BY_SIDE; j++) partial[group * SUMSQ_SIDE_BY_SIDE + j] = s[j];
    }
    /* the chunks left over: fewer than eight full ones, and a partial last one */
    for (size_t k = groups * SUMSQ_SIDE_BY_SIDE; k < chunks; k++) partial[k] = chunk_sum_squares(x, n, k);
    return add_chunk_partials(partial, chunks);
}
