/*
 * gpu_test_util.h: what the GPU tests (tests/gpu/test_*.cu, one per kernel family) share:
 * paired host/device buffers for testing CUDA ops against the CPU oracle, the tolerances, and
 * the start of every test binary.
 *
 * A Pair holds the same n floats twice: `host` for the CPU backend's op and `dev` for the
 * CUDA backend's. Inputs are random (never zeros); outputs that an op overwrites start as
 * NaN on both sides (poisoned), so an element the kernel forgets to write fails the
 * comparison; gradients that an op accumulates into start as the same random values on both
 * sides, so a kernel that overwrites instead of adding fails too.
 *
 * Tolerances (fp32): the CPU accumulates in double, the GPU in float, in another order.
 * A sum of K terms then differs by about sqrt(K) float ulps of the terms' size, so most
 * checks are "scaled": |gpu - cpu| <= tol * (max |cpu| over the tensor) + tol * |cpu|, with
 * tol = TOL = 1e-5 (about 100 float ulps), well below any formula error. Ops whose GPU
 * arithmetic is the CPU's, operation for operation, are compared bit for bit.
 *
 * The tests run on a GPU (`make cuda`, bench/gpu.sh) and on the CPU emulator (`make test`,
 * tests/emu/emu.mk). `test_X quick` runs a few shapes per family, for the sanitizer runs
 * (compute-sanitizer on a GPU, TSan and ASan on the emulator), which are 10-100x slower.
 */
#ifndef TNG_GPU_TEST_UTIL_H
#define TNG_GPU_TEST_UTIL_H

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cuda/backend_cuda.h" /* defines: backend_cuda (and, through it, backend_cpu) */
#include "cuda/cuda_common.h"
#include "harness.h"
extern "C" {
#include "util/common.h" /* defines: mallocCheck */
#include "util/rng.h"
}

#define TOL 1e-5

static Rng gpu_test_rng;
static const Backend *cpu, *gpu, *gpu16; /* gpu: CUDA in fp32 (parity); gpu16: CUDA in bf16 */
static int quick; /* `test_X quick`: the sanitizer runs' few shapes */

/* The start of every GPU test binary's main. */
static inline void gpu_test_init(int argc, char **argv) {
    quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    rng_seed(&gpu_test_rng, 20261129);
    cpu = backend_cpu();
    gpu = backend_cuda(PRECISION_FP32);
    gpu16 = backend_cuda(PRECISION_BF16);
}

typedef struct {
    float *host, *dev;
    size_t n;
} Pair;

typedef struct {
    int *host, *dev;
    size_t n;
} IntPair;

static inline Pair pair_alloc(size_t n) {
    Pair p;
    p.n = n;
    p.host = (float *)mallocCheck(sizeof(float) * (n ? n : 1));
    p.dev = (float *)backend_cuda(PRECISION_FP32)->alloc(sizeof(float) * (n ? n : 1));
    return p;
}

static inline void pair_upload(Pair p) {
    backend_cuda(PRECISION_FP32)->to_device(p.dev, p.host, sizeof(float) * p.n);
}

/* Random N(0, scale^2) values, the same on both sides. */
static inline Pair pair_random(size_t n, double scale) {
    Pair p = pair_alloc(n);
    for (size_t i = 0; i < n; i++)
        p.host[i] = (float)(scale * rng_normal(&gpu_test_rng));
    pair_upload(p);
    return p;
}

/* Random values with |x| >= 0.5 (for divisors and norms). */
static inline Pair pair_random_away_from_zero(size_t n) {
    Pair p = pair_alloc(n);
    for (size_t i = 0; i < n; i++) {
        double u = 0.5 + rng_uniform(&gpu_test_rng);
        p.host[i] = (float)(rng_below(&gpu_test_rng, 2) ? u : -u);
    }
    pair_upload(p);
    return p;
}

/* NaN on both sides: for outputs the op must overwrite. */
static inline Pair pair_poisoned(size_t n) {
    Pair p = pair_alloc(n);
    for (size_t i = 0; i < n; i++)
        p.host[i] = NAN;
    pair_upload(p);
    return p;
}

static inline void pair_free(Pair p) {
    free(p.host);
    backend_cuda(PRECISION_FP32)->release(p.dev);
}

/* PAIRS_FREE(a, b, ...): frees every pair named. */
static inline void pairs_free(const Pair *pairs, size_t n) {
    for (size_t i = 0; i < n; i++)
        pair_free(pairs[i]);
}
#define PAIRS_FREE(...)                                                                            \
    do {                                                                                           \
        Pair pairs_[] = {__VA_ARGS__};                                                             \
        pairs_free(pairs_, sizeof pairs_ / sizeof *pairs_);                                        \
    } while (0)

static inline float *pair_download(Pair p) {
    float *got = (float *)mallocCheck(sizeof(float) * (p.n ? p.n : 1));
    backend_cuda(PRECISION_FP32)->to_host(got, p.dev, sizeof(float) * p.n);
    return got;
}

/* The device result against the CPU result: |gpu - cpu| <= atol + rtol |cpu|. */
static inline int pair_check(const char *what, Pair p, double atol, double rtol) {
    float *got = pair_download(p);
    int ok = harness_allclose(what, got, p.host, p.n, atol, rtol);
    free(got);
    return ok;
}

/* The device result must equal the CPU result bit for bit. */
static inline int pair_check_exact(const char *what, Pair p) {
    float *got = pair_download(p);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < p.n; i++)
        if (memcmp(&got[i], &p.host[i], sizeof(float)) != 0 && bad++ == 0)
            first = i;
    CHECK(bad == 0, "%s: %zu of %zu elements differ in their bits; first [%zu] got %.9g want %.9g",
          what, bad, p.n, first, (double)got[first], (double)p.host[first]);
    free(got);
    return bad == 0;
}

