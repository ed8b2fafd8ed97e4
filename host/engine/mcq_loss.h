/*
 * mcq_loss.h: the multiple-choice objective beside InfoNCE (NegBench's finding: a
 * cross-entropy over each image's own answer options is what lifts negation MCQ accuracy),
 * with the questions TNG writes from captions alone (tng/mcq.h).
 *
 * Per image i with a question: the cross-entropy over its own K options of the logits
 * scale * cos(image_i, option_ik), its target the true option; the mean over the images with
 * a question in the GLOBAL batch (every rank's), times the weight W. The scale is InfoNCE's
 * (learned or fixed), and a learned one gets this loss's gradient too.
 *
 * The one design choice: it is the InfoNCE op (backend.h) on the block [Ni, K * Ni] of this
 * process's images against its options, image-to-text only, with the exclusion mask keeping
 * row i's own K options, and the op's weight carrying W; so every backend (and the CUDA
 * kernels' emulation) computes it with the code that computes InfoNCE. An image without a
 * question keeps its first option alone, as its target: a softmax of one, whose loss and
 * gradient are exactly 0; the mean does not count it. Data parallel, an image's options are
 * made where the image is, so nothing is gathered but the count of questions.
 */
#ifndef TNG_MCQ_LOSS_H
#define TNG_MCQ_LOSS_H

#include "engine/backend.h" // defines: Backend, InfonceTerms, INFONCE_NSTATS
#include "engine/dist.h"    // defines: Dist

/* A batch's questions: which texts are options and which option is true. */
typedef struct {
    int first_text; /* the batch's texts from here on are options, k-major: option k of image i
                       is text first_text + k * Ni + i (tng/batch.h) */
    const int *answer; /* host [Ni]: image i's true option, or -1: no question; NULL: no MCQ
                          (the zero value) */
} McqQuestions;

typedef struct {
    const Backend *be;
    const Dist *dist;  /* NULL or a world of one: one process */
    float weight;      /* W */
    int options;       /* K */
    int embed_dim, max_images;
    float *cos, *dcos; /* [max_images, K * max_images] (backend memory) */
    float *stats;      /* [INFONCE_NSTATS]: this rank's shares of the weighted loss and dscale */
    int *txt2img, *target;         /* the op's: every option -1 (no positive image); targets */
    unsigned char *exclude, *exclude_host;
    int *target_host, *answer_host; /* the op's targets; the last score's answers */
    float *cos_host;                /* where mcq_loss_accuracy reads cos */
    /* the last score */
    const float *image_features, *option_features;
    int n_images;
    int questions;     /* in the global batch; 0: nothing scored, stats 0, no backward */
} McqLoss;

McqLoss *mcq_loss_create(const Backend *be, int embed_dim);
void mcq_loss_free(McqLoss *loss);
/* Sizes the buffers for up to max_images images of K options each. May be called again. */
void mcq_loss_prepare(McqLoss *loss, const Dist *dist, float weight, int options, int max_images);

/* Scores Ni images (features [Ni, D]) against their options (option_features [K * Ni, D],
 * k-major), on the backend, reading nothing back; answer [Ni] host. A collective when
 * distributed (the count of questions). The scale: exp(*logit_scale) or fixed_scale when
 * logit_scale is NULL (backend.h). */
void mcq_loss_score(McqLoss *loss, const float *image_features, const float *option_features, int Ni,
                    const int *answer, const float *logit_scale, float fixed_scale);
/* Adds the last score's gradients into d_image_features [Ni, D] and d_option_features
 * [K * Ni, D] (NULL: that tower does not train), and with logit_scale (learned) its gradient
 * into *dlogit_scale. Nothing when the global batch had no question. */
void mcq_loss_backward(McqLoss *loss, float *d_image_features, float *d_option_features,
                       float *dlogit_scale, const float *logit_scale);
/* The last score's training accuracy: the share of the global batch's questions whose true
 * option has the highest logit of the image's options (strictly); 0 with no question. Reads cos
 * back (a synchronisation on a GPU) and, distributed, sums two counts (a host collective). */
float mcq_loss_accuracy(McqLoss *loss);
/* The weighted loss of stats written by it (this rank's shares, summed here over the ranks:
 * a host collective when distributed). */
float mcq_loss_global(const McqLoss *loss, float stats[INFONCE_NSTATS]);

#endif
