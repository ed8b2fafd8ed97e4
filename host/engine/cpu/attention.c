/*
 * attention.c: the CPU multi-head self-attention on packed qkv, forward and backward; the
 * oracle of kernels/attention.cuh and kernels/attention_mma.cuh.
 *
 * qkv[b,t] holds q (C values), then k, then v; head h uses the slice [h*hs, (h+1)*hs) of
 * each, so one head's q, k or v is a [T, hs] matrix with row stride 3C that BLAS reads in
 * place. The forward saves only lse[b,h,t], the log of the softmax's denominator in the
 * scores' own units (max + log sum e^(s - max)); the backward recomputes the softmax from it,
 * P = e^(S - lse), rather than reading a saved [T, T] matrix: what the GPU kernels do too,
 * so the op's memory is O(T) per head, not O(T^2). Each (b, h) is independent, so OpenMP
 * splits them; the GEMMs inside run on one thread, on a [T, T] scratch of their own.
 *
 * The exponentials are the one part BLAS does not do: in float32 they run eight lanes at a
 * time (cpu_simd.h, within a few ulp of expf), with the sum still taken in double in order;
 * attention_forward_reference keeps expf, and tests/test_cpu_fast.c holds the op to it.
 */
#include "engine/cpu/ops_cpu.h" // declares: every CPU op, in both precisions

#include <math.h>

#include "engine/cpu/cpu_common.h" // defines: real, OP(), GEMM, EXP, row_chunks, add_partials
#include "engine/cpu/cpu_simd.h"   // defines: exp_lanes, CPU_EXP_LANES (float32 with AVX2+FMA)
#include "util/common.h"           // defines: mallocCheck

/* r[i] = e^(r[i] - shift) for i < n; returns their sum, in order, in double. With `lanes`
   the exponentials are the vectorised ones, else libm's. */
static inline double exp_shifted(real *r, int n, real shift, int lanes) {
    int i = 0;
#ifdef CPU_EXP_LANES
    if (lanes) {
        __m256 s = _mm256_set1_ps(shift);
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(r + i, exp_lanes(_mm256_sub_ps(_mm256_loadu_ps(r + i), s)));
    }
#endif
    for (; i < n; i++) r[i] = EXP(r[i] - shift); /* the tail past the last 8 */
    double sum = 0;
    for (int j = 0; j < n; j++) sum += r[j];
    return sum;
}

/* scores[T, T] = scale * q @ k^T for one (batch row, head): q and k point at its slices. */
static void head_scores(real *scores, const real *q, const real *k, int T, int hs, int row) {
    real scale = (real)(1.0 / sqrt((double)hs));
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, row, k, row, 0, scores, T);
}

static void attention_forward_lanes(real *out, real *lse, const real *qkv, int B, int T, int C,
                                    int NH, int causal, int lanes) {
    int hs = C / NH, row = 3 * C;
#pragma omp parallel
    {
        real *p = mallocCheck(sizeof(real) * T * T);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const real *q = qkv + (size_t)b * T * row + h * hs, *k = q + C, *v = q + 2 * C;
                real *head_lse = lse + ((size_t)b * NH + h) * T;
                head_scores(p, q, k, T, hs, row);
                /* a row softmax over the visible keys; lse keeps its denominator */
                for (int t = 0; t < T; t++) {
                    real *r = p + (size_t)t * T;
                    int visible = causal ? t + 1 : T;
                    double maxv = -INFINITY;
                    for (int t2 = 0; t2 < visible; t2++) maxv = fmax(maxv, r[t2]);
                    double sum = exp_shifted(r, visible, (real)maxv, lanes);
                    for (int t2 = 0; t2 < visible; t2++) r[t2] = (real)(r[t2] / sum);
                    for (int t2 = visible; t2 < T; t2++) r[t2] = 0;
                    head_lse[t] = (real)(maxv + log(sum));
                }
                /* out_h = P @ v */
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1, p, T, v, row, 0,
                     out + (size_t)b * T * C + h * hs, C);
            }
        }
        free(p);
    }
}

void OP(attention_forward_reference)(real *out, real *lse, const real *qkv, int B, int T, int C,
                                     int NH, int causal) {
    attention_forward_lanes(out, lse, qkv, B, T, C, NH, causal, 0);
}

void OP(attention_forward)(real *out, real *lse, const real *qkv, int B, int T, int C, int NH,
                           int causal) {
    attention_forward_lanes(out, lse, qkv, B, T, C, NH, causal, 1);
}

void OP(attention_backward)(real *dqkv, const real *dout, const real *qkv, const real *out,
                            const real *lse, int B, int T, int C, int NH, int causal) {
    int hs = C / NH, row = 3 * C;
    real scale = (real)(1.0 / sqrt((double)hs));
    /* each (b, h) owns a disjoint slice of dqkv, so the loop has no races */
#pragma omp parallel
    {
        real *p = mallocCheck(sizeof(real) * T * T), *dp = mallocCheck(sizeof(real) * T * T);
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                size_t base = (size_t)b * T * row + h * hs;
                const real *q = qkv + base, *k = q + C, *v = q + 2 * C;
                real *dq = dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
                const real *head_lse = lse + ((size_t)b * NH + h) * T;
                const real *dy = dout + (size_t)b * T * C + h * hs, *y = out + (size_t)b * T * C + h * hs;
                /* the softmax again: P = e^(S - lse), 0 past the causal diagonal */
                head_scores(p, q, k, T, hs, row);
                for (int t = 0; t < T; t++) {
                    real *r = p + (size_t)t * T;
                    int visible = causal ? t + 1 : T;
                    exp_shifted(r, visible, head_lse[t], 1);
                    for (int t2 = visible; t2 < T; t2++) r[t2] = 0;
                }
                /* through out = P @ v */
                GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1, dy, C, v, row, 0, dp, T);
                GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1, p, T, dy, C, 0, dv, row);
                /* through the softmax: dS = P * (dP - D), D = rowsum(P * dP) = rowsum(dO * O);
                   masked entries stay 0 */
                for (int t = 0; t < T; t++) {
                    const real *pr = p + (size_t)t * T, *dyr = dy + (size_t)t * C, *yr = y + (size_t)t * C;
                    real *dr = dp + (size_t)t * T;
                    double D = 0;
                    for (int d = 0; d < hs; d++) D += (double)dyr[d] * yr[d];
                    for (int t2 = 0; t2 < T; t2++) dr[t2] = (real)(pr[t2] * (dr[t2] - D));
                }
                /* through scores = scale * q @ k^T */
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, dp, T, k, row, 0, dq, row);
                GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, dp, T, q, row, 0, dk, row);
            }
        }
        free(p), free(dp);
    }
}
