/*
 * backend.h: the op interface. The CLIP orchestration in model.c (and the loss in loss.c) is
 * written once against this table of functions; the CPU backend (host/engine/cpu/, one file
 * per op family: the embedded default and the oracle) and the CUDA backend (cuda/) each fill
 * it in. backend_by_name picks one by name.
 *
 * Conventions every backend keeps:
 * - Every pointer argument is backend memory (host memory for the CPU backend, device
 *   memory for CUDA), allocated with alloc(). Shapes are row-major.
 * - Forward ops overwrite their outputs.
 * - Backward ops ACCUMULATE (+=) into every gradient they write: parameter gradients
 *   sum over micro-batches, and the residual stream's gradient sums its two branches.
 *   The model zeroes activation gradients before each backward pass. A NULL gradient
 *   pointer means "not needed" and that part of the work is skipped. The exceptions are
 *   the activation gradients that have a single writer, which OVERWRITE them (no zeroing
 *   pass, which on a GPU is a full write of the tensor, and a GEMM with beta 0 does not
 *   read it): linear_backward's dinp, attention_backward's dqkv and activation_backward's
 *   dinp.
 * - Linear weights are [out, in] (PyTorch/HF layout): out = inp @ weight^T + bias.
 * - Results are deterministic: the same inputs give the same bits, run after run.
 * - Activations (the towers' forward values, typed Act below) are stored in the backend's
 *   activation type, act_bytes wide; everything else is fp32: parameters, gradients of
 *   parameters and of activations, LayerNorm statistics, the features and the loss.
 */
#ifndef TNG_BACKEND_H
#define TNG_BACKEND_H

#include <stddef.h>

#include "engine/config.h"

/* One AdamW update's hyperparameters (bias corrections precomputed by the caller).
 *
 * The gradients' multiplier is decided on the backend when grad_sumsq is set, so that a step
 * needs no read-back before its update: with the averaged gradients' norm
 * norm = (float)(sqrt(*grad_sumsq) / micro_batches), in double, the multiplier is
 * (float)((1.0 / micro_batches) * min(1, max_norm / ((double)norm + 1e-6))), torch's
 * clip_grad_norm_ coefficient (max_norm <= 0: no clipping, the factor is 1); and a norm that is
 * not finite skips the update (parameters, moments and compute copy keep their bits; the
 * gradients are still zeroed). grad_sumsq NULL: the multiplier is grad_scale, nothing skips. */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float bias_correction1, bias_correction2; /* 1 - beta^t */
    float grad_scale;                         /* without grad_sumsq: gradients times this first */
    const double *grad_sumsq; /* NULL, or backend memory: the gradients' sum of squares (sum_squares) */
    int micro_batches;        /* with grad_sumsq: the gradients are the sum of this many */
    float max_norm;           /* with grad_sumsq: > 0 clips the averaged gradients' norm to it */
    float clamp_min, clamp_max; /* the tensors marked `clamps` are clamped to these after the update */
} AdamWStep;

/* One tensor of the flat parameter buffers, as the optimizer step sees it. */
typedef struct {
    size_t offset, numel;
    int trains; /* 0: only its gradient is zeroed */
    int decays; /* 1: the step's weight decay applies to it, 0: none */
    int clamps; /* 1: its updated values are clamped to [clamp_min, clamp_max] (logit_scale) */
} AdamWTensor;

/* InfoNCE statistics written by infonce_forward_backward (backend memory, 4 floats). Each is
 * this call's share of the global value: the shares of all calls over one global batch add
 * up to it (see InfonceTerms). */
enum { INFONCE_LOSS = 0, INFONCE_T2I = 1, INFONCE_I2T = 2, INFONCE_DSCALE = 3, INFONCE_NSTATS };

/* Which InfoNCE terms one call computes, and where its block sits in the global batch.
 *
 * The objective is defined on the global similarity matrix [n_images, n_texts] (one process:
 * the batch; data parallel: every rank's batch gathered). A call sees a block cos [Ni, Nt] of
 * it whose row i is global image first_image + i:
 * - image_to_text: the cross-entropy of each row over the texts, so the block must hold
 *   every text column (Nt == n_texts);
 * - text_to_image: the cross-entropy of each column over the images, so the block must hold
 *   every image row (first_image == 0, Ni == n_images).
 * Both means are over the GLOBAL counts, so the calls of all ranks add up to one big batch:
 * a rank computes image_to_text on [its images x all texts] and text_to_image on [all images
 * x its texts]. One process computes both on the whole matrix in one call. */
