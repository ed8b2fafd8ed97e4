/*
 * test_parity.c: tng's CPU engine against transformers / open_clip on the same model and
 * batch: features, loss, every parameter gradient, 10 AdamW steps, both weight namings, and
 * --recipe tng-released's optimizer against torch.optim.AdamW with PyTorch's defaults.
 *
 *   test_parity [FIXTURE_DIR] [--write-checkpoint OUT_DIR]
 *
 * FIXTURE_DIR (default tests/fixtures/parity) is written by tests/ref/make_fixtures.py (and
 * its expected_adamw_torch.safetensors by tests/ref/make_optimizer_fixture.py). The expected
 * tensors there come from transformers run in float64 on the float32 model, so each
 * tolerance below bounds tng's own float32 error. A directory without
 * expected_fixed_mean.safetensors (the --vitb32 fixture) gets the forward checks only.
 * --write-checkpoint saves the model as the run leaves it (after the 10 steps on the tiny
 * fixture) through the checkpoint API, plus tng's features of it, for
 * tests/ref/check_roundtrip.py to load with transformers.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"  // defines: checkpoint_load_hf, checkpoint_load_weights, checkpoint_save_hf
#include "util/common.h"      // defines: mallocCheck, die
#include "harness.h"     // defines: RUN_TEST, CHECK, test_summary
#include "engine/model.h"       // defines: Clip, clip_create, clip_forward, clip_backward, ...
#include "engine/optim.h"       // defines: OptimConfig, clip_optimizer_step
#include "train/options.h"      // defines: TrainOptions, train_options_parse
#include "io/safetensors.h" // defines: SafeTensors, st_open, st_find, st_read_f32, st_read_i32

/* ----------------------------------------------------------------------------
 * Tolerances (elementwise |got - want| <= atol + rtol * |want|) */

/* Features and the loss: the fp32 bound. The measured torch fp32 noise is ~2e-7. */
#define FEATURE_ATOL 1e-6
#define FEATURE_RTOL 1e-5
#define LOSS_RTOL 1e-5
/* Gradients, per tensor: the bound. torch fp32 reaches 0.3% of it. */
#define GRAD_ATOL 1e-4
#define GRAD_RTOL 1e-3
/* Step losses: the 1e-5 relative (torch fp32: 2.5e-6). */
#define STEP_LOSS_RTOL 1e-5
/* Weights after 10 steps. Each step moves a weight by at most ~lr = 1e-3, so 2e-5 + 1e-4|w|
 * is a few percent of one step. torch fp32 lands 4.7e-6 from the float64 run; a mistake in
 * the update (beta2 0.999 instead of 0.98, eps 1e-8, no clipping, decay on the wrong
 * tensors) moves some weight by 2e-4 .. 6e-3 (measured with make_fixtures.py variants).
 * The largest float32 drift is in k_proj.bias: its exact gradient is 0 (softmax ignores a
 * shift shared by all keys), so AdamW sees only rounding noise there, damped by eps. */
#define FINAL_ATOL 2e-5
#define FINAL_RTOL 1e-4
/* ViT-B/32-shaped fixture: 12 layers of float32 accumulate more rounding; the bound. */
#define VITB32_FEATURE_ATOL 1e-4
/* --recipe tng-released against torch.optim.AdamW(model.parameters(), lr) with PyTorch's
 * defaults (make_optimizer_fixture.py). The learning rate is AMPLIFIED, 3e-3 instead of the
 * recipe's 5e-6: the three ways tng's default AdamW differs from torch's (beta2 0.98, eps 1e-6,
 * no decay on biases, LayerNorms and embeddings) all scale with lr, and at 5e-6 they are below
 * the float32 resolution of weights of size ~1, so a test there could not fail.
 * Tolerance: absolute 3e-5 on the trained weights after 10 steps, about 3x tng's float32
 * noise floor (9.1e-6, in layer 0's fc1.weight) and 14x torch's own float32 run (2.1e-6). The
 * floor comes from weights whose gradient is near eps = 1e-8: Adam gives them a full-size
 * step whose direction float32 knows only to a few percent.
 * Margins (float64 torch runs, max over the trained weights, in units of the tolerance):
 * beta2 0.98 alone 17.9, eps 1e-6 alone 79.8, decay on matrices alone 22.3, all three 81.9.
 * The test runs tng with each of those settings too and requires each to miss by at least
 * RELEASED_MIN_MISS. */
