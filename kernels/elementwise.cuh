/*
 * elementwise.cuh: one-element-per-thread ops: GELU / QuickGELU forward and backward, the
 * residual add, accumulate, scale, the linear layer's bias add and the fp32-to-activation
 * cast.
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
#include "reduce.cuh"
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

/* The forward functors read and write activations of type io_t (float, or bf16 in the bf16
 * backend) and compute in fp32; gradients are always fp32 (backend.h). */
template <typename io_t> struct ActivationForward {
    io_t *out;
    const io_t *inp;
    ActKind act;
    __device__ void operator()(size_t i) const {
        out[i] = store_as<io_t>(activation_value(load_f32(inp[i]), act));
    }
};

/* dinp is overwritten (backend.h, activation_backward) */
template <typename io_t> struct ActivationBackward {
    float *dinp;
    const io_t *inp;
    const float *dout;
    ActKind act;
    __device__ void operator()(size_t i) const {
        dinp[i] = activation_grad(load_f32(inp[i]), act) * dout[i];
    }
};

template <typename io_t> struct ResidualForward {
    io_t *out;
    const io_t *a, *b;
    __device__ void operator()(size_t i) const {
        out[i] = store_as<io_t>(load_f32(a[i]) + load_f32(b[i]));
    }
};

/* One element of dinp = act'(inp) dout, written, and given to the column sum that makes the
 * bias gradient (reduce.cuh): the same values, summed in the same order, as the linear
 * backward's column sum of dinp would be. */
template <typename io_t> struct ActivationBackwardColumns {
    float *dinp;
    const io_t *inp;
    const float *dout;
    size_t C;
    ActKind act;
    __device__ void operator()(size_t row, size_t col, float *out) const {
        size_t i = row * C + col;
        float g = activation_grad(load_f32(inp[i]), act) * dout[i];
        dinp[i] = g;
        out[0] = g;
    }
};

/* dinp = act'(inp) dout over [N, C]; dbias += its column sums (NULL: an elementwise pass) */
template <typename io_t>
void activation_backward(float *dinp, float *dbias, const io_t *inp, const float *dout, int N, int C,
                         ActKind act, cudaStream_t stream) {
    if (dbias)
        colsum_accumulate<1>(dbias, (float *)NULL, ActivationBackwardColumns<io_t>{dinp, inp, dout, (size_t)C, act},
                             (size_t)N, (size_t)C, stream);
    else
        launch_elementwise(ActivationBackward<io_t>{dinp, inp, dout, act}, (size_t)N * C, stream);
}

/* dst[i] = src[i] in the activation type: the weights' compute copy */
template <typename io_t> struct ToAct {
    io_t *dst;
    const float *src;
    __device__ void operator()(size_t i) const { dst[i] = store_as<io_t>(src[i]); }
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
template <typename io_t> struct BiasAdd {
    io_t *out;
    const float *bias;
    size_t OC;
    __device__ void operator()(size_t i) const {
        out[i] = store_as<io_t>(load_f32(out[i]) + bias[i % OC]);
    }
};

#endif
