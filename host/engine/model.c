/*
 * model.c: CLIP's forward and backward passes, written once against the Backend op table.
 *
 * Reading order: the parameter layout (one walk over the model defines every tensor's name,
 * shape and place), the activation arena, the transformer encoder shared by both towers,
 * the vision and text stems and heads, then the public entry points. The loss is its own
 * object (loss.c), fed the two towers' features; so is the data-parallel gradient
 * all-reduce (grad_reduce.c), which the backward tells when each layer is done.
 *
 * Two choices a reader must know:
 * - The text batch is cut to max(EOT position)+1 tokens before the text tower. The causal
 *   mask means no position after a row's EOT can change that row's pooled output, so the
 *   result is identical to running all context_length tokens, and 2-5x cheaper.
 * - A frozen tower keeps no activations for backward: every layer reuses one layer's
 *   buffers, and its residual stream ping-pongs between two.
 */
#include "engine/model.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "engine/grad_reduce.h" // defines: grad_reduce_create, grad_reduce_layer_done, ...
#include "engine/loss.h"        // defines: ClipLoss, clip_loss_forward, clip_loss_backward
#include "engine/mcq_loss.h"    // defines: McqLoss, mcq_loss_score, mcq_loss_backward
#include "util/common.h"        // defines: die, callocCheck, reallocCheck
#include "util/rng.h"           // defines: Rng, rng_seed, rng_normal

/* ----------------------------------------------------------------------------
 * Parameter layout: one walk defines names, shapes, order, tower and decay */

typedef struct {
    ParamLayout *layout; /* filled when building the layout, else NULL */
    float *base;         /* when viewing a buffer, else NULL */
    size_t offset;
} LayoutWalk;

static float *walk_tensor(LayoutWalk *walk, Tower tower, int decay, int ndim, const int *shape,
                          const char *fmt, ...) TNG_PRINTF(6, 7);

static float *walk_tensor(LayoutWalk *walk, Tower tower, int decay, int ndim, const int *shape,
                          const char *fmt, ...) {
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    if (walk->layout) {
        ParamLayout *L = walk->layout;
        L->params = reallocCheck(L->params, sizeof(ParamInfo) * (size_t)(L->count + 1));
        ParamInfo *p = &L->params[L->count++];
        memset(p, 0, sizeof *p);
        va_list args;
        va_start(args, fmt);
        vsnprintf(p->name, sizeof p->name, fmt, args);
        va_end(args);
        p->ndim = ndim;
        for (int d = 0; d < ndim; d++) p->shape[d] = shape[d];
        p->offset = walk->offset;
        p->numel = numel;
        p->tower = tower;
        p->decay = decay;
    }
    float *ptr = walk->base ? walk->base + walk->offset : NULL;
    walk->offset += numel;
    return ptr;
}

#define SHAPE(...) (sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (int[]){__VA_ARGS__}
#define SCALAR 0, NULL

static void walk_block(LayoutWalk *walk, Tower tower, const char *prefix, int layer,
                       const TowerConfig *tc, BlockWeights *bw) {
    int C = tc->width, M = tc->mlp_width;
    const char *fmt_attn = "%s.encoder.layers.%d.self_attn.%s_proj.%s";
    bw->qkv_w = walk_tensor(walk, tower, 1, SHAPE(C, C), fmt_attn, prefix, layer, "q", "weight");
    walk_tensor(walk, tower, 1, SHAPE(C, C), fmt_attn, prefix, layer, "k", "weight");
    walk_tensor(walk, tower, 1, SHAPE(C, C), fmt_attn, prefix, layer, "v", "weight");
    bw->qkv_b = walk_tensor(walk, tower, 0, SHAPE(C), fmt_attn, prefix, layer, "q", "bias");
    walk_tensor(walk, tower, 0, SHAPE(C), fmt_attn, prefix, layer, "k", "bias");
    walk_tensor(walk, tower, 0, SHAPE(C), fmt_attn, prefix, layer, "v", "bias");
    bw->attn_out_w = walk_tensor(walk, tower, 1, SHAPE(C, C), fmt_attn, prefix, layer, "out", "weight");
    bw->attn_out_b = walk_tensor(walk, tower, 0, SHAPE(C), fmt_attn, prefix, layer, "out", "bias");
    const char *fmt = "%s.encoder.layers.%d.%s";
    bw->ln1_w = walk_tensor(walk, tower, 0, SHAPE(C), fmt, prefix, layer, "layer_norm1.weight");
    bw->ln1_b = walk_tensor(walk, tower, 0, SHAPE(C), fmt, prefix, layer, "layer_norm1.bias");
    bw->fc1_w = walk_tensor(walk, tower, 1, SHAPE(M, C), fmt, prefix, layer, "mlp.fc1.weight");
    bw->fc1_b = walk_tensor(walk, tower, 0, SHAPE(M), fmt, prefix, layer, "mlp.fc1.bias");
    bw->fc2_w = walk_tensor(walk, tower, 1, SHAPE(C, M), fmt, prefix, layer, "mlp.fc2.weight");
    bw->fc2_b = walk_tensor(walk, tower, 0, SHAPE(C), fmt, prefix, layer, "mlp.fc2.bias");
    bw->ln2_w = walk_tensor(walk, tower, 0, SHAPE(C), fmt, prefix, layer, "layer_norm2.weight");
    bw->ln2_b = walk_tensor(walk, tower, 0, SHAPE(C), fmt, prefix, layer, "layer_norm2.bias");
}

