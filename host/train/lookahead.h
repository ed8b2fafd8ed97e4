/*
 * lookahead.h: the batches the training loop has fetched ahead of the step, and the TNG
 * producer thread that builds their texts meanwhile.
 *
 * The loop trains the head batch while the next one is already fetched: with TNG on it is
 * handed to the producer (tng/generator.h) through a queue (util/queue.h), so the texts of
 * batch k+1 are built while step k runs and the step never waits for generation. Fetching
 * copies what the step needs out of the loader's batch (the loader moves on), and the image
 * embeddings TNG needs: the cached ones when the vision tower is frozen, else computed with
 * the weights of the step before (the latest forward pass available, one step stale).
 *
 * Three batch buffers cycle: the head being trained, the next one, and the one the producer
 * may still be reading when the head is done.
 *
 * A loader batch with no image (each one failed to decode) on any rank is skipped on every
 * rank, so that all train the same batches, and counted; the fetched batches keep their
 * numbers (index), so a run with empty batches numbers its TNG texts as one without them.
 * A whole epoch of empty batches ends the run: no image of it can be read.
 */
#ifndef TNG_LOOKAHEAD_H
#define TNG_LOOKAHEAD_H

#include <stdint.h>

#include "dataset/loader.h"  // defines: Loader, LoaderPosition
#include "engine/dist.h"     // defines: Dist
#include "engine/model.h"    // defines: Clip
#include "train/global_pool.h" // defines: GlobalPool
#include "tng/generator.h"   // defines: TngConfig, TngProducer, TngTexts
#include "util/queue.h"      // defines: Queue

enum { LOOKAHEAD_BUFFERS = 3 };

/* One fetched micro-batch: what the step needs of it after the loader has moved on. */
typedef struct {
    int n;
    LoaderPosition start;  /* where this batch starts: the resume point if it is next */
    int64_t empty_before;  /* empty batches skipped before this one (resumes included) */
    uint64_t epoch;
    int64_t index;         /* global micro-batch number, the same on every rank */
    int64_t stream;        /* index * world + rank: seeds this rank's TNG texts (local scope)
                              and released-random targets; = index in one process */
    const char **captions; /* [n] borrowed from the dataset items, which outlive the loader */
    const char **ids;      /* [n] the items' source ids, borrowed likewise */
    float *features;       /* [n, D] image embeddings (cached, or computed for TNG) */
    float *images;         /* [n, 3, R, R] when the vision tower trains, else NULL */
    GlobalPool pool;       /* --tng-scope global: the pool this rank's texts come from */
    int *prefer;           /* TNG with twins: each pool image's twin in the pool, or -1
                              (TngInput.prefer); else NULL */
} Pending;

typedef struct {
    Loader *loader;                 /* borrowed */
    Clip *model;                    /* borrowed: embeds the images when no cache is given;
                                       may be NULL with cached_features */
    const float *cached_features;   /* [items, D] of a frozen vision tower, or NULL */
    int dim;                        /* D, the embeddings' width */
    const Dist *dist;
    int batch;                      /* images per micro-batch, at most */
    int64_t first_index;            /* the global number of the first micro-batch fetched */
    int64_t empty_batches;          /* empty batches skipped before it (a resumed run's count) */
    const TngConfig *tng;           /* NULL: no TNG texts */
    int tng_global;                 /* make the texts from every rank's images */
    int twins;                      /* --twin-batches: TNG prefers each image's twin as the
                                       neighbour its hybrid object comes from */
    const Lexicon *lexicon;         /* TNG's, borrowed */
    const Tokenizer *tokenizer;
} LookaheadOptions;

typedef struct {
    LookaheadOptions opt;
    Pending buffers[LOOKAHEAD_BUFFERS];
    int next_buffer;
    Pending *head, *next; /* the batch to train, the one after it */
    int64_t next_index;   /* the number the next fetched micro-batch gets */
    int64_t empty_batches; /* skipped so far */
    Queue *to_producer;   /* fetched batches for the producer; closing it ends the producer */
    TngProducer *producer;
} Lookahead;

/* Allocates the buffers and, with TNG, starts the producer; fetches nothing yet. */
void lookahead_open(Lookahead *la, const LookaheadOptions *opt);
/* Fetches the first two batches: head and next. Collective with --tng-scope global. */
void lookahead_start(Lookahead *la);
/* The head batch is trained: next becomes the head, and one more batch is fetched. */
void lookahead_advance(Lookahead *la);
/* The producer's texts of batch p (the head), waiting for them if needed (the wait is added to
 * *wait_seconds). Hand them back with lookahead_release before the next call. */
const TngTexts *lookahead_texts(Lookahead *la, const Pending *p, double *wait_seconds);
void lookahead_release(Lookahead *la, const TngTexts *texts);
/* Stops the producer and frees everything. */
void lookahead_close(Lookahead *la);

#endif