#define RELEASED_LR 3e-3f
#define RELEASED_STEPS 10
#define RELEASED_ATOL 3e-5
#define RELEASED_MIN_MISS 10.0
/* k_proj.bias's exact gradient is 0 (softmax ignores a shift shared by all keys): with eps
 * 1e-8 its update is float32 rounding noise over ~eps, different in every engine (torch's
 * fp32 run lands 1.4e-2 from fp64). It is held to Adam's bound instead: a step moves a weight
 * by about lr at most (|m_hat| / sqrt(v_hat) <= 1.04 over 10 steps at these betas, plus decay). */
#define NOISE_ONLY_TENSOR "self_attn.k_proj.bias"
#define NOISE_ONLY_BOUND (1.5 * RELEASED_STEPS * RELEASED_LR)

/* The training recipe make_fixtures.py used. */
#define NUM_STEPS 10
#define FIXED_TEMPERATURE 0.07f

/* ----------------------------------------------------------------------------
 * The fixture */

typedef struct {
    const char *dir;
    ClipConfig cfg;
    float *params; /* HF weights in layout order */
    size_t n_params;
    int n_images, n_texts;
    float *pixels;            /* [Ni,3,R,R] */
    int *tokens;              /* [Nt,context] */
    int *txt2img;             /* [Nt] */
    int *i2t_target;          /* [Ni] */
    int *i2t_mean;            /* [Ni], all -1: the soft target over every positive */
    SafeTensors expected;     /* expected.safetensors */
    SafeTensors fixed_mean;   /* expected_fixed_mean.safetensors, if full */
    SafeTensors adamw_torch;  /* expected_adamw_torch.safetensors, if full */
    int full;                 /* 0: forward checks only (the ViT-B/32 fixture) */
    const char *write_dir;    /* --write-checkpoint */
} Fixture;

static Fixture fx;

static const char *fixture_path(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", fx.dir, name);
    return path;
}

static void open_st(SafeTensors *st, const char *name) {
    char err[512];
    if (st_open(st, fixture_path(name), err, sizeof err) != 0)
        die("%s (regenerate with `make fixtures`)", err);
}

static const StTensor *find_tensor(const SafeTensors *st, const char *name, size_t numel) {
    const StTensor *t = st_find(st, name);
    if (!t) die("%s: no tensor %s", st->source, name);
    if (t->numel != numel)
        die("%s: %s has %zu elements, expected %zu", st->source, name, t->numel, numel);
    return t;
}

/* A float tensor of `numel` elements (malloc'd). */
static float *read_floats(const SafeTensors *st, const char *name, size_t numel) {
    const StTensor *t = find_tensor(st, name, numel);
    float *out = mallocCheck(sizeof(float) * numel);
    char err[512];
    if (st_read_f32(st, t, out, err, sizeof err) != 0) die("%s", err);
    return out;
}

static int *read_ints(const SafeTensors *st, const char *name, size_t numel) {
    const StTensor *t = find_tensor(st, name, numel);
    int32_t *out = mallocCheck(sizeof(int32_t) * numel);
    char err[512];
    if (st_read_i32(st, t, out, err, sizeof err) != 0) die("%s", err);
    return out;
}

static float read_scalar(const SafeTensors *st, const char *name) {
    float *x = read_floats(st, name, 1);
    float value = *x;
    free(x);
    return value;
}