/* The whole model in HF CLIPModel order. view may be NULL when only building the layout. */
static void walk_model(const ClipConfig *cfg, LayoutWalk *walk, ClipWeights *view) {
    ClipWeights unused;
    ClipWeights *w = view ? view : &unused;
    memset(w, 0, sizeof *w);
    const TowerConfig *tt = &cfg->text, *vt = &cfg->vision;
    int Ct = tt->width, Cv = vt->width, P = cfg->patch_size;
    TowerWeights *text = &w->text, *vis = &w->vision;
    text->blocks = callocCheck((size_t)tt->layers, sizeof(BlockWeights));
    vis->blocks = callocCheck((size_t)vt->layers, sizeof(BlockWeights));

    text->embed = walk_tensor(walk, TOWER_TEXT, 0, SHAPE(cfg->vocab_size, Ct), "%s",
                              "text_model.embeddings.token_embedding.weight");
    text->pos = walk_tensor(walk, TOWER_TEXT, 0, SHAPE(cfg->context_length, Ct), "%s",
                            "text_model.embeddings.position_embedding.weight");
    for (int l = 0; l < tt->layers; l++)
        walk_block(walk, TOWER_TEXT, "text_model", l, tt, &text->blocks[l]);
    text->ln_out_w = walk_tensor(walk, TOWER_TEXT, 0, SHAPE(Ct), "%s",
                                 "text_model.final_layer_norm.weight");
    text->ln_out_b = walk_tensor(walk, TOWER_TEXT, 0, SHAPE(Ct), "%s",
                                 "text_model.final_layer_norm.bias");

    vis->class_emb = walk_tensor(walk, TOWER_VISION, 0, SHAPE(Cv), "%s",
                                 "vision_model.embeddings.class_embedding");
    vis->embed = walk_tensor(walk, TOWER_VISION, 1, SHAPE(Cv, 3, P, P), "%s",
                             "vision_model.embeddings.patch_embedding.weight");
    vis->pos = walk_tensor(walk, TOWER_VISION, 0, SHAPE(clip_vision_tokens(cfg), Cv), "%s",
                           "vision_model.embeddings.position_embedding.weight");
    vis->ln_pre_w = walk_tensor(walk, TOWER_VISION, 0, SHAPE(Cv), "%s",
                                "vision_model.pre_layrnorm.weight");
    vis->ln_pre_b = walk_tensor(walk, TOWER_VISION, 0, SHAPE(Cv), "%s",
                                "vision_model.pre_layrnorm.bias");
    for (int l = 0; l < vt->layers; l++)
        walk_block(walk, TOWER_VISION, "vision_model", l, vt, &vis->blocks[l]);
    vis->ln_out_w = walk_tensor(walk, TOWER_VISION, 0, SHAPE(Cv), "%s",
                                "vision_model.post_layernorm.weight");
    vis->ln_out_b = walk_tensor(walk, TOWER_VISION, 0, SHAPE(Cv), "%s",
                                "vision_model.post_layernorm.bias");
    vis->proj = walk_tensor(walk, TOWER_VISION, 1, SHAPE(cfg->embed_dim, Cv), "%s",
                            "visual_projection.weight");
    text->proj = walk_tensor(walk, TOWER_TEXT, 1, SHAPE(cfg->embed_dim, Ct), "%s",
                             "text_projection.weight");
    w->logit_scale = walk_tensor(walk, TOWER_SHARED, 0, SCALAR, "%s", "logit_scale");
    if (!view) clip_weights_free(&unused);
}

void param_layout_build(const ClipConfig *cfg, ParamLayout *layout) {
    memset(layout, 0, sizeof *layout);
    LayoutWalk walk = {.layout = layout};
    walk_model(cfg, &walk, NULL);
    layout->total = walk.offset;
}

void param_layout_free(ParamLayout *layout) {
    free(layout->params);
    memset(layout, 0, sizeof *layout);
}

const ParamInfo *param_layout_find(const ParamLayout *layout, const char *name) {
    for (int i = 0; i < layout->count; i++)
        if (strcmp(layout->params[i].name, name) == 0) return &layout->params[i];
    return NULL;
}

void clip_weights_view(const ClipConfig *cfg, float *base, ClipWeights *view) {
    LayoutWalk walk = {.base = base};
    walk_model(cfg, &walk, view);
}

void clip_weights_free(ClipWeights *view) {
    free(view->text.blocks);
    free(view->vision.blocks);
    view->text.blocks = view->vision.blocks = NULL;
}

/* ----------------------------------------------------------------------------
 * Activation arena: one allocation per tower, carved by a two-pass walk (count, then
 * assign) so the sizes are written in exactly one place. Buffers are either activations, in
 * the backend's type (act_bytes each), or fp32. */

typedef struct {
    char *base; /* NULL on the counting pass */
    size_t used, act_bytes;
} ArenaWalk;

static void *arena_take(ArenaWalk *arena, size_t n, size_t elem_bytes) {
    void *ptr = arena->base ? arena->base + arena->used : NULL;
    /* keep every buffer 64-byte aligned */
    arena->used += (n * elem_bytes + 63) & ~(size_t)63;
    return ptr;
}

static Act *act_take(ArenaWalk *arena, size_t n) { return arena_take(arena, n, arena->act_bytes); }
static float *f32_take(ArenaWalk *arena, size_t n) { return arena_take(arena, n, sizeof(float)); }

