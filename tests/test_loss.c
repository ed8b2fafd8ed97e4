/*
 * test_loss.c: the InfoNCE objective as its own object (loss.h), in one process.
 *
 *   options_reach_the_op   every option of ClipLossConfig (the contradiction weight,
 *                          i2t_each) reaches the InfoNCE op: the loss, its terms and the
 *                          features' gradients equal, bit for bit, the matmul + InfoNCE ops
 *                          called by hand with those options; and each option changes the loss
 *                          (so the comparison would see one that is dropped)
 *   no_standalone_texts    a ClipAbsence whose texts deny nothing (every absent -1), or with
 *                          no absent array, is the loss without one, bit for bit (the
 *                          option-off path); test_tng_standalone checks the mask it makes
 *   backward_contract      the backward ADDS into the features' gradients, and a NULL
 *                          gradient is skipped without changing the other one's bits;
 *                          preparing again (new sizes) keeps working
 *
 * The data-parallel path is checked against this one by test_dist (mpirun, 2 and 3 ranks).
 * Tolerance: the accumulate check compares BLAS's C += A B with the separately computed
 * A B added afterwards: two float roundings, so 1e-6 relative to the magnitudes involved.
 * Everything else is the same ops on the same inputs, so bit-exact.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"     // defines: backend_cpu, InfonceTerms, infonce_whole
#include "engine/cpu/ops_cpu.h" // declares: matmul_*_f32, infonce_forward_backward_f32
#include "engine/loss.h"        // defines: ClipLoss, clip_loss_*
#include "harness.h"
#include "util/common.h"        // defines: mallocCheck, callocCheck
#include "util/rng.h"           // defines: Rng, rng_normal

enum { NI = 4, NT = 9, D = 8 };
static const float SCALE = 14.25f;
/* image j's texts; texts 7 and 8 are contradiction negatives (no positive image) */
static const int TXT2IMG[NT] = {0, 1, 2, 3, 0, 1, 2, -1, -1};
/* images 0 and 2 take the mean over their two positives; 1 and 3 pick one text */
static const int I2T_TARGET[NI] = {-1, 5, -1, 3};

/* rows of unit length, drawn from seed */
static float *unit_rows(int n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    float *x = mallocCheck(sizeof(float) * (size_t)n * D);
    for (int r = 0; r < n; r++) {
        float *row = x + r * D;
        double norm = 0;
        for (int d = 0; d < D; d++) row[d] = (float)rng_normal(&rng), norm += row[d] * row[d];
        for (int d = 0; d < D; d++) row[d] = (float)(row[d] / sqrt(norm));
    }
    return x;
}

typedef struct {
    float loss, stats[INFONCE_NSTATS], d_images[NI * D], d_texts[NT * D];
} Result;

static Result through_the_object(const ClipLossConfig *cfg, const float *images, const float *texts) {
    Result r = {0};
    ClipLoss *loss = clip_loss_create(backend_cpu(), D);
    clip_loss_prepare(loss, cfg, NI, NT);
    r.loss = clip_loss_forward(loss, images, NI, texts, NT, TXT2IMG, I2T_TARGET, NULL, NULL, SCALE, r.stats);
    clip_loss_backward(loss, r.d_images, r.d_texts);
    clip_loss_free(loss);
    return r;
}

static Result by_hand(float log_weight, int each, const float *images, const float *texts) {
    Result r = {0};
    InfonceTerms terms = infonce_whole(NI, NT - 2); /* the two contradictions are not scored */
    terms.negative_log_weight = log_weight;
    terms.i2t_each = each;
    float cos[NI * NT];
    matmul_forward_f32(cos, images, texts, NULL, NI, D, NT);
    infonce_forward_backward_f32(cos, r.stats, cos, TXT2IMG, I2T_TARGET, SCALE, NI, NT, &terms);
    r.loss = r.stats[INFONCE_LOSS];
    matmul_backward_f32(r.d_images, r.d_texts, NULL, cos, images, texts, NI, D, NT);
    return r;
}

