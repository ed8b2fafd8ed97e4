/*
 * adamw.cuh: the AdamW update and the sum of squares behind gradient clipping.
 *
 * AdamW follows the CPU op operation for operation (PyTorch's order: decoupled decay, then
 * the bias-corrected step), with the same float/double split: moments in float, the
 * sqrt(v)/sqrt(bc2) and step-size products in double. Memory-bound either way.
 *
 * sum_squares returns a host double, so it synchronises. Determinism: the number of partial
 * sums depends on n alone (sum_squares_blocks), each block's grid-stride share and the final
 * sum use fixed reduction trees, all in double.
 */
#ifndef TNG_KERNELS_ADAMW_CUH
#define TNG_KERNELS_ADAMW_CUH

#include "common.cuh"
#include "elementwise.cuh"
extern "C" {
#include "engine/backend.h" /* defines: AdamWStep */
}

struct AdamWUpdate {
    float *param, *m, *v;
    const float *grad;
    float beta1, beta2, eps, grad_scale, decay;
    double step_size, bc2_sqrt;
    __device__ void operator()(size_t i) const {
        float g = grad[i] * grad_scale;
        float mi = beta1 * m[i] + (1 - beta1) * g;
        float vi = beta2 * v[i] + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = param[i] * decay;
        float denom = (float)(sqrt((double)vi) / bc2_sqrt) + eps;
        param[i] = p - (float)(step_size * (double)(mi / denom));
    }
};

static inline void adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
                                const AdamWStep *hp, cudaStream_t stream) {
    AdamWUpdate f;
    f.param = param;
    f.m = m;
    f.v = v;
    f.grad = grad;
    f.beta1 = hp->beta1;
    f.beta2 = hp->beta2;
    f.eps = hp->eps;
    f.grad_scale = hp->grad_scale;
    f.decay = (float)(1.0 - (double)hp->lr * hp->weight_decay);
    f.step_size = (double)hp->lr / hp->bias_correction1;
    f.bc2_sqrt = sqrt((double)hp->bias_correction2);
    launch_elementwise(f, n, stream);
}

static __global__ void __launch_bounds__(SUMSQ_THREADS)
    sum_squares_partial_kernel(double *partial, const float *x, size_t n) {
    __shared__ double shared[PLAN_WARP];
    double acc = 0.0;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        acc += (double)x[i] * x[i];
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = acc;
}

static __global__ void __launch_bounds__(SUMSQ_THREADS)
    sum_squares_finish_kernel(double *result, const double *partial, int count) {
    __shared__ double shared[PLAN_WARP];
    double acc = 0.0;
    for (int k = threadIdx.x; k < count; k += blockDim.x)
        acc += partial[k];
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0)
        *result = acc;
}

static inline double sum_squares(const float *x, size_t n, cudaStream_t stream) {
    if (n == 0)
        return 0.0;
    int blocks = (int)sum_squares_blocks(n);
    double *partial = (double *)tng_cuda_scratch(sizeof(double) * (size_t)(blocks + 1));
    double *result = partial + blocks;
    sum_squares_partial_kernel<<<blocks, SUMSQ_THREADS, 0, stream>>>(partial, x, n);
    kernelCheck();
    sum_squares_finish_kernel<<<1, SUMSQ_THREADS, 0, stream>>>(result, partial, blocks);
    kernelCheck();
    double host = 0.0;
    cudaCheck(cudaMemcpyAsync(&host, result, sizeof host, cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    return host;
}

#endif
