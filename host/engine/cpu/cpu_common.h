/*
 * cpu_common.h: what every CPU op file shares: the precision it is compiled in and the
 * deterministic sums over rows. Included only by the files of this folder.
 *
 * The Makefile compiles each .c file of this folder twice: with TNG_REAL_DOUBLE=0 `real` is
 * float and OP(matmul_forward) names matmul_forward_f32 (the engine's CPU backend); with
 * TNG_REAL_DOUBLE=1 `real` is double and the name is matmul_forward_f64 (the reference the
 * finite-difference tests differentiate). One source for both, so the two cannot drift.
 *
 * Determinism: OpenMP loops use static schedules, and every reduction is done either by one
 * thread in a fixed order or over fixed-size chunks summed in order (row_chunks and
 * add_partials below), so results do not depend on the thread count.
 */
#ifndef TNG_CPU_COMMON_H
#define TNG_CPU_COMMON_H

#ifndef TNG_REAL_DOUBLE
#error "host/engine/cpu/*.c are compiled with -DTNG_REAL_DOUBLE=0 (float) or =1 (double)"
#endif

#include <cblas.h>
#include <math.h>
#include <stddef.h>

#if TNG_REAL_DOUBLE
typedef double real;
#define OP(name) name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#define ERF erf
#define SQRT sqrt
#else
typedef float real;
#define OP(name) name##_f32
#define GEMM cblas_sgemm
#define EXP expf
#define ERF erff
#define SQRT sqrtf
#endif

/* Sums over rows, deterministic and cache-friendly: the N rows are cut into fixed chunks of
 * ROW_CHUNK, each chunk sums its rows in order into its own partial row (contiguous reads),
 * then the partials are added in chunk order. Neither step depends on the thread count. */
#define ROW_CHUNK 64
static inline int row_chunks(int N) { return (N + ROW_CHUNK - 1) / ROW_CHUNK; }

/* out[c] += sum over chunks of partial[k*C + c], in chunk order. */
static inline void add_partials(real *out, const double *partial, int chunks, int C) {
    for (int c = 0; c < C; c++) {
        double sum = 0;
        for (int k = 0; k < chunks; k++) sum += partial[(size_t)k * C + c];
        out[c] += (real)sum;
    }
}

#endif