static void fixture_load(void) {
    char err[512];
    char model_dir[4096];
    snprintf(model_dir, sizeof model_dir, "%s/model", fx.dir);
    if (checkpoint_load_hf(model_dir, &fx.cfg, &fx.params, &fx.n_params, err, sizeof err) != 0)
        die("%s", err);
    SafeTensors inputs;
    open_st(&inputs, "inputs.safetensors");
    const StTensor *pixels = st_find(&inputs, "pixel_values");
    const StTensor *ids = st_find(&inputs, "input_ids");
    if (!pixels || !ids || pixels->ndim != 4 || ids->ndim != 2 ||
        ids->shape[1] != fx.cfg.context_length)
        die("%s: expected pixel_values [Ni,3,R,R] and input_ids [Nt,%d]", inputs.source,
            fx.cfg.context_length);
    fx.n_images = (int)pixels->shape[0];
    fx.n_texts = (int)ids->shape[0];
    int R = fx.cfg.image_size;
    fx.pixels = read_floats(&inputs, "pixel_values", (size_t)fx.n_images * 3 * R * R);
    fx.tokens = read_ints(&inputs, "input_ids", (size_t)fx.n_texts * fx.cfg.context_length);
    fx.txt2img = read_ints(&inputs, "txt2img", (size_t)fx.n_texts);
    fx.i2t_target = read_ints(&inputs, "i2t_target", (size_t)fx.n_images);
    st_close(&inputs);
    fx.i2t_mean = mallocCheck(sizeof(int) * (size_t)fx.n_images);
    for (int i = 0; i < fx.n_images; i++) fx.i2t_mean[i] = -1;

    open_st(&fx.expected, "expected.safetensors");
    FILE *probe = fopen(fixture_path("expected_fixed_mean.safetensors"), "rb");
    fx.full = probe != NULL;
    if (probe) {
        fclose(probe);
        open_st(&fx.fixed_mean, "expected_fixed_mean.safetensors");
        open_st(&fx.adamw_torch, "expected_adamw_torch.safetensors");
    }
}

/* ----------------------------------------------------------------------------
 * Comparison */

typedef struct {
    double max_abs;     /* max |got - want| */
    double worst_ratio; /* max |got - want| / (atol + rtol |want|); <= 1 passes; NaN -> inf */
    size_t worst;
} Closeness;

static Closeness closeness(const float *got, const float *want, size_t n, double atol,
                          double rtol) {
    Closeness c = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        double ratio = isnan(diff) ? INFINITY : diff / (atol + rtol * fabs((double)want[i]));
        if (diff > c.max_abs) c.max_abs = diff;
        if (ratio > c.worst_ratio) {
            c.worst_ratio = ratio;
            c.worst = i;
        }
    }
    return c;
}

/* Compares and records a failed CHECK naming the worst element. */
static Closeness check_close(const char *what, const float *got, const float *want, size_t n,
                             double atol, double rtol) {
    Closeness c = closeness(got, want, n, atol, rtol);
    CHECK(c.worst_ratio <= 1, "%s: worst [%zu] got %.9g want %.9g (%.2fx the tolerance)", what,
          c.worst, (double)got[c.worst], (double)want[c.worst], c.worst_ratio);
    return c;
}

static void check_loss(const char *what, float got, const SafeTensors *st, const char *name) {
    float want = read_scalar(st, name);
    Closeness c = check_close(what, &got, &want, 1, 0, LOSS_RTOL);
    printf("    %-10s %.7f vs %.7f: relative error %.2e (tolerance %.0e)\n", what, got, want,
           c.max_abs / fabs(want), LOSS_RTOL);
}