static void test_options_reach_the_op(void) {
    float *images = unit_rows(NI, 1), *texts = unit_rows(NT, 2);
    float plain = 0;
    for (int weighted = 0; weighted <= 1; weighted++) {
        for (int each = 0; each <= 1; each++) {
            ClipLossConfig cfg = {.contradiction_log_weight = weighted ? logf(0.5f) : 0,
                                  .i2t_each = each};
            Result got = through_the_object(&cfg, images, texts);
            Result want = by_hand(cfg.contradiction_log_weight, each, images, texts);
            CHECK(memcmp(&got, &want, sizeof got) == 0,
                  "weight %s, i2t_each %d: loss %.9g vs the ops' %.9g (or a term or gradient differs)",
                  weighted ? "0.5" : "1", each, got.loss, want.loss);
            if (!weighted && !each) plain = got.loss;
            else CHECK(got.loss != plain, "weight %s, i2t_each %d: the option left the loss %.9g",
                       weighted ? "0.5" : "1", each, plain);
        }
    }
    free(images), free(texts);
}

static void test_no_standalone_texts(void) {
    float *images = unit_rows(NI, 6), *texts = unit_rows(NT, 7);
    static const int nothing[NT] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
    static const int named_start[NI + 1] = {0, 1, 1, 3, 3}, named[3] = {4, 0, 2};
    ClipAbsence none = {.absent = nothing, .named_start = named_start, .named = named}, empty = {0};
    const ClipAbsence *cases[2] = {&none, &empty};
    ClipLossConfig cfg = {.i2t_each = 1};
    ClipLoss *loss = clip_loss_create(backend_cpu(), D);
    clip_loss_prepare(loss, &cfg, NI, NT);
    Result want = {0};
    want.loss = clip_loss_forward(loss, images, NI, texts, NT, TXT2IMG, I2T_TARGET, NULL, NULL, SCALE, want.stats);
    clip_loss_backward(loss, want.d_images, want.d_texts);
    for (int k = 0; k < 2; k++) {
        Result got = {0};
        got.loss = clip_loss_forward(loss, images, NI, texts, NT, TXT2IMG, I2T_TARGET, cases[k], NULL, SCALE, got.stats);
        clip_loss_backward(loss, got.d_images, got.d_texts);
        CHECK(memcmp(&got, &want, sizeof got) == 0, "case %d: loss %.9g vs %.9g without", k, got.loss, want.loss);
    }
    clip_loss_free(loss);
    free(images), free(texts);
}

static void test_backward_contract(void) {
    float *images = unit_rows(NI, 3), *texts = unit_rows(NT, 4), *start = unit_rows(NI + NT, 5);
    ClipLossConfig cfg = {.i2t_each = 1};
    ClipLoss *loss = clip_loss_create(backend_cpu(), D);
    clip_loss_prepare(loss, &cfg, 2, 3); /* too small, then prepared again */
    clip_loss_prepare(loss, &cfg, NI, NT);
    clip_loss_forward(loss, images, NI, texts, NT, TXT2IMG, I2T_TARGET, NULL, NULL, SCALE, NULL);
    float fresh_images[NI * D] = {0}, fresh_texts[NT * D] = {0}, texts_only[NT * D] = {0};
    float added_images[NI * D], added_texts[NT * D];
    clip_loss_backward(loss, fresh_images, fresh_texts);
    clip_loss_backward(loss, NULL, texts_only);
    CHECK(memcmp(texts_only, fresh_texts, sizeof texts_only) == 0,
          "a NULL image gradient changed the text gradient");
    memcpy(added_images, start, sizeof added_images);
    memcpy(added_texts, start + NI * D, sizeof added_texts);
    clip_loss_backward(loss, added_images, added_texts);
    float want_images[NI * D], want_texts[NT * D];
    for (int k = 0; k < NI * D; k++) want_images[k] = start[k] + fresh_images[k];
    for (int k = 0; k < NT * D; k++) want_texts[k] = start[NI * D + k] + fresh_texts[k];
    harness_allclose("image gradient added to what was there", added_images, want_images,
                     NI * D, 1e-6, 1e-6);
    harness_allclose("text gradient added to what was there", added_texts, want_texts, NT * D,
                     1e-6, 1e-6);
    double size = 0;
    for (int k = 0; k < NT * D; k++) size += fabs(fresh_texts[k]);
    CHECK(size > 1e-3, "the text gradient is ~0 (%.3g), so the checks above prove nothing", size);
    clip_loss_free(loss);
    free(images), free(texts), free(start);
}

int main(void) {
    RUN_TEST(test_options_reach_the_op);
    RUN_TEST(test_no_standalone_texts);
    RUN_TEST(test_backward_contract);
    return test_summary();
}
