/*
 * adamw.cuh: the AdamW update and the sum of squares behind gradient clipping.
 *
 * adamw_step updates every tensor of the flat parameter buffers in one launch (the multi-tensor
 * form: a table of the tensors' offsets, whether each trains and decays), refreshes the
 * weights' compute copy (bf16) and zeroes the gradients in the same pass. Per element it
 * computes the CPU op's float operations (host/engine/cpu/ops_cpu.c, PyTorch's order:
 * decoupled decay, then the bias-corrected step) in the same order, so that the GPU's bits
 * equal the CPU's. Every operation is an explicitly rounded intrinsic (__fmul_rn, __fadd_rn,
 * ...): nvcc contracts a * b + c into one fused multiply-add wherever it may, rounding once
 * where the CPU (C11, contraction off) rounds twice, and it never contracts the intrinsics.
 * The scalars (step size, 1/sqrt(bc2), decay) are computed on the host as the CPU op does; the
 * gradients' multiplier (the clip, and the skip of a non-finite step) on the device from the
 * norm's sum of squares, in the CPU op's double operations, so the step needs no read-back.
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

/* The step's scalars, as the CPU op computes them: in double, rounded to float once. The
 * gradients' multiplier is grad_scale, or decided on the device from *grad_sumsq (below).
 * They reach the kernel in device memory, uploaded with the step's other inputs, not as a
 * kernel argument: the learning rate and the bias corrections change every step, and a step
 * replayed from its graph (cuda/queue.h) changes only what it uploads. */
struct AdamWScalars {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, grad_scale;
    float decay, step_size, inv_bc2_sqrt; /* decay: 1 - lr wd, for the tensors that decay */
    const double *grad_sumsq;
    int micro_batches;
    float max_norm, clamp_min, clamp_max;
};

static inline AdamWScalars adamw_scalars(const AdamWStep *hp) {
    AdamWScalars k;
    k.beta1 = hp->beta1;
    k.one_minus_beta1 = 1.0f - hp->beta1;
    k.beta2 = hp->beta2;
    k.one_minus_beta2 = 1.0f - hp->beta2;
    k.eps = hp->eps;
    k.grad_scale = hp->grad_scale;
    k.decay = (float)(1.0 - (double)hp->lr * hp->weight_decay);
    k.step_size = (float)((double)hp->lr / hp->bias_correction1);
    k.inv_bc2_sqrt = (float)(1.0 / sqrt((double)hp->bias_correction2));
    k.grad_sumsq = hp->grad_sumsq;
    k.micro_batches = hp->micro_batches;
    k.max_norm = hp->max_norm;
    k.clamp_min = hp->clamp_min;
    k.clamp_max = hp->clamp_max;
    return k;
}

/* The gradients' multiplier (engine/backend.h, AdamWStep): the CPU op's double operations,
 * from the norm's sum of squares on the device, so that no read-back precedes the update;
 * NAN when the norm is not finite (the update is skipped). Each thread computes it. */
__device__ __forceinline__ float adamw_multiplier(const AdamWScalars &k) {
    if (!k.grad_sumsq)
        return k.grad_scale;
    float norm = (float)(sqrt(*k.grad_sumsq) / k.micro_batches);
    if (!isfinite(norm))
        return NAN;
    double clip = 1.0;
    if (k.max_norm > 0) {
        clip = k.max_norm / ((double)norm + 1e-6);
        if (clip > 1.0)
            clip = 1.0;
    }
    return (float)(1.0 / k.micro_batches * clip);
}

/* m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g g, g = grad * grad_scale;
 * param = param * decay - step_size * (m / (sqrt(v) * inv_bc2_sqrt + eps)); returns param */
__device__ __forceinline__ float adamw_element(float *param, const float *grad, float *m, float *v,
                                               size_t i, const AdamWScalars &k, float decay) {
    float g = __fmul_rn(grad[i], k.grad_scale);
    float mi = __fadd_rn(__fmul_rn(k.beta1, m[i]), __fmul_rn(k.one_minus_beta1, g));
    float vi = __fadd_rn(__fmul_rn(k.beta2, v[i]), __fmul_rn(__fmul_rn(k.one_minus_beta2, g), g));
    m[i] = mi;
    v[i] = vi;
    float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(vi), k.inv_bc2_sqrt), k.eps);
    float p = __fsub_rn(__fmul_rn(param[i], decay), __fmul_rn(k.step_size, __fdiv_rn(mi, denom)));
    param[i] = p;
    return p;
}

/* Every element of the flat buffers once (grid-stride): the tensor it belongs to, found by
 * walking the table (in shared memory) forward from the last one this thread saw, since a
 * thread's elements only grow; its update (clamped where the tensor clamps) and compute copy
 * when it trains and the step is not skipped; its gradient zeroed. The decay of a tensor
 * without weight decay is 1 - lr * 0 = 1, as the CPU's. */
template <typename io_t>
__global__ void adamw_step_kernel(float *params, float *grads, float *m, float *v, io_t *params_act,
                                  const AdamWTensor *tensors, int count, size_t total,
                                  const AdamWScalars *scalars) {
    TNG_DYNAMIC_SMEM(AdamWTensor, table);
    AdamWScalars k = *scalars;
    for (int t = threadIdx.x; t < count; t += blockDim.x)
        table[t] = tensors[t];
    __syncthreads();
    k.grad_scale = adamw_multiplier(k);
    bool skip = isnan(k.grad_scale);
    size_t stride = (size_t)gridDim.x * blockDim.x;
    int t = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        while (i >= table[t].offset + table[t].numel)
            t++;
        if (table[t].trains && !skip) {
            float p = adamw_element(params, grads, m, v, i, k, table[t].decays ? k.decay : 1.0f);
            if (table[t].clamps)
                params[i] = p = p < k.clamp_min ? k.clamp_min : p > k.clamp_max ? k.clamp_max : p;
            if (params_act)
                params_act[i] = store_as<io_t>(p);
        }
        grads[i] = 0.0f;
    }
}

/* tensors: device memory, `count` entries covering [0, total) in offset order; scalars:
 * device memory, adamw_scalars() of the step */
template <typename io_t>
void adamw_step(float *params, float *grads, float *m, float *v, io_t *params_act,
                const AdamWTensor *tensors, int count, size_t total, const AdamWScalars *scalars,
                cudaStream_t stream) {
    if (count == 0 || total == 0)
        return;
    shapeCheck(count <= ADAMW_MAX_TENSORS, "adamw_step over %d tensors (at most %d)", count,
               ADAMW_MAX_TENSORS);
    TNG_LAUNCH(adamw_step_kernel<io_t>, (unsigned)elementwise_blocks(total), ELEM_THREADS,
               sizeof(AdamWTensor) * (size_t)count, stream, params, grads, m, v, params_act,
               tensors, count, total, scalars);
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
