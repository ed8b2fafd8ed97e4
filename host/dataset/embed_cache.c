/*
 * embed_cache.c: the frozen-tower embedding cache declared in embed_cache.h.
 *
 * All or nothing: either every row of the file matches (key and ids, in order) and is used,
 * or every image is encoded again. Reusing part of a file would save time only when a
 * dataset changes, and would make "which rows are stale" a question worth getting wrong.
 * A row's id covers what the image's content depends on (its file's size and modification
 * time, or its shard's), so an image replaced under the same path is encoded again; and a
 * file is written only when every image was read, so a failure is never remembered.
 */
#include "dataset/embed_cache.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "util/common.h"  // defines: mallocCheck, read_file, write_file_atomic
#include "dataset/dataset.h" // defines: hash64, hash64_str
#include "dataset/shard.h"   // defines: shard_dir_open

#define CACHE_MAGIC "TNGEMBC1"
#define CACHE_HEADER 32

uint64_t embed_cache_key(const Clip *m, ImageMode mode) {
    float *params = mallocCheck(sizeof(float) * m->layout.total);
    clip_get_params(m, params);
    /* the preprocessing: resolution, decode mode, and the normalisation constants by name
     * (a change to image.h's constants must bump this string) */
    const char *prep = "resize-bicubic-pillow/center-crop/clip-mean-std-v1";
    const ClipConfig *c = &m->cfg;
    int shape[8] = {c->image_size, c->patch_size, c->vision.width, c->vision.layers,
                    c->vision.heads, c->vision.mlp_width, (int)c->vision.act, (int)mode};
    uint64_t h = hash64_str(prep, hash64(shape, sizeof shape, c->embed_dim));
    for (int i = 0; i < m->layout.count; i++) {
        const ParamInfo *p = &m->layout.params[i];
        if (p->tower != TOWER_VISION) continue;
        h = hash64_str(p->name, h);
        h = hash64(params + p->offset, sizeof(float) * p->numel, h);
    }
    free(params);
    /* the precision the tower computes in: bf16 or tf32 features differ from fp32 ones beyond
     * rounding, so they are another cache (fp32 keys stay what they were: the CPU's and the
     * GPU's fp32 features agree to float rounding and share one) */
    if (m->be->precision != PRECISION_FP32) h = hash64_str(precision_names[m->be->precision], h);
    return h;
}

/* Folds a file's size and modification time (or "missing") into h: a file replaced or fixed
 * under the same path changes it. */
static uint64_t file_stamp(const char *path, uint64_t h) {
    struct stat st;
    int64_t stamp[3] = {-1, -1, -1};
    if (path && stat(path, &st) == 0) {
        stamp[0] = (int64_t)st.st_size;
        stamp[1] = (int64_t)st.st_mtim.tv_sec;
        stamp[2] = (int64_t)st.st_mtim.tv_nsec;
    }
    return hash64(stamp, sizeof stamp, h);
}

static uint64_t rd64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8); /* the file is little-endian, like every host tng runs on */
    return v;
}

/* Copies the cached rows into features if the file matches exactly; returns 1 if it did. */
static int try_cache(const char *path, uint64_t key, const uint64_t *ids, int n, int D,
                     float *features) {
    size_t size;
    unsigned char *data = (unsigned char *)read_file(path, &size);
    if (!data) return 0;
    size_t want = CACHE_HEADER + (size_t)n * 8 + (size_t)n * D * sizeof(float) + 4;
    uint32_t stored_crc;
    int ok = size == want && memcmp(data, CACHE_MAGIC, 8) == 0;
    if (ok) {
        uint32_t d;
        memcpy(&d, data + 8, 4);
        memcpy(&stored_crc, data + size - 4, 4);
        ok = (int)d == D && rd64(data + 16) == key && rd64(data + 24) == (uint64_t)n &&
             memcmp(data + CACHE_HEADER, ids, (size_t)n * 8) == 0 &&
             (uint32_t)crc32(0L, data, (uInt)(size - 4)) == stored_crc;
    }
    if (ok) memcpy(features, data + CACHE_HEADER + (size_t)n * 8, (size_t)n * D * sizeof(float));
    free(data);
    return ok;
}

