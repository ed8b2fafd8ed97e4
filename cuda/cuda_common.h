/*
 * cuda_common.h: error checking for CUDA and cuBLAS calls, and the backend's scratch memory.
 *
 * Every runtime call goes through cudaCheck() and every launch is followed by
 * kernelCheck(): a failure prints the file and line of the call and exits, so an error is
 * reported where it happened rather than at some later synchronising call.
 */
#ifndef TNG_CUDA_COMMON_H
#define TNG_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

static inline void cuda_check(cudaError_t err, const char *what, const char *file, int line) {
    if (err == cudaSuccess)
        return;
    fprintf(stderr, "tng: CUDA error at %s:%d: %s: %s\n", file, line, what,
            cudaGetErrorString(err));
    exit(1);
}

static inline void cublas_check(cublasStatus_t status, const char *what, const char *file,
                                int line) {
    if (status == CUBLAS_STATUS_SUCCESS)
        return;
    fprintf(stderr, "tng: cuBLAS error at %s:%d: %s: status %d\n", file, line, what, (int)status);
    exit(1);
}

#define cudaCheck(call) cuda_check((call), #call, __FILE__, __LINE__)
#define cublasCheck(call) cublas_check((call), #call, __FILE__, __LINE__)
/* After a kernel launch: catches bad launch configurations at the launch site. */
#define kernelCheck() cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

/* Fails with a message naming the op when a shape is outside what a kernel supports. */
#define shapeCheck(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "tng: %s:%d: unsupported shape: ", __FILE__, __LINE__);                \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Device scratch memory shared by all ops (backend_cuda.cu). Grows on demand and is valid
 * until the next call; every op runs on the one default stream, so an op may use it freely
 * until it returns. */
void *tng_cuda_scratch(size_t bytes);

#endif
