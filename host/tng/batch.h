/*
 * batch.h: the layout of a batch of TNG texts and the image-to-text target policy, defined
 * here once for the generator (tng/generator.c), the trainer (train/trainer.c) and the tests.
 *
 * Layout. For n images with M negations, C contradictions and S standalone negations each
 * there are (1 + M + C + S) * n texts, grouped by kind and, inside a group, by image:
 *
 *   text j                  image j's caption                       (the positive it was given)
 *   text (1 + m) * n + j    image j's m-th negation, m = 0..M-1     (also a positive of image j)
 *   text (1 + M + c) * n + j  image j's c-th contradiction, c = 0..C-1 (a positive of no image)
 *   text (1 + M + C + s) * n + j  image j's s-th standalone negation, s = 0..S-1 ("there is no
 *                           <object_j>": a positive of image j, true of every image whose
 *                           caption does not name the object, which therefore leave its
 *                           softmaxes: engine/loss.h, ClipAbsence)
 *   text (1 + M + C + S + k) * n + j  option k of image j's multiple-choice question, k =
 *                           0..K-1 (tng/mcq.h; K = 0 without the MCQ loss). Not part of the
 *                           InfoNCE objective: it sees the first tng_contrastive_text_count
 *                           texts; the MCQ loss (engine/mcq_loss.h) sees only these.
 *
 * So the first n texts are the captions alone (the layout with M = C = S = K = 0, the batch of
 * a step without TNG texts), the (1 + M) * n positive texts the released-random target draws
 * from come before every contradiction, and a layout with S = 0 (K = 0) is the one before
 * standalone negations (multiple-choice options) existed, text for text.
 *
 * Image-to-text target. The image->text softmax of image j needs a target: its own caption
 * (own), the mean over its positives (mean, target -1), each positive as its own term (each,
 * target -1 and ClipTrainConfig.i2t_each), or, like the authors' released code, a text drawn
 * at random from the positive texts of the batch (released-random), usually another image's.
 * The draw depends only on the seed and the batch's stream number, so a resumed run draws the
 * same targets.
 */
#ifndef TNG_BATCH_H
#define TNG_BATCH_H

#include <stdint.h>

typedef struct {
    int n_images;       /* n */
    int negations;      /* M >= 0 per image */
    int contradictions; /* C >= 0 per image */
    int standalone;     /* S >= 0 standalone negations per image */
    int mcq_options;    /* K: multiple-choice options per image, 0 (none) or TNG_MCQ_OPTIONS */
} TngLayout;

/* The layout of n images' captions alone: M = C = S = K = 0. */
TngLayout tng_layout_captions(int n_images);

int tng_texts_per_image(const TngLayout *l);   /* 1 + M + C + S + K */
int tng_text_count(const TngLayout *l);        /* (1 + M + C + S + K) * n */
int tng_contrastive_text_count(const TngLayout *l); /* (1 + M + C + S) * n: the InfoNCE's texts,
                                                       all but the multiple-choice options */
int tng_positive_text_count(const TngLayout *l); /* (1 + M) * n: captions and negations (the
                                                    standalone negations, positives too, are
                                                    not counted: they are true of most images) */
int tng_caption_text(const TngLayout *l, int image);
int tng_negation_text(const TngLayout *l, int image, int m);
int tng_contradiction_text(const TngLayout *l, int image, int c);
int tng_standalone_text(const TngLayout *l, int image, int s);
int tng_mcq_text(const TngLayout *l, int image, int k);

typedef enum { TNG_I2T_OWN, TNG_I2T_MEAN, TNG_I2T_RELEASED_RANDOM, TNG_I2T_EACH, TNG_I2T_COUNT } TngI2tTarget;
/* The policies' names, as --i2t-target takes them, indexed by TngI2tTarget. */
extern const char *const tng_i2t_names[TNG_I2T_COUNT];

/* targets[j] for the n images of a batch laid out as l: own: image j's caption; mean and each:
 * -1; released-random: uniform over the positive texts, drawn from (seed, stream). */
void tng_i2t_targets(TngI2tTarget policy, const TngLayout *l, uint64_t seed, int64_t stream,
                     int *targets);

#endif
