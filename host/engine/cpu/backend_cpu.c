/*
 * backend_cpu.c: the CPU backend's Backend table (backend_cpu()): host memory and the
 * float32 ops of this folder, one file per op family as in kernels/.
 *
 * Like every file here the Makefile compiles this one twice, but only the float32 build
 * holds the table: the Backend interface is float by definition, so the double build (the
 * finite-difference reference, reached through the _f64 names of ops_cpu.h) has nothing to
 * put in one and compiles to an empty object.
 */
#include "engine/backend.h" // defines: Backend, backend_cpu

#if !TNG_REAL_DOUBLE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/ops_cpu.h" // declares: the _f32 ops
#include "util/common.h"        // defines: callocCheck

static void *cpu_alloc(size_t bytes) { return callocCheck(1, bytes); }
static void cpu_release(void *ptr) { free(ptr); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(void *ptr, size_t bytes) { memset(ptr, 0, bytes); }

/* The table's form of sum_squares: into an accumulator (host memory here). */
static void accumulate_sum_squares(double *acc, const float *x, size_t n) { *acc += sum_squares_f32(x, n); }

/* The ops that take activations, in the table's types: here an Act is a float (act_bytes 4),
 * so each is its float op. */
static void linear_forward(Act *out, const Act *inp, const Act *weight, const float *bias, int N, int IC, int OC) {
    matmul_forward_f32(out, inp, weight, bias, N, IC, OC);
}
static void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const Act *inp,
                            const Act *weight, int N, int IC, int OC) {
    linear_backward_f32(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
}
/* The gradients' multiplier of the step (backend.h, AdamWStep), or NAN when the norm is not
 * finite and the update is skipped. */
static float adamw_multiplier(const AdamWStep *hp) {
    if (!hp->grad_sumsq) return hp->grad_scale;
    float norm = (float)(sqrt(*hp->grad_sumsq) / hp->micro_batches);
    if (!isfinite(norm)) return NAN;
    double clip = 1.0;
    if (hp->max_norm > 0) {
        clip = hp->max_norm / ((double)norm + 1e-6);
        if (clip > 1.0) clip = 1.0;
    }
    return (float)(1.0 / hp->micro_batches * clip);
}

/* The step's tensors one after another; params_act is NULL here (an Act is a float). */
static void adamw_step(float *params, float *grads, float *m, float *v, Act *params_act, const AdamWTensor *tensors,
                       int count, size_t total, const AdamWStep *hp) {
    (void)params_act, (void)total;
    AdamWStep h = *hp;
    h.grad_scale = adamw_multiplier(hp);
    for (int i = 0; i < count; i++) {
        const AdamWTensor *t = &tensors[i];
        if (t->trains && !isnan(h.grad_scale)) {
            h.weight_decay = t->decays ? hp->weight_decay : 0.0f;
            float *p = params + t->offset;
            adamw_update_f32(p, grads + t->offset, m + t->offset, v + t->offset, t->numel, &h);
            for (size_t k = 0; k < t->numel && t->clamps; k++)
                p[k] = p[k] < hp->clamp_min ? hp->clamp_min : p[k] > hp->clamp_max ? hp->clamp_max : p[k];
        }
        memset(grads + t->offset, 0, sizeof(float) * t->numel);
    }
}

/* The learned temperature's gradient (backend.h), in the order the host once added it. */
static void logit_scale_backward(float *dlogit_scale, const float *stats, int blocks, const float *logit_scale) {
    float dscale = stats[INFONCE_DSCALE];
    for (int b = 1; b < blocks; b++) dscale += stats[b * INFONCE_NSTATS + INFONCE_DSCALE];
    *dlogit_scale += dscale * expf(*logit_scale);
}

static void infonce_forward_backward(float *dcos, float *stats, const float *cos, const int *txt2img,
                                     const int *i2t_target, const float *logit_scale, float fixed_scale, int Ni,
                                     int Nt, const InfonceTerms *terms) {
    float scale = logit_scale ? expf(*logit_scale) : fixed_scale;
    infonce_forward_backward_f32(dcos, stats, cos, txt2img, i2t_target, scale, Ni, Nt, terms);
}
static void linear_activation_forward(Act *pre, Act *out, const Act *inp, const Act *weight, const float *bias,
                                      ActKind act, int N, int IC, int OC) {
    matmul_forward_f32(pre, inp, weight, bias, N, IC, OC);
    activation_forward_f32(out, pre, (size_t)N * OC, act);
}
static void layernorm_forward(Act *out, float *mean, float *rstd, const Act *inp, const float *weight,
                              const float *bias, int N, int C) {
    layernorm_forward_f32(out, mean, rstd, inp, weight, bias, N, C);
}
static void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const Act *inp,
                               const float *weight, const float *mean, const float *rstd, int N, int C) {
    layernorm_backward_f32(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
static void residual_layernorm_forward(Act *residual, Act *out, float *mean, float *rstd, const Act *a,
                                       const Act *b, const float *weight, const float *bias, int N, int C) {
    residual_forward_f32(residual, a, b, (size_t)N * C);
    layernorm_forward_f32(out, mean, rstd, residual, weight, bias, N, C);
}
static void attention_forward(Act *out, float *lse, const Act *qkv, int B, int T, int C, int NH, int causal) {
    attention_forward_f32(out, lse, qkv, B, T, C, NH, causal);
}
static void attention_backward(float *dqkv, const float *dout, const Act *qkv, const Act *out, const float *lse,
                               int B, int T, int C, int NH, int causal) {
    attention_backward_f32(dqkv, dout, qkv, out, lse, B, T, C, NH, causal);
}
static void activation_forward(Act *out, const Act *inp, size_t n, ActKind act) {
    activation_forward_f32(out, inp, n, act);
}
/* The op accumulates into zeros (the unfused bits), then the linear backward's column sum. */
static void activation_backward(float *dinp, float *dbias, const Act *inp, const float *dout, int N, int C,
                                ActKind act) {
    size_t n = (size_t)N * C;
    memset(dinp, 0, sizeof(float) * n);
    activation_backward_f32(dinp, inp, dout, n, act);
    if (dbias) matmul_backward_f32(NULL, NULL, dbias, dinp, NULL, NULL, N, 0, C);
}
static void residual_forward(Act *out, const Act *a, const Act *b, size_t n) { residual_forward_f32(out, a, b, n); }
static void im2col_patches(Act *patches, const float *images, int B, int H, int W, int P) {
    im2col_patches_f32(patches, images, B, H, W, P);
}
static void vision_embed_forward(Act *x, const Act *patch_out, const float *class_emb, const float *pos, int B,
                                 int NP, int C) {
    vision_embed_forward_f32(x, patch_out, class_emb, pos, B, NP, C);
}
static void token_embed_forward(Act *x, const int *ids, const float *tok_emb, const float *pos, int B, int T,
                                int C) {
    token_embed_forward_f32(x, ids, tok_emb, pos, B, T, C);
}
static void gather_rows(Act *out, const Act *x, const int *rows, int B, int T, int C) {
    gather_rows_f32(out, x, rows, B, T, C);
}
static void l2norm_forward(float *out, float *norm, const Act *inp, int N, int C) {
    l2norm_forward_f32(out, norm, inp, N, C);
}

static const Backend cpu_backend = {
    .name = "cpu",
    .precision = PRECISION_FP32,
    .act_bytes = sizeof(float),
    .alloc = cpu_alloc,
    .release = cpu_release,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .zero = cpu_zero,
    .matmul_forward = matmul_forward_f32,
    .matmul_backward = matmul_backward_f32,
    .linear_forward = linear_forward,
    .linear_backward = linear_backward,
    .linear_activation_forward = linear_activation_forward,
    .layernorm_forward = layernorm_forward,
    .layernorm_backward = layernorm_backward,
    .residual_layernorm_forward = residual_layernorm_forward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .activation_forward = activation_forward,
    .activation_backward = activation_backward,
    .residual_forward = residual_forward,
    .accumulate = accumulate_f32,
    .scale = scale_f32,
    .im2col_patches = im2col_patches,
    .vision_embed_forward = vision_embed_forward,
    .vision_embed_backward = vision_embed_backward_f32,
    .token_embed_forward = token_embed_forward,
    .token_embed_backward = token_embed_backward_f32,
    .gather_rows = gather_rows,
    .scatter_rows = scatter_rows_f32,
    .l2norm_forward = l2norm_forward,
    .l2norm_backward = l2norm_backward_f32,
    .infonce_forward_backward = infonce_forward_backward,
    .logit_scale_backward = logit_scale_backward,
    .adamw_step = adamw_step,
    .sum_squares = accumulate_sum_squares,
};

const Backend *backend_cpu(void) { return &cpu_backend; }
#endif
