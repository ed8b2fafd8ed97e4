/*
 * test_model.c: properties of the whole-model orchestration on the CPU backend.
 *
 * The parity test (test_parity.c) proves the numbers equal transformers'. These tests
 * prove the engine's own promises: cutting the text batch to max(EOT)+1 changes nothing,
 * a frozen tower is really frozen, cached image features are exact, accumulation averages,
 * and the same seed gives the same bits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "harness.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "util/rng.h"
#include "small_model.h"

typedef struct {
    int Ni, Nt;
    float *images;
    int *tokens, *txt2img, *i2t_target;
} TestBatch;

/* Ni images, Nt texts; each text has an EOT somewhere, zeros after it. */
static TestBatch make_batch(const ClipConfig *c, int Ni, int Nt, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    TestBatch b = {.Ni = Ni, .Nt = Nt};
    size_t npix = (size_t)Ni * 3 * c->image_size * c->image_size;
    b.images = mallocCheck(sizeof(float) * npix);
    for (size_t i = 0; i < npix; i++) b.images[i] = (float)rng_normal(&rng);
    b.tokens = callocCheck((size_t)Nt * c->context_length, sizeof(int));
    b.txt2img = mallocCheck(sizeof(int) * Nt);
    b.i2t_target = mallocCheck(sizeof(int) * Ni);
    for (int t = 0; t < Nt; t++) {
        int *row = b.tokens + (size_t)t * c->context_length;
        int eot = 2 + (int)rng_below(&rng, (uint64_t)c->context_length - 5); /* <= ctx-4 */
        row[0] = c->vocab_size - 2;
        for (int k = 1; k < eot; k++) row[k] = 1 + (int)rng_below(&rng, (uint64_t)c->vocab_size - 3);
        row[eot] = clip_eot_token(c);
        b.txt2img[t] = t % Ni;
    }
    for (int i = 0; i < Ni; i++) b.i2t_target[i] = i; /* text i is image i's own caption */
    return b;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static ClipBatch as_clip_batch(const TestBatch *b) {
    return (ClipBatch){.n_images = b->Ni, .images = b->images, .n_texts = b->Nt,
                       .tokens = b->tokens, .txt2img = b->txt2img, .i2t_target = b->i2t_target};
}

static void free_batch(TestBatch *b) {
    free(b->images), free(b->tokens), free(b->txt2img), free(b->i2t_target);
}

static Clip *make_model(const ClipConfig *c, const ClipTrainConfig *tc, int Ni, int Nt) {
    Clip *m = clip_create(c, backend_cpu());
    clip_init_random(m, 42);
    clip_prepare(m, tc, Ni, Nt);
    return m;
}

static const ClipTrainConfig TRAIN_ALL = {.temperature = 0, .train_vision = 1, .train_text = 1};

/* ---------------------------------------------------------------- */

static void test_text_cut_equals_full_context(void) {
    ClipConfig c = small_config();
    TestBatch b = make_batch(&c, 3, 6, 7);
    ClipBatch cb = as_clip_batch(&b);
    ClipTrainConfig full = TRAIN_ALL;
    full.full_context = 1;
    Clip *cut_model = make_model(&c, &TRAIN_ALL, 3, 6), *full_model = make_model(&c, &full, 3, 6);
    float cut_stats[INFONCE_NSTATS], full_stats[INFONCE_NSTATS];
    clip_forward(cut_model, &cb, cut_stats);
    clip_forward(full_model, &cb, full_stats);
    CHECK(cut_model->text_tokens < c.context_length, "the batch was cut (%d tokens)",
          cut_model->text_tokens);
    CHECK(full_model->text_tokens == c.context_length, "the full run used %d tokens",
          full_model->text_tokens);
    size_t nf = (size_t)6 * c.embed_dim;
    /* different GEMM shapes may reorder float sums: allow float32 rounding only */
    harness_allclose("text features", cut_model->text_acts.features, full_model->text_acts.features,
                     nf, 1e-6, 1e-5);
    CHECK(fabsf(cut_stats[0] - full_stats[0]) <= 1e-6f * fabsf(full_stats[0]), "loss %.9g vs %.9g",
          cut_stats[0], full_stats[0]);
    clip_backward(cut_model);
    clip_backward(full_model);
    /* Every parameter gradient. BLAS blocks the two runs' GEMMs differently, so sums are
     * reordered: the tolerance is float32 rounding relative to the tensor's largest entry,
     * plus a floor for k_proj.bias, whose gradient is analytically zero (a shift shared by
     * all keys leaves the softmax unchanged) and holds only rounding noise. */
    for (int i = 0; i < cut_model->layout.count; i++) {
        const ParamInfo *p = &cut_model->layout.params[i];
        harness_allclose(p->name, cut_model->grads + p->offset, full_model->grads + p->offset,
                         p->numel, 1e-7 + 1e-5 * max_abs(full_model->grads + p->offset, p->numel),
                         1e-4);
    }
    clip_free(cut_model);
    clip_free(full_model);
    free_batch(&b);
}

/* The fewest padded rows over every way to cut the sorted distinct lengths into at most k runs:
 * each subset of the cut points, tried */
static int fewest_rows(const int *count_of, int ctx, int k) {
    int len_of[64], texts[64], distinct = 0, best = -1;
    for (int len = 1; len <= ctx; len++)
        if (count_of[len]) len_of[distinct] = len, texts[distinct++] = count_of[len];
    for (unsigned cuts = 0; cuts < 1u << (distinct - 1); cuts++) {
        if (__builtin_popcount(cuts) > k - 1) continue;
        int rows = 0, n = 0;
        for (int j = 0; j < distinct; j++) {
            n += texts[j];
            if (j == distinct - 1 || cuts >> j & 1) rows += n * len_of[j], n = 0;
        }
        if (best < 0 || rows < best) best = rows;
    }
    return best;
}

/* --text-groups: the groups cover every text once, grow in length, and pad least (against a
 * search of every split) */
static void test_text_groups_pad_least(void) {
    ClipConfig c = small_config();
    for (int trial = 0; trial < 6; trial++) {
        int Nt = 5 + 7 * trial, groups = 2 + trial % 3;
        TestBatch b = make_batch(&c, 3, Nt, 100 + (uint64_t)trial);
        ClipBatch cb = as_clip_batch(&b);
        ClipTrainConfig train = TRAIN_ALL;
        train.text_groups = groups;
        Clip *m = make_model(&c, &train, 3, Nt);
        clip_forward(m, &cb, NULL);
        const SeqGroups *sg = &m->text_groups;
        int count_of[64] = {0}, texts = 0, rows = 0, growing = 1;
        for (int t = 0; t < Nt; t++) count_of[clip_eot_position(&c, b.tokens + (size_t)t * c.context_length) + 1]++;
        for (int g = 0; g < sg->count; g++) {
            CHECK(sg->row0[g] == rows, "trial %d group %d starts at row %d, not %d", trial, g, sg->row0[g], rows);
            texts += sg->n[g], rows += sg->n[g] * sg->T[g];
            growing &= g == 0 || sg->T[g] > sg->T[g - 1];
        }
        CHECK(sg->count <= groups && texts == Nt && rows == sg->rows && growing,
              "trial %d: %d groups (at most %d) of %d texts (%d), %d rows (%d)", trial, sg->count, groups, texts, Nt,
              rows, sg->rows);
        int best = fewest_rows(count_of, c.context_length, groups);
        CHECK(sg->rows == best, "trial %d: %d rows, the best split has %d", trial, sg->rows, best);
        clip_free(m);
        free_batch(&b);
    }
}

static void test_same_seed_same_bits(void) {
    ClipConfig c = small_config();
    TestBatch b = make_batch(&c, 4, 4, 9);
    ClipBatch cb = as_clip_batch(&b);
    OptimConfig oc = optim_defaults();
    oc.lr = 1e-3f;
    float losses[2][3];
    float *params[2];
    for (int run = 0; run < 2; run++) {
        Clip *m = make_model(&c, &TRAIN_ALL, 4, 4);
        for (int s = 0; s < 3; s++) {
            losses[run][s] = clip_forward(m, &cb, NULL);
            clip_backward(m);
            clip_optimizer_step(m, &oc, 1);
        }
        params[run] = mallocCheck(sizeof(float) * m->layout.total);
        clip_get_params(m, params[run]);
        size_t total = m->layout.total;
        clip_free(m);
        if (run == 1) CHECK(memcmp(params[0], params[1], sizeof(float) * total) == 0, "weights differ");
    }
    CHECK(memcmp(losses[0], losses[1], sizeof losses[0]) == 0, "losses differ");
    CHECK(losses[0][2] < losses[0][0], "training lowers the loss (%.6g -> %.6g)", losses[0][0],
          losses[0][2]);
    free(params[0]), free(params[1]);
    free_batch(&b);
}

static void test_frozen_vision(void) {
    ClipConfig c = small_config();
    TestBatch b = make_batch(&c, 3, 6, 11);
    ClipBatch cb = as_clip_batch(&b);
    ClipTrainConfig frozen = TRAIN_ALL;
    frozen.train_vision = 0;
    Clip *all = make_model(&c, &TRAIN_ALL, 3, 6), *text_only = make_model(&c, &frozen, 3, 6);
    float *params_before = mallocCheck(sizeof(float) * all->layout.total);
    clip_get_params(text_only, params_before);
    clip_forward(all, &cb, NULL);
    clip_forward(text_only, &cb, NULL);
    clip_backward(all);
    clip_backward(text_only);
    int vision_grads_zero = 1;
    for (int i = 0; i < all->layout.count; i++) {
        const ParamInfo *p = &all->layout.params[i];
        if (p->tower == TOWER_TEXT)
            harness_allclose(p->name, text_only->grads + p->offset, all->grads + p->offset, p->numel,
                             0, 0); /* the text backward is the same computation: bit-exact */
        if (p->tower == TOWER_VISION)
            for (size_t k = 0; k < p->numel; k++) vision_grads_zero &= text_only->grads[p->offset + k] == 0;
    }
    CHECK(vision_grads_zero, "a frozen vision tower received gradients");
    OptimConfig oc = optim_defaults();
    clip_optimizer_step(text_only, &oc, 1);
    float *params_after = mallocCheck(sizeof(float) * all->layout.total);
    clip_get_params(text_only, params_after);
    int vision_unchanged = 1, text_changed = 0;
    for (int i = 0; i < all->layout.count; i++) {
        const ParamInfo *p = &all->layout.params[i];
        int same = memcmp(params_before + p->offset, params_after + p->offset, p->numel * sizeof(float)) == 0;
        if (p->tower == TOWER_VISION) vision_unchanged &= same;
        if (p->tower == TOWER_TEXT) text_changed |= !same;
    }
    CHECK(vision_unchanged && text_changed, "step: vision unchanged %d, text changed %d",
          vision_unchanged, text_changed);
    free(params_before), free(params_after);
    clip_free(all);
    clip_free(text_only);
    free_batch(&b);
}

/* With the vision tower frozen, precomputed image features give the very same loss and text
 * gradients as images (the frozen-tower cache relies on it). */
static void test_cached_image_features(void) {
    ClipConfig c = small_config();
    TestBatch b = make_batch(&c, 3, 6, 13);
    ClipTrainConfig frozen = {.temperature = 0.07f, .train_vision = 0, .train_text = 1};
    Clip *from_images = make_model(&c, &frozen, 3, 6), *from_cache = make_model(&c, &frozen, 3, 6);
    float *features = mallocCheck(sizeof(float) * 3 * c.embed_dim);
    clip_encode_images(from_cache, b.images, 3, features);
    ClipBatch with_images = as_clip_batch(&b), with_features = with_images;
    with_features.images = NULL;
    with_features.image_features = features;
    float l1 = clip_forward(from_images, &with_images, NULL);
    float l2 = clip_forward(from_cache, &with_features, NULL);
    CHECK(l1 == l2, "loss from images %.9g, from cached features %.9g", l1, l2);
    clip_backward(from_images);
    clip_backward(from_cache);
    harness_allclose("all gradients", from_cache->grads, from_images->grads,
                     from_images->layout.total, 0, 0);
    free(features);
    clip_free(from_images);
    clip_free(from_cache);
    free_batch(&b);
}

/* Two micro-batches accumulate into twice one batch's gradients, and accum_steps=2 averages
 * them back: the clipped norm the optimizer reports is the single batch's. (Not bit-exact:
 * BLAS adds a GEMM's partial sums onto a non-zero gradient in a different order.) */
static void test_accumulation(void) {
    ClipConfig c = small_config();
    TestBatch b = make_batch(&c, 4, 4, 17);
    ClipBatch cb = as_clip_batch(&b);
    OptimConfig oc = optim_defaults();
    Clip *once = make_model(&c, &TRAIN_ALL, 4, 4), *twice = make_model(&c, &TRAIN_ALL, 4, 4);
    clip_forward(once, &cb, NULL);
    clip_backward(once);
    for (int k = 0; k < 2; k++) {
        clip_forward(twice, &cb, NULL);
        clip_backward(twice);
    }
    size_t n = once->layout.total;
    float *doubled = mallocCheck(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) doubled[i] = 2 * once->grads[i];
    for (int i = 0; i < once->layout.count; i++) {
        const ParamInfo *p = &once->layout.params[i];
        harness_allclose(p->name, twice->grads + p->offset, doubled + p->offset, p->numel,
                         1e-5 * max_abs(doubled + p->offset, p->numel), 1e-5);
    }
    float norm_once = clip_optimizer_step(once, &oc, 1);
    float norm_twice = clip_optimizer_step(twice, &oc, 2);
    CHECK(fabsf(norm_once - norm_twice) <= 1e-5f * norm_once, "grad norm %.9g vs %.9g", norm_once,
          norm_twice);
    int zeroed = 1;
    for (size_t i = 0; i < n; i++) zeroed &= twice->grads[i] == 0;
    CHECK(zeroed, "the optimizer step leaves the gradients zeroed");
    free(doubled);
    clip_free(once);
    clip_free(twice);
    free_batch(&b);
}

static void test_schedule_and_clamp(void) {
    OptimConfig oc = optim_defaults();
    oc.lr = 1.0f;
    oc.warmup_steps = 4;
    oc.total_steps = 12;
    oc.schedule = SCHEDULE_COSINE;
    CHECK(fabsf(optim_lr_at(&oc, 0) - 0.25f) < 1e-7f, "warmup step 0: %g", optim_lr_at(&oc, 0));
    CHECK(fabsf(optim_lr_at(&oc, 3) - 1.0f) < 1e-7f, "warmup end: %g", optim_lr_at(&oc, 3));
    CHECK(fabsf(optim_lr_at(&oc, 8) - 0.5f) < 1e-6f, "cosine midpoint: %g", optim_lr_at(&oc, 8));
    CHECK(optim_lr_at(&oc, 12) < 1e-7f && optim_lr_at(&oc, 20) < 1e-7f, "cosine end: %g",
          optim_lr_at(&oc, 12));
    /* a huge learned-temperature step is clamped to ln 100 */
    ClipConfig c = small_config();
    c.logit_scale_init = 10.0f;
    TestBatch b = make_batch(&c, 2, 2, 19);
    ClipBatch cb = as_clip_batch(&b);
    Clip *m = make_model(&c, &TRAIN_ALL, 2, 2);
    float logit_scale;
    clip_forward(m, &cb, NULL);
    clip_backward(m);
    clip_optimizer_step(m, &oc, 1);
    m->be->to_host(&logit_scale, m->w.logit_scale, sizeof(float));
    CHECK(logit_scale <= logf(100.0f) && logit_scale >= 0, "logit_scale %g not clamped", logit_scale);
    clip_free(m);
    free_batch(&b);
}

static void test_layout(void) {
    ClipConfig c;
    clip_config_preset("vit-b-32", &c);
    ParamLayout L;
    param_layout_build(&c, &L);
    /* docs/REFERENCE.md §1 (architecture): 151,277,313 parameters for OpenAI ViT-B/32 */
    CHECK(L.total == 151277313, "ViT-B/32 has %zu parameters", L.total);
    const ParamInfo *q = param_layout_find(&L, "text_model.encoder.layers.3.self_attn.q_proj.weight");
    const ParamInfo *k = param_layout_find(&L, "text_model.encoder.layers.3.self_attn.k_proj.weight");
    const ParamInfo *v = param_layout_find(&L, "text_model.encoder.layers.3.self_attn.v_proj.weight");
    CHECK(q && k && v && k->offset == q->offset + q->numel && v->offset == k->offset + k->numel,
          "q, k, v weights are consecutive");
    const ParamInfo *ls = param_layout_find(&L, "logit_scale");
    CHECK(ls && ls->ndim == 0 && ls->numel == 1 && !ls->decay, "logit_scale is an undecayed scalar");
    const ParamInfo *tok = param_layout_find(&L, "text_model.embeddings.token_embedding.weight");
    const ParamInfo *fc1 = param_layout_find(&L, "vision_model.encoder.layers.0.mlp.fc1.weight");
    CHECK(tok && !tok->decay && fc1 && fc1->decay && fc1->shape[0] == 3072 && fc1->shape[1] == 768,
          "decay flags and shapes");
    size_t sum = 0;
    for (int i = 0; i < L.count; i++) sum += L.params[i].numel;
    CHECK(sum == L.total, "tensors tile the buffer");
    param_layout_free(&L);
}

int main(void) {
    RUN_TEST(test_layout);
    RUN_TEST(test_text_cut_equals_full_context);
    RUN_TEST(test_text_groups_pad_least);
    RUN_TEST(test_same_seed_same_bits);
    RUN_TEST(test_frozen_vision);
    RUN_TEST(test_cached_image_features);
    RUN_TEST(test_accumulation);
    RUN_TEST(test_schedule_and_clamp);
    return test_summary();
}