static void tower_acts_walk(TowerActs *a, ArenaWalk *arena, const ClipConfig *cfg,
                            const TowerConfig *tc, int is_vision) {
    size_t R = (size_t)a->max_rows, T = (size_t)a->max_tokens, C = (size_t)tc->width;
    size_t M = (size_t)tc->mlp_width, NH = (size_t)tc->heads, D = (size_t)cfg->embed_dim;
    size_t RT = R * T;
    int L = tc->layers, keep = a->keep_for_backward;
    if (is_vision) {
        size_t NP = (size_t)clip_num_patches(cfg), P = (size_t)cfg->patch_size;
        a->images = f32_take(arena, R * 3 * (size_t)cfg->image_size * cfg->image_size);
        a->patches = act_take(arena, R * NP * 3 * P * P);
        a->patch_out = act_take(arena, R * NP * C);
        a->embed = act_take(arena, RT * C);
        a->ln_pre_mean = f32_take(arena, RT);
        a->ln_pre_rstd = f32_take(arena, RT);
    }
    int n_streams = keep ? L + 1 : 2;
    Act *streams[n_streams];
    for (int s = 0; s < n_streams; s++) streams[s] = act_take(arena, RT * C);
    for (int l = 0; l <= L; l++) a->x[l] = streams[keep ? l : l % 2];
    int n_block_sets = keep ? L : 1;
    for (int l = 0; l < n_block_sets; l++) {
        BlockActs *b = &a->blocks[l];
        b->ln1 = act_take(arena, RT * C);
        b->ln1_mean = f32_take(arena, RT);
        b->ln1_rstd = f32_take(arena, RT);
        b->qkv = act_take(arena, RT * 3 * C);
        b->lse = f32_take(arena, R * NH * T);
        b->atty = act_take(arena, RT * C);
        b->x_mid = act_take(arena, RT * C);
        b->ln2 = act_take(arena, RT * C);
        b->ln2_mean = f32_take(arena, RT);
        b->ln2_rstd = f32_take(arena, RT);
        b->fc1 = act_take(arena, RT * M);
        b->act = act_take(arena, RT * M);
    }
    for (int l = n_block_sets; l < L; l++) a->blocks[l] = a->blocks[0];
    a->branch_out = act_take(arena, RT * C);
    a->pooled = act_take(arena, R * C);
    a->ln_out = act_take(arena, R * C);
    a->ln_out_mean = f32_take(arena, R);
    a->ln_out_rstd = f32_take(arena, R);
    a->proj_out = act_take(arena, R * D);
    a->features = f32_take(arena, R * D);
    a->feature_norm = f32_take(arena, R);
    a->d_features = f32_take(arena, R * D); /* also the loss's gradient for a frozen tower */
    if (keep) {
        a->d_x = f32_take(arena, RT * C);
        a->d_ln = f32_take(arena, RT * C);
        a->d_qkv = f32_take(arena, RT * 3 * C);
        a->d_atty = f32_take(arena, RT * C);
        a->d_fc1 = f32_take(arena, RT * M);
        a->d_act = f32_take(arena, RT * M);
        a->d_embed = f32_take(arena, RT * C);
        a->d_pooled = f32_take(arena, R * C);
        a->d_ln_out = f32_take(arena, R * C);
        a->d_proj_out = f32_take(arena, R * D);
    }
}

