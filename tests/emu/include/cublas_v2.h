/* cublas_v2.h for the CPU emulator (tests/emu/README.md): the cuBLAS calls the backend
 * makes (SGEMM, for the loss's strict fp32 products, forwarded to column-major CBLAS), the
 * types cublasLt.h shares, and emu_widen, which reads an fp32 or bf16 matrix as floats (bf16
 * widens exactly). It checks the call sites (transposes, leading dimensions, matrices in device
 * memory), not cuBLAS itself. During a stream capture a GEMM is recorded, its alpha and beta
 * by value; each GEMM run is counted (emu_counters). */
#pragma once
#include <cblas.h>

#include <vector>

#include "cuda_bf16.h"
#include "cudaemu.h"
typedef struct cublasContext *cublasHandle_t;
typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t; /* TF32 rounds nothing here */
static inline cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = (cublasHandle_t)1;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) {
    return CUBLAS_STATUS_SUCCESS;
}
template <typename S> static inline cublasStatus_t cublasSetStream(cublasHandle_t, S) {
    return CUBLAS_STATUS_SUCCESS;
}
/* The checks every GEMM call passes: shapes, leading dimensions, device memory. */
static inline cublasStatus_t emu_gemm_check(const char *name, cublasOperation_t ta, cublasOperation_t tb, int m,
                                            int n, int k, const void *A, int lda, const void *B, int ldb,
                                            const void *C, int ldc) {
    if (m < 0 || n < 0 || k < 0 || lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) ||
        ldc < m)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!emu::is_device_range(A, 0) || !emu::is_device_range(B, 0) || !emu::is_device_range(C, 0)) {
        fprintf(stderr, "cudaemu: %s on a matrix outside device memory\n", name);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, const float *B,
                                         int ldb, const float *beta, float *C, int ldc) {
    cublasStatus_t status = emu_gemm_check("cublasSgemm", ta, tb, m, n, k, A, lda, B, ldb, C, ldc);
    if (status != CUBLAS_STATUS_SUCCESS) return status;
    float al = *alpha, be = *beta; /* a capture keeps the host scalars' values */
    if (emu::record([=]() { cublasSgemm(h, ta, tb, m, n, k, &al, A, lda, B, ldb, &be, C, ldc); })) return status;
    emu::st().gemms++;
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_T ? CblasTrans : CblasNoTrans,
                tb == CUBLAS_OP_T ? CblasTrans : CblasNoTrans, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t; /* TF32 rounds nothing here */

/* The column-major [rows, cols] matrix at p (leading dimension ld) of type t, as floats; what
 * lies past the last column's rows is neither read nor written. */
static inline std::vector<float> emu_widen(const void *p, cudaDataType_t t, int rows, int cols, int ld) {
    std::vector<float> out((size_t)ld * cols);
    size_t used = cols > 0 ? (size_t)ld * (cols - 1) + rows : 0;
    for (size_t i = 0; i < used; i++)
        out[i] = t == CUDA_R_32F ? ((const float *)p)[i] : __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return out;
}

