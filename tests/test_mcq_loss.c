/*
 * test_mcq_loss.c: the MCQ objective (engine/mcq_loss.h) on the CPU backend.
 *
 *   finite_differences  loss, feature gradients and the learned logit scale's gradient against
 *                       a float64 reference written from the definition (cross-entropy of each
 *                       image with a question over its own options, mean over those images,
 *                       times W), its gradients by central differences; an image without a
 *                       question adds nothing and gets no gradient, nor do its options; the
 *                       training accuracy is the share of questions whose true option has the
 *                       highest cosine
 *   weight_scales       W = 2 is W = 1 doubled, bit for bit (loss, gradients, dscale): the
 *                       weight reaches the loss, the gradients and the scale's gradient
 *   no_question         a batch whose images have no question scores 0 and adds no gradient
 *   model_keeps_infonce_apart  a model batch with options appended (ClipBatch.mcq) has the
 *                       InfoNCE stats of the batch without them, bit for bit (the options are
 *                       not its columns), scores its questions, and its step reads an MCQ loss
 *                       (0 without) and moves the weights differently
 *
 * Tolerance: the op computes in double and rounds once to float, the matmuls are float (8
 * terms): 2e-5 absolute on values of order 1; central differences in double with h = 1e-6
 * are exact to ~1e-9, far below it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"  // defines: backend_cpu, INFONCE_NSTATS
#include "engine/mcq_loss.h" // defines: McqLoss, mcq_loss_*
#include "engine/model.h"    // defines: Clip, ClipBatch, clip_forward, clip_backward
#include "engine/optim.h"    // defines: OptimConfig, clip_optimizer_queue, clip_step_read
#include "harness.h"
#include "small_model.h"     // defines: small_config
#include "util/common.h"     // defines: mallocCheck
#include "util/rng.h"        // defines: Rng, rng_normal

enum { NI = 5, K = 4, D = 8 };
static const float WEIGHT = 1.5f, LOGIT_SCALE = 2.5f; /* scale e^2.5 = 12.2 */
static const double H = 1e-6;                          /* the central differences' step */
static const int ANSWER[NI] = {2, -1, 0, 3, 1};        /* image 1 has no question */

static void unit_rows(float *x, int n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (int r = 0; r < n; r++) {
        double norm = 0;
        for (int d = 0; d < D; d++) x[r * D + d] = (float)rng_normal(&rng), norm += x[r * D + d] * x[r * D + d];
        for (int d = 0; d < D; d++) x[r * D + d] = (float)(x[r * D + d] / sqrt(norm));
    }
}

/* cos(image i, its option k), in double: options k-major (option k of image i is row k * NI + i) */
static double option_cos(const double *img, const double *opt, int i, int k) {
    double c = 0;
    for (int d = 0; d < D; d++) c += img[i * D + d] * opt[(k * NI + i) * D + d];
    return c;
}

/* The share of the questions whose true option has the highest cosine of the image's options. */
static double reference_accuracy(const double *img, const double *opt) {
    int right = 0, questions = 0;
    for (int i = 0; i < NI; i++) {
        if (ANSWER[i] < 0) continue;
        int best = 1;
        for (int k = 0; k < K; k++) best &= k == ANSWER[i] || option_cos(img, opt, i, ANSWER[i]) > option_cos(img, opt, i, k);
        right += best, questions++;
    }
    return (double)right / questions;
}

/* The definition, in double. */
static double reference(const double *img, const double *opt, double log_scale) {
    double total = 0, scale = exp(log_scale);
    int questions = 0;
    for (int i = 0; i < NI; i++) {
        if (ANSWER[i] < 0) continue;
        double logit[K], m = -INFINITY, sum = 0;
        for (int k = 0; k < K; k++) {
            logit[k] = scale * option_cos(img, opt, i, k);
            m = fmax(m, logit[k]);
        }
        for (int k = 0; k < K; k++) sum += exp(logit[k] - m);
        total += m + log(sum) - logit[ANSWER[i]];
        questions++;
    }
    return WEIGHT * total / questions;
}

typedef struct {
    float stats[INFONCE_NSTATS], d_images[NI * D], d_options[K * NI * D], d_logit_scale, accuracy;
} Result;

