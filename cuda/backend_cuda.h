/*
 * backend_cuda.h: the CUDA backend (cuda/backend_cuda.cu), fp32 parity mode.
 *
 * Fills the Backend table of host/backend.h with device memory, cuBLAS GEMMs and the
 * kernels of kernels/. The first call picks the current CUDA device and creates the cuBLAS
 * handle. Every op runs on the legacy default stream, so to_host() sees all earlier work.
 */
#ifndef TNG_BACKEND_CUDA_H
#define TNG_BACKEND_CUDA_H

/* host headers are C: in a C++ (CUDA) file they keep C linkage */
#ifdef __cplusplus
extern "C" {
#endif

#include "engine/backend.h"

const Backend *backend_cuda(void);

#ifdef __cplusplus
}
#endif

#endif
