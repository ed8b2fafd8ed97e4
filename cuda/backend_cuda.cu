/*
 * backend_cuda.cu: the CUDA backend's Backend table. The op interface is fp32, so the backend
 * uses the fp32 instantiations of the kernels (strict fp32 GEMMs: no TF32), which makes it a
 * parity backend: it reproduces the CPU backend's numbers to float rounding.
 *
 * Each entry is a thin wrapper: it picks the stream (the legacy default stream, so that
 * cudaMemcpy in to_host orders after every kernel) and the cuBLAS handle, and calls the op
 * family's launcher in kernels/. All shapes and launch geometry are decided in
 * kernels/launch_plan.h; all device code lives in kernels/, one .cuh file per op family.
 *
 * State kept here: one cuBLAS handle, created on first use, and one scratch buffer
 * (tng_cuda_scratch), sized once from the model's plan (reserve_scratch), both kept for the
 * life of the process.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda/backend_cuda.h" /* defines: backend_cuda */

#include "kernels/adamw.cuh"
#include "kernels/attention.cuh"
#include "kernels/embed.cuh"
#include "kernels/infonce.cuh"
#include "kernels/l2norm.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/matmul.cuh"

static const cudaStream_t stream = 0;

/* TNG_CUDA_MATH=tf32 lets cuBLAS round fp32 GEMM inputs to TF32 on tensor cores (for the
 * benchmark's fp32-vs-TF32 step time, until the --precision option of the bf16 engine);
 * anything else keeps strict fp32, the parity mode. */
static cublasHandle_t cublas(void) {
    static cublasHandle_t handle;
    if (!handle) {
        const char *math = getenv("TNG_CUDA_MATH");
        int tf32 = math && strcmp(math, "tf32") == 0;
        cublasCheck(cublasCreate(&handle));
        cublasCheck(cublasSetMathMode(handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    }
    return handle;
}

static void *scratch;
static size_t scratch_capacity;
static int scratch_planned; /* 1 once the model sized it (cuda_reserve_scratch) */

/* cudaFree waits for the device, so no kernel still reads the old buffer */
static void scratch_resize(size_t bytes) {
    if (scratch)
        cudaCheck(cudaFree(scratch));
    scratch_capacity = bytes;
    cudaCheck(cudaMalloc(&scratch, bytes));
}

/* A model's plan (kernels/launch_plan.h) sizes the scratch once, before its first step, so a
 * step never allocates; an op that asks for more than the plan is a planning bug, reported
 * as one. Without a plan (the kernel tests call ops directly) it grows on demand. */
static void cuda_reserve_scratch(size_t batch, size_t tokens, size_t width, int images, int texts) {
    size_t bytes = scratch_plan_bytes(batch, tokens, width, images, texts);
    if (bytes > scratch_capacity || !scratch_planned)
        scratch_resize(bytes > scratch_capacity ? bytes : scratch_capacity);
    scratch_planned = 1;
}

void *tng_cuda_scratch(size_t bytes) {
    if (bytes > scratch_capacity) {
        if (scratch_planned) {
            fprintf(stderr, "tng: CUDA scratch: an op needs %zu bytes, the model's plan reserved "
                            "%zu (kernels/launch_plan.h, scratch_plan_bytes)\n", bytes, scratch_capacity);
            exit(1);
        }
        scratch_resize(bytes + bytes / 2);
    }
    return scratch;
}

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes) {
    void *ptr = NULL;
    size_t size = bytes ? bytes : 1;
    cudaCheck(cudaMalloc(&ptr, size));
    cudaCheck(cudaMemset(ptr, 0, size));
    return ptr;
}

static void cuda_release(void *ptr) { cudaCheck(cudaFree(ptr)); }

static void cuda_to_device(void *dst, const void *src, size_t bytes) {
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

static void cuda_to_host(void *dst, const void *src, size_t bytes) {
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

static void cuda_zero(void *ptr, size_t bytes) {
    cudaCheck(cudaMemsetAsync(ptr, 0, bytes, stream));
}

/* ---- linear layers ---- */

static void cuda_matmul_forward(float *out, const float *inp, const float *weight,
                                const float *bias, int N, int IC, int OC) {
    matmul_forward(cublas(), out, inp, weight, bias, N, IC, OC, stream);
}

static void cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, int N, int IC, int OC) {
    matmul_backward(cublas(), dinp, dweight, dbias, dout, inp, weight, N, IC, OC, stream);
}

/* ---- layer norm ---- */

static void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                   const float *weight, const float *bias, int N, int C) {
    layernorm_forward<float>(out, mean, rstd, inp, weight, bias, N, C, stream);
}

static void cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                    const float *inp, const float *weight, const float *mean,
                                    const float *rstd, int N, int C) {
    layernorm_backward<float>(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, stream);
}

/* ---- attention ---- */

static void cuda_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                                   int NH, int causal) {
    attention_forward<float>(out, att, qkv, B, T, C, NH, causal, stream);
}

static void cuda_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                    const float *att, int B, int T, int C, int NH, int causal) {
    attention_backward<float>(dqkv, datt, dout, qkv, att, B, T, C, NH, causal, stream);
}

/* ---- elementwise ---- */

static void cuda_activation_forward(float *out, const float *inp, size_t n, ActKind act) {
    launch_elementwise(ActivationForward{out, inp, act}, n, stream);
}