static void tower_acts_free(const Backend *be, TowerActs *a) {
    if (a->arena) be->release(a->arena);
    if (a->ids) be->release(a->ids);
    if (a->pool_rows) be->release(a->pool_rows);
    free(a->x);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

static void tower_acts_create(const Backend *be, TowerActs *a, const ClipConfig *cfg,
                              const TowerConfig *tc, int is_vision, int rows, int keep) {
    tower_acts_free(be, a);
    a->max_rows = rows;
    a->max_tokens = is_vision ? clip_vision_tokens(cfg) : cfg->context_length;
    a->keep_for_backward = keep;
    a->x = callocCheck((size_t)tc->layers + 1, sizeof(Act *));
    a->blocks = callocCheck((size_t)tc->layers, sizeof(BlockActs));
    ArenaWalk count = {.act_bytes = be->act_bytes};
    tower_acts_walk(a, &count, cfg, tc, is_vision);
    a->arena = be->alloc(count.used);
    ArenaWalk assign = {.base = a->arena, .act_bytes = be->act_bytes};
    tower_acts_walk(a, &assign, cfg, tc, is_vision);
    if (!is_vision) {
        a->ids = be->alloc(sizeof(int) * (size_t)rows * (size_t)a->max_tokens);
        a->pool_rows = be->alloc(sizeof(int) * (size_t)rows);
    }
}

/* ----------------------------------------------------------------------------
 * The transformer encoder and pooled head, shared by both towers */

/* p moved on by `elements` activations (an Act's size is the backend's) */
static Act *act_at(const Clip *m, const Act *p, size_t elements) {
    return (char *)p + elements * m->be->act_bytes;
}

/* A linear weight as the linear ops take it: the same tensor in the compute copy. */
static const Act *compute_weight(const Clip *m, const float *weight) {
    return act_at(m, m->params_act, (size_t)(weight - m->params));
}

/* B sequences of T positions as one group (the vision tower; a text batch in one group) */
static SeqGroups one_group(int B, int T) {
    return (SeqGroups){.count = 1, .rows = B * T, .n = {B}, .T = {T}, .row0 = {0}};
}

/* Each residual add is fused with the LayerNorm that reads its result: the block's second norm,
 * and the next block's first (the last block's add stands alone). */
static void encoder_forward(const Clip *m, const TowerWeights *w, const TowerConfig *tc,
                            TowerActs *a, const SeqGroups *sg, int causal) {
    const Backend *be = m->be;
    int C = tc->width, M = tc->mlp_width, N = sg->rows, L = tc->layers, NH = tc->heads;
    be->layernorm_forward(a->blocks[0].ln1, a->blocks[0].ln1_mean, a->blocks[0].ln1_rstd, a->x[0],
                          w->blocks[0].ln1_w, w->blocks[0].ln1_b, N, C);
    for (int l = 0; l < L; l++) {
        const BlockWeights *bw = &w->blocks[l];
        BlockActs *ba = &a->blocks[l];
        be->linear_forward(ba->qkv, ba->ln1, compute_weight(m, bw->qkv_w), bw->qkv_b, N, C, 3 * C);
        for (int k = 0; k < sg->count; k++) { /* attention alone mixes positions: per group */
            size_t row0 = (size_t)sg->row0[k];
            be->attention_forward(act_at(m, ba->atty, row0 * C), ba->lse + row0 * NH,
                                  act_at(m, ba->qkv, row0 * 3 * C), sg->n[k], sg->T[k], C, NH, causal);
        }
        be->linear_forward(a->branch_out, ba->atty, compute_weight(m, bw->attn_out_w), bw->attn_out_b, N,
                           C, C);
        be->residual_layernorm_forward(ba->x_mid, ba->ln2, ba->ln2_mean, ba->ln2_rstd, a->x[l],
                                       a->branch_out, bw->ln2_w, bw->ln2_b, N, C);
        be->linear_activation_forward(ba->fc1, ba->act, ba->ln2, compute_weight(m, bw->fc1_w), bw->fc1_b, tc->act, N,
                                      C, M);
        be->linear_forward(a->branch_out, ba->act, compute_weight(m, bw->fc2_w), bw->fc2_b, N, M, C);
        if (l + 1 < L) {
            BlockActs *next = &a->blocks[l + 1];
            be->residual_layernorm_forward(a->x[l + 1], next->ln1, next->ln1_mean, next->ln1_rstd, ba->x_mid,
                                           a->branch_out, w->blocks[l + 1].ln1_w, w->blocks[l + 1].ln1_b, N, C);
        } else {
            be->residual_forward(a->x[l + 1], ba->x_mid, a->branch_out, (size_t)N * C);
        }
    }
}

/* Backward through every block. On entry a->d_x holds dloss/d(x[L]); on exit, dloss/d(x[0]).
 * Each LayerNorm backward adds its branch's gradient into d_x, which already carries the
 * residual path's, so the residual adds need no code of their own. The other activation
 * gradients have one writer each, which overwrites them (backend.h): nothing is zeroed. After
 * each block, the block's gradients are final: their all-reduce may start
 * (grad_reduce_layer_done). */
static void encoder_backward(const Clip *m, const TowerWeights *w, TowerWeights *g,
                             const TowerConfig *tc, TowerActs *a, const SeqGroups *sg, int causal,
                             Tower tower) {
    const Backend *be = m->be;
    int C = tc->width, M = tc->mlp_width, NH = tc->heads, N = sg->rows;
    for (int l = tc->layers - 1; l >= 0; l--) {
        const BlockWeights *bw = &w->blocks[l];
        BlockWeights *bg = &g->blocks[l];
        BlockActs *ba = &a->blocks[l];
        /* MLP branch */
        be->linear_backward(a->d_act, bg->fc2_w, bg->fc2_b, a->d_x, ba->act, compute_weight(m, bw->fc2_w), N,
                            M, C);
        /* overwrites d_fc1, and takes fc1's bias gradient in the same pass */
        be->activation_backward(a->d_fc1, bg->fc1_b, ba->fc1, a->d_act, N, M, tc->act);
        be->linear_backward(a->d_ln, bg->fc1_w, NULL, a->d_fc1, ba->ln2, compute_weight(m, bw->fc1_w), N, C, M);
        be->layernorm_backward(a->d_x, bg->ln2_w, bg->ln2_b, a->d_ln, ba->x_mid, bw->ln2_w,
                               ba->ln2_mean, ba->ln2_rstd, N, C);
        /* attention branch */
        be->linear_backward(a->d_atty, bg->attn_out_w, bg->attn_out_b, a->d_x, ba->atty,
                            compute_weight(m, bw->attn_out_w), N, C, C);
        for (int k = 0; k < sg->count; k++) {
            size_t row0 = (size_t)sg->row0[k];
            be->attention_backward(a->d_qkv + row0 * 3 * C, a->d_atty + row0 * C, act_at(m, ba->qkv, row0 * 3 * C),
                                   act_at(m, ba->atty, row0 * C), ba->lse + row0 * NH, sg->n[k], sg->T[k], C, NH,
                                   causal);
        }
        be->linear_backward(a->d_ln, bg->qkv_w, bg->qkv_b, a->d_qkv, ba->ln1, compute_weight(m, bw->qkv_w), N,
                            C, 3 * C);
        be->layernorm_backward(a->d_x, bg->ln1_w, bg->ln1_b, a->d_ln, a->x[l], bw->ln1_w,
                               ba->ln1_mean, ba->ln1_rstd, N, C);
        grad_reduce_layer_done(m->reduce, tower, l);
    }
}

/* Pool one row per sequence, ln_post/ln_final, project, L2-normalise. rows: each sequence's
 * row in x (absolute, device memory), or NULL: token 0 of each of sg's one group. */
static void head_forward(const Clip *m, const TowerWeights *w, const TowerConfig *tc,
                         TowerActs *a, const int *rows, const SeqGroups *sg, int B, int D) {
    const Backend *be = m->be;
    int C = tc->width;
    be->gather_rows(a->pooled, a->x[tc->layers], rows, B, rows ? 0 : sg->T[0], C);
    be->layernorm_forward(a->ln_out, a->ln_out_mean, a->ln_out_rstd, a->pooled, w->ln_out_w,
                          w->ln_out_b, B, C);
    be->linear_forward(a->proj_out, a->ln_out, compute_weight(m, w->proj), NULL, B, C, D);
    be->l2norm_forward(a->features, a->feature_norm, a->proj_out, B, D);
}

/* From a->d_features back to a->d_x (zeroed here, then holding dloss/d(x[L])). */
static void head_backward(const Clip *m, const TowerWeights *w, TowerWeights *g,
                          const TowerConfig *tc, TowerActs *a, const int *rows, const SeqGroups *sg,
                          int B, int D) {
    const Backend *be = m->be;
    int C = tc->width;
    be->zero(a->d_proj_out, sizeof(float) * (size_t)B * D);
    be->l2norm_backward(a->d_proj_out, a->d_features, a->features, a->feature_norm, B, D);
    be->linear_backward(a->d_ln_out, g->proj, NULL, a->d_proj_out, a->ln_out, compute_weight(m, w->proj), B, C, D);
    be->zero(a->d_pooled, sizeof(float) * (size_t)B * C);
    be->layernorm_backward(a->d_pooled, g->ln_out_w, g->ln_out_b, a->d_ln_out, a->pooled,
                           w->ln_out_w, a->ln_out_mean, a->ln_out_rstd, B, C);
    be->zero(a->d_x, sizeof(float) * (size_t)sg->rows * C);
    be->scatter_rows(a->d_x, a->d_pooled, rows, B, rows ? 0 : sg->T[0], C);
}

/* ----------------------------------------------------------------------------
 * The two towers */

static void vision_forward(Clip *m, const float *images_host, int B) {
    const Backend *be = m->be;
    const ClipConfig *cfg = &m->cfg;
    const TowerConfig *tc = &cfg->vision;
    TowerActs *a = &m->vision_acts;
    int R = cfg->image_size, P = cfg->patch_size, NP = clip_num_patches(cfg), T = NP + 1;
    int C = tc->width;
    be->to_device(a->images, images_host, sizeof(float) * (size_t)B * 3 * R * R);
    be->im2col_patches(a->patches, a->images, B, R, R, P);
    be->linear_forward(a->patch_out, a->patches, compute_weight(m, m->w.vision.embed), NULL, B * NP, 3 * P * P,
                       C);
    be->vision_embed_forward(a->embed, a->patch_out, m->w.vision.class_emb, m->w.vision.pos, B,
                             NP, C);
    be->layernorm_forward(a->x[0], a->ln_pre_mean, a->ln_pre_rstd, a->embed, m->w.vision.ln_pre_w,
                          m->w.vision.ln_pre_b, B * T, C);
    SeqGroups sg = one_group(B, T);
    encoder_forward(m, &m->w.vision, tc, a, &sg, 0);
    head_forward(m, &m->w.vision, tc, a, NULL, &sg, B, cfg->embed_dim);
}

static void vision_backward(Clip *m, int B) {
    const Backend *be = m->be;
    const ClipConfig *cfg = &m->cfg;
    const TowerConfig *tc = &cfg->vision;
    TowerActs *a = &m->vision_acts;
    int P = cfg->patch_size, NP = clip_num_patches(cfg), T = NP + 1, C = tc->width;
    SeqGroups sg = one_group(B, T);
    head_backward(m, &m->w.vision, &m->g.vision, tc, a, NULL, &sg, B, cfg->embed_dim);
    encoder_backward(m, &m->w.vision, &m->g.vision, tc, a, &sg, 0, TOWER_VISION);
    be->zero(a->d_embed, sizeof(float) * (size_t)B * T * C);
    be->layernorm_backward(a->d_embed, m->g.vision.ln_pre_w, m->g.vision.ln_pre_b, a->d_x,
                           a->embed, m->w.vision.ln_pre_w, a->ln_pre_mean, a->ln_pre_rstd, B * T,
                           C);
    /* d_patch_out reuses d_ln, which is free now and at least B*T*C long */
    float *d_patch_out = a->d_ln;
    be->zero(d_patch_out, sizeof(float) * (size_t)B * NP * C);
    be->vision_embed_backward(d_patch_out, m->g.vision.class_emb, m->g.vision.pos, a->d_embed, B,
                              NP, C);
    be->linear_backward(NULL, m->g.vision.embed, NULL, d_patch_out, a->patches,
                        compute_weight(m, m->w.vision.embed), B * NP, 3 * P * P, C);
}

int clip_eot_position(const ClipConfig *cfg, const int *row) {
    int eot = clip_eot_token(cfg);
    for (int t = 0; t < cfg->context_length; t++)
        if (row[t] == eot) return t;
    return cfg->context_length - 1;
}

/* Lays a text batch out in the tower's rows (m->text_groups, engine/text_groups.h) and uploads
 * the token ids row by row and each text's pooled row (its EOT). */
static void text_upload(Clip *m, const int *tokens, int B) {
    const ClipConfig *cfg = &m->cfg;
    int ctx = cfg->context_length;
    int *eot = mallocCheck(sizeof(int) * (size_t)B * 4), *length = eot + B, *order = length + B, *pool = order + B;
    int multiple = m->train.text_length_multiple > 1 ? m->train.text_length_multiple : 1;
    for (int b = 0; b < B; b++) {
        eot[b] = clip_eot_position(cfg, tokens + (size_t)b * ctx);
        for (int t = 0; t < ctx; t++) {
            int id = tokens[(size_t)b * ctx + t];
            if (id < 0 || id >= cfg->vocab_size)
                die("text %d position %d: token id %d outside the vocabulary [0, %d)", b, t, id,
                    cfg->vocab_size);
        }
        int rounded = (eot[b] + multiple) / multiple * multiple; /* eot + 1 rounded up */
        length[b] = m->train.full_context || rounded > ctx ? ctx : rounded;
    }
    SeqGroups *sg = &m->text_groups;
    seq_groups_plan(length, B, ctx, m->train.text_groups, sg, order);
    int *ids = mallocCheck(sizeof(int) * (size_t)sg->rows);
    for (int g = 0, first = 0; g < sg->count; first += sg->n[g], g++)
        for (int k = 0; k < sg->n[g]; k++) {
            int b = order[first + k], row = sg->row0[g] + k * sg->T[g];
            memcpy(ids + row, tokens + (size_t)b * ctx, sizeof(int) * (size_t)sg->T[g]);
            pool[b] = row + eot[b];
        }
    m->text_tokens = sg->T[sg->count - 1];
    m->be->to_device(m->text_acts.ids, ids, sizeof(int) * (size_t)sg->rows);
    m->be->to_device(m->text_acts.pool_rows, pool, sizeof(int) * (size_t)B);
    free(ids), free(eot);
}

static void text_forward(Clip *m, const int *tokens_host, int B) {
    const Backend *be = m->be;
    const ClipConfig *cfg = &m->cfg;
    TowerActs *a = &m->text_acts;
    text_upload(m, tokens_host, B);
    const SeqGroups *sg = &m->text_groups;
    int C = cfg->text.width;
    for (int g = 0; g < sg->count; g++)
        be->token_embed_forward(act_at(m, a->x[0], (size_t)sg->row0[g] * C), a->ids + sg->row0[g], m->w.text.embed,
                                m->w.text.pos, sg->n[g], sg->T[g], C);
    encoder_forward(m, &m->w.text, &cfg->text, a, sg, 1);
    head_forward(m, &m->w.text, &cfg->text, a, a->pool_rows, sg, B, cfg->embed_dim);
}

static void text_backward(Clip *m, int B) {
    const Backend *be = m->be;
    const ClipConfig *cfg = &m->cfg;
    TowerActs *a = &m->text_acts;
    const SeqGroups *sg = &m->text_groups;
    int C = cfg->text.width;
    head_backward(m, &m->w.text, &m->g.text, &cfg->text, a, a->pool_rows, sg, B, cfg->embed_dim);
    encoder_backward(m, &m->w.text, &m->g.text, &cfg->text, a, sg, 1, TOWER_TEXT);
    for (int g = 0; g < sg->count; g++)
        be->token_embed_backward(m->g.text.embed, m->g.text.pos, a->d_x + (size_t)sg->row0[g] * C,
                                 a->ids + sg->row0[g], sg->n[g], sg->T[g], C);
}

/* ----------------------------------------------------------------------------
 * Public entry points */

Clip *clip_create(const ClipConfig *cfg, const Backend *be) {
    char err[256];
    if (clip_config_validate(cfg, err, sizeof err) != 0) die("invalid model config: %s", err);
    Clip *m = callocCheck(1, sizeof(Clip));
    m->cfg = *cfg;
    m->be = be;
    param_layout_build(cfg, &m->layout);
    m->params = be->alloc(sizeof(float) * m->layout.total);
    m->params_act = be->act_bytes == sizeof(float) ? (Act *)m->params : be->alloc(be->act_bytes * m->layout.total);
    clip_weights_view(cfg, m->params, &m->w);
    m->loss = clip_loss_create(be, cfg->embed_dim);
    m->mcq = mcq_loss_create(be, cfg->embed_dim);
    m->train.train_text = 1;
    m->train.train_vision = 1;
    m->opt_tensors_for = -1;
    return m;
}

void clip_free(Clip *m) {
    if (!m) return;
    const Backend *be = m->be;
    tower_acts_free(be, &m->vision_acts);
    tower_acts_free(be, &m->text_acts);
    clip_weights_free(&m->w);
    clip_weights_free(&m->g);
    if (m->params_act != (Act *)m->params) be->release(m->params_act);
    void *buffers[] = {m->params, m->grads, m->adam_m, m->adam_v, m->totals, m->opt_tensors};
    for (size_t i = 0; i < sizeof buffers / sizeof *buffers; i++)
        if (buffers[i]) be->release(buffers[i]);
    clip_loss_free(m->loss);
    mcq_loss_free(m->mcq);
    grad_reduce_free(m->reduce);
    param_layout_free(&m->layout);
    free(m);
}

void clip_set_params(Clip *m, const float *host) {
    m->be->to_device(m->params, host, sizeof(float) * m->layout.total);
    clip_params_changed(m, 0, m->layout.total);
}

void clip_params_changed(Clip *m, size_t offset, size_t n) {
    if (m->params_act == (Act *)m->params) return;
    m->be->to_act((char *)m->params_act + offset * m->be->act_bytes, m->params + offset, n);
}

void clip_get_params(const Clip *m, float *host) {
    m->be->to_host(host, m->params, sizeof(float) * m->layout.total);
}

/* open_clip's initialisation: normal draws with the standard deviations of docs/REFERENCE.md §1;
 * LayerNorm weights 1, biases 0, logit_scale ln(1/0.07). */
void clip_init_random(Clip *m, uint64_t seed) {
    const ClipConfig *cfg = &m->cfg;
    float *host = callocCheck(m->layout.total, sizeof(float));
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < m->layout.count; i++) {
        const ParamInfo *p = &m->layout.params[i];
        const TowerConfig *tc = p->tower == TOWER_VISION ? &cfg->vision : &cfg->text;
        double width = tc->width, layers = tc->layers, std = 0;
        const char *n = p->name;
        float *dst = host + p->offset;
        if (strstr(n, "layer_norm") || strstr(n, "layrnorm") || strstr(n, "layernorm")) {
            if (strstr(n, ".weight"))
                for (size_t k = 0; k < p->numel; k++) dst[k] = 1.0f;
            continue;
        }
        if (p->ndim == 0) { /* logit_scale */
            dst[0] = cfg->logit_scale_init;
            continue;
        }
        if (strstr(n, ".bias")) continue;
        if (strstr(n, "token_embedding")) std = 0.02;
        else if (strstr(n, "position_embedding")) std = p->tower == TOWER_TEXT ? 0.01 : pow(width, -0.5);
        else if (strstr(n, "class_embedding")) std = pow(width, -0.5);
        else if (strstr(n, "patch_embedding")) std = pow(3.0 * cfg->patch_size * cfg->patch_size, -0.5);
        else if (strstr(n, "out_proj") || strstr(n, "fc2")) std = pow(width, -0.5) * pow(2 * layers, -0.5);
        else if (strstr(n, "fc1")) std = pow(2 * width, -0.5);
        else std = pow(width, -0.5); /* q/k/v and the two projections */
        for (size_t k = 0; k < p->numel; k++) dst[k] = (float)(std * rng_normal(&rng));
    }
    clip_set_params(m, host);
    free(host);
}

