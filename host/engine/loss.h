/*
 * loss.h: CLIP's InfoNCE objective as one object, ClipLoss, for one process and for data
 * parallel training alike.
 *
 * It is fed what open_clip's ClipLoss is fed: this process's L2-normalised image and text
 * features, its batch's positives and targets, and the logit scale. clip_loss_score computes
 * the loss and keeps the gradient of the similarity matrix, on the backend and reading nothing
 * back (clip_loss_read does); clip_loss_backward turns that into the features' gradients. The
 * model (model.h) owns the towers and never sees how the objective is cut across processes.
 *
 * The contract:
 * - Distribution is a parameter of the loss (ClipLossConfig.dist), not a fork of the
 *   training loop. In one process the loss is one InfoNCE call on the whole [Ni, Nt]
 *   similarity matrix. With a world of W > 1 every rank passes its own batch and the loss is
 *   that of all ranks' batches as one: the features are all-gathered; each rank scores
 *   image->text for its images over all texts (the rows block, cos) and text->image for its
 *   texts over all images (the columns block, cos_columns), both normalised by the global
 *   counts; and the gathered features' gradients are reduce-scattered (summed) back to their
 *   owners. So each rank's gradient is its share of the big batch's, and their sum is it.
 * - Every InfonceTerms handed to the backend is built by one function (loss_terms in
 *   loss.c) from the block's place and this object's options, so an option of the objective
 *   (the contradiction weight, i2t_each, a future one) reaches every call through that place.
 * - Forward and backward are collectives when distributed: every rank calls them in step,
 *   with the same config, and passes NULL gradients for the same towers.
 * - The backward ACCUMULATES into the features' gradients (the Backend convention): the
 *   caller zeroes them first.
 * - Standalone negations ("there is no dog", ClipAbsence): such a text is true of every image
 *   whose caption does not name its object, so those pairs leave the objective (the op's
 *   exclusion mask, backend.h); only the images whose caption names the object stay as its
 *   negatives (both softmaxes), beside its own positive image. The mask is decided here, on
 *   the host, from object ids alone (no captions, no lexicon): data parallel, every rank
 *   gathers every text's object and every image's named objects and cuts its two blocks out
 *   of the one global rule, so the mask is the single-process one, sliced.
 */
#ifndef TNG_LOSS_H
#define TNG_LOSS_H

#include "engine/backend.h" // defines: Backend, InfonceTerms, INFONCE_NSTATS
#include "engine/dist.h"    // defines: Dist

/* Every option of the objective. */
typedef struct {
    const Dist *dist;               /* NULL or a world of one: one process */
    float contradiction_log_weight; /* ln w: a text with no positive image (txt2img -1, a
                                       contradiction negative) weighs w in every image-to-text
                                       softmax; 0 = weight 1 */
    int i2t_each; /* images with the mean target (i2t_target -1) score each of their positives
                     against the negatives alone (backend.h, infonce_forward_backward) */
} ClipLossConfig;

/* The standalone negations of a batch, as object ids (any ids that compare equal for the same
 * object across ranks: tng uses lexicon lemma ids). Host arrays, this process's indices. */
typedef struct {
    const int *absent;      /* [Nt]: -1, or the object text t says is absent, all it says: the
                               text is true of every image whose caption does not name it */
    const int *named_start; /* [Ni + 1]: image i's caption names named[named_start[i] ..
                               named_start[i + 1]) */
    const int *named;
} ClipAbsence;

