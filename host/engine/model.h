/*
 * model.h: a CLIP dual encoder on any backend: parameter layout, activations, forward and
 * backward orchestration. The InfoNCE objective it trains is its own object (loss.h), and
 * so is the data-parallel reduction of its gradients (grad_reduce.h).
 *
 * All parameters live in one contiguous float buffer (likewise their gradients and the two
 * AdamW moments), laid out tensor by tensor in Hugging Face CLIPModel order and named with
 * HF names, so checkpoints map one-to-one. q/k/v projections are stored consecutively, so
 * q_proj.weight starts a [3C, C] matrix the attention input GEMM uses as one.
 */
#ifndef TNG_MODEL_H
#define TNG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h" // defines: Backend
#include "engine/config.h"  // defines: ClipConfig, TowerConfig
#include "engine/dist.h"    // defines: Dist
#include "engine/loss.h"    // defines: ClipLoss
#include "engine/mcq_loss.h" // defines: McqLoss, McqQuestions
#include "engine/text_groups.h" // defines: SeqGroups, CLIP_MAX_TEXT_GROUPS

typedef struct GradReduce GradReduce; /* grad_reduce.h */

/* ----------------------------------------------------------------------------
 * Parameter layout */

typedef enum { TOWER_VISION = 0, TOWER_TEXT = 1, TOWER_SHARED = 2 } Tower;

#define PARAM_NAME_MAX 96
typedef struct {
    char name[PARAM_NAME_MAX]; /* HF CLIPModel name, e.g. text_model.final_layer_norm.weight */
    int ndim;
    int shape[4];
    size_t offset, numel; /* in floats, from the start of the buffer */
    Tower tower;
    int decay; /* 1: a weight matrix, decayed by AdamW under DECAY_MATRICES (optim.h) */
} ParamInfo;

typedef struct {
    ParamInfo *params;
    int count;
    size_t total; /* floats */
} ParamLayout;

/* Pointers to one block's tensors inside some buffer (weights, grads or a moment). */
typedef struct {
    float *ln1_w, *ln1_b;
    float *qkv_w, *qkv_b; /* [3C,C], [3C]: q, k, v stacked */
    float *attn_out_w, *attn_out_b;
    float *ln2_w, *ln2_b;
    float *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} BlockWeights;

typedef struct {
    float *embed;     /* vision: patch conv [C,3,P,P]; text: token embedding [V,C] */
    float *class_emb; /* vision only [C] */
    float *pos;       /* [T,C] */
    float *ln_pre_w, *ln_pre_b; /* vision only */
    BlockWeights *blocks;
    float *ln_out_w, *ln_out_b; /* vision post_layernorm; text final_layer_norm */
    float *proj;                /* [D,C] */
} TowerWeights;

typedef struct {
    TowerWeights vision, text;
    float *logit_scale;
} ClipWeights;

void param_layout_build(const ClipConfig *cfg, ParamLayout *layout);
void param_layout_free(ParamLayout *layout);
const ParamInfo *param_layout_find(const ParamLayout *layout, const char *name);
/* Views a buffer of layout->total floats as named tensors. Free with clip_weights_free. */
void clip_weights_view(const ClipConfig *cfg, float *base, ClipWeights *view);
void clip_weights_free(ClipWeights *view);

/* ----------------------------------------------------------------------------
 * Activations of one tower, sized for a maximum batch */

/* Act buffers hold the backend's activation type (engine/backend.h); float ones are fp32 on
 * every backend: statistics, features and all gradients. */
typedef struct {
    Act *ln1, *qkv, *atty;
    Act *x_mid; /* residual stream after attention */
    Act *ln2;
    Act *fc1, *act; /* MLP hidden before and after the activation */
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd;
    float *lse; /* attention's log-sum-exp of each query row [rows, heads, T] */
} BlockActs;