/* 1 if the tower trains, so that its gradients are used. TOWER_SHARED is logit_scale. */
static int tower_trains(const Clip *m, Tower tower) {
    switch (tower) {
    case TOWER_VISION: return m->train.train_vision;
    case TOWER_TEXT: return m->train.train_text;
    default: return m->train.temperature <= 0; /* logit_scale learns only when not fixed */
    }
}

int clip_tensor_trains(const Clip *m, const ParamInfo *p) { return tower_trains(m, p->tower); }

/* The largest shapes any op gets, for a backend that sizes its working memory once: both
 * towers' sequences, their widest matrices (q|k|v, the MLP, the projection) and the loss's
 * blocks, which data parallelism widens to every rank's rows or columns. */
static void reserve_scratch(Clip *m, const ClipTrainConfig *train, int max_images, int max_texts) {
    const ClipConfig *c = &m->cfg;
    const TowerConfig *towers[2] = {&c->vision, &c->text};
    size_t width = (size_t)c->embed_dim;
    for (int k = 0; k < 2; k++) {
        size_t qkv = 3 * (size_t)towers[k]->width, mlp = (size_t)towers[k]->mlp_width;
        width = qkv > width ? qkv : width;
        width = mlp > width ? mlp : width;
    }
    int world = train->dist ? train->dist->world : 1;
    size_t batch = (size_t)(max_images > max_texts ? max_images : max_texts);
    size_t vision_tokens = (size_t)clip_vision_tokens(c), text_tokens = (size_t)c->context_length;
    m->be->reserve_scratch(batch, vision_tokens > text_tokens ? vision_tokens : text_tokens, width,
                           max_images * world, max_texts * world);
}