static Result score(float weight, const int *answer, const float *images, const float *options) {
    Result r = {0};
    McqLoss *loss = mcq_loss_create(backend_cpu(), D);
    mcq_loss_prepare(loss, NULL, weight, K, NI);
    float logit_scale = LOGIT_SCALE;
    mcq_loss_score(loss, images, options, NI, answer, &logit_scale, 0.0f);
    memcpy(r.stats, loss->stats, sizeof r.stats);
    mcq_loss_backward(loss, r.d_images, r.d_options, &r.d_logit_scale, &logit_scale);
    r.accuracy = mcq_loss_accuracy(loss);
    mcq_loss_free(loss);
    return r;
}

/* The largest gap between grad[0..n) and the reference's central differences in x[0..n), x
 * being img or opt (restored after each probe). */
static double worst_gap(double *x, int n, const float *grad, const double *img, const double *opt) {
    double worst = 0;
    for (int k = 0; k < n; k++) {
        double keep = x[k];
        x[k] = keep + H;
        double up = reference(img, opt, LOGIT_SCALE);
        x[k] = keep - H;
        double down = reference(img, opt, LOGIT_SCALE);
        x[k] = keep;
        worst = fmax(worst, fabs((up - down) / (2 * H) - grad[k]));
    }
    return worst;
}

static void test_finite_differences(void) {
    float images[NI * D], options[K * NI * D];
    unit_rows(images, NI, 1), unit_rows(options, K * NI, 2);
    Result got = score(WEIGHT, ANSWER, images, options);
    double img[NI * D], opt[K * NI * D];
    for (int k = 0; k < NI * D; k++) img[k] = images[k];
    for (int k = 0; k < K * NI * D; k++) opt[k] = options[k];
    double want = reference(img, opt, LOGIT_SCALE);
    CHECK(fabs(got.stats[INFONCE_LOSS] - want) < 2e-5, "loss %.9g, the definition %.9g", got.stats[INFONCE_LOSS], want);
    double worst = fmax(worst_gap(img, NI * D, got.d_images, img, opt), worst_gap(opt, K * NI * D, got.d_options, img, opt));
    CHECK(worst < 2e-5, "feature gradients differ from central differences by up to %.3g", worst);
    double ds = (reference(img, opt, LOGIT_SCALE + H) - reference(img, opt, LOGIT_SCALE - H)) / (2 * H);
    CHECK(fabs(ds - got.d_logit_scale) < 2e-5, "dloss/dlogit_scale %.9g, central differences %.9g",
          got.d_logit_scale, ds);
    /* image 1 has no question: no gradient for it nor for its options; the others have some */
    for (int d = 0; d < D; d++) {
        CHECK(got.d_images[1 * D + d] == 0, "image 1 (no question) got a gradient");
        for (int k = 0; k < K; k++) CHECK(got.d_options[(k * NI + 1) * D + d] == 0, "image 1's option %d got a gradient", k);
    }
    CHECK(got.d_images[0] != 0 && got.d_options[0] != 0, "image 0 and its first option got no gradient");
    CHECK(got.accuracy == (float)reference_accuracy(img, opt), "training accuracy %g, the definition's %g",
          got.accuracy, reference_accuracy(img, opt));
}

static void test_weight_scales(void) {
    float images[NI * D], options[K * NI * D];
    unit_rows(images, NI, 3), unit_rows(options, K * NI, 4);
    Result one = score(1.0f, ANSWER, images, options), two = score(2.0f, ANSWER, images, options);
    int same = two.stats[INFONCE_LOSS] == 2 * one.stats[INFONCE_LOSS] &&
               two.stats[INFONCE_DSCALE] == 2 * one.stats[INFONCE_DSCALE] && two.d_logit_scale == 2 * one.d_logit_scale;
    for (int k = 0; k < NI * D; k++) same &= two.d_images[k] == 2 * one.d_images[k];
    for (int k = 0; k < K * NI * D; k++) same &= two.d_options[k] == 2 * one.d_options[k];
    CHECK(same, "W = 2 is not W = 1 doubled: loss %.9g vs %.9g", two.stats[INFONCE_LOSS], one.stats[INFONCE_LOSS]);
    CHECK(one.stats[INFONCE_LOSS] > 0, "a loss of %.9g", one.stats[INFONCE_LOSS]);
}

static void test_no_question(void) {
    float images[NI * D], options[K * NI * D];
    unit_rows(images, NI, 5), unit_rows(options, K * NI, 6);
    static const int none[NI] = {-1, -1, -1, -1, -1};
    Result got = score(WEIGHT, none, images, options), zero = {0};
    CHECK(memcmp(&got, &zero, sizeof got) == 0, "no question: loss %.9g, or a gradient was added", got.stats[INFONCE_LOSS]);
}