static void cuda_activation_backward(float *dinp, const float *inp, const float *dout, size_t n,
                                     ActKind act) {
    launch_elementwise(ActivationBackward{dinp, inp, dout, act}, n, stream);
}

static void cuda_residual_forward(float *out, const float *a, const float *b, size_t n) {
    launch_elementwise(ResidualForward{out, a, b}, n, stream);
}

static void cuda_accumulate(float *dst, const float *src, size_t n) {
    launch_elementwise(Accumulate{dst, src}, n, stream);
}

static void cuda_scale(float *x, float factor, size_t n) {
    launch_elementwise(Scale{x, factor}, n, stream);
}

/* ---- embeddings and pooling ---- */

static void cuda_im2col_patches(float *patches, const float *images, int B, int H, int W, int P) {
    size_t n = (size_t)B * (H / P) * (W / P) * 3 * P * P;
    launch_elementwise(Im2colPatches{patches, images, H, W, P}, n, stream);
}

static void cuda_vision_embed_forward(float *x, const float *patch_out, const float *class_emb,
                                      const float *pos, int B, int NP, int C) {
    launch_elementwise(VisionEmbedForward{x, patch_out, class_emb, pos, NP, C},
                       (size_t)B * (NP + 1) * C, stream);
}

static void cuda_vision_embed_backward(float *dpatch_out, float *dclass_emb, float *dpos,
                                       const float *dx, int B, int NP, int C) {
    vision_embed_backward(dpatch_out, dclass_emb, dpos, dx, B, NP, C, stream);
}

static void cuda_token_embed_forward(float *x, const int *ids, const float *tok_emb,
                                     const float *pos, int B, int T, int C) {
    launch_elementwise(TokenEmbedForward{x, ids, tok_emb, pos, T, C}, (size_t)B * T * C, stream);
}

static void cuda_token_embed_backward(float *dtok_emb, float *dpos, const float *dx, const int *ids,
                                      int B, int T, int C) {
    token_embed_backward(dtok_emb, dpos, dx, ids, B, T, C, stream);
}

static void cuda_gather_rows(float *out, const float *x, const int *rows, int B, int T, int C) {
    launch_elementwise(GatherRows{out, x, rows, T, C}, (size_t)B * C, stream);
}

static void cuda_scatter_rows(float *dx, const float *dout, const int *rows, int B, int T, int C) {
    launch_elementwise(ScatterRows{dx, dout, rows, T, C}, (size_t)B * C, stream);
}

/* ---- L2 norm, loss, optimizer ---- */

static void cuda_l2norm_forward(float *out, float *norm, const float *inp, int N, int C) {
    l2norm_forward(out, norm, inp, N, C, stream);
}

static void cuda_l2norm_backward(float *dinp, const float *dout, const float *out,
                                 const float *norm, int N, int C) {
    l2norm_backward(dinp, dout, out, norm, N, C, stream);
}

static void cuda_infonce_forward_backward(float *dcos, float *stats, const float *cos,
                                          const int *txt2img, const int *i2t_target, float scale,
                                          int Ni, int Nt, const InfonceTerms *terms) {
    /* the column (text-to-image) kernel indexes image rows from 0 and takes a column's softmax
     * over the block's rows: it needs every image of the global batch (InfonceTerms) */
    shapeCheck(!terms->text_to_image || (terms->first_image == 0 && Ni == terms->n_images),
               "infonce text_to_image on images [%d, %d) of %d: the column term needs all the "
               "images (first_image 0, Ni == n_images)",
               terms->first_image, terms->first_image + Ni, terms->n_images);
    infonce_forward_backward(dcos, stats, cos, txt2img, i2t_target, scale, Ni, Nt, *terms, stream);
}

static void cuda_adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
                              const AdamWStep *hp) {
    adamw_update(param, grad, m, v, n, hp, stream);
}

static void cuda_sum_squares(double *acc, const float *x, size_t n) { sum_squares(acc, x, n, stream); }

static const Backend cuda_backend = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .reserve_scratch = cuda_reserve_scratch,
    .release = cuda_release,
    .to_device = cuda_to_device,
    .to_host = cuda_to_host,
    .zero = cuda_zero,
    .matmul_forward = cuda_matmul_forward,
    .matmul_backward = cuda_matmul_backward,
    .layernorm_forward = cuda_layernorm_forward,
    .layernorm_backward = cuda_layernorm_backward,
    .attention_forward = cuda_attention_forward,
    .attention_backward = cuda_attention_backward,
    .activation_forward = cuda_activation_forward,
    .activation_backward = cuda_activation_backward,
    .residual_forward = cuda_residual_forward,
    .accumulate = cuda_accumulate,
    .scale = cuda_scale,
    .im2col_patches = cuda_im2col_patches,
    .vision_embed_forward = cuda_vision_embed_forward,
    .vision_embed_backward = cuda_vision_embed_backward,
    .token_embed_forward = cuda_token_embed_forward,
    .token_embed_backward = cuda_token_embed_backward,
    .gather_rows = cuda_gather_rows,
    .scatter_rows = cuda_scatter_rows,
    .l2norm_forward = cuda_l2norm_forward,
    .l2norm_backward = cuda_l2norm_backward,
    .infonce_forward_backward = cuda_infonce_forward_backward,
    .adamw_update = cuda_adamw_update,
    .sum_squares = cuda_sum_squares,
};

const Backend *backend_cuda(void) { return &cuda_backend; }