typedef struct {
    int image_to_text, text_to_image;
    int first_image; /* global index of the block's row 0 */
    int n_images;    /* global image count: the image-to-text mean's denominator */
    int n_texts;     /* global count of texts WITH a positive image (txt2img >= 0): the
                        text-to-image mean's denominator */
    float negative_log_weight; /* ln w: added to the image-to-text logit of every text with
                                  no positive image, weighting it w in the softmax; 0 = w 1 */
    int i2t_each; /* rows with i2t_target -1: each positive against the negatives alone
                     (read only with image_to_text) */
    /* NULL, or backend memory [Ni, Nt] laid out like the block: 1 excludes the pair (row i,
     * column t) from the objective. An excluded pair takes part in neither softmax, in no term
     * (the i2t_each negatives included) and gets dcos 0: as if its logit were -inf. A text's
     * pair with its own positive image and a row's target must stay 0 (the CPU op dies
     * otherwise). Why a dense mask and not the rule that makes it (a text true of every image
     * not naming an object, engine/loss.h): the op stays one question per element, the same
     * in every backend, and the rule is decided once, on the host (loss.c), for every backend.
     * NULL is the unmasked op, bit for bit. */
    const unsigned char *exclude;
    float weight; /* the objective's weight: the loss, its terms, dcos and dscale are all times
                     it (a second objective on the same op, engine/mcq_loss.h). 0, the zero
                     value of every builder that does not name it, is read as 1: the plain op,
                     bit for bit */
} InfonceTerms;

/* Both terms on a whole [Ni, Nt] matrix where every text has a positive image and no option
 * is set: the plain single-process loss, for the op tests and benchmarks. (The engine builds
 * its terms, options included, in one place: loss.c.) */
static inline InfonceTerms infonce_whole(int Ni, int Nt) {
    InfonceTerms terms = {1, 1, 0, Ni, Nt, 0.0f, 0, NULL, 1.0f}; /* no compound literal: C++ includes this */
    return terms;
}

/* Act: one activation element, in the backend's storage type: fp32 on the CPU and in CUDA's
 * fp32 and tf32 modes, bf16 in CUDA's bf16 mode (Backend.act_bytes says which width). The
 * model never reads an activation; it only carves buffers of act_bytes-wide elements and
 * passes them between ops, so one orchestration serves every precision. It is void so that
 * fp32 code (the CPU ops, the tests) passes its float buffers as they are. */
typedef void Act;

/* How a backend computes (--precision): fp32 (the parity mode: every GEMM in strict fp32),
 * tf32 (fp32 storage, GEMM inputs rounded to TF32 on tensor cores) or bf16 (bf16 activations
 * and weight copies, fp32 accumulation, fp32 master weights and gradients). */
typedef enum { PRECISION_AUTO = 0, PRECISION_FP32, PRECISION_TF32, PRECISION_BF16, PRECISION_COUNT } Precision;
/* "auto", "fp32", "tf32", "bf16", indexed by Precision (the option rows' choices) */
extern const char *const precision_names[PRECISION_COUNT];