/* The determinism promise: two runs of one op on the same inputs (results in the devices
 * sides of a and b) give the same bits. */
static inline int check_same_bits(const char *what, Pair a, Pair b) {
    float *x = pair_download(a), *y = pair_download(b);
    int same = a.n == b.n && memcmp(x, y, sizeof(float) * a.n) == 0;
    CHECK(same, "%s differs between two runs", what);
    free(x), free(y);
    return same;
}

static inline IntPair int_pair(const int *values, size_t n) {
    IntPair p;
    p.n = n;
    p.host = (int *)mallocCheck(sizeof(int) * (n ? n : 1));
    memcpy(p.host, values, sizeof(int) * n);
    p.dev = (int *)backend_cuda(PRECISION_FP32)->alloc(sizeof(int) * (n ? n : 1));
    backend_cuda(PRECISION_FP32)->to_device(p.dev, p.host, sizeof(int) * n);
    return p;
}

static inline void int_pair_free(IntPair p) {
    free(p.host);
    backend_cuda(PRECISION_FP32)->release(p.dev);
}

/* Largest |x| over n host floats: the scale an absolute tolerance is stated against. */
static inline double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)x[i]));
    return m;
}

/* The scaled comparison (TOL above): |gpu - cpu| <= tol max|cpu| + tol |cpu|. */
static inline int check_scaled(const char *what, Pair p, double tol) {
    return pair_check(what, p, tol * max_abs(p.host, p.n), tol);
}

/* ---- bf16 helpers: host-side round trips for the bf16 kernel instantiations ---- */

static inline float bf16_round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

static inline __nv_bfloat16 *bf16_upload(const float *host, size_t n) {
    __nv_bfloat16 *tmp = (__nv_bfloat16 *)mallocCheck(sizeof(__nv_bfloat16) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        tmp[i] = __float2bfloat16_rn(host[i]);
    __nv_bfloat16 *dev = NULL;
    cudaCheck(cudaMalloc(&dev, sizeof(__nv_bfloat16) * (n ? n : 1)));
    cudaCheck(cudaMemcpy(dev, tmp, sizeof(__nv_bfloat16) * n, cudaMemcpyHostToDevice));
    free(tmp);
    return dev;
}

/* A device bf16 buffer filled with NaN. */
static inline __nv_bfloat16 *bf16_poisoned(size_t n) {
    float *nan_host = (float *)mallocCheck(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        nan_host[i] = NAN;
    __nv_bfloat16 *dev = bf16_upload(nan_host, n);
    free(nan_host);
    return dev;
}

static inline float *bf16_download(const __nv_bfloat16 *dev, size_t n) {
    __nv_bfloat16 *tmp = (__nv_bfloat16 *)mallocCheck(sizeof(__nv_bfloat16) * (n ? n : 1));
    cudaCheck(cudaMemcpy(tmp, dev, sizeof(__nv_bfloat16) * n, cudaMemcpyDeviceToHost));
    float *out = (float *)mallocCheck(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        out[i] = __bfloat162float(tmp[i]);
    free(tmp);
    return out;
}

/* bf16 tolerance of the task: |gpu - cpu| <= atol + 2^-7 |cpu| */
#define BF16_RTOL (1.0 / 128.0)

/* BF16_FREE(a, b, ...): frees every device bf16 buffer named. */
static inline void bf16_free_all(__nv_bfloat16 *const *bufs, size_t n) {
    for (size_t i = 0; i < n; i++)
        cudaCheck(cudaFree(bufs[i]));
}
#define BF16_FREE(...)                                                                             \
    do {                                                                                           \
        __nv_bfloat16 *bufs_[] = {__VA_ARGS__};                                                    \
        bf16_free_all(bufs_, sizeof bufs_ / sizeof *bufs_);                                        \
    } while (0)

/* Rounds a pair's values to bf16 on both sides, so that the CPU op computes from the very
 * values a bf16 kernel reads; returns the device bf16 copy (cudaFree it). */
static inline __nv_bfloat16 *pair_to_bf16(Pair p) {
    for (size_t i = 0; i < p.n; i++)
        p.host[i] = bf16_round(p.host[i]);
    pair_upload(p);
    return bf16_upload(p.host, p.n);
}

/* A bf16 activation the kernel wrote against the CPU's fp32 result: the kernel rounded once
 * (or twice: a GEMM's bf16 result, then + bias) where the CPU did not, 2^-9 relative each,
 * within BF16_RTOL; atol, 2^-8 of the tensor's scale, covers values near 0, where the
 * rounding of what they were computed from dominates. */
static inline int check_bf16(const char *what, const __nv_bfloat16 *dev, const float *want, size_t n) {
    float *got = bf16_download(dev, n);
    int ok = harness_allclose(what, got, want, n, max_abs(want, n) / 256, BF16_RTOL);
    free(got);
    return ok;
}

/* A bf16 activation that must be the CPU's fp32 result rounded to bf16, bit for bit: a copy, a
 * cast, or a sum that is exact in fp32. */
static inline int check_bf16_exact(const char *what, const __nv_bfloat16 *dev, const float *want, size_t n) {
    float *got = bf16_download(dev, n);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (!(got[i] == bf16_round(want[i])) && bad++ == 0)
            first = i;
    CHECK(bad == 0, "%s: %zu of %zu elements are not the CPU's value rounded to bf16; first [%zu] got %.9g "
          "want %.9g", what, bad, n, first, (double)got[first], (double)bf16_round(want[first]));
    free(got);
    return bad == 0;
}

#endif
