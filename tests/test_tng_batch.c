/*
 * test_tng_batch.c: the layout of TNG's texts and the image-to-text targets (host/tng/batch.c).
 *
 * The layout is checked as a bijection: every text index of a batch is exactly one (image,
 * kind, number), captions first, contradictions last. The released-random targets are checked
 * against the draw training has always made (so a change to it, which would change every
 * released run's weights, fails here) and for uniformity over the positive texts. That the
 * generator writes its texts where the layout says is test_tng.c's business.
 */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "tng/batch.h" // defines: TngLayout, tng_caption_text, tng_i2t_targets, tng_i2t_names
#include "util/rng.h"  // defines: splitmix64

static void test_layout_is_a_bijection(void) {
    for (int n = 1; n <= 5; n++)
        for (int M = 0; M <= 3; M++)
            for (int C = 0; C <= 2; C++) {
                TngLayout l = {.n_images = n, .negations = M, .contradictions = C};
                int count = tng_text_count(&l), positives = tng_positive_text_count(&l);
                int hits[64] = {0}, bad = 0;
                CHECK(count == (1 + M + C) * n && tng_texts_per_image(&l) == 1 + M + C &&
                          positives == (1 + M) * n,
                      "n %d M %d C %d: %d texts, %d positive", n, M, C, count, positives);
                for (int j = 0; j < n; j++) {
                    int caption = tng_caption_text(&l, j);
                    bad += caption != j; /* the first n texts are the captions alone */
                    hits[caption]++;
                    for (int m = 0; m < M; m++) {
                        int t = tng_negation_text(&l, j, m);
                        bad += t < n || t >= positives || t % n != j;
                        hits[t]++;
                    }
                    for (int c = 0; c < C; c++) {
                        int t = tng_contradiction_text(&l, j, c);
                        bad += t < positives || t >= count || t % n != j;
                        hits[t]++;
                    }
                }
                for (int t = 0; t < count; t++) bad += hits[t] != 1;
                CHECK(bad == 0, "n %d M %d C %d: %d indices out of place or not once", n, M, C, bad);
            }
    TngLayout captions = tng_layout_captions(6);
    CHECK(tng_text_count(&captions) == 6 && tng_positive_text_count(&captions) == 6 &&
              tng_caption_text(&captions, 5) == 5,
          "the captions-only layout has %d texts", tng_text_count(&captions));
}

static void test_own_mean_each(void) {
    TngLayout l = {.n_images = 7, .negations = 2, .contradictions = 3};
    int targets[7];
    tng_i2t_targets(TNG_I2T_OWN, &l, 5, 9, targets);
    for (int j = 0; j < 7; j++) CHECK(targets[j] == j, "own target of image %d: %d", j, targets[j]);
    const TngI2tTarget soft[] = {TNG_I2T_MEAN, TNG_I2T_EACH};
    for (int k = 0; k < 2; k++) {
        tng_i2t_targets(soft[k], &l, 5, 9, targets);
        for (int j = 0; j < 7; j++)
            CHECK(targets[j] == -1, "%s target of image %d: %d", tng_i2t_names[soft[k]], j, targets[j]);
    }
    static const char *const names[] = {"own", "mean", "released-random", "each"};
    for (int p = 0; p < TNG_I2T_COUNT; p++)
        CHECK(strcmp(tng_i2t_names[p], names[p]) == 0, "policy %d is named %s", p, tng_i2t_names[p]);
}

/* released-random: splitmix64 from seed ^ (0x5851f42d4c957f2d * (stream + 1)), one draw per
 * image modulo the positive texts; never a contradiction; every positive text about as often. */
static void test_released_random(void) {
    TngLayout l = {.n_images = 7, .negations = 2, .contradictions = 3};
    int targets[7], again[7], hits[21] = {0}, outside = 0, moved = 0, repeats = 0;
    for (int64_t stream = 0; stream < 300; stream++) {
        uint64_t seed = 1000 + (uint64_t)stream % 7;
        tng_i2t_targets(TNG_I2T_RELEASED_RANDOM, &l, seed, stream, targets);
        tng_i2t_targets(TNG_I2T_RELEASED_RANDOM, &l, seed, stream, again);
        repeats += memcmp(targets, again, sizeof targets) != 0;
        uint64_t state = seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(stream + 1));
        for (int j = 0; j < 7; j++) {
            moved += targets[j] != (int)(splitmix64(&state) % 21);
            if (targets[j] < 0 || targets[j] >= 21) outside++;
            else hits[targets[j]]++;
        }
    }
    CHECK(repeats == 0, "%d streams drew differently twice", repeats);
    CHECK(outside == 0, "%d targets outside the 21 positive texts", outside);
    CHECK(moved == 0, "%d targets differ from training's draw", moved);
    for (int t = 0; t < 21; t++) /* 2100 draws, 100 expected per text, sd ~10 */
        CHECK(hits[t] > 50 && hits[t] < 150, "positive text %d drawn %d times of 2100", t, hits[t]);
    /* a step without TNG texts draws from the captions alone */
    TngLayout captions = tng_layout_captions(7);
    tng_i2t_targets(TNG_I2T_RELEASED_RANDOM, &captions, 3, 4, targets);
    for (int j = 0; j < 7; j++) CHECK(targets[j] >= 0 && targets[j] < 7, "caption-only target %d", targets[j]);
}

int main(void) {
    RUN_TEST(test_layout_is_a_bijection);
    RUN_TEST(test_own_mean_each);
    RUN_TEST(test_released_random);
    return test_summary();
}