/* The model: a batch with options after its texts. Random tokens, every row ending in EOT (63)
 * at the same place, so that the text tower cuts every batch to the same length. */
enum { MODEL_TEXTS = 2 * NI, CTX_USED = 6 };
static void random_tokens(int *tokens, int n, int ctx, Rng *rng) {
    memset(tokens, 0, sizeof(int) * (size_t)n * ctx);
    for (int r = 0; r < n; r++) {
        for (int p = 0; p < CTX_USED - 1; p++) tokens[r * ctx + p] = 1 + (int)rng_below(rng, 60);
        tokens[r * ctx + CTX_USED - 1] = 63;
    }
}

static void test_model_keeps_infonce_apart(void) {
    ClipConfig c = small_config();
    int ctx = c.context_length, D_model = c.embed_dim, n_all = MODEL_TEXTS + K * NI;
    Rng rng;
    rng_seed(&rng, 8);
    int *tokens = mallocCheck(sizeof(int) * (size_t)n_all * ctx);
    random_tokens(tokens, n_all, ctx, &rng);
    float *features = mallocCheck(sizeof(float) * NI * (size_t)D_model);
    for (int k = 0; k < NI * D_model; k++) features[k] = (float)rng_normal(&rng);
    for (int i = 0; i < NI; i++) { /* unit rows, as a frozen tower's */
        double norm = 0;
        for (int d = 0; d < D_model; d++) norm += features[i * D_model + d] * features[i * D_model + d];
        for (int d = 0; d < D_model; d++) features[i * D_model + d] = (float)(features[i * D_model + d] / sqrt(norm));
    }
    int txt2img[MODEL_TEXTS], target[NI];
    for (int t = 0; t < MODEL_TEXTS; t++) txt2img[t] = t % NI;
    for (int i = 0; i < NI; i++) target[i] = i;
    float stats[2][INFONCE_NSTATS], params_after[2][4];
    for (int with_mcq = 0; with_mcq <= 1; with_mcq++) {
        Clip *m = clip_create(&c, backend_cpu());
        clip_init_random(m, 5);
        ClipTrainConfig train = {.temperature = 0.07f, .train_vision = 0, .train_text = 1,
                                 .mcq_weight = with_mcq ? WEIGHT : 0, .mcq_options = K};
        clip_prepare(m, &train, NI, with_mcq ? n_all : MODEL_TEXTS);
        ClipBatch batch = {.n_images = NI, .image_features = features, .n_texts = with_mcq ? n_all : MODEL_TEXTS,
                           .tokens = tokens, .txt2img = txt2img, .i2t_target = target};
        if (with_mcq) batch.mcq = (McqQuestions){.first_text = MODEL_TEXTS, .answer = ANSWER};
        clip_forward(m, &batch, stats[with_mcq]);
        if (with_mcq) CHECK(m->mcq->questions == NI - 1, "%d questions scored, want %d", m->mcq->questions, NI - 1);
        clip_backward(m);
        float mcq_stats[INFONCE_NSTATS], read[INFONCE_NSTATS];
        clip_optimizer_queue(m, &(OptimConfig){.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f}, 1);
        clip_step_read(m, 1, read, mcq_stats);
        if (with_mcq) CHECK(mcq_stats[INFONCE_LOSS] > 0, "the step read an MCQ loss of %g", mcq_stats[INFONCE_LOSS]);
        else CHECK(mcq_stats[INFONCE_LOSS] == 0, "no MCQ, yet the step read an MCQ loss of %g", mcq_stats[INFONCE_LOSS]);
        memcpy(params_after[with_mcq], m->params + m->layout.total - 4, sizeof params_after[0]);
        clip_free(m);
    }
    CHECK(memcmp(stats[0], stats[1], sizeof stats[0]) == 0, "the options changed InfoNCE: loss %.9g vs %.9g",
          stats[1][INFONCE_LOSS], stats[0][INFONCE_LOSS]);
    CHECK(memcmp(params_after[0], params_after[1], sizeof params_after[0]) != 0, "the MCQ loss changed no weight");
    free(tokens), free(features);
}

int main(void) {
    RUN_TEST(test_finite_differences);
    RUN_TEST(test_model_keeps_infonce_apart);
    RUN_TEST(test_weight_scales);
    RUN_TEST(test_no_question);
    return test_summary();
}