typedef struct Backend {
    const char *name;
    Precision precision; /* what this table computes in (never PRECISION_AUTO) */
    size_t act_bytes;    /* sizeof one Act element: 4 (fp32) or 2 (bf16) */

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes); /* zero-filled */
    /* The largest shapes the model will pass (clip_prepare calls it): at most `batch`
     * sequences of `tokens` positions, matrices of at most `width` columns, loss blocks of at
     * most images x texts. A backend that needs working memory sizes it here, once, so that
     * nothing is allocated inside a step (the GPU's cudaMalloc/cudaFree stall the device and
     * break graph capture). NULL when a backend needs none. */
    void (*reserve_scratch)(size_t batch, size_t tokens, size_t width, int images, int texts);
    void (*release)(void *ptr);
    /* host -> backend: returns once src may be reused, without waiting for the backend's
     * work (CUDA: copied into pinned staging, then an asynchronous copy on its stream) */
    void (*to_device)(void *dst, const void *src, size_t bytes);
    /* backend -> host: waits for all the work queued before it (on a GPU: a synchronisation;
     * a training step makes one, engine/optim.h clip_step_read) */
    void (*to_host)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *ptr, size_t bytes);
    /* dst[i] = src[i] rounded to the activation type, both backend memory: the weights'
     * compute copy (model.c). NULL when act_bytes == sizeof(float): the copy is the weights. */
    void (*to_act)(Act *dst, const float *src, size_t n);

    /* ---- linear layers ---- */
    /* out[N,OC] = inp[N,IC] @ weight[OC,IC]^T (+ bias[OC] if bias != NULL), all fp32 and in
     * strict fp32 whatever the precision: the loss's similarity matrix and its gradient */
    void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int IC, int OC);
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int IC, int OC);
    /* The towers' linear layers, the same maths in the backend's precision: activations and
     * the weights' compute copy are Act, bias and every gradient fp32 */
    void (*linear_forward)(Act *out, const Act *inp, const Act *weight, const float *bias, int N,
                           int IC, int OC);
    /* dinp = dout @ weight, OVERWRITTEN (it may hold anything before, NaN included);
     * dweight and dbias accumulate */
    void (*linear_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                            const Act *inp, const Act *weight, int N, int IC, int OC);
    /* pre = linear_forward(inp, weight, bias), out = activation(pre): the MLP's first layer
     * with its activation fused into the bias epilogue (a GPU writes pre and out in one pass),
     * with exactly the results of linear_forward followed by activation_forward */
    void (*linear_activation_forward)(Act *pre, Act *out, const Act *inp, const Act *weight,
                                      const float *bias, ActKind act, int N, int IC, int OC);

    /* ---- layer norm over the last dim C, eps CLIP_LN_EPS; mean/rstd [N] saved ---- */
    void (*layernorm_forward)(Act *out, float *mean, float *rstd, const Act *inp,
                              const float *weight, const float *bias, int N, int C);
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                               const Act *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);
    /* residual = a + b, then out = LayerNorm(residual): a block's residual add and the norm
     * after it in one op (a GPU reads the residual stream once), with exactly the results of
     * residual_forward followed by layernorm_forward */
    void (*residual_layernorm_forward)(Act *residual, Act *out, float *mean, float *rstd, const Act *a,
                                       const Act *b, const float *weight, const float *bias, int N,
                                       int C);

    /* ---- multi-head self-attention on packed qkv [B,T,3C] (q|k|v along the last dim,
     *      heads contiguous inside each); out [B,T,C]; scaled scores S = q k^T / sqrt(hs)
     *      (-inf past the diagonal when causal). The forward saves only lse [B,NH,T] (fp32),
     *      each query row's log-sum-exp of S: the backward recomputes the softmax
     *      P = e^(S - lse) from qkv, so no [B,NH,T,T] tensor is ever stored. ---- */
    void (*attention_forward)(Act *out, float *lse, const Act *qkv, int B, int T, int C, int NH,
                              int causal);
    /* dqkv = the gradient through the attention, OVERWRITTEN, with dS = P (dP - D), dP = dout v^T and
     * D = rowsum(dout * out): hence out, the forward's own output, is an input */
    void (*attention_backward)(float *dqkv, const float *dout, const Act *qkv, const Act *out,
                               const float *lse, int B, int T, int C, int NH, int causal);

    /* ---- elementwise ---- */
    void (*activation_forward)(Act *out, const Act *inp, size_t n, ActKind act);
    /* dinp [N,C] = act'(inp) dout, OVERWRITTEN (the MLP's hidden gradient has this single
     * writer); dbias [C] (NULL: skipped) += its column sums: the bias gradient of the linear
     * layer that produced inp, taken in the same pass (that layer's backward then gets NULL) */
    void (*activation_backward)(float *dinp, float *dbias, const Act *inp, const float *dout, int N,
                                int C, ActKind act);
    void (*residual_forward)(Act *out, const Act *a, const Act *b, size_t n);
    void (*accumulate)(float *dst, const float *src, size_t n); /* dst += src */
    void (*scale)(float *x, float factor, size_t n);

    /* ---- embeddings ---- */
    /* images [B,3,H,W] -> patches [B*NP, 3*P*P], flattened in (channel, row, col) order so
     * that a conv weight [C,3,P,P] is a linear weight [C, 3*P*P] */
    void (*im2col_patches)(Act *patches, const float *images, int B, int H, int W, int P);
    /* x[b,0] = class_emb + pos[0]; x[b,1+p] = patch_out[b*NP+p] + pos[1+p] */
    void (*vision_embed_forward)(Act *x, const Act *patch_out, const float *class_emb,
                                 const float *pos, int B, int NP, int C);
    void (*vision_embed_backward)(float *dpatch_out, float *dclass_emb, float *dpos,
                                  const float *dx, int B, int NP, int C);
    /* x[b,t] = tok_emb[ids[b*T+t]] + pos[t] */
    void (*token_embed_forward)(Act *x, const int *ids, const float *tok_emb, const float *pos,
                                int B, int T, int C);
    void (*token_embed_backward)(float *dtok_emb, float *dpos, const float *dx, const int *ids,
                                 int B, int T, int C);

    /* ---- pooling: out[b] = x[b * T + rows[b]] (rows NULL: row 0, the class token; T 0: rows
     *      are absolute rows of x, as for texts laid out in length groups, model.h) ---- */
    void (*gather_rows)(Act *out, const Act *x, const int *rows, int B, int T, int C);
    void (*scatter_rows)(float *dx, const float *dout, const int *rows, int B, int T, int C);

    /* ---- L2 normalisation of rows; norm [N] saved ---- */
    void (*l2norm_forward)(float *out, float *norm, const Act *inp, int N, int C);
    void (*l2norm_backward)(float *dinp, const float *dout, const float *out, const float *norm,
                            int N, int C);

    /* ---- InfoNCE on a block cos [Ni,Nt] of the similarity matrix (logits = scale*cos),
     * computing the terms `terms` selects (host memory; see InfonceTerms).
     * The scale: exp(*logit_scale), read on the backend (a learned temperature: no read-back),
     * or fixed_scale when logit_scale is NULL (1 / a fixed temperature).
     * txt2img[t]: the GLOBAL index of text t's positive image, or -1 when it has none (a
     * contradiction negative: false for its image and for every other). Such a column has no
     * text-to-image term and counts toward no image's positives, but stays a negative in every
     * row's image-to-text softmax (its logit offset by terms->negative_log_weight).
     * i2t_target[i]: the column image i must pick (never a -1 column), or -1 for the uniform
     * target over all texts whose positive is that image (read only for image_to_text; may be
     * NULL otherwise). With terms->i2t_each a -1 row instead averages, over the image's positives p,
 * the cross-entropy of p against the row's NEGATIVES alone (every text that is not one of the
 * image's positives): its other positives leave the softmax, so they never compete and each
 * must beat every false text on its own.
     * Pairs terms->exclude marks leave every softmax above (InfonceTerms).
     * loss = (mean_t CE over images + mean_i CE over texts) / 2, means over the global counts.
     * Writes dcos = dloss/dcos of this call's terms (may alias cos: computed in place) and
     * stats[INFONCE_*], where stats[INFONCE_DSCALE] = dloss/dscale. ---- */
    void (*infonce_forward_backward)(float *dcos, float *stats, const float *cos,
                                     const int *txt2img, const int *i2t_target,
                                     const float *logit_scale, float fixed_scale, int Ni, int Nt,
                                     const InfonceTerms *terms);
    /* The learned temperature's gradient, on the backend: *dlogit_scale += dscale * scale
     * (float operations in this order), dscale the sum of stats[b * INFONCE_NSTATS +
     * INFONCE_DSCALE] over the `blocks` InfoNCE calls of one forward, in order, and
     * scale = expf(*logit_scale) */
    void (*logit_scale_backward)(float *dlogit_scale, const float *stats, int blocks,
                                 const float *logit_scale);

    /* ---- optimizer ---- */
    /* One AdamW step over the flat buffers (params, grads, m, v: the model's whole layout):
     * every tensor of `tensors` (count entries, backend memory, in offset order, covering the
     * buffers' `total` floats) that trains is updated as PyTorch's AdamW (decoupled decay hp->weight_decay
     * where it decays, none elsewhere; grads times the multiplier AdamWStep describes: clipped
     * and skipped on the backend), clamped where it `clamps`, and its compute copy in
     * params_act refreshed (NULL: the copy is params itself); then every gradient is zeroed
     * for the next step. One pass and one launch on a GPU, not three per tensor. */
    void (*adamw_step)(float *params, float *grads, float *m, float *v, Act *params_act,
                       const AdamWTensor *tensors, int count, size_t total, const AdamWStep *hp);
    /* acc[0] += the sum of x[i]^2, in double: acc is one double of backend memory, so the
     * gradient norm of every tensor accumulates on the device and is read back once per step
     * (no host synchronisation per tensor). */
    void (*sum_squares)(double *acc, const float *x, size_t n);

    /* ---- CUDA graphs (NULL where a backend has none: the CPU) ---- */
    /* graph_begin: the ops queued from here on form one graph, run by graph_launch. A step
     * whose ops are those of a graph the backend kept (the same kernels, shapes, pointers and
     * scalars: only uploaded data differ) replays that graph without capturing it again; any
     * other is captured and kept (cuda/queue.h). So whatever changes between steps of one
     * shape must reach the device as uploaded data (the AdamW step's scalars do). Between the
     * two nothing may read back or allocate: a training step queued whole (engine/optim.h)
     * and no TNG_CUDA_SYNC. */
    void (*graph_begin)(void);
    void (*graph_launch)(void);
} Backend;

