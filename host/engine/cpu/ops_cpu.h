/*
 * ops_cpu.h: the CPU ops, declared for both precisions.
 *
 * Each op family has its own file, named as its CUDA counterpart in kernels/ (matmul.c,
 * layernorm.c, attention.c, elementwise.c, embed.c, l2norm.c, infonce.c, adamw.c), and each
 * is compiled twice (cpu_common.h): with float (suffix _f32, the ops of the engine's CPU
 * backend, whose table backend_cpu.c holds) and with double (suffix _f64, the
 * higher-precision reference that the finite-difference tests differentiate). One source,
 * so the two cannot drift. Semantics are those of the Backend table in backend.h.
 */
#ifndef TNG_OPS_CPU_H
#define TNG_OPS_CPU_H

#include <stddef.h>

#include "engine/backend.h"

#define CPU_OPS_DECLARE(real, sfx)                                                              \
    void matmul_forward_##sfx(real *out, const real *inp, const real *weight, const real *bias, \
                              int N, int IC, int OC);                                           \
    void matmul_backward_##sfx(real *dinp, real *dweight, real *dbias, const real *dout,        \
                               const real *inp, const real *weight, int N, int IC, int OC);     \
    void linear_backward_##sfx(real *dinp, real *dweight, real *dbias, const real *dout,        \
                               const real *inp, const real *weight, int N, int IC, int OC);     \
    void layernorm_forward_##sfx(real *out, real *mean, real *rstd, const real *inp,            \
                                 const real *weight, const real *bias, int N, int C);           \
    void layernorm_backward_##sfx(real *dinp, real *dweight, real *dbias, const real *dout,     \
                                  const real *inp, const real *weight, const real *mean,        \
                                  const real *rstd, int N, int C);                              \
    void attention_forward_##sfx(real *out, real *lse, const real *qkv, int B, int T, int C,    \
                                 int NH, int causal);                                           \
    void attention_backward_##sfx(real *dqkv, const real *dout, const real *qkv,                \
                                  const real *out, const real *lse, int B, int T, int C,        \
                                  int NH, int causal);                                          \
    void activation_forward_##sfx(real *out, const real *inp, size_t n, ActKind act);           \
    void activation_backward_##sfx(real *dinp, const real *inp, const real *dout, size_t n,     \
                                   ActKind act);                                                \
    void residual_forward_##sfx(real *out, const real *a, const real *b, size_t n);             \
    void accumulate_##sfx(real *dst, const real *src, size_t n);                                \
    void scale_##sfx(real *x, float factor, size_t n);                                          \
    void im2col_patches_##sfx(real *patches, const real *images, int B, int H, int W, int P);   \
    void vision_embed_forward_##sfx(real *x, const real *patch_out, const real *class_emb,      \
                                    const real *pos, int B, int NP, int C);                     \
    void vision_embed_backward_##sfx(real *dpatch_out, real *dclass_emb, real *dpos,            \
                                     const real *dx, int B, int NP, int C);                     \
    void token_embed_forward_##sfx(real *x, const int *ids, const real *tok_emb,                \
                                   const real *pos, int B, int T, int C);                       \
    void token_embed_backward_##sfx(real *dtok_emb, real *dpos, const real *dx, const int *ids, \
                                    int B, int T, int C);                                       \
    void gather_rows_##sfx(real *out, const real *x, const int *rows, int B, int T, int C);     \
    void scatter_rows_##sfx(real *dx, const real *dout, const int *rows, int B, int T, int C);  \
    void l2norm_forward_##sfx(real *out, real *norm, const real *inp, int N, int C);            \
    void l2norm_backward_##sfx(real *dinp, const real *dout, const real *out, const real *norm, \
                               int N, int C);                                                   \
    void infonce_forward_backward_##sfx(real *dcos, real *stats, const real *cos,               \
                                        const int *txt2img, const int *i2t_target,             \
                                        float scale, int Ni, int Nt,                            \
                                        const InfonceTerms *terms);                             \
    void adamw_update_##sfx(real *param, const real *grad, real *m, real *v, size_t n,          \
                            const AdamWStep *hp);                                               \
    double sum_squares_##sfx(const real *x, size_t n);                                          \
    /* the plain loops the faster ops above are held to (test_cpu_fast): bit for bit, except  \
       where a vectorised exp (QuickGELU, the attention softmax) is held to a few ulp */       \
    void attention_forward_reference_##sfx(real *out, real *lse, const real *qkv, int B, int T, \
                                           int C, int NH, int causal);                          \
    void activation_forward_reference_##sfx(real *out, const real *inp, size_t n, ActKind act); \
    void activation_backward_reference_##sfx(real *dinp, const real *inp, const real *dout,    \
                                             size_t n, ActKind act);                           \
    void adamw_update_reference_##sfx(real *param, const real *grad, real *m, real *v,          \
                                      size_t n, const AdamWStep *hp);                           \
    double sum_squares_reference_##sfx(const real *x, size_t n);

CPU_OPS_DECLARE(float, f32)
CPU_OPS_DECLARE(double, f64)

#endif
