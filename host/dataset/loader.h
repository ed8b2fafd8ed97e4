/*
 * loader.h: the training/evaluation data loader: batches of normalised images with their
 * captions, object labels and item ids, over either a tng_prep shard folder or a raw dataset
 * (JPEG files decoded on the fly).
 *
 * Worker threads decode ahead into a bounded ring of samples; the caller's thread takes the
 * samples in order. Which sample sits where is a pure function of (seed, epoch, rank, world,
 * position), never of thread timing, so batches are identical run after run and a run
 * resumed from a saved position continues with exactly the batches it would have seen.
 *
 * Sampling: each epoch the sample list (items, or (item, caption) pairs) is permuted from
 * (seed, epoch) (and with hard batches regrouped by neighbours, a pure function too); rank r of
 * W takes positions r, r+W, r+2W, ..., so the ranks' lists are disjoint and together cover the
 * epoch (ranks may differ by one sample; drop_last makes
 * every rank take the same number of full batches instead, dropping the epoch's tail).
 * A batch is always the next batch_size positions of the rank's list: a bad image is skipped
 * (the batch comes out one shorter), so batch k of an epoch means the same samples on every
 * run and the position to resume from is simply (epoch, k * batch_size).
 */
#ifndef TNG_LOADER_H
#define TNG_LOADER_H

#include <stdint.h>

#include "dataset/dataset.h" // defines: Dataset, DatasetItem
#include "dataset/image.h"   // defines: ImageMode

typedef enum {
    LOADER_ONE_CAPTION = 0, /* each image once per epoch with one caption drawn from (seed, epoch) */
    LOADER_ALL_PAIRS = 1,   /* every (image, caption) pair once per epoch */
} LoaderCaptions;

/* Where the next batch starts. Save it with a checkpoint; pass it back as start. */
typedef struct {
    uint64_t epoch;
    uint64_t index; /* positions of this epoch already delivered: a multiple of batch_size */
} LoaderPosition;

typedef struct {
    const char *shard_dir;  /* a tng_prep folder, or NULL to read the images of... */
    const Dataset *dataset; /* ...this dataset (borrowed: it must outlive the loader) */
    int image_size;         /* R; 0 = the shards' own (required for a raw dataset) */
    ImageMode mode;         /* raw decoding: IMAGE_EXACT or IMAGE_FAST */
    int batch_size;
    int threads;          /* decoding threads, >= 1 */
    int prefetch_batches; /* batches decoded ahead (default 2 when 0) */
    uint64_t seed;
    int shuffle; /* 0: dataset order (evaluation) */
    int rank, world;
    LoaderCaptions captions;
    int drop_last;
    LoaderPosition start;
    int quiet; /* 1: no warnings for bad images (still counted) */
    int skip_images; /* 1: captions only: no image is read, so none is bad and none skipped;
                        LoaderBatch.images is left unset and image_size may be 0 */
    /* Hard batches (dataset/neighbours.h): with nearest ([items, nearest_k], borrowed: it must
     * outlive the loader), each epoch's shuffled order is regrouped so that an item is followed
     * by up to group - 1 of its nearest, and a group's positions go to one rank's batch (global
     * batch b is rank 0's batch b, then rank 1's, ...). NULL: the plain shuffle. Needs shuffle
     * and one caption per image. A table of pairs that name each other (nearest_k 1, group 2:
     * counterfactual twins) keeps every pair adjacent, so with every item paired and an even
     * batch_size each pair shares a batch (but in the tail past the last whole global batch). */
    const int *nearest;
    int nearest_k, group;
} LoaderOptions;

typedef struct {
    int size; /* samples here: batch_size except at an epoch's end or after skipped images */
    int image_size;
    float *images;             /* [size, 3, R, R], CLIP-normalised */
    const char **captions;     /* [size] the caption of each sample */
    int *caption_index;        /* [size] its index in the item's captions */
    int *item_index;           /* [size] index into loader_items() */
    const DatasetItem **items; /* [size] objects, source id, path, all captions */
    uint64_t epoch;
    int last_in_epoch; /* 1 on the epoch's final batch */
    int skipped;       /* positions of this batch dropped as bad images */
} LoaderBatch;

typedef struct Loader Loader;

/* Returns NULL with a message on bad options or an unreadable shard folder. */
Loader *loader_open(const LoaderOptions *opt, char *err, size_t err_len);
/* The next batch (valid until the next call). Epochs follow one another without end. */
const LoaderBatch *loader_next(Loader *loader);
/* Where the batch after the last one returned starts. */
LoaderPosition loader_position(const Loader *loader);
/* The items the loader reads (the dataset, or the shards' records). */
const Dataset *loader_items(const Loader *loader);
/* This rank's positions and batches per epoch. */
long loader_samples_per_epoch(const Loader *loader);
long loader_batches_per_epoch(const Loader *loader);
/* Distinct items that failed to decode (or failed their CRC) so far. */
long loader_bad_items(const Loader *loader);
void loader_close(Loader *loader);

#endif