typedef struct {
    int max_rows, max_tokens; /* rows = images or texts */
    int keep_for_backward;    /* 0: one layer's buffers are reused by every layer */
    /* vision stem */
    float *images, *ln_pre_mean, *ln_pre_rstd;
    Act *patches, *patch_out, *embed;
    Act **x; /* residual stream entering each block; x[L] leaves the last block */
    BlockActs *blocks;
    Act *branch_out; /* attention or MLP output before the residual add */
    int *pool_rows;  /* text: EOT position of each row (backend memory) */
    int *ids;        /* text: token ids, cut to the batch's length (backend memory) */
    Act *pooled, *ln_out, *proj_out;
    float *ln_out_mean, *ln_out_rstd, *features, *feature_norm;
    /* backward scratch, one set per tower */
    float *d_x, *d_ln, *d_qkv, *d_atty, *d_fc1, *d_act, *d_embed;
    float *d_pooled, *d_ln_out, *d_proj_out, *d_features;
    void *arena;
} TowerActs;

/* ----------------------------------------------------------------------------
 * The model */

typedef struct {
    int n_images;
    const float *images;         /* host [Ni,3,R,R] normalised pixels, or NULL... */
    const float *image_features; /* ...host [Ni,D] L2-normalised features from a frozen tower */
    int n_texts;
    const int *tokens;     /* host [Nt, context_length], each row holding an EOT */
    const int *txt2img;    /* host [Nt]: the positive image of each text, or -1 for none (a
                              contradiction negative: image-to-text only, see backend.h) */
    const int *i2t_target; /* host [Ni]: the text each image must pick, -1 = mean of positives */
    ClipAbsence absence;   /* the standalone negations among the texts (engine/loss.h); all
                              NULL (the zero value): none */
    McqQuestions mcq;      /* the multiple-choice options among the texts (engine/mcq_loss.h):
                              texts mcq.first_text.. are options, which InfoNCE does not see;
                              the zero value: none */
} ClipBatch;

typedef struct {
    float temperature;    /* > 0: fixed (TNG uses 0.07); 0: learned exp(logit_scale) */
    int train_vision;     /* 0 freezes the tower: no backward, no saved activations */
    int train_text;
    int full_context;     /* 1 disables the cut to max(EOT)+1 (for the equivalence test) */
    int text_groups;      /* up to this many groups of texts by length, each cut to its own
                             longest EOT (SeqGroups); 0 or 1: one group, the batch's longest */
    int text_length_multiple; /* > 1: each text's length (EOT + 1) rounded up to a multiple of
                                 it, at most the context: the same features (attention is
                                 causal and pools the EOT), fewer distinct batch shapes, so
                                 fewer CUDA graphs (--cuda-graphs); 0 or 1: the exact cut */
    /* Data parallelism: NULL (or a world of one) is one process. With world > 1 each rank
     * passes its own batch and the loss is that of all ranks' batches as one (loss.h says
     * how); each rank's gradients are its share of the big batch's, and clip_reduce_gradients
     * sums them. Every rank must call clip_forward/clip_backward in step, with the same config
     * and max sizes. */
    const Dist *dist;
    /* The objective's options, which clip_prepare hands to the loss (ClipLossConfig):
     * ln w for contradiction negatives (texts with txt2img -1): their image-to-text logits
     * are offset by it, weighting them w in the softmax. 0 (weight 1) when unset. */
    float contradiction_log_weight;
    int i2t_each; /* image-to-text mean target: each positive against the negatives alone */
    float mcq_weight; /* > 0: the MCQ loss (engine/mcq_loss.h) with this weight, over... */
    int mcq_options;  /* ...this many options per image; max_texts counts them */
} ClipTrainConfig;

/* What a training step leaves on the backend for its one read-back (optim.h, clip_step_read):
 * the gradients' sum of squares (the clip's norm) and the InfoNCE stats (this rank's shares)
 * summed over the step's forwards. */
typedef struct {
    double grad_sumsq;
    float stats[INFONCE_NSTATS];
    float mcq_stats[INFONCE_NSTATS]; /* the MCQ loss's (engine/mcq_loss.h), weighted */
} ClipStepTotals;

