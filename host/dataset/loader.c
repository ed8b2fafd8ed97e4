/*
 * loader.c: the prefetching loader declared in loader.h.
 *
 * Positions are numbered by one counter g (0 = the start position). Workers claim the next
 * g under the lock, map it to (item, caption) right there, decode outside the lock into ring
 * slot g % capacity, and mark it ready (or bad). The consumer waits for slot g, copies it
 * into the batch and frees it. Claims never run more than `capacity` ahead of the consumer,
 * and capacity never exceeds one epoch, so at most two epochs are in flight: two cached
 * permutations (indexed by epoch parity) are enough.
 */
#include "dataset/loader.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, callocCheck
#include "util/rng.h"    // defines: Rng, rng_seed, rng_below, splitmix64
#include "dataset/shard.h"  // defines: ShardFile, shard_dir_open, shard_read_pixels

enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_READY, SLOT_BAD };

typedef struct {
    uint64_t g;
    int state, item, caption;
    float *pixels; /* [3, R, R] */
} Slot;

struct Loader {
    LoaderOptions opt;
    int R;
    /* items: the borrowed dataset, or the shards' metadata */
    const Dataset *items;
    Dataset shard_meta;
    ShardFile *shards;
    int n_shards;
    int *shard_first; /* [n_shards + 1]: first item of each shard */
    /* the sample list: items, or (item, caption) pairs */
    long n_samples;
    int *pair_item, *pair_caption; /* [n_samples] in ALL_PAIRS mode, else NULL */
    long per_rank;
    /* permutations of the two epochs in flight */
    int *perm[2];
    uint64_t perm_epoch[2];
    int perm_valid[2];
    /* the ring */
    Slot *ring;
    uint64_t capacity, next_claim, consumed;
    pthread_mutex_t lock;
    pthread_cond_t ready, space;
    pthread_t *workers;
    int stop;
    unsigned char *warned; /* [items] 1 once an item has failed */
    long bad_items;
    LoaderBatch batch;
};

/* ----------------------------------------------------------------------------
 * Sampling: pure functions of the options and the position */

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t state = a ^ (b * 0xd1b54a32d192ed03ULL);
    return splitmix64(&state);
}

