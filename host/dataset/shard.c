/*
 * shard.c: shard files (layout in shard.h): the validating reader, the writer, and the
 * resumable parallel preparation behind tng_prep.
 *
 * The reader trusts nothing: every offset and length is checked against the file before it
 * is used, so a truncated or hostile file gives an error, never a read out of bounds. All
 * integers are read byte by byte (little-endian), so the format does not depend on the host.
 */
#include "dataset/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/common.h" // defines: mallocCheck, reallocCheck, fwriteCheck, now_seconds, write_file_atomic

static uint32_t crc(const void *data, size_t size) {
    /* zlib's crc32 takes a uInt length: feed huge buffers in pieces */
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *p = data;
    while (size > 0) {
        uInt n = size > (1u << 30) ? (1u << 30) : (uInt)size;
        c = crc32(c, p, n);
        p += n;
        size -= n;
    }
    return (uint32_t)c;
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* ----------------------------------------------------------------------------
 * Reading */

/* The largest R a shard may declare: keeps R*R*3 far from overflow and allocations sane. */
#define SHARD_MAX_IMAGE_SIZE 4096

static size_t pixel_bytes(const ShardFile *sf) {
    return (size_t)sf->header.image_size * sf->header.image_size * 3;
}

/* Entry i of the index: records are 0..n_records-1, skip entries follow. */
static uint64_t entry_offset(const ShardFile *sf, uint64_t i) { return rd64(sf->index + 8 * i); }

typedef struct {
    const uint8_t *meta, *pixels;
    uint32_t meta_size, meta_crc, pixel_crc;
} Entry;

/* Frames entry i (bounds checked): a record carries pixels, a skip entry none. */
static int entry_at(const ShardFile *sf, uint64_t i, Entry *e, char *err, size_t err_len) {
    uint64_t off = entry_offset(sf, i), end = sf->header.index_offset;
    int is_record = i < sf->header.n_records;
    if (off < SHARD_HEADER_SIZE || off > end || end - off < 16)
        return set_error(err, err_len, "%s: entry %llu: offset %llu outside the records area", sf->source,
                    (unsigned long long)i, (unsigned long long)off);
    const uint8_t *p = sf->data + off;
    uint64_t body = rd32(p);
    e->meta_crc = rd32(p + 4);
    e->pixel_crc = rd32(p + 8);
    e->meta_size = rd32(p + 12);
    uint64_t pixels = is_record ? pixel_bytes(sf) : 0;
    if (body != 12 + (uint64_t)e->meta_size + pixels || body > end - off - 4)
        return set_error(err, err_len, "%s: entry %llu: sizes do not add up (body %llu, meta %u, "
                    "pixels %llu, %llu bytes left)", sf->source, (unsigned long long)i,
                    (unsigned long long)body, e->meta_size, (unsigned long long)pixels,
                    (unsigned long long)(end - off - 4));
    e->meta = p + 16;
    e->pixels = is_record ? e->meta + e->meta_size : NULL;
    return 0;
}

int shard_parse(ShardFile *sf, const uint8_t *data, size_t size, const char *source, char *err,
                size_t err_len) {
    memset(sf, 0, sizeof *sf);
    sf->data = data;
    sf->size = size;
    sf->source = strdupCheck(source);
    ShardHeader *h = &sf->header;
    if (size < SHARD_HEADER_SIZE + 4)
        return set_error(err, err_len, "%s: %zu bytes, too short for a shard", source, size);
    if (memcmp(data, SHARD_MAGIC, 8) != 0)
        return set_error(err, err_len, "%s: not a tng shard (magic '%s' missing)", source, SHARD_MAGIC);
    if (rd32(data + 60) != crc(data, 60))
        return set_error(err, err_len, "%s: header CRC mismatch (corrupt header)", source);
    uint32_t version = rd32(data + 8);
    if (version != SHARD_VERSION)
        return set_error(err, err_len, "%s: shard version %u, this build reads %d", source, version,
                    SHARD_VERSION);
    h->image_size = rd32(data + 12);
    h->n_records = rd32(data + 16);
    h->n_skipped = rd32(data + 20);
    h->first_item = rd64(data + 24);
    h->n_items = rd64(data + 32);
    h->index_offset = rd64(data + 40);
    h->fingerprint = rd64(data + 48);
    h->flags = rd32(data + 56);
    if (h->image_size < 1 || h->image_size > SHARD_MAX_IMAGE_SIZE)
        return set_error(err, err_len, "%s: image size %u outside 1..%d", source, h->image_size,
                    SHARD_MAX_IMAGE_SIZE);
    uint64_t entries = (uint64_t)h->n_records + h->n_skipped;
    if (entries != h->n_items)
        return set_error(err, err_len, "%s: %u records + %u skipped != %llu items", source,
                    h->n_records, h->n_skipped, (unsigned long long)h->n_items);
    if (h->index_offset < SHARD_HEADER_SIZE || h->index_offset > size ||
        size - h->index_offset != 8 * entries + 4)
        return set_error(err, err_len, "%s: index at %llu for %llu entries does not end the %zu-byte "
                    "file (truncated?)", source, (unsigned long long)h->index_offset,
                    (unsigned long long)entries, size);
    sf->index = data + h->index_offset;
    if (rd32(sf->index + 8 * entries) != crc(sf->index, 8 * entries))
        return set_error(err, err_len, "%s: index CRC mismatch", source);
    for (uint64_t i = 0; i < entries; i++) {
        Entry e;
        if (entry_at(sf, i, &e, err, err_len) != 0) return -1;
    }
    return 0;
}

int shard_open(ShardFile *sf, const char *path, char *err, size_t err_len) {
    memset(sf, 0, sizeof *sf);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return set_error(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 1) {
        close(fd);
        return set_error(err, err_len, "%s: empty or unreadable shard", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return set_error(err, err_len, "%s: mmap failed: %s", path, strerror(errno));
    int rc = shard_parse(sf, map, (size_t)st.st_size, path, err, err_len);
    sf->mapped = 1;
    if (rc != 0) shard_close(sf);
    return rc;
}

void shard_close(ShardFile *sf) {
    if (sf->mapped && sf->data) munmap((void *)sf->data, sf->size);
    free(sf->source);
    memset(sf, 0, sizeof *sf);
}

/* A cursor over a metadata block; every read is bounds checked. */
typedef struct {
    const uint8_t *p, *end;
} MetaCursor;

static int meta_u32(MetaCursor *c, uint32_t *v) {
    if (c->end - c->p < 4) return -1;
    *v = rd32(c->p);
    c->p += 4;
    return 0;
}

/* A string: points into the file; NUL bytes are refused so C strings mean the same. */
static int meta_str(MetaCursor *c, const uint8_t **s, uint32_t *len) {
    if (meta_u32(c, len) != 0 || (uint64_t)(c->end - c->p) < *len) return -1;
    if (memchr(c->p, 0, *len)) return -1;
    *s = c->p;
    c->p += *len;
    return 0;
}

static char *copy_str(const uint8_t *s, uint32_t len) {
    char *out = mallocCheck((size_t)len + 1);
    memcpy(out, s, len);
    out[len] = 0;
    return out;
}

/* Walks a record's metadata; with item != NULL also copies the lists into it. */
static int meta_lists(MetaCursor *c, DatasetItem *item) {
    for (int list = 0; list < 2; list++) {
        uint32_t n;
        if (meta_u32(c, &n) != 0 || n > (uint32_t)(c->end - c->p) / 4) return -1;
        for (uint32_t k = 0; k < n; k++) {
            const uint8_t *s;
            uint32_t len;
            if (meta_str(c, &s, &len) != 0) return -1;
            if (!item) continue;
            char *text = copy_str(s, len);
            if (list == 0) dataset_item_add_caption(item, text);
            else dataset_item_add_object(item, text);
            free(text);
        }
    }
    return c->p == c->end ? 0 : -1;
}

static int entry_checked(const ShardFile *sf, uint64_t i, Entry *e, char *err, size_t err_len) {
    if (entry_at(sf, i, e, err, err_len) != 0) return -1;
    if (crc(e->meta, e->meta_size) != e->meta_crc)
        return set_error(err, err_len, "%s: entry %llu: metadata CRC mismatch", sf->source,
                    (unsigned long long)i);
    return 0;
}

int shard_read_meta(const ShardFile *sf, int i, Dataset *meta, uint64_t *item_index, char *err,
                    size_t err_len) {
    if (i < 0 || (uint32_t)i >= sf->header.n_records)
        return set_error(err, err_len, "%s: record %d of %u", sf->source, i, sf->header.n_records);
    Entry e;
    if (entry_checked(sf, (uint64_t)i, &e, err, err_len) != 0) return -1;
    MetaCursor c = {e.meta, e.meta + e.meta_size};
    const uint8_t *id, *path;
    uint32_t id_len, path_len;
    if (c.end - c.p < 8) goto bad;
    *item_index = rd64(c.p);
    c.p += 8;
    if (meta_str(&c, &id, &id_len) != 0 || meta_str(&c, &path, &path_len) != 0) goto bad;
    MetaCursor lists = c;
    if (meta_lists(&lists, NULL) != 0) goto bad; /* validate before building anything */
    char *id_text = copy_str(id, id_len), *path_text = copy_str(path, path_len);
    DatasetItem *item = dataset_push_item(meta, path_text, id_text);
    free(id_text);
    free(path_text);
    meta_lists(&c, item);
    return 0;
bad:
    return set_error(err, err_len, "%s: record %d: malformed metadata", sf->source, i);
}

int shard_read_pixels(const ShardFile *sf, int i, const uint8_t **pixels, char *err,
                      size_t err_len) {
    if (i < 0 || (uint32_t)i >= sf->header.n_records)
        return set_error(err, err_len, "%s: record %d of %u", sf->source, i, sf->header.n_records);
    Entry e;
    if (entry_at(sf, (uint64_t)i, &e, err, err_len) != 0) return -1;
    if (crc(e.pixels, pixel_bytes(sf)) != e.pixel_crc)
        return set_error(err, err_len, "%s: record %d: pixel CRC mismatch", sf->source, i);
    *pixels = e.pixels;
    return 0;
}

int shard_read_skipped(const ShardFile *sf, int i, uint64_t *item_index, char **path,
                       char **reason, char *err, size_t err_len) {
    if (i < 0 || (uint32_t)i >= sf->header.n_skipped)
        return set_error(err, err_len, "%s: skip entry %d of %u", sf->source, i, sf->header.n_skipped);
    Entry e;
    if (entry_checked(sf, (uint64_t)sf->header.n_records + (uint64_t)i, &e, err, err_len) != 0)
        return -1;
    MetaCursor c = {e.meta, e.meta + e.meta_size};
    const uint8_t *p, *r;
    uint32_t p_len, r_len;
    if (c.end - c.p < 8) goto bad;
    *item_index = rd64(c.p);
    c.p += 8;
    if (meta_str(&c, &p, &p_len) != 0 || meta_str(&c, &r, &r_len) != 0 || c.p != c.end) goto bad;
    *path = copy_str(p, p_len);
    *reason = copy_str(r, r_len);
    return 0;
bad:
    return set_error(err, err_len, "%s: skip entry %d: malformed", sf->source, i);
}

int shard_verify(const ShardFile *sf, char *err, size_t err_len) {
    uint64_t entries = sf->header.n_items;
    for (uint64_t i = 0; i < entries; i++) {
        Entry e;
        if (entry_checked(sf, i, &e, err, err_len) != 0) return -1;
        if (e.pixels && crc(e.pixels, pixel_bytes(sf)) != e.pixel_crc)
            return set_error(err, err_len, "%s: record %llu: pixel CRC mismatch", sf->source,
                        (unsigned long long)i);
    }
    return 0;
}

/* ----------------------------------------------------------------------------
 * Writing */

static void buf_reserve(ShardWriter *w, size_t need) {
    if (need <= w->buf_cap) return;
    while (w->buf_cap < need) w->buf_cap = w->buf_cap ? 2 * w->buf_cap : 4096;
    w->buf = reallocCheck(w->buf, w->buf_cap);
}

static void buf_u32(ShardWriter *w, size_t *len, uint32_t v) {
    buf_reserve(w, *len + 4);
    wr32(w->buf + *len, v);
    *len += 4;
}

static void buf_str(ShardWriter *w, size_t *len, const char *s) {
    size_t n = strlen(s);
    buf_u32(w, len, (uint32_t)n);
    buf_reserve(w, *len + n);
    memcpy(w->buf + *len, s, n);
    *len += n;
}

void shard_writer_open(ShardWriter *w, const char *path, int image_size, uint64_t first_item,
                       uint64_t n_items, uint64_t fingerprint, uint32_t flags) {
    memset(w, 0, sizeof *w);
    w->path = strdupCheck(path);
    size_t n = strlen(path) + 8;
    w->tmp_path = mallocCheck(n);
    snprintf(w->tmp_path, n, "%s.tmp", path);
    w->f = fopenCheck(w->tmp_path, "wb");
    w->header = (ShardHeader){.image_size = (uint32_t)image_size, .first_item = first_item,
                              .n_items = n_items, .fingerprint = fingerprint, .flags = flags};
    w->offsets = mallocCheck(sizeof(uint64_t) * (n_items + 1));
    w->skip_offsets = mallocCheck(sizeof(uint64_t) * (n_items + 1));
    uint8_t zeros[SHARD_HEADER_SIZE] = {0}; /* the real header is written by finish */
    fwriteCheck(zeros, 1, sizeof zeros, w->f);
    w->pos = SHARD_HEADER_SIZE;
}

/* Frames meta (w->buf[0..meta_len)) and pixels as one entry at the end of the file. */
static void write_entry(ShardWriter *w, size_t meta_len, const uint8_t *pixels, size_t n_pixels) {
    uint8_t frame[16];
    wr32(frame, (uint32_t)(12 + meta_len + n_pixels));
    wr32(frame + 4, crc(w->buf, meta_len));
    wr32(frame + 8, n_pixels ? crc(pixels, n_pixels) : crc(NULL, 0));
    wr32(frame + 12, (uint32_t)meta_len);
    fwriteCheck(frame, 1, sizeof frame, w->f);
    fwriteCheck(w->buf, 1, meta_len, w->f);
    if (n_pixels) fwriteCheck(pixels, 1, n_pixels, w->f);
    w->pos += sizeof frame + meta_len + n_pixels;
}

static size_t meta_begin(ShardWriter *w, uint64_t item_index) {
    buf_reserve(w, 8);
    wr64(w->buf, item_index);
    return 8;
}

void shard_writer_add(ShardWriter *w, uint64_t item_index, const DatasetItem *item,
                      const uint8_t *pixels) {
    if (w->header.n_records + w->header.n_skipped >= w->header.n_items)
        die("shard %s: more entries than the %llu items declared", w->path,
            (unsigned long long)w->header.n_items);
    w->offsets[w->header.n_records++] = w->pos;
    size_t len = meta_begin(w, item_index);
    buf_str(w, &len, item->source_id);
    buf_str(w, &len, item->image_path);
    buf_u32(w, &len, (uint32_t)item->n_captions);
    for (int k = 0; k < item->n_captions; k++) buf_str(w, &len, item->captions[k]);
    buf_u32(w, &len, (uint32_t)item->n_objects);
    for (int k = 0; k < item->n_objects; k++) buf_str(w, &len, item->objects[k]);
    size_t R = w->header.image_size;
    write_entry(w, len, pixels, R * R * 3);
}

void shard_writer_skip(ShardWriter *w, uint64_t item_index, const char *path, const char *reason) {
    if (w->header.n_records + w->header.n_skipped >= w->header.n_items)
        die("shard %s: more entries than the %llu items declared", w->path,
            (unsigned long long)w->header.n_items);
    w->skip_offsets[w->header.n_skipped++] = w->pos;
    size_t len = meta_begin(w, item_index);
    buf_str(w, &len, path);
    buf_str(w, &len, reason);
    write_entry(w, len, NULL, 0);
}

void shard_writer_finish(ShardWriter *w) {
    ShardHeader *h = &w->header;
    if ((uint64_t)h->n_records + h->n_skipped != h->n_items)
        die("shard %s: %u records + %u skipped, but %llu items declared", w->path, h->n_records,
            h->n_skipped, (unsigned long long)h->n_items);
    h->index_offset = w->pos;
    memcpy(w->offsets + h->n_records, w->skip_offsets, sizeof(uint64_t) * h->n_skipped);
    size_t entries = h->n_items, index_len = 8 * entries;
    uint8_t *index = mallocCheck(index_len + 4);
    for (size_t i = 0; i < entries; i++) wr64(index + 8 * i, w->offsets[i]);
    wr32(index + index_len, crc(index, index_len));
    fwriteCheck(index, 1, index_len + 4, w->f);
    free(index);
    uint8_t header[SHARD_HEADER_SIZE] = {0};
    memcpy(header, SHARD_MAGIC, 8);
    wr32(header + 8, SHARD_VERSION);
    wr32(header + 12, h->image_size);
    wr32(header + 16, h->n_records);
    wr32(header + 20, h->n_skipped);
    wr64(header + 24, h->first_item);
    wr64(header + 32, h->n_items);
    wr64(header + 40, h->index_offset);
    wr64(header + 48, h->fingerprint);
    wr32(header + 56, h->flags);
    wr32(header + 60, crc(header, 60));
    if (fseek(w->f, 0, SEEK_SET) != 0) die("%s: seek failed: %s", w->tmp_path, strerror(errno));
    fwriteCheck(header, 1, sizeof header, w->f);
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        die("%s: flush failed: %s", w->tmp_path, strerror(errno));
    fcloseCheck(w->f);
    if (rename(w->tmp_path, w->path) != 0)
        die("cannot rename %s to %s: %s", w->tmp_path, w->path, strerror(errno));
    free(w->path);
    free(w->tmp_path);
    free(w->offsets);
    free(w->skip_offsets);
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* ----------------------------------------------------------------------------
 * Preparation */

void shard_name(char *out, size_t len, const char *dir, int k) {
    snprintf(out, len, "%s/shard-%05d.tng", dir, k);
}

/* Hash of everything that decides a shard's content, so a resumed run keeps only shards
 * made from the same items with the same settings. */
static uint64_t shard_fingerprint(const Dataset *ds, int first, int count, const ShardPrepOptions *opt) {
    uint64_t settings[4] = {SHARD_VERSION, (uint64_t)opt->image_size, (uint64_t)opt->mode,
                            (uint64_t)first};
    uint64_t h = hash64(settings, sizeof settings, (uint64_t)count);
    for (int i = first; i < first + count; i++) {
        const DatasetItem *item = &ds->items[i];
        h = hash64_str(item->source_id, h);
        h = hash64_str(item->image_path, h);
        for (int k = 0; k < item->n_captions; k++) h = hash64_str(item->captions[k], h);
        h = hash64(&item->n_captions, sizeof(int), h);
        for (int k = 0; k < item->n_objects; k++) h = hash64_str(item->objects[k], h);
        h = hash64(&item->n_objects, sizeof(int), h);
    }
    return h;
}

typedef struct {
    long total, done;
    double start, last_print;
    int enabled, tty;
} Progress;

static void progress_print(Progress *p, int final) {
    if (!p->enabled) return;
    double now = now_seconds(), elapsed = now - p->start;
    if (!final && now - p->last_print < (p->tty ? 0.2 : 10.0)) return;
    p->last_print = now;
    double rate = elapsed > 0 ? p->done / elapsed : 0;
    double eta = rate > 0 ? (p->total - p->done) / rate : 0;
    int pct = p->total ? (int)(100 * p->done / p->total) : 100;
    if (p->tty) {
        char bar[31];
        int filled = pct * 30 / 100;
        for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r[%s] %3d%% %ld/%ld  %.0f img/s  ETA %02d:%02d:%02d%s", bar, pct,
                p->done, p->total, rate, (int)eta / 3600, (int)eta / 60 % 60, (int)eta % 60,
                final ? "\n" : "");
    } else {
        fprintf(stderr, "tng_prep: %ld/%ld images (%d%%), %.0f img/s, ETA %.0f s\n", p->done,
                p->total, pct, rate, eta);
    }
    fflush(stderr);
}

/* Prints one warning line (the message names the file), clearing a progress bar first. */
static void progress_warn(const Progress *p, const char *message) {
    if (p->enabled && p->tty) fputs("\r\033[K", stderr);
    fprintf(stderr, "tng_prep: warning: skipping %s\n", message);
}

/* The reason part of "path: reason" (decoder messages start with the file's path). */
static const char *reason_of(const char *message, const char *path) {
    size_t n = strlen(path);
    return strncmp(message, path, n) == 0 && strncmp(message + n, ": ", 2) == 0 ? message + n + 2
                                                                                : message;
}

typedef struct {
    char *text;
    size_t len, cap;
} TextBuf;

static void text_append(TextBuf *t, const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (t->len + na + nb + 3 > t->cap) {
        t->cap = 2 * (t->len + na + nb + 3);
        t->text = reallocCheck(t->text, t->cap);
    }
    memcpy(t->text + t->len, a, na);
    t->text[t->len + na] = '\t';
    memcpy(t->text + t->len + na + 1, b, nb);
    t->len += na + nb + 1;
    t->text[t->len++] = '\n';
}

/* Keeps shard k if it is complete and intact; returns 1 (its skip list added) or 0. */
static int keep_existing_shard(const char *path, uint64_t first, uint64_t count,
                               uint64_t fingerprint, const ShardPrepOptions *opt, TextBuf *skipped,
                               ShardPrepStats *stats) {
    ShardFile sf;
    char msg[512];
    if (access(path, F_OK) != 0) return 0;
    if (shard_open(&sf, path, msg, sizeof msg) != 0) {
        fprintf(stderr, "tng_prep: redoing a damaged shard: %s\n", msg);
        return 0;
    }
    const ShardHeader *h = &sf.header;
    int same = h->first_item == first && h->n_items == count && h->fingerprint == fingerprint &&
               h->image_size == (uint32_t)opt->image_size;
    int ok = same && shard_verify(&sf, msg, sizeof msg) == 0;
    if (!ok && same) fprintf(stderr, "tng_prep: redoing a damaged shard: %s\n", msg);
    if (!same) fprintf(stderr, "tng_prep: redoing %s: made from other items or settings\n", path);
    for (uint32_t i = 0; ok && i < h->n_skipped; i++) {
        uint64_t item;
        char *bad_path, *reason;
        if (shard_read_skipped(&sf, (int)i, &item, &bad_path, &reason, msg, sizeof msg) != 0) {
            ok = 0;
            break;
        }
        text_append(skipped, bad_path, reason);
        free(bad_path);
        free(reason);
    }
    if (ok) {
        stats->records += h->n_records;
        stats->skipped += h->n_skipped;
        stats->shards_kept++;
    }
    shard_close(&sf);
    return ok;
}

/* Decodes items [first, first+count) in parallel chunks and writes them as one shard. */
static void write_shard(const Dataset *ds, const char *path, int first, int count,
                        uint64_t fingerprint, const ShardPrepOptions *opt, Progress *progress,
                        TextBuf *skipped, ShardPrepStats *stats) {
    const int R = opt->image_size, chunk = opt->threads * 8;
    const size_t crop_bytes = (size_t)R * R * 3;
    uint8_t *crops = mallocCheck(crop_bytes * chunk);
    ImageStatus *status = mallocCheck(sizeof(ImageStatus) * chunk);
    char (*msgs)[IMAGE_ERROR_SIZE + 512] = mallocCheck(sizeof *msgs * chunk);
    ShardWriter w;
    shard_writer_open(&w, path, R, (uint64_t)first, (uint64_t)count, fingerprint,
                      opt->mode == IMAGE_FAST ? 1u : 0u);
    for (int start = first; start < first + count; start += chunk) {
        int n = first + count - start < chunk ? first + count - start : chunk;
        /* decoding is the only slow step; writing stays sequential, so files are identical
         * whatever the thread count */
#pragma omp parallel for schedule(dynamic, 1) num_threads(opt->threads)
        for (int j = 0; j < n; j++)
            status[j] = dataset_item_crop(&ds->items[start + j], R, opt->mode,
                                          crops + crop_bytes * j, msgs[j], sizeof msgs[j]);
        for (int j = 0; j < n; j++) {
            const DatasetItem *item = &ds->items[start + j];
            if (status[j] == IMAGE_OK) {
                shard_writer_add(&w, (uint64_t)(start + j), item, crops + crop_bytes * j);
                stats->records++;
            } else {
                const char *reason = reason_of(msgs[j], item->image_path);
                progress_warn(progress, msgs[j]);
                shard_writer_skip(&w, (uint64_t)(start + j), item->image_path, reason);
                text_append(skipped, item->image_path, reason);
                stats->skipped++;
            }
        }
        progress->done += n;
        progress_print(progress, 0);
    }
    shard_writer_finish(&w);
    free(crops);
    free(status);
    free(msgs);
}

int shard_prep(const Dataset *ds, const ShardPrepOptions *opt, ShardPrepStats *stats, char *err,
               size_t err_len) {
    memset(stats, 0, sizeof *stats);
    if (opt->image_size < 1 || opt->image_size > SHARD_MAX_IMAGE_SIZE || opt->shard_items < 1 ||
        opt->threads < 1)
        return set_error(err, err_len, "shard_prep: bad options (image size %d, %d items per shard, "
                    "%d threads)", opt->image_size, opt->shard_items, opt->threads);
    if (ds->count < 1) return set_error(err, err_len, "shard_prep: the dataset is empty");
    if (make_dirs(opt->out_dir, err, err_len) != 0) return -1;
    size_t plen = strlen(opt->out_dir) + 64;
    char *path = mallocCheck(plen);
    /* no manifest while shards change: a folder is only loadable once it is complete */
    snprintf(path, plen, "%s/%s", opt->out_dir, SHARD_MANIFEST);
    if (unlink(path) != 0 && errno != ENOENT) {
        set_error(err, err_len, "cannot remove %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    int n_shards = (ds->count + opt->shard_items - 1) / opt->shard_items;
    stats->shards = n_shards;
    Progress progress = {.total = ds->count, .start = now_seconds(), .enabled = opt->progress,
                         .tty = isatty(STDERR_FILENO)};
    TextBuf skipped = {0}, manifest = {0};
    char line[64];
    snprintf(line, sizeof line, "%d", opt->image_size);
    text_append(&manifest, "tng-shards", "1");
    text_append(&manifest, "image_size", line);
    for (int k = 0; k < n_shards; k++) {
        int first = k * opt->shard_items;
        int count = ds->count - first < opt->shard_items ? ds->count - first : opt->shard_items;
        uint64_t fingerprint = shard_fingerprint(ds, first, count, opt);
        shard_name(path, plen, opt->out_dir, k);
        if (keep_existing_shard(path, (uint64_t)first, (uint64_t)count, fingerprint, opt, &skipped,
                                stats)) {
            progress.done += count;
        } else {
            write_shard(ds, path, first, count, fingerprint, opt, &progress, &skipped, stats);
            stats->shards_written++;
        }
        progress_print(&progress, k == n_shards - 1);
        text_append(&manifest, "shard", strrchr(path, '/') + 1);
    }
    int rc = 0;
    snprintf(path, plen, "%s/%s", opt->out_dir, SHARD_SKIPPED);
    if (write_file_atomic(path, skipped.text ? skipped.text : "", skipped.len) != 0)
        rc = set_error(err, err_len, "cannot write %s: %s", path, strerror(errno));
    if (rc == 0 && stats->records == 0) {
        /* no image at all: no loadable folder (no manifest), and no shard a rerun would keep
         * once the images are fixed */
        for (int k = 0; k < n_shards; k++) {
            shard_name(path, plen, opt->out_dir, k);
            unlink(path);
        }
        rc = set_error(err, err_len, "none of the %d images could be read (the reasons are in %s/%s): "
                       "no shards written", ds->count, opt->out_dir, SHARD_SKIPPED);
    }
    snprintf(path, plen, "%s/%s", opt->out_dir, SHARD_MANIFEST);
    if (rc == 0 && write_file_atomic(path, manifest.text, manifest.len) != 0)
        rc = set_error(err, err_len, "cannot write %s: %s", path, strerror(errno));
    free(skipped.text);
    free(manifest.text);
    free(path);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Opening a prepared folder */

int shard_dir_open(const char *dir, ShardFile **shards, int *n_shards, Dataset *meta,
                   int *image_size, char *err, size_t err_len) {
    *shards = NULL;
    *n_shards = 0;
    memset(meta, 0, sizeof *meta);
    size_t plen = strlen(dir) + 300;
    char *path = mallocCheck(plen);
    snprintf(path, plen, "%s/%s", dir, SHARD_MANIFEST);
    char *manifest = read_file(path, NULL);
    if (!manifest) {
        set_error(err, err_len, "%s: cannot read (%s): not a finished tng_prep folder", path,
             strerror(errno));
        free(path);
        return -1;
    }
    int rc = -1, cap = 0, line_no = 0;
    *image_size = 0;
    for (char *save = NULL, *line = strtok_r(manifest, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        char *tab = strchr(line, '\t');
        if (!tab) {
            set_error(err, err_len, "%s:%d: expected 'key<TAB>value'", path, line_no);
            goto done;
        }
        *tab = 0;
        const char *key = line, *value = tab + 1;
        if (strcmp(key, "tng-shards") == 0) {
            if (strcmp(value, "1") != 0) {
                set_error(err, err_len, "%s:%d: manifest version %s, expected 1", path, line_no, value);
                goto done;
            }
        } else if (strcmp(key, "image_size") == 0) {
            *image_size = atoi(value);
        } else if (strcmp(key, "shard") == 0) {
            if (strchr(value, '/') || strlen(value) > 200) {
                set_error(err, err_len, "%s:%d: bad shard name", path, line_no);
                goto done;
            }
            if (*n_shards == cap) {
                cap = cap ? 2 * cap : 16;
                *shards = reallocCheck(*shards, sizeof(ShardFile) * cap);
            }
            char *shard_path = mallocCheck(plen);
            snprintf(shard_path, plen, "%s/%s", dir, value);
            ShardFile *sf = &(*shards)[*n_shards];
            int opened = shard_open(sf, shard_path, err, err_len);
            free(shard_path);
            if (opened != 0) goto done;
            (*n_shards)++;
            if (sf->header.image_size != (uint32_t)*image_size) {
                set_error(err, err_len, "%s: image size %u, the manifest says %d", sf->source,
                     sf->header.image_size, *image_size);
                goto done;
            }
            for (uint32_t i = 0; i < sf->header.n_records; i++) {
                uint64_t item_index;
                if (shard_read_meta(sf, (int)i, meta, &item_index, err, err_len) != 0) goto done;
            }
        }
    }
    if (*n_shards == 0 || meta->count == 0) {
        set_error(err, err_len, "%s: no shards or no records (an empty dataset)", path);
        goto done;
    }
    rc = 0;
done:
    if (rc != 0) {
        for (int k = 0; k < *n_shards; k++) shard_close(&(*shards)[k]);
        free(*shards);
        *shards = NULL;
        *n_shards = 0;
        dataset_free(meta);
    }
    free(manifest);
    free(path);
    return rc;
}
