/*
 * elementwise.cuh: one-element-per-thread ops: GELU / QuickGELU forward and backward, the
 * residual add, accumulate, scale, and the linear layer's bias add.
 *
 * One grid-stride kernel template runs a functor over n elements (size_t, so n past 2^31
 * works); the grid is capped by elementwise_blocks() in launch_plan.h. No shape assumption
 * (llm.c's GELU required N % 4096 == 0): every index is checked against n.
 *
 * The activation formulas are the CPU op's, evaluated in fp32 (erff/expf) where the CPU
 * uses double: they agree to a few float ulps.
 */
#ifndef TNG_KERNELS_ELEMENTWISE_CUH
#define TNG_KERNELS_ELEMENTWISE_CUH

#include "common.cuh"
#include "cuda/cuda_common.h"
extern "C" {
#include "engine/config.h" /* defines: ActKind */
}

#define QUICK_GELU_ALPHA_F 1.702f
#define INV_SQRT2_F 0.70710678118654752f
#define INV_SQRT_2PI_F 0.39894228040143268f

template <typename F> __global__ void elementwise_kernel(F f, size_t n) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        f(i);
}

template <typename F> void launch_elementwise(F f, size_t n, cudaStream_t stream) {
    if (n == 0)
        return;
    TNG_LAUNCH(elementwise_kernel<F>, (unsigned)elementwise_blocks(n), ELEM_THREADS, 0, stream, f,
               n);
}

__device__ __forceinline__ float activation_value(float x, ActKind act) {
    return act == ACT_GELU ? 0.5f * x * (1.0f + erff(x * INV_SQRT2_F))
                           : x / (1.0f + expf(-QUICK_GELU_ALPHA_F * x));
}

__device__ __forceinline__ float activation_grad(float x, ActKind act) {
    if (act == ACT_GELU)
        return 0.5f * (1.0f + erff(x * INV_SQRT2_F)) + x * expf(-0.5f * x * x) * INV_SQRT_2PI_F;
    float s = 1.0f / (1.0f + expf(-QUICK_GELU_ALPHA_F * x));
    return s + QUICK_GELU_ALPHA_F * x * s * (1.0f - s);
}

struct ActivationForward {
    float *out;
    const float *inp;
    ActKind act;
    __device__ void operator()(size_t i) const { out[i] = activation_value(inp[i], act); }
};

struct ActivationBackward {
    float *dinp;
    const float *inp, *dout;
    ActKind act;
    __device__ void operator()(size_t i) const {
        dinp[i] += activation_grad(inp[i], act) * dout[i];
    }
};

struct ResidualForward {
    float *out;
    const float *a, *b;
    __device__ void operator()(size_t i) const { out[i] = a[i] + b[i]; }
};

struct Accumulate {
    float *dst;
    const float *src;
    __device__ void operator()(size_t i) const { dst[i] += src[i]; }
};

struct Scale {
    float *x;
    float factor;
    __device__ void operator()(size_t i) const { x[i] *= factor; }
};

/* out[n, o] += bias[o] over an [N, OC] matrix */
struct BiasAdd {
    float *out;
    const float *bias;
    size_t OC;
    __device__ void operator()(size_t i) const { out[i] += bias[i % OC]; }
};

#endif