static float *poisoned(size_t n) {
    float *x = mallocCheck(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* Compares n rows of D features from a backend buffer (or host, if host != NULL). */
static void check_features(const char *what, const Clip *m, const float *device, float *host,
                           int n, const char *expected_name, double atol, double rtol) {
    size_t count = (size_t)n * m->cfg.embed_dim;
    float *got = host;
    if (!host) {
        got = poisoned(count);
        m->be->to_host(got, device, sizeof(float) * count);
    }
    float *want = read_floats(&fx.expected, expected_name, count);
    Closeness c = check_close(what, got, want, count, atol, rtol);
    printf("    %-22s max abs error %.2e (tolerance %.0e + %.0e|x|)\n", what, c.max_abs, atol,
           rtol);
    free(want);
    if (!host) free(got);
}

/* ----------------------------------------------------------------------------
 * Model set-up */

/* How the text batch is laid out in the tower's rows: all cut to the longest EOT, all at the
 * full context, or sorted by length into groups each cut to its own longest */
typedef enum { TEXTS_CUT = 0, TEXTS_FULL_CONTEXT = 1, TEXTS_GROUPED = 2, TEXTS_ROUNDED = 3 } TextLayout;
static const char *const text_layout_names[4] = {"text cut to max(EOT)+1", "full context",
                                                 "texts in 3 length groups",
                                                 "lengths rounded up to a multiple of 4"};

static Clip *make_model(float temperature, int train_vision, TextLayout layout) {
    Clip *m = clip_create(&fx.cfg, backend_cpu());
    clip_set_params(m, fx.params);
    ClipTrainConfig train = {.temperature = temperature,
                             .train_vision = train_vision,
                             .train_text = 1,
                             .full_context = layout == TEXTS_FULL_CONTEXT,
                             .text_groups = layout == TEXTS_GROUPED ? 3 : 1,
                             .text_length_multiple = layout == TEXTS_ROUNDED ? 4 : 1};
    clip_prepare(m, &train, fx.n_images, fx.n_texts);
    return m;
}

static ClipBatch make_batch(const int *i2t_target) {
    return (ClipBatch){.n_images = fx.n_images,
                       .images = fx.pixels,
                       .n_texts = fx.n_texts,
                       .tokens = fx.tokens,
                       .txt2img = fx.txt2img,
                       .i2t_target = i2t_target};
}

/* Every parameter's gradient against `expected` (grad.<HF name>). A parameter the file has
 * no gradient for belongs to a frozen tower and must have exactly zero gradient. */
static void check_gradients(const Clip *m, const SafeTensors *expected) {
    float *grads = poisoned(m->layout.total);
    m->be->to_host(grads, m->grads, sizeof(float) * m->layout.total);
    int compared = 0, zero_checked = 0, expected_count = 0;
    double worst_ratio = 0, worst_abs = 0;
    const char *worst_name = "";
    for (int i = 0; i < m->layout.count; i++) {
        const ParamInfo *p = &m->layout.params[i];
        const float *got = grads + p->offset;
        char key[PARAM_NAME_MAX + 8];
        snprintf(key, sizeof key, "grad.%s", p->name);
        if (!st_find(expected, key)) {
            size_t nonzero = 0;
            for (size_t k = 0; k < p->numel; k++) nonzero += got[k] != 0.0f;
            CHECK(nonzero == 0, "%s is frozen but %zu gradient elements are non-zero", p->name,
                  nonzero);
            zero_checked++;
            continue;
        }
        float *want = read_floats(expected, key, p->numel);
        Closeness c = check_close(p->name, got, want, p->numel, GRAD_ATOL, GRAD_RTOL);
        if (c.worst_ratio > worst_ratio) {
            worst_ratio = c.worst_ratio;
            worst_name = p->name;
        }
        if (c.max_abs > worst_abs) worst_abs = c.max_abs;
        compared++;
        free(want);
    }
    for (int i = 0; i < expected->count; i++)
        expected_count += strncmp(expected->tensors[i].name, "grad.", 5) == 0;
    CHECK(compared == expected_count, "%d of the file's %d gradients match a tng parameter",
          compared, expected_count);
    printf("    gradients: %d tensors compared, %d frozen (exactly zero); max abs error %.2e; "
           "worst %s at %.3fx the tolerance %.0e + %.0e|g|\n",
           compared, zero_checked, worst_abs, worst_name, worst_ratio, GRAD_ATOL, GRAD_RTOL);
    free(grads);
}

/* ----------------------------------------------------------------------------
 * Tests */

/* Features and loss from the training forward (every text layout) and from the inference
 * entry points. */
static void test_forward(void) {
    double atol = fx.full ? FEATURE_ATOL : VITB32_FEATURE_ATOL, rtol = fx.full ? FEATURE_RTOL : 0;
    for (int layout = TEXTS_CUT; layout <= TEXTS_ROUNDED; layout++) {
        Clip *m = make_model(0, 1, (TextLayout)layout);
        ClipBatch batch = make_batch(fx.i2t_target);
        float stats[INFONCE_NSTATS];
        float loss = clip_forward(m, &batch, stats);
        printf("  training forward, %s:\n", text_layout_names[layout]);
        if (layout != TEXTS_FULL_CONTEXT)
            CHECK(m->text_tokens < fx.cfg.context_length,
                  "the fixture's texts should exercise the cut (cut to %d of %d)",
                  m->text_tokens, fx.cfg.context_length);
        if (layout == TEXTS_ROUNDED)
            CHECK(m->text_tokens % 4 == 0, "rounded lengths should cut at a multiple of 4 (cut to %d)",
                  m->text_tokens);
        if (layout == TEXTS_GROUPED)
            CHECK(m->text_groups.count > 1 && m->text_groups.rows < fx.n_texts * m->text_tokens,
                  "the fixture's texts should make groups that save rows (%d groups, %d rows of %d)",
                  m->text_groups.count, m->text_groups.rows, fx.n_texts * m->text_tokens);
        check_features("image features", m, m->vision_acts.features, NULL, fx.n_images,
                       "image_features", atol, rtol);
        check_features("text features", m, m->text_acts.features, NULL, fx.n_texts,
                       "text_features", atol, rtol);
        check_loss("loss", loss, &fx.expected, "loss");
        check_loss("loss t2i", stats[INFONCE_T2I], &fx.expected, "loss_t2i");
        check_loss("loss i2t", stats[INFONCE_I2T], &fx.expected, "loss_i2t");
        clip_free(m);
    }
    Clip *m = make_model(0, 1, TEXTS_CUT);
    printf("  inference (clip_encode_images / clip_encode_texts):\n");
    float *img = poisoned((size_t)fx.n_images * fx.cfg.embed_dim);
    float *txt = poisoned((size_t)fx.n_texts * fx.cfg.embed_dim);
    clip_encode_images(m, fx.pixels, fx.n_images, img);
    clip_encode_texts(m, fx.tokens, fx.n_texts, txt);
    check_features("image features", m, NULL, img, fx.n_images, "image_features", atol, rtol);
    check_features("text features", m, NULL, txt, fx.n_texts, "text_features", atol, rtol);
    free(img);
    free(txt);
    clip_free(m);
}

/* Learned temperature, both towers training: every gradient including logit_scale, with the
 * texts in one group, in length groups and with rounded lengths. */
static void test_gradients(void) {
    const TextLayout layouts[3] = {TEXTS_CUT, TEXTS_GROUPED, TEXTS_ROUNDED};
    for (int k = 0; k < 3; k++) {
        Clip *m = make_model(0, 1, layouts[k]);
        ClipBatch batch = make_batch(fx.i2t_target);
        clip_forward(m, &batch, NULL);
        clip_backward(m);
        printf("  %s:\n", text_layout_names[layouts[k]]);
        check_gradients(m, &fx.expected);
        clip_free(m);
    }
}

/* Variant B: temperature fixed at 0.07, image-to-text target the mean over positives,
 * vision frozen. */
static void test_fixed_temperature_mean_target_frozen_vision(void) {
    Clip *m = make_model(FIXED_TEMPERATURE, 0, TEXTS_CUT);
    ClipBatch batch = make_batch(fx.i2t_mean);
    float stats[INFONCE_NSTATS];
    float loss = clip_forward(m, &batch, stats);
    check_loss("loss", loss, &fx.fixed_mean, "loss");
    check_loss("loss t2i", stats[INFONCE_T2I], &fx.fixed_mean, "loss_t2i");
    check_loss("loss i2t", stats[INFONCE_I2T], &fx.fixed_mean, "loss_i2t");
    clip_backward(m);
    check_gradients(m, &fx.fixed_mean);
    clip_free(m);
}

/* Saves the model and tng's features of it for check_roundtrip.py. */
static void write_checkpoint(Clip *m) {
    char err[512], path[4096];
    float *params = poisoned(m->layout.total);
    clip_get_params(m, params);
    if (checkpoint_save_hf(fx.write_dir, &fx.cfg, params, err, sizeof err) != 0) die("%s", err);
    int D = fx.cfg.embed_dim, R = fx.cfg.image_size, ctx = fx.cfg.context_length;
    float *img = poisoned((size_t)fx.n_images * D);
    float *txt = poisoned((size_t)fx.n_texts * D);
    clip_encode_images(m, fx.pixels, fx.n_images, img);
    clip_encode_texts(m, fx.tokens, fx.n_texts, txt);
    /* transformers wants int64 token ids */
    size_t n_ids = (size_t)fx.n_texts * ctx;
    int64_t *ids = mallocCheck(sizeof(int64_t) * n_ids);
    for (size_t i = 0; i < n_ids; i++) ids[i] = fx.tokens[i];
    StWriteTensor tensors[] = {
        {"image_features", ST_F32, 2, {fx.n_images, D}, img},
        {"text_features", ST_F32, 2, {fx.n_texts, D}, txt},
        {"pixel_values", ST_F32, 4, {fx.n_images, 3, R, R}, fx.pixels},
        {"input_ids", ST_I64, 2, {fx.n_texts, ctx}, ids},
    };
    snprintf(path, sizeof path, "%s/tng_features.safetensors", fx.write_dir);
    if (st_write(path, tensors, 4, NULL, NULL, 0, err, sizeof err) != 0) die("%s", err);
    printf("  wrote %s and %s\n", fx.write_dir, path);
    free(ids);
    free(img);
    free(txt);
    free(params);
}

/* steps optimizer steps on the fixture's batch; losses[k] is the loss before step k. */
static void train_steps(Clip *m, const OptimConfig *oc, const int *i2t_target, int steps, float *losses) {
    ClipBatch batch = make_batch(i2t_target);
    for (int step = 0; step < steps; step++) {
        losses[step] = clip_forward(m, &batch, NULL);
        clip_backward(m);
        clip_optimizer_step(m, oc, 1);
    }
}

static void check_step_losses(const float *losses, const SafeTensors *st, int steps) {
    float *want = read_floats(st, "step_losses", (size_t)steps);
    check_close("step losses", losses, want, (size_t)steps, 0, STEP_LOSS_RTOL);
    printf("    step losses %.5f .. %.5f, relative errors (tolerance %.0e):", losses[0], losses[steps - 1],
           STEP_LOSS_RTOL);
    for (int step = 0; step < steps; step++) printf(" %.1e", fabs((double)losses[step] / want[step] - 1));
    printf("\n");
    free(want);
}

typedef struct {
    double worst_ratio, max_abs;
    const char *worst_name;
    int compared; /* tensors */
} WeightsDistance;

/* m's weights against the file's final.<name>: every tensor the file holds except those whose
 * name contains skip (NULL: none). record: each tensor's comparison is a CHECK (else only
 * measured, for settings that must miss). */
static WeightsDistance final_weights_distance(const Clip *m, const SafeTensors *st, double atol, double rtol,
                                              const char *skip, int record) {
    float *params = poisoned(m->layout.total);
    clip_get_params(m, params);
    WeightsDistance d = {0, 0, "", 0};
    for (int i = 0; i < m->layout.count; i++) {
        const ParamInfo *p = &m->layout.params[i];
        char key[PARAM_NAME_MAX + 8];
        snprintf(key, sizeof key, "final.%s", p->name);
        if (!st_find(st, key) || (skip && strstr(p->name, skip))) continue;
        float *final = read_floats(st, key, p->numel);
        Closeness w = record ? check_close(key, params + p->offset, final, p->numel, atol, rtol)
                             : closeness(params + p->offset, final, p->numel, atol, rtol);
        if (w.worst_ratio > d.worst_ratio) {
            d.worst_ratio = w.worst_ratio;
            d.worst_name = p->name;
        }
        if (w.max_abs > d.max_abs) d.max_abs = w.max_abs;
        d.compared++;
        free(final);
    }
    free(params);
    return d;
}

/* 10 AdamW steps on one batch: the loss before each step, then every weight. */
static void test_training_steps(void) {
    Clip *m = make_model(0, 1, TEXTS_CUT);
    OptimConfig oc = optim_defaults();
    oc.lr = 1e-3f;
    oc.beta1 = 0.9f;
    oc.beta2 = 0.98f;
    oc.eps = 1e-6f;
    oc.weight_decay = 0.2f;
    oc.grad_clip = 1.0f;
    oc.schedule = SCHEDULE_CONSTANT;
    float losses[NUM_STEPS];
    train_steps(m, &oc, fx.i2t_target, NUM_STEPS, losses);
    check_step_losses(losses, &fx.expected, NUM_STEPS);
    WeightsDistance d = final_weights_distance(m, &fx.expected, FINAL_ATOL, FINAL_RTOL, NULL, 1);
    CHECK(d.compared == m->layout.count, "%d of %d tensors compared", d.compared, m->layout.count);
    printf("    weights after %d steps: max abs error %.2e; worst %s at %.3fx the tolerance "
           "%.0e + %.0e|w|\n",
           NUM_STEPS, d.max_abs, d.worst_name, d.worst_ratio, FINAL_ATOL, FINAL_RTOL);
    if (fx.write_dir) write_checkpoint(m);
    clip_free(m);
}

enum { MAX_CHANGES = 6 };

/* tng_train's settings for --recipe tng-released at the amplified lr plus changes (option,
 * value, ...; NULL-terminated or MAX_CHANGES words), through tng_train's own parser. */
static TrainOptions released_recipe(const char *const *changes) {
    char lr[32];
    snprintf(lr, sizeof lr, "%g", (double)RELEASED_LR);
    char *argv[6 + MAX_CHANGES] = {"tng_train", "--recipe", "tng-released", "--lr", lr};
    int argc = 5;
    for (int k = 0; k < MAX_CHANGES && changes[k]; k++) argv[argc++] = (char *)changes[k];
    argv[argc] = NULL;
    optind = 0; /* glibc: start getopt afresh */
    TrainOptions o;
    train_options_parse(&o, argc, argv);
    return o;
}

/* Trains a fresh model as tng_train would with o, for the fixture's steps; returns it. */
static Clip *train_like(const TrainOptions *o, float *losses) {
    Clip *m = make_model(o->temperature, o->train_vision, TEXTS_CUT);
    train_steps(m, &o->optim, fx.i2t_target, RELEASED_STEPS, losses);
    return m;
}

/* --recipe tng-released's AdamW equals torch.optim.AdamW(model.parameters(), lr) with
 * PyTorch's defaults: same losses, same trained weights, untouched frozen tensors (vision,
 * and the unused logit_scale, which torch skips for want of a gradient). Then each of tng's
 * own defaults in turn (beta2, eps, decay set) must miss the fixture by RELEASED_MIN_MISS:
 * the comparison can fail. */
static void test_released_adamw(void) {
    const SafeTensors *st = &fx.adamw_torch;
    float fixture_lr = read_scalar(st, "lr");
    CHECK(fixture_lr == RELEASED_LR, "the fixture's lr %g, the test's %g", (double)fixture_lr, (double)RELEASED_LR);
    int *steps = read_ints(st, "steps", 1);
    CHECK(*steps == RELEASED_STEPS, "the fixture has %d steps, the test %d", *steps, RELEASED_STEPS);
    free(steps);
    TrainOptions o = released_recipe((const char *const[]){NULL});
    CHECK(!o.train_vision && o.train_text && o.temperature == FIXED_TEMPERATURE && o.optim.decay_set == DECAY_ALL,
          "the recipe's set-up changed");
    float losses[RELEASED_STEPS];
    Clip *m = train_like(&o, losses);
    check_step_losses(losses, st, RELEASED_STEPS);
    WeightsDistance d = final_weights_distance(m, st, RELEASED_ATOL, 0, NOISE_ONLY_TENSOR, 1);
    printf("    trained weights after %d steps at lr %g: max abs error %.2e; worst %s at %.3fx the "
           "tolerance %.0e\n",
           RELEASED_STEPS, (double)RELEASED_LR, d.max_abs, d.worst_name, d.worst_ratio, RELEASED_ATOL);
    WeightsDistance noise = final_weights_distance(m, st, NOISE_ONLY_BOUND, 0, NULL, 0);
    CHECK(noise.worst_ratio <= 1, "%s is %.3g from torch's, beyond Adam's bound %.3g", noise.worst_name,
          noise.max_abs, NOISE_ONLY_BOUND);
    /* what does not train keeps its bits */
    float *params = poisoned(m->layout.total);
    clip_get_params(m, params);
    int frozen = 0, untouched = 0, noise_only = 0;
    for (int i = 0; i < m->layout.count; i++) {
        const ParamInfo *p = &m->layout.params[i];
        noise_only += strstr(p->name, NOISE_ONLY_TENSOR) != NULL && clip_tensor_trains(m, p);
        if (clip_tensor_trains(m, p)) continue;
        frozen++;
        untouched += memcmp(params + p->offset, fx.params + p->offset, sizeof(float) * p->numel) == 0;
    }
    CHECK(frozen > 0 && untouched == frozen, "%d of %d frozen tensors changed", frozen - untouched, frozen);
    CHECK(d.compared + noise_only + frozen == m->layout.count,
          "%d trained tensors compared, %d noise-only, %d frozen, of %d", d.compared, noise_only, frozen,
          m->layout.count);
    printf("    %d trained tensors within tolerance, %d frozen ones bit-unchanged\n", d.compared, frozen);
    free(params);
    clip_free(m);

    static const struct {
        const char *what, *changes[MAX_CHANGES];
    } misses[] = {{"beta2 0.98", {"--beta2", "0.98"}},
                  {"eps 1e-6", {"--eps", "1e-6"}},
                  {"decay on matrices", {"--wd-on", "matrices"}},
                  {"tng's defaults", {"--beta2", "0.98", "--eps", "1e-6", "--wd-on", "matrices"}}};
    for (size_t k = 0; k < sizeof misses / sizeof *misses; k++) {
        o = released_recipe(misses[k].changes);
        m = train_like(&o, losses);
        d = final_weights_distance(m, st, RELEASED_ATOL, 0, NOISE_ONLY_TENSOR, 0);
        CHECK(d.worst_ratio >= RELEASED_MIN_MISS, "%s lands %.1fx the tolerance from torch's defaults, want >= %g",
              misses[k].what, d.worst_ratio, RELEASED_MIN_MISS);
        printf("    with %-18s the weights miss by %6.1fx the tolerance (%s)\n", misses[k].what, d.worst_ratio,
               d.worst_name);
        clip_free(m);
    }
}

/* The open_clip-named file holds the same weights: it must load to the same bits. */
static void test_openai_names_load_identically(void) {
    char err[512];
    float *params = poisoned(fx.n_params);
    int rc = checkpoint_load_weights(fixture_path("openai_names.safetensors"), &fx.cfg,
                                     "model/config.json", params, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc == 0) {
        size_t differing = 0;
        for (size_t i = 0; i < fx.n_params; i++) differing += params[i] != fx.params[i];
        CHECK(differing == 0, "%zu of %zu floats differ from the HF-named load", differing,
              fx.n_params);
    }
    free(params);
}

/* Forward-only fixtures (--vitb32): write the model as loaded. */
static void test_write_loaded_checkpoint(void) {
    Clip *m = make_model(0, 0, TEXTS_CUT);
    write_checkpoint(m);
    clip_free(m);
}

int main(int argc, char **argv) {
    fx.dir = "tests/fixtures/parity";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--write-checkpoint") == 0 && i + 1 < argc) fx.write_dir = argv[++i];
        else if (argv[i][0] != '-') fx.dir = argv[i];
        else die("usage: %s [FIXTURE_DIR] [--write-checkpoint OUT_DIR]", argv[0]);
    }
    fixture_load();
    printf("fixture %s: %zu parameters, %d images, %d texts%s\n", fx.dir, fx.n_params,
           fx.n_images, fx.n_texts, fx.full ? "" : " (forward checks only)");
    RUN_TEST(test_forward);
    if (fx.full) {
        RUN_TEST(test_gradients);
        RUN_TEST(test_fixed_temperature_mean_target_frozen_vision);
        RUN_TEST(test_training_steps);
        RUN_TEST(test_released_adamw);
        RUN_TEST(test_openai_names_load_identically);
    } else if (fx.write_dir) {
        RUN_TEST(test_write_loaded_checkpoint);
    }
    st_close(&fx.expected);
    if (fx.full) st_close(&fx.fixed_mean), st_close(&fx.adamw_torch);
    free(fx.params);
    free(fx.pixels);
    free(fx.tokens);
    free(fx.txt2img);
    free(fx.i2t_target);
    free(fx.i2t_mean);
    return test_summary();
}
