/*
 * matmul.cuh: the linear layer, out[N,OC] = inp[N,IC] @ weight[OC,IC]^T + bias, on cuBLAS.
 *
 * cuBLAS is column-major; a row-major [R, K] matrix is the column-major [K, R] one. So the
 * forward out^T = W (op T) x inp^T, and the backward dinp^T = W^T x dout^T and
 * dweight^T = inp^T x dout (op T), with beta = 1 because backward ops accumulate.
 *
 * Two entry points (backend.h):
 * - matmul_*: everything fp32, GEMMs in strict fp32 (CUBLAS_DEFAULT_MATH never uses TF32 for
 *   SGEMM): the loss's similarity matrix in every precision, and the parity mode's layers.
 * - linear_*<io_t>: the towers' layers. io_t = float is matmul_* on the handle the backend
 *   passes (strict, or TF32 tensor-op math for --precision tf32). io_t = bf16 reads bf16
 *   activations and weight copies and accumulates in fp32 on tensor cores (cublasGemmEx,
 *   CUBLAS_COMPUTE_32F); the forward writes bf16, the backward adds into the fp32 gradients
 *   (C in fp32, beta = 1), after rounding the fp32 dout to bf16 in the backend's scratch.
 *   The forward rounds twice when there is a bias (the GEMM's result, then + bias); a
 *   cuBLASLt bias epilogue would round once.
 *
 * cuBLAS gives the same bits run to run on one GPU model with one stream, which is how the
 * backend runs. The bias add is an elementwise kernel, dbias a deterministic column sum of
 * the fp32 dout (reduce.cuh).
 */
#ifndef TNG_KERNELS_MATMUL_CUH
#define TNG_KERNELS_MATMUL_CUH

#include <cublas_v2.h>

#include "elementwise.cuh"
#include "reduce.cuh"

static inline void matmul_forward(cublasHandle_t handle, float *out, const float *inp,
                                  const float *weight, const float *bias, int N, int IC, int OC,
                                  cudaStream_t stream) {
    if (N == 0 || OC == 0)
        return;
    const float one = 1.0f, zero = 0.0f;
    cublasCheck(cublasSetStream(handle, stream));
    cublasCheck(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, &one, weight, IC, inp, IC,
                            &zero, out, OC));
    if (bias)
        launch_elementwise(BiasAdd<float>{out, bias, (size_t)OC}, (size_t)N * OC, stream);
}

static inline void matmul_backward(cublasHandle_t handle, float *dinp, float *dweight, float *dbias,
                                   const float *dout, const float *inp, const float *weight, int N,
                                   int IC, int OC, cudaStream_t stream) {
    if (N == 0 || OC == 0 || IC == 0)
        return;
    const float one = 1.0f;
    cublasCheck(cublasSetStream(handle, stream));
    if (dinp) /* dinp[N,IC] += dout[N,OC] @ weight[OC,IC] */
        cublasCheck(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, &one, weight, IC, dout,
                                OC, &one, dinp, IC));
    if (dweight) /* dweight[OC,IC] += dout^T @ inp */
        cublasCheck(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, &one, inp, IC, dout,
                                OC, &one, dweight, IC));
    colsum_accumulate<1>(dbias, (float *)NULL, StridedRows<float>{dout, (size_t)OC}, (size_t)N,
                         (size_t)OC, stream);
}

/* C = A op B + beta C (column-major), A and B bf16, C of type c_t (bf16 or fp32), the products
 * summed in fp32 */
template <typename c_t>
static void gemm_bf16(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                      int n, int k, const __nv_bfloat16 *A, int lda, const __nv_bfloat16 *B,
                      int ldb, float beta, c_t *C, int ldc) {
    const float one = 1.0f;
    cudaDataType_t c_type = sizeof(c_t) == sizeof(float) ? CUDA_R_32F : CUDA_R_16BF;
    cublasCheck(cublasGemmEx(handle, ta, tb, m, n, k, &one, A, CUDA_R_16BF, lda, B, CUDA_R_16BF,
                             ldb, &beta, C, c_type, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template <typename io_t>
void linear_forward(cublasHandle_t handle, io_t *out, const io_t *inp, const io_t *weight,
                    const float *bias, int N, int IC, int OC, cudaStream_t stream) {
    if constexpr (sizeof(io_t) == sizeof(float)) {
        matmul_forward(handle, out, inp, weight, bias, N, IC, OC, stream);
    } else {
        if (N == 0 || OC == 0)
            return;
        cublasCheck(cublasSetStream(handle, stream));
        gemm_bf16(handle, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, weight, IC, inp, IC, 0.0f, out, OC);
        if (bias)
            launch_elementwise(BiasAdd<io_t>{out, bias, (size_t)OC}, (size_t)N * OC, stream);
    }
}

/* pre = inp @ weight^T + bias, out = act(pre): the GEMM, then one kernel for bias and activation */
template <typename io_t>
void linear_activation_forward(cublasHandle_t handle, io_t *pre, io_t *out, const io_t *inp,
                               const io_t *weight, const float *bias, ActKind act, int N, int IC,
                               int OC, cudaStream_t stream) {
    linear_forward<io_t>(handle, pre, inp, weight, NULL, N, IC, OC, stream);
    size_t n = (size_t)N * OC;
    if (bias)
        launch_elementwise(BiasActivationForward<io_t>{pre, out, bias, (size_t)OC, act}, n, stream);
    else
        launch_elementwise(ActivationForward<io_t>{out, pre, act}, n, stream);
}

template <typename io_t>
void linear_backward(cublasHandle_t handle, float *dinp, float *dweight, float *dbias,
                     const float *dout, const io_t *inp, const io_t *weight, int N, int IC, int OC,
                     cudaStream_t stream) {
    if constexpr (sizeof(io_t) == sizeof(float)) {
        matmul_backward(handle, dinp, dweight, dbias, dout, inp, weight, N, IC, OC, stream);
    } else {
        if (N == 0 || OC == 0 || IC == 0)
            return;
        /* dbias first: the column sum and the bf16 dout below share the scratch, in stream order */
        colsum_accumulate<1>(dbias, (float *)NULL, StridedRows<float>{dout, (size_t)OC}, (size_t)N,
                             (size_t)OC, stream);
        if (!dinp && !dweight)
            return;
        size_t n = (size_t)N * OC;
        io_t *dout16 = (io_t *)tng_cuda_scratch(sizeof(io_t) * n);
        launch_elementwise(ToAct<io_t>{dout16, dout}, n, stream);
        cublasCheck(cublasSetStream(handle, stream));
        if (dinp) /* dinp[N,IC] += dout[N,OC] @ weight[OC,IC] */
            gemm_bf16(handle, CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, weight, IC, dout16, OC, 1.0f,
                      dinp, IC);
        if (dweight) /* dweight[OC,IC] += dout^T @ inp */
            gemm_bf16(handle, CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, inp, IC, dout16, OC, 1.0f,
                      dweight, IC);
    }
}

#endif