static const int *epoch_permutation(Loader *L, uint64_t epoch) {
    int k = (int)(epoch & 1);
    if (!L->perm_valid[k] || L->perm_epoch[k] != epoch) {
        int *p = L->perm[k];
        for (long i = 0; i < L->n_samples; i++) p[i] = (int)i;
        Rng rng;
        rng_seed(&rng, mix(L->opt.seed, epoch));
        for (long i = L->n_samples - 1; i > 0; i--) { /* Fisher-Yates */
            long j = (long)rng_below(&rng, (uint64_t)i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        L->perm_epoch[k] = epoch;
        L->perm_valid[k] = 1;
    }
    return L->perm[k];
}

static uint64_t epoch_of(const Loader *L, uint64_t g) {
    return L->opt.start.epoch + (L->opt.start.index + g) / (uint64_t)L->per_rank;
}

/* The item and caption at position g (called under the lock: it may fill a permutation). */
static void sample_at(Loader *L, uint64_t g, int *item, int *caption) {
    uint64_t epoch = epoch_of(L, g);
    uint64_t j = (L->opt.start.index + g) % (uint64_t)L->per_rank;
    long s = (long)((uint64_t)L->opt.rank + (uint64_t)L->opt.world * j);
    if (L->opt.shuffle) s = epoch_permutation(L, epoch)[s];
    if (L->pair_item) {
        *item = L->pair_item[s];
        *caption = L->pair_caption[s];
        return;
    }
    *item = (int)s;
    int n = L->items->items[s].n_captions;
    *caption = n > 0 ? (int)(mix(mix(L->opt.seed, epoch), (uint64_t)s) % (uint64_t)n) : -1;
}

/* ----------------------------------------------------------------------------
 * Workers */

/* Decodes one item into pixels. Returns 0, or -1 with a message. */
static int load_item(Loader *L, int item, float *pixels, uint8_t *crop, char *err, size_t err_len) {
    if (L->shards) {
        int lo = 0, hi = L->n_shards - 1; /* the shard holding item: last first <= item */
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (L->shard_first[mid] <= item) lo = mid;
            else hi = mid - 1;
        }
        const uint8_t *stored;
        if (shard_read_pixels(&L->shards[lo], item - L->shard_first[lo], &stored, err, err_len) != 0)
            return -1;
        image_normalize_clip(stored, L->R, pixels);
        return 0;
    }
    if (dataset_item_crop(&L->items->items[item], L->R, L->opt.mode, crop, err, err_len) != IMAGE_OK)
        return -1;
    image_normalize_clip(crop, L->R, pixels);
    return 0;
}

static void *worker_main(void *arg) {
    Loader *L = arg;
    uint8_t *crop = mallocCheck((size_t)L->R * L->R * 3);
    char msg[IMAGE_ERROR_SIZE + 512];
    pthread_mutex_lock(&L->lock);
    while (!L->stop) {
        if (L->next_claim >= L->consumed + L->capacity) {
            pthread_cond_wait(&L->space, &L->lock);
            continue;
        }
        uint64_t g = L->next_claim++;
        Slot *slot = &L->ring[g % L->capacity];
        slot->g = g;
        slot->state = SLOT_BUSY;
        sample_at(L, g, &slot->item, &slot->caption);
        pthread_mutex_unlock(&L->lock);
        int ok = load_item(L, slot->item, slot->pixels, crop, msg, sizeof msg) == 0;
        pthread_mutex_lock(&L->lock);
        if (!ok && !L->warned[slot->item]) {
            L->warned[slot->item] = 1;
            L->bad_items++;
            if (!L->opt.quiet) fprintf(stderr, "tng loader: warning: skipping %s\n", msg);
        }
        slot->state = ok ? SLOT_READY : SLOT_BAD;
        pthread_cond_broadcast(&L->ready);
    }
    pthread_mutex_unlock(&L->lock);
    free(crop);
    return NULL;
}

/* ----------------------------------------------------------------------------
 * Opening */

static int open_items(Loader *L, char *err, size_t err_len) {
    const LoaderOptions *o = &L->opt;
    if ((o->shard_dir != NULL) == (o->dataset != NULL))
        return set_error(err, err_len, "loader: give exactly one of a shard folder and a dataset");
    if (o->dataset) {
        if (o->image_size < 1) return set_error(err, err_len, "loader: a raw dataset needs image_size");
        L->items = o->dataset;
        L->R = o->image_size;
        return o->dataset->count > 0 ? 0 : set_error(err, err_len, "loader: the dataset is empty");
    }
    int R;
    if (shard_dir_open(o->shard_dir, &L->shards, &L->n_shards, &L->shard_meta, &R, err, err_len) != 0)
        return -1;
    if (o->image_size && o->image_size != R)
        return set_error(err, err_len, "loader: %s holds %dx%d images, the model wants %d", o->shard_dir,
                    R, R, o->image_size);
    L->R = R;
    L->items = &L->shard_meta;
    L->shard_first = mallocCheck(sizeof(int) * (L->n_shards + 1));
    L->shard_first[0] = 0;
    for (int k = 0; k < L->n_shards; k++)
        L->shard_first[k + 1] = L->shard_first[k] + (int)L->shards[k].header.n_records;
    return 0;
}

Loader *loader_open(const LoaderOptions *opt, char *err, size_t err_len) {
    Loader *L = callocCheck(1, sizeof(Loader));
    L->opt = *opt;
    LoaderOptions *o = &L->opt;
    if (o->prefetch_batches <= 0) o->prefetch_batches = 2;
    if (o->batch_size < 1 || o->threads < 1 || o->world < 1 || o->rank < 0 || o->rank >= o->world) {
        set_error(err, err_len, "loader: bad options (batch %d, threads %d, rank %d of %d)",
             o->batch_size, o->threads, o->rank, o->world);
        goto fail;
    }
    if (o->start.index % (uint64_t)o->batch_size != 0) {
        set_error(err, err_len, "loader: start index %llu is not a multiple of the batch size %d",
             (unsigned long long)o->start.index, o->batch_size);
        goto fail;
    }
    if (open_items(L, err, err_len) != 0) goto fail;
    const Dataset *ds = L->items;
    if (o->captions == LOADER_ALL_PAIRS) {
        L->n_samples = dataset_caption_count(ds);
        L->pair_item = mallocCheck(sizeof(int) * (L->n_samples + 1));
        L->pair_caption = mallocCheck(sizeof(int) * (L->n_samples + 1));
        long s = 0;
        for (int i = 0; i < ds->count; i++)
            for (int k = 0; k < ds->items[i].n_captions; k++, s++) {
                L->pair_item[s] = i;
                L->pair_caption[s] = k;
            }
    } else {
        L->n_samples = ds->count;
    }
    long W = o->world, B = o->batch_size;
    L->per_rank = o->drop_last ? L->n_samples / W / B * B : (L->n_samples - o->rank + W - 1) / W;
    if (L->per_rank < 1) {
        set_error(err, err_len, "loader: %ld samples give rank %d of %d no %s", L->n_samples, o->rank,
             o->world, o->drop_last ? "full batch" : "sample");
        goto fail;
    }
    if (o->start.index >= (uint64_t)L->per_rank) {
        set_error(err, err_len, "loader: start index %llu is past the epoch's %ld samples",
             (unsigned long long)o->start.index, L->per_rank);
        goto fail;
    }
    if (o->shuffle) {
        L->perm[0] = mallocCheck(sizeof(int) * L->n_samples);
        L->perm[1] = mallocCheck(sizeof(int) * L->n_samples);
    }
    uint64_t want = (uint64_t)o->prefetch_batches * (uint64_t)B;
    L->capacity = want < (uint64_t)L->per_rank ? want : (uint64_t)L->per_rank;
    L->ring = callocCheck(L->capacity, sizeof(Slot));
    size_t pixels = (size_t)3 * L->R * L->R;
    for (uint64_t i = 0; i < L->capacity; i++) L->ring[i].pixels = mallocCheck(sizeof(float) * pixels);
    L->warned = callocCheck((size_t)ds->count, 1);
    L->batch.images = mallocCheck(sizeof(float) * pixels * B);
    L->batch.captions = mallocCheck(sizeof(char *) * B);
    L->batch.caption_index = mallocCheck(sizeof(int) * B);
    L->batch.item_index = mallocCheck(sizeof(int) * B);
    L->batch.items = mallocCheck(sizeof(DatasetItem *) * B);
    L->batch.image_size = L->R;
    pthread_mutex_init(&L->lock, NULL);
    pthread_cond_init(&L->ready, NULL);
    pthread_cond_init(&L->space, NULL);
    L->workers = mallocCheck(sizeof(pthread_t) * o->threads);
    for (int t = 0; t < o->threads; t++)
        if (pthread_create(&L->workers[t], NULL, worker_main, L) != 0)
            die("loader: cannot start decoding thread %d", t);
    return L;
fail:
    o->threads = 0; /* no workers were started */
    loader_close(L);
    return NULL;
}

/* ----------------------------------------------------------------------------
 * Consuming */

const LoaderBatch *loader_next(Loader *L) {
    LoaderBatch *b = &L->batch;
    uint64_t in_epoch = (L->opt.start.index + L->consumed) % (uint64_t)L->per_rank;
    uint64_t left = (uint64_t)L->per_rank - in_epoch;
    int count = left < (uint64_t)L->opt.batch_size ? (int)left : L->opt.batch_size;
    size_t pixels = (size_t)3 * L->R * L->R;
    b->epoch = epoch_of(L, L->consumed);
    b->last_in_epoch = left <= (uint64_t)L->opt.batch_size;
    b->size = b->skipped = 0;
    for (int t = 0; t < count; t++) {
        uint64_t g = L->consumed;
        Slot *slot = &L->ring[g % L->capacity];
        pthread_mutex_lock(&L->lock);
        while (slot->g != g || (slot->state != SLOT_READY && slot->state != SLOT_BAD))
            pthread_cond_wait(&L->ready, &L->lock);
        pthread_mutex_unlock(&L->lock);
        if (slot->state == SLOT_READY) { /* the slot is ours until consumed moves past it */
            int n = b->size++;
            const DatasetItem *item = &L->items->items[slot->item];
            memcpy(b->images + pixels * n, slot->pixels, sizeof(float) * pixels);
            b->items[n] = item;
            b->item_index[n] = slot->item;
            b->caption_index[n] = slot->caption;
            b->captions[n] = slot->caption >= 0 ? item->captions[slot->caption] : "";
        } else {
            b->skipped++;
        }
        pthread_mutex_lock(&L->lock);
        slot->state = SLOT_FREE;
        L->consumed++;
        pthread_cond_broadcast(&L->space);
        pthread_mutex_unlock(&L->lock);
    }
    return b;
}

LoaderPosition loader_position(const Loader *L) {
    uint64_t at = L->opt.start.index + L->consumed;
    return (LoaderPosition){.epoch = L->opt.start.epoch + at / (uint64_t)L->per_rank,
                            .index = at % (uint64_t)L->per_rank};
}

const Dataset *loader_items(const Loader *L) { return L->items; }
long loader_samples_per_epoch(const Loader *L) { return L->per_rank; }
long loader_batches_per_epoch(const Loader *L) {
    return (L->per_rank + L->opt.batch_size - 1) / L->opt.batch_size;
}

long loader_bad_items(const Loader *L) {
    pthread_mutex_lock((pthread_mutex_t *)&L->lock);
    long n = L->bad_items;
    pthread_mutex_unlock((pthread_mutex_t *)&L->lock);
    return n;
}

void loader_close(Loader *L) {
    if (!L) return;
    if (L->workers) {
        pthread_mutex_lock(&L->lock);
        L->stop = 1;
        pthread_cond_broadcast(&L->space);
        pthread_mutex_unlock(&L->lock);
        for (int t = 0; t < L->opt.threads; t++) pthread_join(L->workers[t], NULL);
        pthread_mutex_destroy(&L->lock);
        pthread_cond_destroy(&L->ready);
        pthread_cond_destroy(&L->space);
        free(L->workers);
    }
    for (uint64_t i = 0; L->ring && i < L->capacity; i++) free(L->ring[i].pixels);
    free(L->ring);
    for (int k = 0; k < L->n_shards; k++) shard_close(&L->shards[k]);
    free(L->shards);
    free(L->shard_first);
    dataset_free(&L->shard_meta);
    free(L->pair_item);
    free(L->pair_caption);
    free(L->perm[0]);
    free(L->perm[1]);
    free(L->warned);
    free(L->batch.images);
    free(L->batch.captions);
    free(L->batch.caption_index);
    free(L->batch.item_index);
    free(L->batch.items);
    free(L);
}
