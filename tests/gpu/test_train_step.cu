/*
 * test_train_step.cu: whole training steps, the same model and batch through backend_cpu()
 * and the CUDA backend: the loss and its terms, the features, every parameter gradient and
 * the parameters after AdamW steps must agree.
 *
 * Tolerance (fp32 parity mode): 1e-4 relative. Per tensor, |gpu - cpu| <= 1e-4 * max|cpu|
 * + 1e-4 * |cpu| (a gradient element near zero is judged against its tensor's scale, since
 * float summation order alone moves it by ulps of the larger terms). The loss: 1e-4
 * relative. Both models start from the same host initialisation (clip_init_random draws on
 * the host, then uploads), so nothing but the backends differs. One tensor is zero in exact
 * arithmetic and gets an absolute floor instead (zero_gradient_floor).
 *
 * Two models: the tests' small model (tests/small_model.h) with 3 texts per image, a learned
 * temperature and gradient clipping over two steps; and a one-layer model with ViT-B/32's
 * real widths and sequence lengths (T = 50 vision, 77 text), the shapes the kernels are tuned
 * for; `test_train_step quick` runs the small model alone. The program links no MPI library (a
 * one-process dist.c: cuda/cuda.mk).
 *
 * Then the trainer's queued step (test_one_read_back_per_step): the same bits as the step with
 * read-backs, and on the emulator exactly one host synchronisation a step (tests/emu counts the
 * calls that would block the host on a GPU).
 */
#include <stdio.h>
#include <stdlib.h>

#include "gpu_test_util.h" /* defines: cpu, gpu, max_abs, harness_allclose */
extern "C" {
#include "engine/model.h" /* defines: Clip, clip_create, clip_forward, param_layout_find, ... */
#include "engine/optim.h" /* defines: OptimConfig, optim_defaults */
#include "small_model.h"  /* defines: small_config */
}

#define STEP_TOL 1e-4
/* The bf16 backend rounds every activation to 8 mantissa bits (2^-9 relative) and its linear
 * backward rounds dout; the learned temperature's softmaxes amplify that. Measured on the
 * emulator (small model, 2 steps): features within 1.4% of their scale, a few gradient elements
 * up to 9% of their tensor's scale, none past 10%; so the test allows 0.1 of the scale + 0.1
 * relative, which still catches a formula error (a wrong transpose, a missing term), of the
 * full size. */
#define BF16_STEP_TOL 1e-1

typedef struct {
    int Ni, Nt;
    float *images;
    int *tokens, *txt2img, *i2t_target;
} StepBatch;

/* per_image texts per image; texts end in EOT at random lengths; every third image takes
 * the mean over its texts as target, the others one of their texts. */
static StepBatch make_batch(const ClipConfig *c, int Ni, int per_image, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    StepBatch b;
    b.Ni = Ni;
    b.Nt = Ni * per_image;
    size_t npix = (size_t)Ni * 3 * c->image_size * c->image_size;
    b.images = (float *)mallocCheck(sizeof(float) * npix);
    for (size_t i = 0; i < npix; i++)
        b.images[i] = (float)rng_normal(&rng);
    b.tokens = (int *)callocCheck((size_t)b.Nt * c->context_length, sizeof(int));
    b.txt2img = (int *)mallocCheck(sizeof(int) * b.Nt);
    b.i2t_target = (int *)mallocCheck(sizeof(int) * Ni);
    for (int t = 0; t < b.Nt; t++) {
        int *row = b.tokens + (size_t)t * c->context_length;
        int eot = 2 + (int)rng_below(&rng, (uint64_t)c->context_length - 3);
        row[0] = c->vocab_size - 2;
        for (int k = 1; k < eot; k++)
            row[k] = 1 + (int)rng_below(&rng, (uint64_t)c->vocab_size - 3);
        row[eot] = clip_eot_token(c);
        b.txt2img[t] = t / per_image;
    }
    for (int i = 0; i < Ni; i++)
        b.i2t_target[i] = i % 3 == 0 ? -1 : i * per_image + i % per_image;
    return b;
}