static int write_cache(const char *path, uint64_t key, const uint64_t *ids, int n, int D,
                       const float *features, char *err, size_t err_len) {
    size_t size = CACHE_HEADER + (size_t)n * 8 + (size_t)n * D * sizeof(float) + 4;
    unsigned char *data = callocCheck(size, 1);
    uint32_t d = (uint32_t)D;
    uint64_t count = (uint64_t)n;
    memcpy(data, CACHE_MAGIC, 8);
    memcpy(data + 8, &d, 4);
    memcpy(data + 16, &key, 8);
    memcpy(data + 24, &count, 8);
    memcpy(data + CACHE_HEADER, ids, (size_t)n * 8);
    memcpy(data + CACHE_HEADER + (size_t)n * 8, features, (size_t)n * D * sizeof(float));
    uint32_t c = (uint32_t)crc32(0L, data, (uInt)(size - 4));
    memcpy(data + size - 4, &c, 4);
    int rc = write_file_atomic(path, data, size);
    free(data);
    return rc == 0 ? 0 : set_error(err, err_len, "%s: cannot write the embedding cache: %s", path,
                              strerror(errno));
}

/* Runs every item through the vision tower, in dataset order; bad images leave NaN rows. */
static int encode_all(Clip *m, const LoaderOptions *source, int n, float *features,
                      EmbedCacheStats *stats, char *err, size_t err_len) {
    LoaderOptions opt = {.shard_dir = source->shard_dir, .dataset = source->dataset,
                         .image_size = m->cfg.image_size, .mode = source->mode,
                         .batch_size = m->max_images, .threads = source->threads,
                         .prefetch_batches = source->prefetch_batches, .world = 1,
                         .quiet = source->quiet};
    Loader *loader = loader_open(&opt, err, err_len);
    if (!loader) return -1;
    const int D = m->cfg.embed_dim;
    for (size_t i = 0; i < (size_t)n * D; i++) features[i] = NAN;
    float *out = mallocCheck(sizeof(float) * (size_t)m->max_images * D);
    for (;;) {
        const LoaderBatch *b = loader_next(loader);
        if (b->size > 0) clip_encode_images(m, b->images, b->size, out);
        for (int k = 0; k < b->size; k++)
            memcpy(features + (size_t)b->item_index[k] * D, out + (size_t)k * D, sizeof(float) * D);
        stats->computed += b->size;
        stats->bad += b->skipped;
        if (b->last_in_epoch) break;
    }
    free(out);
    loader_close(loader);
    return 0;
}

int embed_cache_image_features(Clip *m, const LoaderOptions *source, const char *cache_path,
                               float **features, int *n, EmbedCacheStats *stats, char *err,
                               size_t err_len) {
    memset(stats, 0, sizeof *stats);
    *features = NULL;
    *n = 0;
    if (m->max_images < 1) return set_error(err, err_len, "embed cache: call clip_prepare first");
    /* the items' ids, without decoding anything: the source id and the content's stamp (a
     * shard item's pixels live in its shard, so every shard file's stamp goes into all ids) */
    Dataset shard_meta = {0};
    const Dataset *items = source->dataset;
    uint64_t shards_stamp = 0;
    if (source->shard_dir) {
        ShardFile *shards;
        int n_shards, R;
        if (shard_dir_open(source->shard_dir, &shards, &n_shards, &shard_meta, &R, err, err_len) != 0)
            return -1;
        for (int k = 0; k < n_shards; k++) {
            shards_stamp = file_stamp(shards[k].source, hash64_str(shards[k].source, shards_stamp));
            shard_close(&shards[k]);
        }
        free(shards);
        items = &shard_meta;
    }
    if (!items) return set_error(err, err_len, "embed cache: the source has no dataset or shards");
    int count = items->count, D = m->cfg.embed_dim;
    uint64_t *ids = mallocCheck(sizeof(uint64_t) * (size_t)count);
    for (int i = 0; i < count; i++) {
        const DatasetItem *it = &items->items[i];
        uint64_t id = hash64_str(it->source_id, shards_stamp);
        ids[i] = source->shard_dir ? id : file_stamp(it->image_path, id);
    }
    dataset_free(&shard_meta);
    uint64_t key = embed_cache_key(m, source->mode);
    float *out = mallocCheck(sizeof(float) * (size_t)count * D);
    int rc = 0;
    if (cache_path && try_cache(cache_path, key, ids, count, D, out)) {
        stats->reused = 1;
    } else {
        rc = encode_all(m, source, count, out, stats, err, err_len);
        if (rc == 0 && stats->computed == 0)
            rc = set_error(err, err_len, "%s: none of the %d images could be read (see the warnings "
                           "above); nothing to train on", source->shard_dir ? source->shard_dir : "the dataset",
                           count);
        /* a failed image is never cached: once fixed, it must be read again */
        if (rc == 0 && cache_path && stats->bad == 0)
            rc = write_cache(cache_path, key, ids, count, D, out, err, err_len);
    }
    free(ids);
    if (rc != 0) {
        free(out);
        return -1;
    }
    *features = out;
    *n = count;
    return 0;
}