typedef struct {
    const Backend *be;
    int embed_dim;
    ClipLossConfig cfg;
    int max_images, max_texts; /* one process's batch, as prepared */
    /* the scored blocks of the similarity matrix (backend memory) */
    float *cos;         /* rows block [max_images, max_texts * world] (one process: the whole
                           matrix); dcos after the forward */
    float *cos_columns; /* data parallel: columns block [max_images * world, max_texts] */
    float *stats;       /* [2 * INFONCE_NSTATS]: the rows block's shares, the columns' */
    int *txt2img;       /* [max_texts * world]: each (gathered) text's positive, a global image
                           id, or -1 */
    int *i2t_target;    /* [max_images]: this process's images' targets, global text ids */
    unsigned char *exclude, *exclude_columns; /* the blocks' exclusion masks (ClipAbsence), like
                                                 cos and cos_columns */
    unsigned char *exclude_host; /* where a mask is built before its upload */
    /* the last forward */
    const float *image_features, *text_features; /* as fed; read again by the backward */
    const float *logit_scale;            /* backend memory: the learned ln scale, or NULL... */
    float fixed_scale;                   /* ...and the scale is this (backend.h, infonce) */
    int blocks;                          /* the blocks of stats written: 1, or 2 data parallel */
    int n_images, n_texts;               /* this process's batch */
    int n_images_global, n_texts_global; /* all ranks' batches (= n_images, n_texts alone) */
    int n_scored_global;                 /* texts with a positive image (txt2img >= 0) */
    /* data parallel: the gathered batch of the last forward */
    int *image_counts, *text_counts;   /* host [world]: each rank's batch */
    int *image_offsets, *text_offsets; /* host [world + 1]: where each rank's rows start */
    float *images_all, *texts_all;     /* gathered features [sum images, D], [sum texts, D] */
    float *d_images_all, *d_texts_all; /* this rank's partial gradients of those */
    float *d_home;                     /* reduce-scatter landing [max(images, texts), D] */
} ClipLoss;

ClipLoss *clip_loss_create(const Backend *be, int embed_dim);
void clip_loss_free(ClipLoss *loss);

/* Sizes the buffers for up to max_images x max_texts per process. May be called again. */
void clip_loss_prepare(ClipLoss *loss, const ClipLossConfig *cfg, int max_images, int max_texts);

/* Dies naming the first problem unless this process's targets can be scored: txt2img[t] in
 * [-1, Ni) with at least one text >= 0, i2t_target[i] a text with a positive image or -1 for
 * an image that has at least one positive text. Host arrays, local indices. */
void clip_loss_check_targets(const int *txt2img, int Nt, const int *i2t_target, int Ni);

/* Scores the (global) batch on the backend, reading nothing back: its stats (this rank's
 * shares, INFONCE_*) are left in loss->stats, loss->blocks blocks of them. Features are
 * backend memory [Ni, D] and [Nt, D] and must stay unchanged until the backward; txt2img [Nt]
 * and i2t_target [Ni] are host arrays with this process's indices. absence: NULL (or
 * absence->absent NULL) when no text is a standalone negation; data parallel, every rank
 * passes one or none. A standalone negation should have a positive image (txt2img), which
 * names no object it denies. The logit scale is exp(*logit_scale), read on the backend, or
 * fixed_scale when logit_scale is NULL (backend.h, infonce_forward_backward). */
void clip_loss_score(ClipLoss *loss, const float *image_features, int Ni, const float *text_features,
                     int Nt, const int *txt2img, const int *i2t_target, const ClipAbsence *absence,
                     const float *logit_scale, float fixed_scale);
/* Reads the last score's stats back (a synchronisation on a GPU) into stats (may be NULL) as
 * global values (data parallel: a host all-reduce, a collective) and returns the loss. */
float clip_loss_read(const ClipLoss *loss, float stats[INFONCE_NSTATS]);
/* stats: this rank's shares, summed over the ranks in place (a host collective; nothing in
 * one process). */
void clip_loss_sum_stats(const ClipLoss *loss, float stats[INFONCE_NSTATS]);
/* clip_loss_score then clip_loss_read: the loss of the batch, its terms in stats. */
float clip_loss_forward(ClipLoss *loss, const float *image_features, int Ni,
                        const float *text_features, int Nt, const int *txt2img,
                        const int *i2t_target, const ClipAbsence *absence, const float *logit_scale,
                        float fixed_scale, float stats[INFONCE_NSTATS]);

/* Adds dloss/dfeatures of the last forward into d_image_features [Ni, D] and
 * d_text_features [Nt, D]. NULL: that tower does not train; its gradient is not computed
 * and, data parallel, never crosses the network. */
void clip_loss_backward(ClipLoss *loss, float *d_image_features, float *d_text_features);

#endif
