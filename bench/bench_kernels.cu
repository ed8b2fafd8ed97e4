/*
 * bench_kernels.cu: times each CUDA kernel family at CLIP shapes against ceilings measured in
 * the same run: a large device-to-device copy (GB/s, bytes read + written) and large GEMMs
 * (bf16 and strict-fp32 TFLOP/s, cuBLAS).
 *
 * Memory-bound ops use tensors well above the H200's 60 MB L2, so the numbers are DRAM
 * numbers. Each measurement is the median of BENCH_REPS timed launches after 3 warm-ups,
 * with CUDA events. Output: one `CEILING name value` line per ceiling and one
 * `RESULT kernel=... shape=... ms=... GBps=... TFLOPs=... pct=...` line per kernel, which
 * bench/gpu.sh puts into its summary table next to bench_torch_kernels.py's numbers.
 *
 * Needs a GPU; not a test (no tolerances here: tests/gpu/ checks correctness).
 */
#include <algorithm>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "cuda/backend_cuda.h"
#include "kernels/attention.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/layernorm.cuh"

#define BENCH_REPS 20

static cudaEvent_t ev_start, ev_stop;
static double copy_ceiling_gbps, bf16_ceiling_tflops, fp32_ceiling_tflops;

/* Median milliseconds of fn() over BENCH_REPS runs. */
template <typename Fn> static double time_ms(Fn fn) {
    for (int i = 0; i < 3; i++)
        fn();
    std::vector<float> ms(BENCH_REPS);
    for (int i = 0; i < BENCH_REPS; i++) {
        cudaCheck(cudaEventRecord(ev_start, 0));
        fn();
        cudaCheck(cudaEventRecord(ev_stop, 0));
        cudaCheck(cudaEventSynchronize(ev_stop));
        cudaCheck(cudaEventElapsedTime(&ms[i], ev_start, ev_stop));
    }
    std::sort(ms.begin(), ms.end());
    return ms[BENCH_REPS / 2];
}

/* Device buffer of n values of T filled with small random numbers (uniform, +-1). */
template <typename T> static T *device_random(size_t n, unsigned seed) {
    std::vector<T> host(n);
    unsigned state = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        float u = (float)(state >> 8) / 16777216.0f * 2.0f - 1.0f;
        host[i] = (T)u;
    }
    T *dev = NULL;
    cudaCheck(cudaMalloc(&dev, sizeof(T) * n));
    cudaCheck(cudaMemcpy(dev, host.data(), sizeof(T) * n, cudaMemcpyHostToDevice));
    return dev;
}

/* bytes: moved to/from DRAM by one call; flops: 0 for memory-bound ops */
static void report(const char *kernel, const char *shape, double ms, double bytes, double flops,
                   int bf16) {
    double gbps = bytes / (ms * 1e-3) / 1e9, tflops = flops / (ms * 1e-3) / 1e12;
    double pct = flops > 0 ? 100.0 * tflops / (bf16 ? bf16_ceiling_tflops : fp32_ceiling_tflops)
                           : 100.0 * gbps / copy_ceiling_gbps;
    printf("RESULT kernel=%s shape=%s ms=%.4f GBps=%.1f TFLOPs=%.2f pct=%.1f\n", kernel, shape, ms,
           gbps, tflops, pct);
    fflush(stdout);
}