/* The model's batch of b: its images, or (features not NULL) a frozen tower's features. */
static ClipBatch clip_batch(const StepBatch *b, const float *features) {
    ClipBatch cb = {};
    cb.n_images = b->Ni;
    cb.images = features ? NULL : b->images;
    cb.image_features = features;
    cb.n_texts = b->Nt;
    cb.tokens = b->tokens;
    cb.txt2img = b->txt2img;
    cb.i2t_target = b->i2t_target;
    return cb;
}

/* Adam's first step is lr * g / (|g| + eps): with the default eps 1e-6 it is lr * sign(g), so a
 * gradient within float noise of 0 could move its parameter by +lr on one backend and -lr on the
 * other. eps 1e-3 keeps the step a smooth function of g. */
static OptimConfig step_optim(float grad_clip) {
    OptimConfig oc = optim_defaults();
    oc.lr = 1e-3f;
    oc.eps = 1e-3f;
    oc.grad_clip = grad_clip;
    return oc;
}

static void free_batch(StepBatch *b) {
    free(b->images), free(b->tokens), free(b->txt2img), free(b->i2t_target);
}

static float *download(const Backend *be, const float *src, size_t n) {
    float *host = (float *)mallocCheck(sizeof(float) * n);
    be->to_host(host, src, sizeof(float) * n);
    return host;
}

/* |got - want| <= max(tol max|want|, floor) + tol |want| */
static void compare_tensors(const char *what, const float *got, const float *want, size_t n,
                            double floor, double tol) {
    harness_allclose(what, got, want, n, fmax(tol * max_abs(want, n), floor), tol);
}

/* Every named tensor of the layout, CPU buffer against CUDA buffer; tensor i gets at least
 * the absolute tolerance floors[i]. */
static void compare_by_param(const char *what, const Clip *m, const float *got, const float *want,
                             const double *floors, double tol) {
    char name[PARAM_NAME_MAX + 32];
    for (int i = 0; i < m->layout.count; i++) {
        const ParamInfo *p = &m->layout.params[i];
        snprintf(name, sizeof name, "%s %s", what, p->name);
        compare_tensors(name, got + p->offset, want + p->offset, p->numel, floors[i], tol);
    }
}

/* The key projection's bias gets no gradient in exact arithmetic: it adds q_i . b_k to every
 * score of query row i, and softmax ignores a constant added to a row. Both backends compute
 * float noise instead, a sum of terms dS_ij q_i whose exact total is 0, which a relative
 * tolerance cannot judge. The terms are the size of those of the query and value biases'
 * gradients in the same layer (dS_ij k_j, P_ij dO_i), whose sums do not cancel; the noise is
 * a few float ulps of them. So the floor is STEP_TOL (about 1000 ulps) times the largest of
 * those two gradients; a real error in the key bias's gradient is of their full size. 0 for
 * every other tensor. */
static double zero_gradient_floor(const Clip *m, const ParamInfo *p, const float *grads, double tol) {
    const char *k = strstr(p->name, "k_proj.bias");
    if (!k)
        return 0.0;
    double scale = 0.0;
    const char *neighbours[] = {"q_proj.bias", "v_proj.bias"};
    for (int j = 0; j < 2; j++) {
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%.*s%s", (int)(k - p->name), p->name, neighbours[j]);
        const ParamInfo *q = param_layout_find(&m->layout, name);
        CHECK(q != NULL, "no %s beside %s", name, p->name);
        if (q)
            scale = fmax(scale, max_abs(grads + q->offset, q->numel));
    }
    return tol * scale;
}

