/*
 * adamw.cuh: the AdamW update and the sum of squares behind gradient clipping.
 *
 * AdamW computes the CPU op's float operations (host/engine/cpu/ops_cpu.c, PyTorch's order:
 * decoupled decay, then the bias-corrected step) in the same order, so that the GPU's bits
 * equal the CPU's. Every operation is an explicitly rounded intrinsic (__fmul_rn, __fadd_rn,
 * ...): nvcc contracts a * b + c into one fused multiply-add wherever it may, rounding once
 * where the CPU (C11, contraction off) rounds twice, and it never contracts the intrinsics.
 * The scalars (step size, 1/sqrt(bc2), decay) are computed on the host as the CPU op does.
 * Memory-bound either way. (The CPU emulator cannot show a contraction: the GPU run of
 * tests/gpu/test_adamw.cu can.)
 *
 * sum_squares adds into a device double, so a step's norm needs one read-back, not one per
 * tensor. Determinism: the number of partial
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

/* m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g g, g = grad * grad_scale;
 * param = param * decay - step_size * (m / (sqrt(v) * inv_bc2_sqrt + eps)) */
struct AdamWUpdate {
    float *param, *m, *v;
    const float *grad;
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, grad_scale;
    float decay, step_size, inv_bc2_sqrt;
    __device__ void operator()(size_t i) const {
        float g = __fmul_rn(grad[i], grad_scale);
        float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(one_minus_beta1, g));
        float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(__fmul_rn(one_minus_beta2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(vi), inv_bc2_sqrt), eps);
        param[i] =
            __fsub_rn(__fmul_rn(param[i], decay), __fmul_rn(step_size, __fdiv_rn(mi, denom)));
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
    f.one_minus_beta1 = 1.0f - hp->beta1;
    f.beta2 = hp->beta2;
    f.one_minus_beta2 = 1.0f - hp->beta2;
    f.eps = hp->eps;
    f.grad_scale = hp->grad_scale;
    /* the CPU op's scalars: computed in double, rounded to float once */
    f.decay = (float)(1.0 - (double)hp->lr * hp->weight_decay);
    f.step_size = (float)((double)hp->lr / hp->bias_correction1);
    f.inv_bc2_sqrt = (float)(1.0 / sqrt((double)hp->bias_correction2));
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
    sum_squares_finish_kernel(double *acc, const double *partial, int count) {
    __shared__ double shared[PLAN_WARP];
    double sum = 0.0;
    for (int k = threadIdx.x; k < count; k += blockDim.x)
        sum += partial[k];
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0)
        *acc += sum;
}

/* acc[0] (device memory) += the sum of x[i]^2: two launches, no host synchronisation. */
static inline void sum_squares(double *acc, const float *x, size_t n, cudaStream_t stream) {
    if (n == 0)
        return;
    int blocks = (int)sum_squares_blocks(n);
    double *partial = (double *)tng_cuda_scratch(sizeof(double) * (size_t)blocks);
    TNG_LAUNCH(sum_squares_partial_kernel, blocks, SUMSQ_THREADS, 0, stream, partial, x, n);
    TNG_LAUNCH(sum_squares_finish_kernel, 1, SUMSQ_THREADS, 0, stream, acc, partial, blocks);
}

#endif
