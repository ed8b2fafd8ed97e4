/*
 * batch.c: the TNG text layout and the image-to-text targets (batch.h).
 *
 * The released-random draw is a splitmix64 stream started from the seed mixed with the batch's
 * stream number, one draw per image in image order: the draw training has always used, so a
 * run's targets (and its weights) are the same bits as before this file owned them.
 */
#include "tng/batch.h"

#include "util/rng.h" // defines: splitmix64

TngLayout tng_layout_captions(int n_images) {
    return (TngLayout){.n_images = n_images, .negations = 0, .contradictions = 0, .standalone = 0,
                       .mcq_options = 0};
}

/* Texts come in groups of n, one text per image each: group 0 the captions, groups 1..M the
 * negations, groups M+1..M+C the contradictions, groups M+C+1..M+C+S the standalone
 * negations, then K groups of multiple-choice options. */
static int text_at(const TngLayout *l, int group, int image) { return group * l->n_images + image; }

/* The groups before the multiple-choice options: every text the InfoNCE objective sees. */
static int contrastive_groups(const TngLayout *l) {
    return 1 + l->negations + l->contradictions + l->standalone;
}
int tng_texts_per_image(const TngLayout *l) { return contrastive_groups(l) + l->mcq_options; }
int tng_text_count(const TngLayout *l) { return text_at(l, tng_texts_per_image(l), 0); }
int tng_contrastive_text_count(const TngLayout *l) { return text_at(l, contrastive_groups(l), 0); }
int tng_positive_text_count(const TngLayout *l) { return text_at(l, 1 + l->negations, 0); }
int tng_caption_text(const TngLayout *l, int image) { return text_at(l, 0, image); }
int tng_negation_text(const TngLayout *l, int image, int m) { return text_at(l, 1 + m, image); }
int tng_contradiction_text(const TngLayout *l, int image, int c) {
    return text_at(l, 1 + l->negations + c, image);
}
int tng_standalone_text(const TngLayout *l, int image, int s) {
    return text_at(l, 1 + l->negations + l->contradictions + s, image);
}
int tng_mcq_text(const TngLayout *l, int image, int k) { return text_at(l, contrastive_groups(l) + k, image); }

const char *const tng_i2t_names[TNG_I2T_COUNT] = {"own", "mean", "released-random", "each"};

void tng_i2t_targets(TngI2tTarget policy, const TngLayout *l, uint64_t seed, int64_t stream,
                     int *targets) {
    uint64_t state = seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(stream + 1));
    uint64_t n_positive = (uint64_t)tng_positive_text_count(l);
    for (int j = 0; j < l->n_images; j++) {
        if (policy == TNG_I2T_OWN) targets[j] = tng_caption_text(l, j);
        else if (policy == TNG_I2T_RELEASED_RANDOM) targets[j] = (int)(splitmix64(&state) % n_positive);
        else targets[j] = -1;
    }
}