/* `steps` steps on the CPU and on the CUDA backend `cuda`, compared with tolerance tol */
static void run_steps(const ClipConfig *cfg, const ClipTrainConfig *train, int Ni, int per_image,
                      int steps, float grad_clip, const Backend *cuda, double tol) {
    StepBatch b = make_batch(cfg, Ni, per_image, 77);
    ClipBatch cb = clip_batch(&b, NULL);
    OptimConfig oc = step_optim(grad_clip);
    Clip *model[2] = {clip_create(cfg, cpu), clip_create(cfg, cuda)};
    for (int k = 0; k < 2; k++) {
        clip_init_random(model[k], 1234);
        clip_prepare(model[k], train, b.Ni, b.Nt);
    }
    size_t total = model[0]->layout.total, D = (size_t)cfg->embed_dim;
    int count = model[0]->layout.count;
    /* the absolute floors (zero_gradient_floor) of each tensor's gradient, and of its value:
     * one AdamW step moves a parameter by at most lr |m_hat| / eps <= lr max|g| / eps (m_hat
     * averages the clipped gradients), so where the two backends' gradients part by f (noise
     * below the floor, or their largest difference over the tensor, measured: rounding in fp32,
     * bf16's in bf16), the two copies of the parameter part by at most 2 lr f / eps per step */
    double *grad_floor = (double *)callocCheck((size_t)count, sizeof(double));
    double *param_floor = (double *)callocCheck((size_t)count, sizeof(double));
    for (int s = 0; s < steps; s++) {
        float stats[2][INFONCE_NSTATS];
        for (int k = 0; k < 2; k++)
            clip_forward(model[k], &cb, stats[k]);
        for (int j = 0; j < INFONCE_NSTATS; j++)
            CHECK(fabs(stats[1][j] - stats[0][j]) <= tol * fabs(stats[0][j]) + 1e-7,
                  "step %d stat %d: cuda %.9g cpu %.9g", s, j, stats[1][j], stats[0][j]);
        float *feat[2][2];
        for (int k = 0; k < 2; k++) {
            feat[k][0] = download(model[k]->be, model[k]->vision_acts.features, (size_t)b.Ni * D);
            feat[k][1] = download(model[k]->be, model[k]->text_acts.features, (size_t)b.Nt * D);
        }
        compare_tensors("image features", feat[1][0], feat[0][0], (size_t)b.Ni * D, 0.0, tol);
        compare_tensors("text features", feat[1][1], feat[0][1], (size_t)b.Nt * D, 0.0, tol);
        for (int k = 0; k < 2; k++)
            free(feat[k][0]), free(feat[k][1]);

        for (int k = 0; k < 2; k++)
            clip_backward(model[k]);
        float *grads[2];
        for (int k = 0; k < 2; k++)
            grads[k] = download(model[k]->be, model[k]->grads, total);
        for (int i = 0; i < count; i++) {
            const ParamInfo *p = &model[0]->layout.params[i];
            grad_floor[i] = zero_gradient_floor(model[0], p, grads[0], tol);
            double parted = grad_floor[i];
            for (size_t e = p->offset; e < p->offset + p->numel; e++)
                parted = fmax(parted, fabs((double)grads[1][e] - grads[0][e]));
            param_floor[i] += 2.0 * oc.lr / oc.eps * parted;
        }
        compare_by_param("grad", model[0], grads[1], grads[0], grad_floor, tol);
        free(grads[0]), free(grads[1]);

        float norms[2];
        for (int k = 0; k < 2; k++)
            norms[k] = clip_optimizer_step(model[k], &oc, 1);
        CHECK(fabs(norms[1] - norms[0]) <= tol * norms[0], "step %d grad norm %.9g vs %.9g", s,
              norms[1], norms[0]);
        float *params[2];
        for (int k = 0; k < 2; k++) {
            params[k] = (float *)mallocCheck(sizeof(float) * total);
            clip_get_params(model[k], params[k]);
        }
        compare_by_param("param", model[0], params[1], params[0], param_floor, tol);
        free(params[0]), free(params[1]);
    }
    clip_free(model[0]);
    clip_free(model[1]);
    free(grad_floor), free(param_floor);
    free_batch(&b);
}

/* Both towers training, at this temperature (0: learned) */
static ClipTrainConfig both_towers(float temperature) {
    ClipTrainConfig train = {};
    train.temperature = temperature;
    train.train_vision = 1;
    train.train_text = 1;
    return train;
}

/* ViT-B/32's widths and heads (head size 64: the tensor-core attention) with one layer a tower */
static ClipConfig vitb32_one_layer(void) {
    ClipConfig c;
    CHECK(clip_config_preset("vit-b-32", &c) == 0, "preset");
    c.vision.layers = 1;
    c.text.layers = 1;
    return c;
}