void clip_prepare(Clip *m, const ClipTrainConfig *train, int max_images, int max_texts) {
    const Backend *be = m->be;
    m->train = *train;
    m->opt_tensors_for = -1; /* which tensors train may have changed */
    m->max_images = max_images;
    m->max_texts = max_texts;
    tower_acts_create(be, &m->vision_acts, &m->cfg, &m->cfg.vision, 1, max_images,
                      train->train_vision);
    tower_acts_create(be, &m->text_acts, &m->cfg, &m->cfg.text, 0, max_texts, train->train_text);
    ClipLossConfig objective = {.dist = train->dist,
                                .contradiction_log_weight = train->contradiction_log_weight,
                                .i2t_each = train->i2t_each};
    /* the multiple-choice options are texts the InfoNCE objective does not see */
    int mcq = train->mcq_weight > 0;
    clip_loss_prepare(m->loss, &objective, max_images, max_texts - (mcq ? train->mcq_options * max_images : 0));
    if (mcq) mcq_loss_prepare(m->mcq, train->dist, train->mcq_weight, train->mcq_options, max_images);
    if (be->reserve_scratch) reserve_scratch(m, train, max_images, max_texts);
    int training = train->train_vision || train->train_text || train->temperature <= 0;
    if (training && !m->grads) {
        size_t bytes = sizeof(float) * m->layout.total;
        m->grads = be->alloc(bytes);
        m->adam_m = be->alloc(bytes);
        m->adam_v = be->alloc(bytes);
        m->totals = be->alloc(sizeof(ClipStepTotals));
        m->opt_tensors = be->alloc(sizeof(AdamWTensor) * (size_t)m->layout.count);
        clip_weights_view(&m->cfg, m->grads, &m->g);
    }
    grad_reduce_free(m->reduce);
    m->reduce = NULL;
    if (train->dist && train->dist->world > 1 && m->grads) {
        int trains[3] = {[TOWER_VISION] = tower_trains(m, TOWER_VISION),
                         [TOWER_TEXT] = tower_trains(m, TOWER_TEXT),
                         [TOWER_SHARED] = tower_trains(m, TOWER_SHARED)};
        m->reduce = grad_reduce_create(&m->cfg, &m->layout, m->grads, train->dist, trains);
    }
}

