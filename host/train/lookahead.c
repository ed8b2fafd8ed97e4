/*
 * lookahead.c: fetching batches ahead of the step and feeding them to the TNG producer
 * (lookahead.h).
 *
 * The producer pulls batches through its source callback (producer_source) from a queue the
 * loop pushes to. A batch's texts are matched to it by number: with the local scope the
 * producer seeds them by the batch's stream (index * world + rank), with the global scope by
 * its index, the same on every rank (so all ranks' texts of one global batch agree).
 */
#include "train/lookahead.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: die, mallocCheck, now_seconds

/* TngSourceFn, on the producer thread: the next fetched batch, or 0 once the queue is closed. */
static int producer_source(void *ctx, TngInput *in) {
    Lookahead *la = ctx;
    void *item;
    if (!queue_pop(la->to_producer, &item)) return 0;
    const Pending *p = item;
    int dim = la->opt.dim;
    if (p->pool.n) /* this rank's images' texts, made from every rank's images */
        *in = (TngInput){.n_pool = p->pool.n, .dim = dim, .captions = p->pool.captions,
                         .image_emb = p->pool.features, .batch_index = p->index,
                         .make_for = p->pool.own_at, .n_make = p->n, .prefer = p->prefer};
    else
        *in = (TngInput){.n_pool = p->n, .dim = dim, .captions = p->captions,
                         .image_emb = p->features, .batch_index = p->stream, .prefer = p->prefer};
    return 1;
}

void lookahead_open(Lookahead *la, const LookaheadOptions *opt) {
    *la = (Lookahead){.opt = *opt, .next_index = opt->first_index, .empty_batches = opt->empty_batches};
    if (!opt->cached_features && !opt->model) die("lookahead: no model to embed the images with");
    int B = opt->batch, D = opt->dim, W = opt->dist->world;
    for (int k = 0; k < LOOKAHEAD_BUFFERS; k++) {
        Pending *p = &la->buffers[k];
        p->captions = mallocCheck(sizeof(char *) * (size_t)B);
        p->ids = mallocCheck(sizeof(char *) * (size_t)B);
        p->features = mallocCheck(sizeof(float) * (size_t)B * D);
        int R = opt->cached_features ? 0 : opt->model->cfg.image_size;
        p->images = opt->cached_features ? NULL : mallocCheck(sizeof(float) * (size_t)B * 3 * R * R);
        if (opt->tng && opt->tng_global && W > 1) global_pool_init(&p->pool, B, W, D);
        p->prefer = opt->tng && opt->twins ? mallocCheck(sizeof(int) * (size_t)B * W) : NULL;
    }
    if (opt->tng) {
        /* holds every buffer, so a push never waits */
        la->to_producer = queue_create(LOOKAHEAD_BUFFERS);
        la->producer = tng_producer_start(opt->tng, opt->lexicon, opt->tokenizer, producer_source, la, 2);
    }
}

/* Whether a loader batch of n images is empty on this rank or any other. */
static int empty_anywhere(const Dist *d, int n) {
    int empty = n == 0;
    if (d->world > 1) d->host->all_reduce(d, &empty, 1, DIST_I32, DIST_MAX);
    return empty;
}

/* p->prefer for --twin-batches: each image's twin as a position in the pool the generator
 * searches (this rank's batch, or with the global scope every rank's), -1 where the twin is not
 * in this rank's batch. The loader deals a pair to one rank, so a twin on another rank (a tail
 * the loader does not pair) is not looked for. Only this rank's images' entries are read. */
static void find_twins(Pending *p, const LoaderBatch *b) {
    const int *at = p->pool.own_at; /* NULL: the pool is this rank's batch */
    for (int k = 0; k < (at ? p->pool.n : p->n); k++) p->prefer[k] = -1;
    for (int i = 0; i < b->size; i++)
        for (int k = 0; k < b->size; k++)
            if (b->items[i]->twin >= 0 && b->item_index[k] == b->items[i]->twin)
                p->prefer[at ? at[i] : i] = at ? at[k] : k;
}

/* Fills the next buffer from the loader (skipping empty batches) and hands it to the producer. */
static Pending *fetch(Lookahead *la) {
    const LookaheadOptions *o = &la->opt;
    Pending *p = &la->buffers[la->next_buffer];
    la->next_buffer = (la->next_buffer + 1) % LOOKAHEAD_BUFFERS;
    int D = o->dim;
    const LoaderBatch *b;
    for (long empty_run = 0;; empty_run++) {
        if (empty_run > loader_batches_per_epoch(o->loader))
            die("no batch of a whole epoch holds a readable image (see the warnings above): nothing to train on");
        p->start = loader_position(o->loader);
        b = loader_next(o->loader);
        if (!empty_anywhere(o->dist, b->size)) break;
        la->empty_batches++;
    }
    p->empty_before = la->empty_batches;
    p->n = b->size;
    p->epoch = b->epoch;
    p->index = la->next_index++;
    p->stream = p->index * o->dist->world + o->dist->rank;
    for (int i = 0; i < b->size; i++) p->captions[i] = b->captions[i], p->ids[i] = b->items[i]->source_id;
    if (o->cached_features) {
        for (int i = 0; i < b->size; i++)
            memcpy(p->features + (size_t)i * D, o->cached_features + (size_t)b->item_index[i] * D,
                   sizeof(float) * D);
    } else {
        int R = o->model->cfg.image_size;
        memcpy(p->images, b->images, sizeof(float) * (size_t)3 * R * R * b->size);
        if (o->tng) clip_encode_images(o->model, p->images, b->size, p->features);
    }
    if (p->pool.own_at) global_pool_gather(&p->pool, o->dist, D, p->n, p->captions, p->features);
    if (p->prefer) find_twins(p, b);
    if (la->to_producer) queue_push(la->to_producer, p);
    return p;
}

void lookahead_start(Lookahead *la) {
    la->head = fetch(la);
    la->next = fetch(la);
}

void lookahead_advance(Lookahead *la) {
    la->head = la->next;
    la->next = fetch(la);
}

const TngTexts *lookahead_texts(Lookahead *la, const Pending *p, double *wait_seconds) {
    double t0 = now_seconds();
    const TngTexts *texts = tng_producer_pop(la->producer);
    *wait_seconds += now_seconds() - t0;
    /* both scopes give this rank's images' texts, laid out as a batch of them alone */
    if (!texts || texts->batch_index != (p->pool.n ? p->index : p->stream) || texts->n_images != p->n)
        die("TNG producer out of step");
    return texts;
}

void lookahead_release(Lookahead *la, const TngTexts *texts) { tng_producer_release(la->producer, texts); }

void lookahead_close(Lookahead *la) {
    if (la->producer) {
        queue_close(la->to_producer); /* the producer's source returns 0: it ends */
        tng_producer_stop(la->producer);
        queue_free(la->to_producer);
    }
    for (int k = 0; k < LOOKAHEAD_BUFFERS; k++) {
        Pending *p = &la->buffers[k];
        free(p->captions), free(p->ids), free(p->features), free(p->images), free(p->prefer);
        global_pool_free(&p->pool);
    }
}
