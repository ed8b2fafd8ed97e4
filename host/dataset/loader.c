/*
 * loader.c: the prefetching loader declared in loader.h.
 *
 * Positions are numbered by one counter g (0 = the start position). With T workers, worker w
 * decodes positions w, w + T, w + 2T, ... in that order, so the consumer knows where position g
 * comes from without asking: it takes worker g % T's next sample. Each worker owns a few sample
 * buffers that cycle through two queues (util/queue.h): `empty` (free to fill) and `decoded`
 * (filled, in the worker's order); the consumer copies a decoded sample into the batch and
 * hands its buffer back. A worker waits for an empty buffer, so the workers together never
 * run more than their buffers (`capacity` samples, at most one epoch) ahead of the consumer:
 * at most two epochs are in flight, and two cached permutations (indexed by epoch parity)
 * are enough.
 */
#include "dataset/loader.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, callocCheck
#include "util/queue.h"  // defines: Queue, queue_create, queue_push, queue_pop, queue_close
#include "util/rng.h"    // defines: Rng, rng_seed, rng_below, splitmix64
#include "dataset/neighbours.h" // defines: neighbours_group_order
#include "dataset/shard.h"  // defines: ShardFile, shard_dir_open, shard_read_pixels

typedef struct {
    uint64_t g;
    int ok, item, caption; /* ok 0: the image failed to decode and is skipped */
    float *pixels;         /* [3, R, R] */
} Sample;

typedef struct {
    Loader *loader;
    int index;       /* w: decodes positions w, w + T, ... */
    Sample *samples; /* its buffers */
    Queue *empty, *decoded;
    pthread_t thread;
} Worker;

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
    int *shuffled; /* [n_samples] with hard batches: the shuffle before its regrouping */
    uint64_t perm_epoch[2];
    int perm_valid[2];
    /* the workers: n_workers of them, capacity sample buffers in all */
    Worker *workers;
    int n_workers, per_worker, started;
    uint64_t capacity, consumed;
    pthread_mutex_t lock; /* guards the permutations, warned and bad_items */
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
        if (L->shuffled) p = L->shuffled; /* shuffled there, regrouped into perm[k] */
        for (long i = 0; i < L->n_samples; i++) p[i] = (int)i;
        Rng rng;
        rng_seed(&rng, mix(L->opt.seed, epoch));
        for (long i = L->n_samples - 1; i > 0; i--) { /* Fisher-Yates */
            long j = (long)rng_below(&rng, (uint64_t)i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        if (L->shuffled)
            neighbours_group_order(L->shuffled, (int)L->n_samples, L->opt.nearest, L->opt.nearest_k,
                                   L->opt.group, L->perm[k]);
        L->perm_epoch[k] = epoch;
        L->perm_valid[k] = 1;
    }
    return L->perm[k];
}

static uint64_t epoch_of(const Loader *L, uint64_t g) {
    return L->opt.start.epoch + (L->opt.start.index + g) / (uint64_t)L->per_rank;
}

/* The permutation slot of this rank's j-th sample of an epoch: r + W j, or with hard batches,
 * in each whole global batch (B W slots), rank r's B consecutive slots, so that a group of
 * neighbours stays in one rank's batch; the tail past the last whole global batch keeps r + W j.
 * Both are one-to-one over the ranks. */
static long slot_of(const Loader *L, uint64_t j) {
    uint64_t r = (uint64_t)L->opt.rank, W = (uint64_t)L->opt.world, B = (uint64_t)L->opt.batch_size;
    uint64_t global_batch = j / B;
    if (L->shuffled && (global_batch + 1) * B * W <= (uint64_t)L->n_samples)
        return (long)(global_batch * B * W + r * B + j % B);
    return (long)(r + W * j);
}