static void test_small_model_two_steps(void) {
    ClipConfig c = small_config();
    ClipTrainConfig train = both_towers(0); /* learned: the logit_scale gradient is checked too */
    run_steps(&c, &train, 6, 3, 2, 1.0f, gpu, STEP_TOL);
}

/* The same steps in bf16: what the default GPU precision computes stays near the fp32 oracle */
static void test_small_model_bf16(void) {
    ClipConfig c = small_config();
    ClipTrainConfig train = both_towers(0);
    run_steps(&c, &train, 6, 3, 2, 1.0f, gpu16, BF16_STEP_TOL);
}

/* Texts sorted by length into groups, each cut to its own longest (ClipTrainConfig.text_groups):
 * the per-group attention calls on offset pointers, the packed token ids and the absolute pooled
 * rows, fp32 and bf16, against the CPU's same layout. At ViT-B widths (head size 64) the bf16
 * attention is the tensor-core kernel, on rows that start mid-buffer. */
static void test_text_groups(void) {
    ClipConfig c = small_config();
    ClipTrainConfig train = both_towers(0);
    train.text_groups = 3;
    run_steps(&c, &train, 6, 3, 1, 1.0f, gpu, STEP_TOL);
    run_steps(&c, &train, 6, 3, 1, 1.0f, gpu16, BF16_STEP_TOL);
    if (quick)
        return;
    c = vitb32_one_layer();
    train.temperature = 0.07f;
    run_steps(&c, &train, 2, 3, 1, 0.0f, gpu16, BF16_STEP_TOL);
}

static void test_vitb32_widths_one_layer(void) {
    ClipConfig c = vitb32_one_layer();
    ClipTrainConfig train = both_towers(0.07f); /* TNG's fixed temperature */
    train.full_context = 1; /* all 77 text positions */
    run_steps(&c, &train, 2, 3, 1, 0.0f, gpu, STEP_TOL);
}

/* ----------------------------------------------------------------------------
 * The queued step: what the trainer runs (train/trainer.c), with one read-back */

/* The host synchronisations a training step makes: its one read-back (optim.h, clip_step_read) */
#define STEP_HOST_SYNCS 1

/* Unit-length random image features: the TNG step's cached features of a frozen vision tower. */
static float *random_features(int n, int D, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    float *f = (float *)mallocCheck(sizeof(float) * (size_t)n * D);
    for (int i = 0; i < n; i++) {
        double norm = 0;
        for (int d = 0; d < D; d++) {
            f[(size_t)i * D + d] = (float)rng_normal(&rng);
            norm += (double)f[(size_t)i * D + d] * f[(size_t)i * D + d];
        }
        for (int d = 0; d < D; d++)
            f[(size_t)i * D + d] = (float)(f[(size_t)i * D + d] / sqrt(norm));
    }
    return f;
}

/* How a step is run: with a read-back after every call, as the tests above take it; queued as
 * the trainer does; queued and captured as one graph (--cuda-graphs, from the second step on, the
 * first being eager as in the trainer). The same operations on the backend: the same bits. */
enum { WITH_READ_BACKS, QUEUED, GRAPH, STEP_MODES };
static const char *const step_mode_names[] = {"with read-backs", "queued", "as a graph"};

/* One step of `accum` micro-batches of cb. Returns the norm; stats gets the averaged stats. */
static float one_step(Clip *m, const ClipBatch *cb, const OptimConfig *oc, int accum, int mode, int first,
                      float stats[INFONCE_NSTATS]) {
    if (mode != WITH_READ_BACKS) {
        int graph = mode == GRAPH && !first;
        if (graph)
            m->be->graph_begin();
        for (int micro = 0; micro < accum; micro++) {
            clip_forward_queued(m, cb);
            clip_backward(m);
        }
        clip_reduce_gradients(m);
        clip_optimizer_queue(m, oc, accum);
        if (graph)
            m->be->graph_launch();
        return clip_step_read(m, accum, stats, NULL);
    }
    float sums[INFONCE_NSTATS] = {0}, micro_stats[INFONCE_NSTATS];
    for (int micro = 0; micro < accum; micro++) {
        clip_forward(m, cb, micro_stats);
        for (int k = 0; k < INFONCE_NSTATS; k++)
            sums[k] += micro_stats[k];
        clip_backward(m);
    }
    for (int k = 0; k < INFONCE_NSTATS; k++)
        stats[k] = sums[k] / (float)accum;
    return clip_optimizer_step(m, oc, accum);
}