typedef struct {
    ClipConfig cfg;
    const Backend *be;
    ParamLayout layout;
    float *params, *grads, *adam_m, *adam_v; /* backend memory, layout.total floats each */
    Act *params_act; /* the weights' compute copy in the activation type, refreshed after every
                        change (clip_params_changed, the optimizer step); params itself when that
                        type is fp32. Only the linear layers read it (model.c, compute_weight) */
    ClipStepTotals *totals;                   /* backend memory: what a step reads back (optim.h) */
    AdamWTensor *opt_tensors;                 /* backend memory: the optimizer step's table (optim.c) */
    int opt_tensors_for;                      /* the decay set it was built for; -1: to build */
    ClipWeights w, g;
    TowerActs vision_acts, text_acts;
    ClipTrainConfig train;
    int max_images, max_texts;
    int n_images, n_texts, text_tokens; /* shapes of the last forward (text_tokens: the longest
                                           group's positions) */
    SeqGroups text_groups;              /* the last text forward's layout */
    int images_from_features;           /* the last forward's batch gave image features */
    int mcq_scored, mcq_first_text;     /* the last forward scored multiple-choice options, these
                                           texts on (ClipBatch.mcq) */
    ClipLoss *loss;                     /* the objective, its buffers and gathered batch */
    McqLoss *mcq;                       /* the MCQ objective, used when train.mcq_weight > 0 */
    GradReduce *reduce;                 /* data parallel training: the gradients' all-reduce */
    uint64_t step;                      /* optimizer steps taken */
} Clip;

Clip *clip_create(const ClipConfig *cfg, const Backend *be);
void clip_free(Clip *m);
/* open_clip's initialisation (docs/REFERENCE.md §1), drawn from a seeded generator. */
void clip_init_random(Clip *m, uint64_t seed);
/* Uploads / downloads all parameters as one host array of layout.total floats. */
void clip_set_params(Clip *m, const float *host);
/* After params[offset, offset + n) changed on the backend (the optimizer): refreshes the
 * compute copy of those weights. */
void clip_params_changed(Clip *m, size_t offset, size_t n);
void clip_get_params(const Clip *m, float *host);

/* Sizes activations and the loss for up to max_images x max_texts, and allocates grads and
 * AdamW moments for the towers that train. Call before clip_forward; may be called again. */
void clip_prepare(Clip *m, const ClipTrainConfig *train, int max_images, int max_texts);

/* Forward pass and loss for one batch, queued on the backend with nothing read back (no
 * synchronisation on a GPU): the batch's InfoNCE stats are added to m->totals when the model
 * trains (read once per step by clip_step_read, optim.h). */
void clip_forward_queued(Clip *m, const ClipBatch *batch);
/* clip_forward_queued, then the batch's stats read back (global): returns the loss; stats[]
 * (may be NULL) gets the InfoNCE terms. */
float clip_forward(Clip *m, const ClipBatch *batch, float stats[INFONCE_NSTATS]);
/* Backward pass of the last forward: accumulates parameter gradients (this rank's towers'
 * share of the global loss's gradient when data parallel). */
void clip_backward(Clip *m);
/* Data parallel, the backward of an optimizer step's last micro-batch: clip_backward that
 * also starts each gradient bucket's all-reduce as soon as the backward has finished
 * writing it (one bucket per transformer layer, then the text tower's other tensors once
 * the text backward is done), so the communication overlaps the rest of the backward.
 * clip_reduce_gradients must follow (it sends the rest and waits); nothing may touch the
 * gradients in between. Earlier micro-batches use clip_backward, so that the accumulated
 * gradients are reduced once. In one process it is clip_backward. */
void clip_backward_last(Clip *m);
/* Data parallel: all-reduces (SUMS) the trainable tensors' gradients across ranks. The loss
 * is normalised by the global counts, so each rank's gradient is its share of the big-batch
 * gradient and the sum is exactly it (an average would divide by the world size once too
 * often). Call once per optimizer step, after the last micro-batch's clip_backward (or
 * clip_backward_last, whose all-reduces it completes). No-op in one process. */
void clip_reduce_gradients(Clip *m);
/* 1 if the tensor's gradient is used: its tower trains (logit_scale: learned temperature). */
int clip_tensor_trains(const Clip *m, const ParamInfo *p);

/* Inference: L2-normalised features into host out [n, D], in batches of the prepared size. */
void clip_encode_images(Clip *m, const float *images, int n, float *out);
void clip_encode_texts(Clip *m, const int *tokens, int n, float *out);

/* First position of the EOT token in a row of `context` ids, or context-1 if absent. */
int clip_eot_position(const ClipConfig *cfg, const int *row);

#endif
