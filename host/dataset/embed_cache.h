/*
 * embed_cache.h: image embeddings of a frozen vision tower, computed once and kept on disk.
 *
 * With the vision tower frozen an image's embedding never changes, so training needs each
 * image through the tower once. The cache file is keyed by a hash of the vision weights, the
 * preprocessing (resolution, decode mode, CLIP mean/std) and the compute precision (fp32, or
 * the GPU's bf16 or tf32), and stores the id of every row
 * (the item's source id and its content's stamp: the image file's size and modification time,
 * or its shard files'); any difference in key, item count or ids rebuilds the whole file
 * (written atomically), never reuses it silently. When an image cannot be read, its row is NaN
 * and no file is written, so a fixed image is read again next time. When no image at all can
 * be read, the call fails.
 *
 * File: char[8] "TNGEMBC1", u32 D, u32 reserved, u64 key, u64 n, n x u64 item ids (hashes of
 * source id and content stamp), n x D float32 rows, u32 crc32 of everything before it.
 * Little-endian.
 */
#ifndef TNG_EMBED_CACHE_H
#define TNG_EMBED_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dataset/loader.h" // defines: LoaderOptions
#include "engine/model.h"  // defines: Clip

typedef struct {
    int reused;   /* 1 if the file's rows were used as they were */
    int computed; /* images run through the tower */
    int bad;      /* images that failed to decode: their rows are NaN */
} EmbedCacheStats;

/* The key: the vision tower's weights, its shape, the resolution, the decode mode and the
 * backend's precision. */
uint64_t embed_cache_key(const Clip *m, ImageMode mode);

/*
 * L2-normalised image features [n, D] (malloc'd into *features) of every item of the
 * loader source `source` (shard folder or raw dataset; its threads and mode are used,
 * sampling options are ignored), row i for item i of loader_items() of any loader over the
 * same source. m must be prepared (clip_prepare) with max_images >= 1. cache_path NULL
 * disables the cache. Returns 0, or -1 with a message.
 */
int embed_cache_image_features(Clip *m, const LoaderOptions *source, const char *cache_path,
                               float **features, int *n, EmbedCacheStats *stats, char *err,
                               size_t err_len);

#endif
