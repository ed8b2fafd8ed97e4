/*
 * backend_cuda.h: the CUDA backend (cuda/backend_cuda.cu), one Backend table per precision.
 *
 * Fills the Backend table of engine/backend.h with device memory, cuBLAS GEMMs and the
 * kernels of kernels/: fp32 (the parity mode), tf32 or bf16 (engine/backend.h, Precision).
 * The first GEMM creates the cuBLAS handles on the current device. Every op runs on the
 * legacy default stream, so to_host() sees all earlier work.
 */
#ifndef TNG_BACKEND_CUDA_H
#define TNG_BACKEND_CUDA_H

/* host headers are C: in a C++ (CUDA) file they keep C linkage */
#ifdef __cplusplus
extern "C" {
#endif

#include "engine/backend.h"

/* The table computing in `precision` (fp32, tf32 or bf16; auto is bf16). */
const Backend *backend_cuda(Precision precision);

#ifdef __cplusplus
}
#endif

#endif