static void measure_ceilings(cublasHandle_t handle) {
    size_t bytes = (size_t)2 << 30;
    void *a = NULL, *b = NULL;
    cudaCheck(cudaMalloc(&a, bytes));
    cudaCheck(cudaMalloc(&b, bytes));
    cudaCheck(cudaMemset(a, 1, bytes));
    double ms =
        time_ms([&] { cudaCheck(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0)); });
    copy_ceiling_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
    printf("CEILING copy_GBps %.1f (2 GiB device-to-device, read + write)\n", copy_ceiling_gbps);
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(b));

    const int n = 8192;
    __nv_bfloat16 *x = device_random<__nv_bfloat16>((size_t)n * n, 1);
    __nv_bfloat16 *y = device_random<__nv_bfloat16>((size_t)n * n, 2);
    __nv_bfloat16 *z = device_random<__nv_bfloat16>((size_t)n * n, 3);
    const float one = 1.0f, zero = 0.0f;
    ms = time_ms([&] {
        cublasCheck(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, x, CUDA_R_16BF, n,
                                 y, CUDA_R_16BF, n, &zero, z, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
    });
    bf16_ceiling_tflops = 2.0 * n * n * (double)n / (ms * 1e-3) / 1e12;
    printf("CEILING bf16_TFLOPs %.1f (cuBLAS %dx%dx%d, fp32 accumulate)\n", bf16_ceiling_tflops, n,
           n, n);
    cudaCheck(cudaFree(x));
    cudaCheck(cudaFree(y));
    cudaCheck(cudaFree(z));

    float *fx = device_random<float>((size_t)n * n, 4),
          *fy = device_random<float>((size_t)n * n, 5);
    float *fz = device_random<float>((size_t)n * n, 6);
    ms = time_ms([&] {
        cublasCheck(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, fx, n, fy, n,
                                &zero, fz, n));
    });
    fp32_ceiling_tflops = 2.0 * n * n * (double)n / (ms * 1e-3) / 1e12;
    printf("CEILING fp32_TFLOPs %.1f (cuBLAS SGEMM %dx%dx%d, no TF32)\n", fp32_ceiling_tflops, n, n,
           n);
    cudaCheck(cudaFree(fx));
    cudaCheck(cudaFree(fy));
    cudaCheck(cudaFree(fz));
}

/* One element's terms of LayerNorm's (dweight, dbias): the unfused reference's second pass. */
template <typename io_t> struct LayerNormTerms {
    const float *dout;
    const io_t *inp;
    const float *mean, *rstd;
    size_t C;
    __device__ void operator()(size_t row, size_t col, float *out) const {
        float dy = dout[row * C + col];
        out[0] = dy * (load_f32(inp[row * C + col]) - mean[row]) * rstd[row];
        out[1] = dy;
    }
};

template <typename io_t> static void bench_layernorm(int N, int C, const char *name) {
    size_t n = (size_t)N * C, io = sizeof(io_t);
    io_t *x = device_random<io_t>(n, 7), *y = device_random<io_t>(n, 8);
    float *dy = device_random<float>(n, 9), *dx = device_random<float>(n, 10); /* gradients: fp32 */
    float *w = device_random<float>((size_t)C, 11), *b = device_random<float>((size_t)C, 12);
    float *dw = device_random<float>((size_t)C, 13), *db = device_random<float>((size_t)C, 14);
    float *mean = device_random<float>((size_t)N, 15), *rstd = device_random<float>((size_t)N, 16);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", N, C);
    double ms = time_ms([&] { layernorm_forward<io_t>(y, mean, rstd, x, w, b, N, C, 0); });
    report(name[0] == 'b' ? "layernorm_fwd_bf16" : "layernorm_fwd_fp32", shape, ms, 2.0 * n * io, 0,
           0);
    /* backward, fused: reads x and dy once, reads and writes dx (+=), writes and reads the
     * per-chunk partials (2 x C floats per LN_BWD_ROWS_PER_BLOCK rows); x is io_t, the
     * gradients fp32 */
    double partials = 2.0 * 2 * sizeof(float) * layernorm_backward_plan((size_t)N, C).partial_elems;
    double bwd_bytes = 1.0 * n * io + 3.0 * n * sizeof(float);
    ms = time_ms([&] { layernorm_backward<io_t>(dx, dw, db, dy, x, w, mean, rstd, N, C, 0); });
    report(name[0] == 'b' ? "layernorm_bwd_bf16" : "layernorm_bwd_fp32", shape, ms, bwd_bytes + partials, 0, 0);
    /* dinp alone: what the parameter gradients add to the fused pass */
    ms = time_ms([&] { layernorm_backward<io_t>(dx, NULL, NULL, dy, x, w, mean, rstd, N, C, 0); });
    report(name[0] == 'b' ? "layernorm_bwd_dinp_only_bf16" : "layernorm_bwd_dinp_only_fp32", shape, ms, bwd_bytes,
           0, 0);
    /* the unfused reference (the backward before the fusion): dinp, then the column sums of
     * dy * norm and dy in a second pass over x and dy */
    LayerNormTerms<io_t> terms = {dy, x, mean, rstd, (size_t)C};
    ms = time_ms([&] {
        layernorm_backward<io_t>(dx, NULL, NULL, dy, x, w, mean, rstd, N, C, 0);
        colsum_accumulate<2>(dw, db, terms, (size_t)N, (size_t)C, 0);
    });
    report(name[0] == 'b' ? "layernorm_bwd_unfused_bf16" : "layernorm_bwd_unfused_fp32", shape, ms,
           bwd_bytes + 1.0 * n * io + 1.0 * n * sizeof(float), 0, 0);
    void *bufs[] = {x, y, dy, dx, w, b, dw, db, mean, rstd};
    for (void *p : bufs)
        cudaCheck(cudaFree(p));
}