/* The item and caption at position g (called under the lock: it may fill a permutation). */
static void sample_at(Loader *L, uint64_t g, int *item, int *caption) {
    uint64_t epoch = epoch_of(L, g);
    uint64_t j = (L->opt.start.index + g) % (uint64_t)L->per_rank;
    long s = slot_of(L, j);
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

static void note_bad_item(Loader *L, int item, const char *msg) {
    pthread_mutex_lock(&L->lock);
    if (!L->warned[item]) {
        L->warned[item] = 1;
        L->bad_items++;
        if (!L->opt.quiet) fprintf(stderr, "tng loader: warning: skipping %s\n", msg);
    }
    pthread_mutex_unlock(&L->lock);
}

static void *worker_main(void *arg) {
    Worker *w = arg;
    Loader *L = w->loader;
    uint8_t *crop = mallocCheck((size_t)L->R * L->R * 3);
    char msg[IMAGE_ERROR_SIZE + 512];
    void *buffer;
    for (uint64_t g = (uint64_t)w->index; queue_pop(w->empty, &buffer); g += (uint64_t)L->n_workers) {
        Sample *sample = buffer;
        sample->g = g;
        pthread_mutex_lock(&L->lock);
        sample_at(L, g, &sample->item, &sample->caption);
        pthread_mutex_unlock(&L->lock);
        sample->ok = L->opt.skip_images || load_item(L, sample->item, sample->pixels, crop, msg, sizeof msg) == 0;
        if (!sample->ok) note_bad_item(L, sample->item, msg);
        if (queue_push(w->decoded, sample) != 0) break; /* the loader is closing */
    }
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
        if (o->image_size < 1 && !o->skip_images)
            return set_error(err, err_len, "loader: a raw dataset needs image_size");
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
    pthread_mutex_init(&L->lock, NULL);
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
    if (o->skip_images) L->R = 0; /* no pixels to hold */
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
    if (o->nearest) {
        if (!o->shuffle || o->captions != LOADER_ONE_CAPTION || o->group < 1 || o->nearest_k < 0) {
            set_error(err, err_len, "loader: hard batches need shuffling, one caption per image, a group "
                                    ">= 1 and nearest_k >= 0 (group %d, nearest_k %d)", o->group, o->nearest_k);
            goto fail;
        }
        L->shuffled = mallocCheck(sizeof(int) * L->n_samples);
    }
    if (o->shuffle) {
        L->perm[0] = mallocCheck(sizeof(int) * L->n_samples);
        L->perm[1] = mallocCheck(sizeof(int) * L->n_samples);
    }
    uint64_t want = (uint64_t)o->prefetch_batches * (uint64_t)B;
    L->capacity = want < (uint64_t)L->per_rank ? want : (uint64_t)L->per_rank;
    L->n_workers = (uint64_t)o->threads < L->capacity ? o->threads : (int)L->capacity;
    L->per_worker = (int)(L->capacity / (uint64_t)L->n_workers);
    size_t pixels = (size_t)3 * L->R * L->R;
    L->warned = callocCheck((size_t)ds->count, 1);
    L->batch.images = mallocCheck(sizeof(float) * pixels * B);
    L->batch.captions = mallocCheck(sizeof(char *) * B);
    L->batch.caption_index = mallocCheck(sizeof(int) * B);
    L->batch.item_index = mallocCheck(sizeof(int) * B);
    L->batch.items = mallocCheck(sizeof(DatasetItem *) * B);
    L->batch.image_size = L->R;
    L->workers = callocCheck((size_t)L->n_workers, sizeof(Worker));
    for (int t = 0; t < L->n_workers; t++) {
        Worker *w = &L->workers[t];
        *w = (Worker){.loader = L, .index = t,
                      .samples = callocCheck((size_t)L->per_worker, sizeof(Sample)),
                      .empty = queue_create(L->per_worker), .decoded = queue_create(L->per_worker)};
        for (int k = 0; k < L->per_worker; k++) {
            w->samples[k].pixels = mallocCheck(sizeof(float) * pixels);
            queue_push(w->empty, &w->samples[k]);
        }
    }
    for (; L->started < L->n_workers; L->started++)
        if (pthread_create(&L->workers[L->started].thread, NULL, worker_main, &L->workers[L->started]) != 0)
            die("loader: cannot start decoding thread %d", L->started);
    return L;
fail:
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
        Worker *w = &L->workers[g % (uint64_t)L->n_workers];
        void *buffer;
        if (!queue_pop(w->decoded, &buffer)) die("loader: decoding thread %d stopped early", w->index);
        Sample *sample = buffer;
        if (sample->g != g)
            die("loader: position %llu arrived where %llu was due", (unsigned long long)sample->g,
                (unsigned long long)g);
        if (sample->ok) {
            int n = b->size++;
            const DatasetItem *item = &L->items->items[sample->item];
            memcpy(b->images + pixels * n, sample->pixels, sizeof(float) * pixels);
            b->items[n] = item;
            b->item_index[n] = sample->item;
            b->caption_index[n] = sample->caption;
            b->captions[n] = sample->caption >= 0 ? item->captions[sample->caption] : "";
        } else {
            b->skipped++;
        }
        queue_push(w->empty, sample); /* the worker may refill it */
        L->consumed++;
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
    for (int t = 0; L->workers && t < L->n_workers; t++) { /* wakes a worker wherever it waits */
        queue_close(L->workers[t].empty);
        queue_close(L->workers[t].decoded);
    }
    for (int t = 0; t < L->started; t++) pthread_join(L->workers[t].thread, NULL);
    for (int t = 0; L->workers && t < L->n_workers; t++) {
        Worker *w = &L->workers[t];
        for (int k = 0; k < L->per_worker; k++) free(w->samples[k].pixels);
        free(w->samples);
        queue_free(w->empty);
        queue_free(w->decoded);
    }
    free(L->workers);
    pthread_mutex_destroy(&L->lock);
    for (int k = 0; k < L->n_shards; k++) shard_close(&L->shards[k]);
    free(L->shards);
    free(L->shard_first);
    dataset_free(&L->shard_meta);
    free(L->pair_item);
    free(L->pair_caption);
    free(L->perm[0]);
    free(L->perm[1]);
    free(L->shuffled);
    free(L->warned);
    free(L->batch.images);
    free(L->batch.captions);
    free(L->batch.caption_index);
    free(L->batch.item_index);
    free(L->batch.items);
    free(L);
}
