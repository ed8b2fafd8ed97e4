/*
 * cuda_common.h: error checking for CUDA and cuBLAS calls, and the backend's scratch memory.
 *
 * Every runtime call goes through cudaCheck() and every launch through TNG_LAUNCH
 * (kernels/common.cuh), which calls kernel_check(): a failure prints the file and line of
 * the call (and the kernel's name) and exits. A fault while a kernel runs is asynchronous:
 * by default it surfaces at the next synchronising call, which names no kernel; with
 * TNG_CUDA_SYNC=1 in the environment every launch is followed by a synchronisation, so the
 * fault is reported naming the kernel that caused it and its launch site (slow: a debug mode).
 */
#ifndef TNG_CUDA_COMMON_H
#define TNG_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* TNG_CUDA_SYNC set and not "0". Read at every launch, so that a test can set it late. */
static inline int cuda_sync_after_launch(void) {
    const char *v = getenv("TNG_CUDA_SYNC");
    return v && *v && strcmp(v, "0") != 0;
}

/* After a kernel launch (TNG_LAUNCH): a bad launch configuration, and with TNG_CUDA_SYNC=1
 * a fault while the kernel ran, is reported naming the kernel and its launch site. */
static inline void kernel_check(const char *kernel, const char *file, int line) {
    cudaError_t err = cudaGetLastError();
    const char *stage = "launch";
    if (err == cudaSuccess && cuda_sync_after_launch()) {
        err = cudaDeviceSynchronize();
        stage = "run (TNG_CUDA_SYNC)";
    }
    if (err == cudaSuccess)
        return;
    fprintf(stderr, "tng: CUDA error in kernel %s launched at %s:%d, at its %s: %s\n", kernel, file,
            line, stage, cudaGetErrorString(err));
    exit(1);
}

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