template <typename io_t>
static void bench_attention(int B, int T, int NH, int hs, int causal, const char *name) {
    int C = NH * hs;
    size_t nqkv = (size_t)B * T * 3 * C, nlse = (size_t)B * NH * T, nout = (size_t)B * T * C;
    io_t *qkv = device_random<io_t>(nqkv, 17), *out = device_random<io_t>(nout, 18);
    float *lse = device_random<float>(nlse, 19);
    float *dout = device_random<float>(nout, 20), *dqkv = device_random<float>(nqkv, 21);
    char shape[64];
    snprintf(shape, sizeof shape, "B%d_T%d_NH%d_hs%d%s", B, T, NH, hs, causal ? "_causal" : "");
    double io = sizeof(io_t);
    /* useful FLOPs: QK^T and PV, 2 flops per multiply-add; causal does about half */
    double flops = 4.0 * B * NH * (double)T * T * hs * (causal ? 0.5 : 1.0);
    double ms = time_ms([&] { attention_forward<io_t>(out, lse, qkv, B, T, C, NH, causal, 0); });
    char kernel[64];
    snprintf(kernel, sizeof kernel, "attention_fwd_%s", name);
    report(kernel, shape, ms, io * (nqkv + nout) + 4.0 * nlse, flops, sizeof(io_t) == 2);
    /* the backward reads the out and lse the timed forward runs left */
    ms = time_ms(
        [&] { attention_backward<io_t>(dqkv, dout, qkv, out, lse, B, T, C, NH, causal, 0); });
    snprintf(kernel, sizeof kernel, "attention_bwd_%s", name);
    /* backward: S = Q K^T again, dP = dO V^T, dQ = dS K, dK = dS^T Q, dV = P^T dO: 10 flops
     * per (i,j,d), 2.5 times the forward's useful ones (each of its kernels recomputes what
     * it needs: counted once here) */
    /* bytes: qkv and out (io_t), dqkv read and written, dout, lse (fp32) */
    report(kernel, shape, ms, io * (nqkv + nout) + 4.0 * (nqkv * 2 + nout + nlse), 2.5 * flops,
           sizeof(io_t) == 2);
    void *bufs[] = {qkv, out, lse, dout, dqkv};
    for (void *p : bufs)
        cudaCheck(cudaFree(p));
}

