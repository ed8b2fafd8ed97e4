/*
 * shard.h: shard files of preprocessed images (uint8 R x R RGB crops) with their captions,
 * object labels and source ids, and the preparation that writes them from a dataset.
 *
 * File layout (little-endian), version 1:
 *   header, 64 bytes:
 *     0  char[8] magic "TNGSHARD"        32 u64 n_items: dataset items covered
 *     8  u32 version (1)                 40 u64 index_offset
 *     12 u32 image_size R                48 u64 fingerprint of the items and settings
 *     16 u32 n_records                   56 u32 flags (bit 0: IMAGE_FAST decode)
 *     20 u32 n_skipped                   60 u32 crc32 of bytes 0..59
 *     24 u64 first_item: dataset index of the first item covered
 *   n_records records, then n_skipped skip entries, each framed as
 *     u32 body_size, u32 crc32(meta), u32 crc32(pixels), u32 meta_size, meta, pixels
 *   where meta = u64 item_index, then strings (u32 length + bytes): source_id, image_path,
 *   u32 n_captions + captions, u32 n_objects + objects; a skip entry's meta is u64
 *   item_index, image_path, reason, and it has no pixels. A record's pixels are R*R*3 bytes.
 *   index at index_offset: u64 offset of every record then of every skip entry, u32 crc32.
 *   The file ends right after the index.
 * Two CRCs per record let a loader read every caption at start-up without reading (and
 * checksumming) gigabytes of pixels; the pixel CRC is checked when the pixels are used.
 *
 * A prepared folder holds shard-NNNNN.tng files, skipped.txt and manifest.txt (written last:
 * a folder without it is an unfinished preparation). Every file is written atomically.
 * Readers never exit on bad input: they return -1 with a message, so they can be fuzzed.
 */
#ifndef TNG_SHARD_H
#define TNG_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset/dataset.h" // defines: Dataset, DatasetItem
#include "dataset/image.h"   // defines: ImageMode

#define SHARD_MAGIC "TNGSHARD"
#define SHARD_VERSION 1
#define SHARD_HEADER_SIZE 64
#define SHARD_MANIFEST "manifest.txt"
#define SHARD_SKIPPED "skipped.txt"

typedef struct {
    uint32_t image_size, n_records, n_skipped, flags;
    uint64_t first_item, n_items, index_offset, fingerprint;
} ShardHeader;

typedef struct {
    const uint8_t *data;
    size_t size;
    int mapped; /* 1 if data is our mmap */
    ShardHeader header;
    const uint8_t *index;
    char *source;
} ShardFile;

/* Validates the header, the index and every record's framing (not the CRCs). */
int shard_parse(ShardFile *sf, const uint8_t *data, size_t size, const char *source, char *err,
                size_t err_len);
/* shard_parse on a memory-mapped file. */
int shard_open(ShardFile *sf, const char *path, char *err, size_t err_len);
void shard_close(ShardFile *sf);

/* Record i's metadata (meta CRC checked) appended to meta as one item; *item_index gets
 * the record's dataset index. */
int shard_read_meta(const ShardFile *sf, int i, Dataset *meta, uint64_t *item_index, char *err,
                    size_t err_len);
/* Record i's pixels (R*R*3 bytes inside the file), after checking their CRC. */
int shard_read_pixels(const ShardFile *sf, int i, const uint8_t **pixels, char *err,
                      size_t err_len);
/* Skip entry i: its dataset index, path and reason (malloc'd strings). */
int shard_read_skipped(const ShardFile *sf, int i, uint64_t *item_index, char **path,
                       char **reason, char *err, size_t err_len);
/* Checks every CRC in the file. */
int shard_verify(const ShardFile *sf, char *err, size_t err_len);

/* ----------------------------------------------------------------------------
 * Writing */

typedef struct {
    FILE *f;
    char *path, *tmp_path;
    ShardHeader header;
    uint64_t *offsets; /* records first, then skip entries (kept apart until finish) */
    uint64_t *skip_offsets;
    uint64_t pos;
    uint8_t *buf;
    size_t buf_cap;
} ShardWriter;

/* Starts path.tmp; finish renames it to path. Dies on I/O errors (disk full is fatal). */
void shard_writer_open(ShardWriter *w, const char *path, int image_size, uint64_t first_item,
                       uint64_t n_items, uint64_t fingerprint, uint32_t flags);
void shard_writer_add(ShardWriter *w, uint64_t item_index, const DatasetItem *item,
                      const uint8_t *pixels);
void shard_writer_skip(ShardWriter *w, uint64_t item_index, const char *path, const char *reason);
/* Writes the index and header, fsyncs, renames. */
void shard_writer_finish(ShardWriter *w);

/* ----------------------------------------------------------------------------
 * Preparation (tng_prep) */

typedef struct {
    const char *out_dir;
    int image_size;    /* R */
    ImageMode mode;    /* IMAGE_EXACT unless the caller accepts the fast DCT-scaled decode */
    int shard_items;   /* dataset items per shard */
    int threads;       /* decoding threads */
    int progress;      /* 1: progress on stderr (a bar on a terminal, plain lines otherwise) */
} ShardPrepOptions;

typedef struct {
    long records, skipped;
    int shards, shards_written, shards_kept;
} ShardPrepStats;

/*
 * Writes ds as shards into opt->out_dir (created if missing). A shard already there whose
 * header matches (same items, settings) and whose CRCs all verify is kept, so an
 * interrupted run resumes where it stopped. A bad image is skipped with one warning and
 * listed in skipped.txt. Returns 0, or -1 with a message; when no image at all could be read,
 * -1 with no shard and no manifest left (skipped.txt lists why).
 */
int shard_prep(const Dataset *ds, const ShardPrepOptions *opt, ShardPrepStats *stats, char *err,
               size_t err_len);

/* Name of shard k inside a folder (shard-00000.tng, ...) into out. */
void shard_name(char *out, size_t len, const char *dir, int k);

/*
 * Opens a prepared folder: reads manifest.txt, maps every shard and reads every record's
 * metadata into meta (one item per record, in shard order). Returns 0 or -1. On success
 * *shards is an array of *n_shards open files (close each, then free the array) and
 * *image_size the shards' R.
 */
int shard_dir_open(const char *dir, ShardFile **shards, int *n_shards, Dataset *meta,
                   int *image_size, char *err, size_t err_len);

#endif