/* The CPU backend (float32, OpenBLAS + OpenMP). */
const Backend *backend_cpu(void);

/* The backend called `name`: "cpu", or "cuda" when the program is linked with the CUDA
 * backend. Otherwise NULL, with the reason in err (an unknown name lists the known ones; "cuda"
 * in a program built without it says so).
 *
 * How a program gets CUDA: link cuda's library (build/cuda/libtng_cuda.a, `make cuda`, with
 * cuda/cuda.mk's libraries) and make sure the linker takes backend_cuda from it, either by
 * calling backend_cuda() somewhere (cuda/backend_cuda.h) or with -Wl,--undefined=backend_cuda.
 * backend.c refers to backend_cuda only weakly, so that CPU-only programs link exactly as
 * before, with no CUDA library; and a weak reference alone never pulls a member out of an
 * archive, hence the strong one. */
const Backend *backend_by_name(const char *name, char *err, size_t err_len);

/* ----------------------------------------------------------------------------
 * A program's --backend choice
 *
 * auto: CUDA when the program has it and a device is visible, else the CPU (saying why);
 * cpu: the CPU; cuda: the GPU, or the program ends (exit 2 "built without CUDA", exit 1 "no CUDA
 * device") with one line and no core dump. Under mpirun each rank takes GPU local_rank % devices,
 * chosen before any CUDA handle, stream or cached attribute exists, so call this before anything
 * else touches CUDA (dist_init does not). */