static void bench_backend_ops(const Backend *be) {
    char shape[64];
    /* InfoNCE: TNG's 1024 x 3072, and a 4096 x 12288 matrix above L2 */
    const int sizes[][2] = {{1024, 3072}, {4096, 12288}};
    for (const auto &s : sizes) {
        int Ni = s[0], Nt = s[1];
        std::vector<int> t2i(Nt), i2t(Ni);
        for (int t = 0; t < Nt; t++)
            t2i[t] = t * Ni / Nt;
        for (int i = 0; i < Ni; i++)
            i2t[i] = i % 3 == 0 ? -1 : i * (Nt / Ni);
        int *d_t2i = (int *)be->alloc(sizeof(int) * Nt),
            *d_i2t = (int *)be->alloc(sizeof(int) * Ni);
        be->to_device(d_t2i, t2i.data(), sizeof(int) * Nt);
        be->to_device(d_i2t, i2t.data(), sizeof(int) * Ni);
        float *cos = device_random<float>((size_t)Ni * Nt, 23),
              *dcos = device_random<float>((size_t)Ni * Nt, 24);
        float *stats = (float *)be->alloc(sizeof(float) * INFONCE_NSTATS);
        snprintf(shape, sizeof shape, "%dx%d", Ni, Nt);
        InfonceTerms whole = infonce_whole(Ni, Nt);
        double ms = time_ms(
            [&] { be->infonce_forward_backward(dcos, stats, cos, d_t2i, d_i2t, NULL, 14.3f, Ni, Nt, &whole); });
        /* three reads of cos (rows, columns, grads) and one write of dcos */
        report("infonce_fwd_bwd_fp32", shape, ms, 4.0 * 4.0 * Ni * Nt, 0, 0);
        be->release(d_t2i), be->release(d_i2t), be->release(stats);
        cudaCheck(cudaFree(cos));
        cudaCheck(cudaFree(dcos));
    }
    /* GELU over a ViT-B/32 MLP hidden activation at B=512: 25600 x 3072 */
    size_t n = (size_t)25600 * 3072;
    float *a = device_random<float>(n, 25), *b = device_random<float>(n, 26),
          *c = device_random<float>(n, 27);
    double ms = time_ms([&] { be->activation_forward(b, a, n, ACT_QUICK_GELU); });
    report("quick_gelu_fwd_fp32", "25600x3072", ms, 8.0 * n, 0, 0);
    float *dbias = device_random<float>(3072, 42);
    ms = time_ms([&] { be->activation_backward(c, dbias, a, b, 25600, 3072, ACT_QUICK_GELU); });
    report("quick_gelu_bwd_bias_fp32", "25600x3072", ms, 12.0 * n, 0, 0); /* + dbias, in the same pass */
    cudaCheck(cudaFree(dbias));
    /* the linear layer behind it in strict fp32: cuBLAS SGEMM and the bias kernel after it (the
     * loss's matmul_forward), against cuBLASLt with the bias in its epilogue (the fp32 table's
     * linear_forward); bytes: inp, weight and out once, and the bias kernel's read and write of
     * out */
    float *w = device_random<float>((size_t)3072 * 768, 28), *bias = device_random<float>(3072, 36);
    double gemm_bytes = 4.0 * (25600.0 * 768 + 3072.0 * 768 + 25600.0 * 3072);
    ms = time_ms([&] { be->matmul_forward(b, a, w, bias, 25600, 768, 3072); });
    report("matmul_fwd_bias_kernel_fp32", "25600x768x3072", ms, gemm_bytes + 8.0 * n, 2.0 * 25600 * 768 * 3072.0, 0);
    ms = time_ms([&] { be->linear_forward(b, a, w, bias, 25600, 768, 3072); });
    report("linear_fwd_bias_epilogue_fp32", "25600x768x3072", ms, gemm_bytes, 2.0 * 25600 * 768 * 3072.0, 0);
    cudaCheck(cudaFree(w));
    cudaCheck(cudaFree(bias));
    /* AdamW over all 151M parameters of ViT-B/32: param, m, v read + written, grad read + zeroed */
    size_t np = 151277313;
    float *p = device_random<float>(np, 29), *g = device_random<float>(np, 30);
    float *m = device_random<float>(np, 31), *v = device_random<float>(np, 32);
    cudaCheck(cudaMemset(v, 0, sizeof(float) * np));
    /* as a training step runs it: the clip coefficient from a sum of squares on the device */
    double *acc = device_random<double>(1, 33), sumsq = 4.0;
    be->to_device(acc, &sumsq, sizeof sumsq);
    AdamWStep hp = {5e-4f, 0.9f, 0.98f, 1e-6f, 0.2f, 0.1f, 0.02f, 1.0f, acc, 1, 1.0f, 0.0f, 4.6f};
    AdamWTensor whole = {0, np, 1, 1, 0}, *table = (AdamWTensor *)be->alloc(sizeof whole);
    be->to_device(table, &whole, sizeof whole);
    ms = time_ms([&] { be->adamw_step(p, g, m, v, NULL, table, 1, np, &hp); });
    be->release(table);
    report("adamw_fp32", "151277313", ms, 8.0 * 4 * np, 0, 0); /* + the gradient zeroed */
    ms = time_ms([&] { be->sum_squares(acc, g, np); });
    cudaCheck(cudaFree(acc));
    report("sum_squares_fp32", "151277313", ms, 4.0 * np, 0, 0);
    void *bufs[] = {a, b, c, p, g, m, v};
    for (void *q : bufs)
        cudaCheck(cudaFree(q));
    /* token-embedding backward: 1536 texts x 20 tokens (the cut batch), width 512 */
    const int B = 1536, T = 20, C = 512, V = 49408;
    std::vector<int> ids((size_t)B * T);
    for (size_t i = 0; i < ids.size(); i++)
        ids[i] = (int)((i * 2654435761u) % V);
    int *d_ids = (int *)be->alloc(sizeof(int) * ids.size());
    be->to_device(d_ids, ids.data(), sizeof(int) * ids.size());
    float *dx = device_random<float>((size_t)B * T * C, 33),
          *dtok = device_random<float>((size_t)V * C, 34);
    float *dpos = device_random<float>((size_t)T * C, 35);
    ms = time_ms([&] { be->token_embed_backward(dtok, dpos, dx, d_ids, B, T, C); });
    report("token_embed_bwd_fp32", "1536x20x512", ms, 3.0 * 4 * B * T * C, 0, 0);
    be->release(d_ids);
    cudaCheck(cudaFree(dx));
    cudaCheck(cudaFree(dtok));
    cudaCheck(cudaFree(dpos));
}