/* Five steps of the trainer's sequence on each backend, on two batches of different shapes in
 * the order SHAPE_OF_STEP: queued, and on CUDA as a graph, they give the bits of the step with
 * read-backs after every call (stats, norms and parameters); the CUDA run's stats and norms are
 * the CPU's within STEP_TOL (run_steps above compares everything else); and on the emulator
 * each queued CUDA step makes exactly STEP_HOST_SYNCS calls that would block the host on a GPU
 * (tests/emu: synchronous copies, synchronisations, frees) and no device allocation, a graph
 * step the same and one graph launch, and the graph of each shape is instantiated once: the
 * steps after are replayed from it, with their own data and learning-rate factors (the bias
 * corrections change every step). The launches and GEMMs of a step are printed, for
 * bench/RESULTS.md. */
enum { STEPS = 5 };
static const int SHAPE_OF_STEP[STEPS] = {0, 0, 1, 0, 1};  /* the first step is eager */
#ifdef CUDAEMU_H
static const int INSTANTIATED[STEPS] = {0, 1, 1, 0, 0}; /* graphs instantiated by each step */
#endif
static void queued_steps(const char *name, const ClipConfig *cfg, const ClipTrainConfig *train, int cached,
                         int accum, float grad_clip) {
    StepBatch b[2] = {make_batch(cfg, 6, 3, 78), make_batch(cfg, 5, 3, 80)};
    float *features = random_features(b[0].Ni, cfg->embed_dim, 79);
    ClipBatch cb[2] = {clip_batch(&b[0], cached ? features : NULL), clip_batch(&b[1], cached ? features : NULL)};
    OptimConfig oc = step_optim(grad_clip);
    size_t total = 0;
    float stats[2][STEP_MODES][INFONCE_NSTATS], norms[2][STEP_MODES], *params[2][STEP_MODES] = {};
    for (int k = 0; k < 2; k++) {
        const Backend *be = k ? gpu : cpu;
        for (int mode = 0; mode < STEP_MODES && (mode != GRAPH || be->graph_begin); mode++) {
            Clip *m = clip_create(cfg, be);
            clip_init_random(m, 4321);
            clip_prepare(m, train, b[0].Ni, b[0].Nt);
            total = m->layout.total;
            for (int s = 0; s < STEPS; s++) {
#ifdef CUDAEMU_H
                EmuCounters before = emu_counters();
#endif
                norms[k][mode] = one_step(m, &cb[SHAPE_OF_STEP[s]], &oc, accum, mode, s == 0, stats[k][mode]);
#ifdef CUDAEMU_H
                EmuCounters after = emu_counters();
                if (k == 1 && mode != WITH_READ_BACKS) {
                    unsigned long long syncs = after.host_syncs - before.host_syncs;
                    unsigned long long graphs = after.graph_launches - before.graph_launches;
                    unsigned long long made = after.graph_instantiations - before.graph_instantiations;
                    CHECK(syncs == STEP_HOST_SYNCS && after.device_allocs == before.device_allocs &&
                              graphs == (mode == GRAPH && s > 0) &&
                              made == (unsigned long long)(mode == GRAPH ? INSTANTIATED[s] : 0),
                          "%s %s, step %d: %llu host synchronisations (want %d), %llu device allocations, %llu graph "
                          "launches, %llu graphs instantiated", name, step_mode_names[mode], s, syncs, STEP_HOST_SYNCS,
                          after.device_allocs - before.device_allocs, graphs, made);
                    if (s == STEPS - 1)
                        printf("  %s, %s: %llu host synchronisation(s), %llu graph launch(es), %llu kernel launches, "
                               "%llu GEMMs per step\n", name, step_mode_names[mode], syncs, graphs,
                               after.launches - before.launches, after.gemms - before.gemms);
                }
#endif
            }
            params[k][mode] = (float *)mallocCheck(sizeof(float) * total);
            clip_get_params(m, params[k][mode]);
            clip_free(m);
        }
        for (int mode = QUEUED; mode < STEP_MODES && params[k][mode]; mode++)
            CHECK(memcmp(stats[k][WITH_READ_BACKS], stats[k][mode], sizeof stats[k][0]) == 0 &&
                      norms[k][WITH_READ_BACKS] == norms[k][mode] &&
                      memcmp(params[k][WITH_READ_BACKS], params[k][mode], sizeof(float) * total) == 0,
                  "%s on %s: the step %s differs from the step with read-backs", name, k ? "cuda" : "cpu",
                  step_mode_names[mode]);
    }
    for (int j = 0; j < INFONCE_NSTATS; j++)
        CHECK(fabs(stats[1][QUEUED][j] - stats[0][QUEUED][j]) <= STEP_TOL * fabs(stats[0][QUEUED][j]) + 1e-7,
              "%s stat %d: cuda %.9g cpu %.9g", name, j, stats[1][QUEUED][j], stats[0][QUEUED][j]);
    CHECK(fabs(norms[1][QUEUED] - norms[0][QUEUED]) <= STEP_TOL * norms[0][QUEUED], "%s norm: cuda %.9g cpu %.9g",
          name, norms[1][QUEUED], norms[0][QUEUED]);
    for (int k = 0; k < 2; k++)
        for (int mode = 0; mode < STEP_MODES; mode++)
            free(params[k][mode]);
    free(features);
    free_batch(&b[0]);
    free_batch(&b[1]);
}