/* The texts the InfoNCE objective sees: all but the multiple-choice options. */
static int contrastive_texts(const ClipBatch *batch) {
    return batch->mcq.answer ? batch->mcq.first_text : batch->n_texts;
}

static void check_batch(const Clip *m, const ClipBatch *batch) {
    int Ni = batch->n_images, Nt = batch->n_texts;
    if (Ni < 1 || Nt < 1) die("a batch needs at least one image and one text (got %d, %d)", Ni, Nt);
    if (Ni > m->max_images || Nt > m->max_texts)
        die("batch of %d images x %d texts exceeds the prepared %d x %d", Ni, Nt, m->max_images,
            m->max_texts);
    if (!batch->images == !batch->image_features)
        die("a batch gives either images or precomputed image features, not %s",
            batch->images ? "both" : "neither");
    if (batch->image_features && m->train.train_vision)
        die("precomputed image features need a frozen vision tower");
    if (batch->mcq.answer && !(m->train.mcq_weight > 0))
        die("a batch with multiple-choice options needs a model prepared with an MCQ weight");
    if (batch->mcq.answer && batch->mcq.first_text + m->train.mcq_options * Ni != Nt)
        die("a batch's %d multiple-choice options per image must be its last texts: %d + %d x %d != %d",
            m->train.mcq_options, batch->mcq.first_text, m->train.mcq_options, Ni, Nt);
    clip_loss_check_targets(batch->txt2img, contrastive_texts(batch), batch->i2t_target, Ni);
}