/* The bf16 backend's MLP layers at ViT-B/32's B = 512 (25600 x 768 -> 3072): the GEMM with its
 * bias in cuBLASLt's epilogue, the same GEMM with the bias added by a kernel after it (the
 * backend before the epilogue: one more read and write of out), and the GEMM + bias followed by
 * QuickGELU; PyTorch's F.linear (cuBLASLt's bias epilogue) and F.linear + quick_gelu beside
 * them. */
static void bench_linear_bf16(const Backend *be16) {
    const int N = 25600, IC = 768, OC = 3072;
    __nv_bfloat16 *x = device_random<__nv_bfloat16>((size_t)N * IC, 37),
                  *w = device_random<__nv_bfloat16>((size_t)OC * IC, 38),
                  *pre = device_random<__nv_bfloat16>((size_t)N * OC, 39),
                  *out = device_random<__nv_bfloat16>((size_t)N * OC, 40);
    float *bias = device_random<float>(OC, 41);
    double flops = 2.0 * N * IC * OC, io = 2.0 * ((double)N * IC + (double)OC * IC + (double)N * OC);
    double ms = time_ms([&] { be16->linear_forward(pre, x, w, bias, N, IC, OC); });
    report("linear_fwd_bf16", "25600x768x3072", ms, io, flops, 1);
    ms = time_ms([&] {
        be16->linear_forward(pre, x, w, NULL, N, IC, OC);
        launch_elementwise(BiasAdd<__nv_bfloat16>{pre, bias, (size_t)OC}, (size_t)N * OC, 0);
    });
    report("linear_fwd_bias_kernel_bf16", "25600x768x3072", ms, io + 4.0 * N * OC, flops, 1);
    ms = time_ms([&] { be16->linear_activation_forward(pre, out, x, w, bias, ACT_QUICK_GELU, N, IC, OC); });
    report("linear_act_fwd_bf16", "25600x768x3072", ms, io + 2.0 * N * OC, flops, 1);
    void *bufs[] = {x, w, pre, out, bias};
    for (void *p : bufs)
        cudaCheck(cudaFree(p));
}

int main(void) {
    const Backend *be = backend_cuda(PRECISION_FP32);
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    printf("device %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount,
           prop.l2CacheSize >> 20);
    cudaCheck(cudaEventCreate(&ev_start));
    cudaCheck(cudaEventCreate(&ev_stop));
    cublasHandle_t handle;
    cublasCheck(cublasCreate(&handle));
    measure_ceilings(handle);
    /* LayerNorm: 65536 rows (201 MB fp32 at width 768) */
    bench_layernorm<float>(65536, 768, "fp32");
    bench_layernorm<__nv_bfloat16>(65536, 768, "bf16");
    bench_layernorm<float>(65536, 512, "fp32");
    /* attention: ViT-B/32 vision at B=512, text (cut to 77 here) at 1536 texts */
    bench_attention<float>(512, 50, 12, 64, 0, "fp32");
    bench_attention<__nv_bfloat16>(512, 50, 12, 64, 0, "bf16");
    bench_attention<float>(1536, 77, 8, 64, 1, "fp32");
    bench_attention<__nv_bfloat16>(1536, 77, 8, 64, 1, "bf16");
    bench_attention<float>(256, 197, 12, 64, 0, "fp32"); /* ViT-B/16 */
    bench_attention<float>(128, 257, 16, 64, 0, "fp32"); /* ViT-L/14 */
    bench_backend_ops(be);
    bench_linear_bf16(backend_cuda(PRECISION_BF16));
    cublasCheck(cublasDestroy(handle));
    return 0;
}