typedef enum { BACKEND_AUTO = 0, BACKEND_CPU = 1, BACKEND_CUDA = 2 } BackendChoice;
/* "auto", "cpu", "cuda": the names of BackendChoice, for the option rows */
extern const char *const backend_choice_names[3];
/* The --backend and --precision rows (util/cli.h) of every program that runs a model; the
 * fields: ints; MARK: a wrapper of the rows' value specs (CLI_AS_IS, or tng_train's MAY_CHANGE:
 * a run started on one backend or precision resumes on another, since checkpoints hold the
 * fp32 master weights). */
#define BACKEND_OPTION_ROWS(X, MARK, backend_field, precision_field)                                \
    X(BACKEND, 0, "backend", "NAME", "auto", MARK(CLI_CHOICE(backend_field, backend_choice_names)), \
      "auto (CUDA when built with it and a GPU is visible, else the CPU), cpu or cuda")              \
    X(PRECISION, 0, "precision", "NAME", "auto", MARK(CLI_CHOICE(precision_field, precision_names)), \
      "auto (bf16 on a GPU, fp32 on the CPU), fp32 (parity), tf32 or bf16 (the last two: GPU only)")

/* The chosen backend in the chosen precision; desc (desc_len bytes) gets one line for the
 * settings block, e.g. "cuda bf16: NVIDIA H100 80GB HBM3 (device 1 of 8)" or
 * "cpu fp32 (auto: no CUDA device: ...)". tf32 or bf16 asked of the CPU ends the program
 * (exit 2): the CPU backend computes in fp32 only. */
const Backend *backend_select(BackendChoice choice, Precision precision, int local_rank, char *desc,
                              size_t desc_len);

/* 1 when this program was linked with the CUDA backend. */
int backend_have_cuda(void);

#endif
