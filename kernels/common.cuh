/*
 * common.cuh: what every kernel file shares: the launch macros, float/bf16 load and store,
 * warp reductions and the deterministic block reduction.
 *
 * The kernels compile with nvcc, and with a host C++ compiler against the CPU emulator of
 * the CUDA programming model (tests/emu/) for the tests. The two constructs a host compiler
 * cannot parse are written through two macros: TNG_LAUNCH(kernel, grid, block, smem, stream,
 * args...) is the launch kernel<<<grid, block, smem, stream>>>(args...) followed by its
 * error check, queued through cuda/queue.h (a graph step may hold it), and
 * TNG_DYNAMIC_SMEM(type, name) declares extern __shared__ type name[]. A kernel name with a comma goes in parentheses: TNG_LAUNCH((kernel<T, 8>), ...).
 *
 * Kernels that are templated on their I/O type (io_t = float or __nv_bfloat16) read with
 * load_f32() and write with store_as<io_t>(), and do all arithmetic in fp32. Reductions
 * here always combine lanes and warps in a fixed tree, so results are the same bits on
 * every run (the engine's determinism promise, backend.h).
 */
#ifndef TNG_KERNELS_COMMON_CUH
#define TNG_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>

#include "cuda/cuda_common.h" /* defines: kernel_check, cudaCheck, shapeCheck */
#include "cuda/queue.h"       /* defines: tng_queue_launch */
#include "launch_plan.h"

/* The launch itself, as each compiler spells it */
#ifdef __CUDACC__
#define TNG_KERNEL_CALL(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define TNG_DYNAMIC_SMEM(type, name) extern __shared__ type name[]
#elif defined(EMU_LAUNCH) /* the emulator's cuda_runtime.h */
#define TNG_KERNEL_CALL(kernel, grid, block, smem, stream, ...) EMU_LAUNCH(kernel, grid, block, smem, stream, __VA_ARGS__)
#define TNG_DYNAMIC_SMEM(type, name) EMU_EXTERN_SHARED(type, name)
#else
#error "kernels/ compile with nvcc, or with a host compiler against tests/emu/include"
#endif
/* Queued through the backend's one door (cuda/queue.h), so that a graph step can hold it */
#define TNG_LAUNCH(kernel, grid, block, smem, stream, ...)                                         \
    tng_queue_launch((const void *)(kernel), dim3(grid), dim3(block), (size_t)(smem), stream,       \
                     [](dim3 tng_grid, dim3 tng_block, size_t tng_smem, cudaStream_t tng_stream,   \
                        auto... tng_args) {                                                        \
                         TNG_KERNEL_CALL(kernel, tng_grid, tng_block, tng_smem, tng_stream,        \
                                         tng_args...);                                             \
                         kernel_check(#kernel, __FILE__, __LINE__);                                \
                     },                                                                            \
                     __VA_ARGS__)

__device__ __forceinline__ float load_f32(float x) { return x; }
__device__ __forceinline__ float load_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename io_t> __device__ __forceinline__ io_t store_as(float x);
template <> __device__ __forceinline__ float store_as<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 store_as<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* Sum over the whole block (blockDim.x a multiple of 32, at most 1024). Every thread gets
 * the result. `shared` holds at least 32 values. The two __syncthreads() make the helper
 * safe to call twice in a row with the same scratch. */
template <typename acc_t> __device__ acc_t block_sum(acc_t v, acc_t *shared) {
    int lane = threadIdx.x % PLAN_WARP, warp = threadIdx.x / PLAN_WARP;
    int warps = blockDim.x / PLAN_WARP;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    acc_t total = lane < warps ? shared[lane] : (acc_t)0;
    return warp_sum(total);
}

__device__ __forceinline__ float block_max(float v, float *shared) {
    int lane = threadIdx.x % PLAN_WARP, warp = threadIdx.x / PLAN_WARP;
    int warps = blockDim.x / PLAN_WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0)
        shared[warp] = v;
    __syncthreads();
    float m = lane < warps ? shared[lane] : -INFINITY;
    return warp_max(m);
}

/* The shared memory one block may opt into on the current device (227 KB on sm_90). */
static inline size_t device_smem_optin(void) {
    static size_t bytes;
    if (!bytes) {
        int device = 0, value = 0;
        if (cudaGetDevice(&device) != cudaSuccess ||
            cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
                cudaSuccess) {
            (void)cudaGetLastError(); /* clear it: kernel_check() would report it later */
            value = (int)PLAN_SMEM_DEFAULT;
        }
        bytes = (size_t)value;
    }
    return bytes;
}

#endif