/* TNG's step: the vision tower frozen and fed cached features, a fixed temperature, the text
 * tower trained; two micro-batches a step. And the full step: both towers from pixels, the
 * learned temperature (read and clamped on the device), the gradients clipped. */
static void test_one_read_back_per_step(void) {
    ClipConfig c = small_config();
    ClipTrainConfig tng = {};
    tng.temperature = 0.07f;
    tng.train_text = 1;
    queued_steps("TNG step (cached image features, 2 micro-batches)", &c, &tng, 1, 2, 0.0f);
    ClipTrainConfig full = both_towers(0);
    queued_steps("full step (both towers, learned temperature, clipped)", &c, &full, 0, 1, 0.5f);
}

/* An upload larger than the staging ring the model planned (cuda/backend_cuda.cu, to_device:
 * 64 MiB of pixels and the small model's few KB) goes through in chunks of half the ring, the
 * third one wrapping onto the first: every byte must arrive, in order, and the source may be
 * reused as soon as to_device returns. (The emulator's copies happen when queued, so only a GPU
 * run shows a region reused before its copy has happened.) */
static void test_upload_larger_than_staging(void) {
    ClipConfig c = small_config();
    ClipTrainConfig train = {};
    train.train_text = 1;
    train.temperature = 0.07f;
    Clip *m = clip_create(&c, gpu); /* its clip_prepare plans the ring */
    clip_prepare(m, &train, 6, 18);
    size_t n = ((size_t)96 << 20) / sizeof(int) + 12345;
    int *want = (int *)mallocCheck(sizeof(int) * n), *got = (int *)mallocCheck(sizeof(int) * n);
    for (size_t i = 0; i < n; i++)
        want[i] = (int)(i * 2654435761u);
    int *dev = (int *)gpu->alloc(sizeof(int) * n);
    gpu->to_device(dev, want, sizeof(int) * n);
    memset(want, 0, sizeof(int) * 16); /* the source may change once to_device returns */
    gpu->to_host(got, dev, sizeof(int) * n);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += got[i] != (int)(i * 2654435761u);
    CHECK(wrong == 0, "an upload of %zu bytes through the staging ring: %zu of %zu values wrong", sizeof(int) * n,
          wrong, n);
    gpu->release(dev);
    free(want), free(got);
    clip_free(m);
}

int main(int argc, char **argv) {
    gpu_test_init(argc, argv);
    RUN_TEST(test_small_model_two_steps);
    RUN_TEST(test_small_model_bf16);
    RUN_TEST(test_text_groups);
    RUN_TEST(test_one_read_back_per_step);
    RUN_TEST(test_upload_larger_than_staging);
    if (!quick) /* `quick`: the small model alone */
        RUN_TEST(test_vitb32_widths_one_layer);
    return test_summary();
}