void clip_forward_queued(Clip *m, const ClipBatch *batch) {
    const Backend *be = m->be;
    check_batch(m, batch);
    int Ni = batch->n_images, Nt = batch->n_texts, D = m->cfg.embed_dim;
    m->n_images = Ni;
    m->n_texts = Nt;
    m->images_from_features = batch->image_features != NULL;
    if (batch->images) vision_forward(m, batch->images, Ni);
    else be->to_device(m->vision_acts.features, batch->image_features, sizeof(float) * (size_t)Ni * D);
    text_forward(m, batch->tokens, Nt);

    /* a learned scale is read on the backend: exp(logit_scale) never visits the host */
    int learned = m->train.temperature <= 0;
    ClipLoss *loss = m->loss;
    const float *logit_scale = learned ? m->w.logit_scale : NULL;
    float fixed_scale = learned ? 0.0f : 1.0f / m->train.temperature;
    clip_loss_score(loss, m->vision_acts.features, Ni, m->text_acts.features, contrastive_texts(batch),
                    batch->txt2img, batch->i2t_target, &batch->absence, logit_scale, fixed_scale);
    if (m->totals)
        for (int b = 0; b < loss->blocks; b++)
            be->accumulate(m->totals->stats, loss->stats + b * INFONCE_NSTATS, INFONCE_NSTATS);
    m->mcq_scored = batch->mcq.answer != NULL;
    m->mcq_first_text = batch->mcq.first_text;
    if (!m->mcq_scored) return;
    mcq_loss_score(m->mcq, m->vision_acts.features, m->text_acts.features + (size_t)batch->mcq.first_text * D, Ni,
                   batch->mcq.answer, logit_scale, fixed_scale);
    if (m->totals) be->accumulate(m->totals->mcq_stats, m->mcq->stats, INFONCE_NSTATS);
}

float clip_forward(Clip *m, const ClipBatch *batch, float stats[INFONCE_NSTATS]) {
    clip_forward_queued(m, batch);
    return clip_loss_read(m->loss, stats);
}

/* overlap: start the gradient buckets' all-reduces as the backward goes (clip_backward_last) */
static void backward(Clip *m, int overlap) {
    const Backend *be = m->be;
    if (!m->grads) die("clip_backward: the model was prepared with nothing to train");
    grad_reduce_backward_begins(m->reduce, overlap);
    int Ni = m->n_images, Nt = m->n_texts, D = m->cfg.embed_dim;
    int train_vision = m->train.train_vision && !m->images_from_features;
    TowerActs *va = &m->vision_acts, *ta = &m->text_acts;
    be->zero(va->d_features, sizeof(float) * (size_t)Ni * D);
    be->zero(ta->d_features, sizeof(float) * (size_t)Nt * D);
    clip_loss_backward(m->loss, train_vision ? va->d_features : NULL,
                       m->train.train_text ? ta->d_features : NULL);
    int learned = m->train.temperature <= 0;
    if (learned) /* learned: this rank's share, summed across ranks */
        be->logit_scale_backward(m->g.logit_scale, m->loss->stats, m->loss->blocks, m->w.logit_scale);
    if (m->mcq_scored)
        mcq_loss_backward(m->mcq, train_vision ? va->d_features : NULL,
                          m->train.train_text ? ta->d_features + (size_t)m->mcq_first_text * D : NULL,
                          m->g.logit_scale, learned ? m->w.logit_scale : NULL);
    if (m->train.train_text) text_backward(m, Nt);
    grad_reduce_text_done(m->reduce);
    if (train_vision) vision_backward(m, Ni);
}

void clip_backward(Clip *m) { backward(m, 0); }

void clip_backward_last(Clip *m) { backward(m, m->reduce != NULL); }

void clip_reduce_gradients(Clip *m) { grad_reduce_finish(m->reduce); }

/* Inference in chunks of the prepared batch size. */
void clip_encode_images(Clip *m, const float *images, int n, float *out) {
    int R = m->cfg.image_size, D = m->cfg.embed_dim;
    for (int start = 0; start < n; start += m->max_images) {
        int B = n - start < m->max_images ? n - start : m->max_images;
        vision_forward(m, images + (size_t)start * 3 * R * R, B);
        m->be->to_host(out + (size_t)start * D, m->vision_acts.features, sizeof(float) * (size_t)B * D);
    }
}

void clip_encode_texts(Clip *m, const int *tokens, int n, float *out) {
    int ctx = m->cfg.context_length, D = m->cfg.embed_dim;
    for (int start = 0; start < n; start += m->max_texts) {
        int B = n - start < m->max_texts ? n - start : m->max_texts;
        text_forward(m, tokens + (size_t)start * ctx, B);
        m->be->to_host(out + (size_t)start * D, m->text_acts.features, sizeof(float) * (size_t)B * D);
    }
}
