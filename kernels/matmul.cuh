/*
 * matmul.cuh: the linear layer, out[N,OC] = inp[N,IC] @ weight[OC,IC]^T + bias, on cuBLAS.
 *
 * cuBLAS is column-major; a row-major [R, K] matrix is the column-major [K, R] one. So the
 * forward out^T = W (op T) x inp^T, and the backward dinp^T = W^T x dout^T and
 * dweight^T = inp^T x dout (op T), with beta = 1 because backward ops accumulate. The GEMMs
 * run in strict fp32 (CUBLAS_DEFAULT_MATH never uses TF32 for SGEMM): this is the parity
 * mode. cuBLAS gives the same bits run to run on one GPU model with one stream, which is
 * how the backend runs. The bias add is an elementwise kernel, dbias a deterministic column
 * sum (reduce.cuh).
 */
#ifndef TNG_KERNELS_MATMUL_CUH
#define TNG_KERNELS_MATMUL_CUH

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
        launch_elementwise(BiasAdd{out, bias, (size_t)OC}, (size_t)N * OC, stream);
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

#endif
