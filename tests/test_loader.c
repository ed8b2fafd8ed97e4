/*
 * test_loader.c: shards (round trip, CRC checks, resumed preparation, skipped images), the
 * loader (determinism, rank disjointness and coverage, exact resume, bad images) and the
 * frozen-tower embedding cache (reuse, and a rebuild when the key changes).
 *
 * Everything runs on small JPEGs written into a fresh temporary folder.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"
#include "dataset/dataset.h"
#include "dataset/embed_cache.h"
#include "harness.h"
#include "scratch.h"
#include "dataset/image.h"
#include "dataset/loader.h"
#include "engine/model.h"
#include "util/rng.h"
#include "dataset/shard.h"

#define R 16 /* crop size: small enough to be quick, large enough to resize and crop */


/* n random JPEGs of random sizes img_00.jpg..., each with 1..3 captions and an object. */
static void make_dataset(Dataset *ds, int n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    memset(ds, 0, sizeof *ds);
    for (int i = 0; i < n; i++) {
        int w = 12 + (int)rng_below(&rng, 40), h = 12 + (int)rng_below(&rng, 40);
        uint8_t *rgb = mallocCheck((size_t)w * h * 3);
        for (int k = 0; k < w * h * 3; k++) rgb[k] = (uint8_t)rng_below(&rng, 256);
        uint8_t *jpeg;
        size_t size;
        char err[IMAGE_ERROR_SIZE], name[32], caption[64];
        if (image_encode_jpeg(rgb, w, h, 90, &jpeg, &size, err, sizeof err) != IMAGE_OK) die("%s", err);
        snprintf(name, sizeof name, "img_%02d.jpg", i);
        if (write_file_atomic(tmp_path(name), jpeg, size) != 0) die("cannot write %s", name);
        DatasetItem *item = dataset_push_item(ds, tmp_path(name), name);
        int captions = 1 + i % 3;
        for (int c = 0; c < captions; c++) {
            snprintf(caption, sizeof caption, "caption %d of image %d", c, i);
            dataset_item_add_caption(item, caption);
        }
        dataset_item_add_object(item, i % 2 ? "dog" : "cat");
        free(jpeg);
        free(rgb);
    }
}

static Loader *open_loader(const LoaderOptions *opt) {
    char err[512];
    Loader *l = loader_open(opt, err, sizeof err);
    if (!l) die("loader_open: %s", err);
    return l;
}

/* A batch's content as one hash: item ids, caption choices and the pixels' bits. */
static uint64_t batch_hash(const LoaderBatch *b) {
    uint64_t h = hash64(b->item_index, sizeof(int) * b->size, (uint64_t)b->size);
    h = hash64(b->caption_index, sizeof(int) * b->size, h);
    return hash64(b->images, sizeof(float) * b->size * 3 * R * R, h);
}

/* ----------------------------------------------------------------------------
 * Shards */

static ShardPrepOptions prep_options(const char *out, int shard_items) {
    return (ShardPrepOptions){.out_dir = out, .image_size = R, .mode = IMAGE_EXACT,
                              .shard_items = shard_items, .threads = 2, .progress = 0};
}

static void test_shard_round_trip(void) {
    Dataset ds;
    make_dataset(&ds, 7, 1);
    ShardPrepOptions opt = prep_options(tmp_path("rt"), 3);
    ShardPrepStats stats;
    char err[512] = "";
    int rc = shard_prep(&ds, &opt, &stats, err, sizeof err);
    CHECK(rc == 0 && stats.shards == 3 && stats.records == 7 && stats.skipped == 0 &&
              stats.shards_written == 3, "prep rc %d (%s)", rc, err);
    ShardFile *shards;
    int n_shards, image_size;
    Dataset meta;
    rc = shard_dir_open(opt.out_dir, &shards, &n_shards, &meta, &image_size, err, sizeof err);
    CHECK(rc == 0 && n_shards == 3 && meta.count == 7 && image_size == R, "open rc %d (%s)", rc, err);
    if (rc != 0) return;
    uint8_t *want = mallocCheck(R * R * 3);
    for (int i = 0, k = 0, rec = 0; i < 7; i++, rec++) {
        if (rec == (int)shards[k].header.n_records) k++, rec = 0;
        const DatasetItem *a = &ds.items[i], *b = &meta.items[i];
        CHECK(strcmp(a->source_id, b->source_id) == 0 && strcmp(a->image_path, b->image_path) == 0 &&
                  a->n_captions == b->n_captions && b->n_objects == 1 &&
                  strcmp(a->objects[0], b->objects[0]) == 0 &&
                  strcmp(a->captions[a->n_captions - 1], b->captions[b->n_captions - 1]) == 0,
              "metadata of item %d", i);
        const uint8_t *pixels;
        memset(want, 0xAB, R * R * 3);
        CHECK(dataset_item_crop(a, R, IMAGE_EXACT, want, err, sizeof err) == IMAGE_OK, "%s", err);
        CHECK(shard_read_pixels(&shards[k], rec, &pixels, err, sizeof err) == 0 &&
                  memcmp(pixels, want, R * R * 3) == 0, "pixels of item %d", i);
    }
    free(want);
    for (int k = 0; k < n_shards; k++) shard_close(&shards[k]);
    free(shards);
    dataset_free(&meta);
    dataset_free(&ds);
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Parses a copy of data with one byte flipped at offset; returns shard_parse's result and
 * leaves the file open in *sf on success. */
static int parse_flipped(const uint8_t *data, size_t size, size_t offset, uint8_t **copy,
                         ShardFile *sf, char *err, size_t err_len) {
    *copy = mallocCheck(size);
    memcpy(*copy, data, size);
    if (offset < size) (*copy)[offset] ^= 0x10;
    return shard_parse(sf, *copy, size, "copy.tng", err, err_len);
}

static void test_shard_crc(void) {
    Dataset ds;
    make_dataset(&ds, 3, 2);
    ShardPrepOptions opt = prep_options(tmp_path("crc"), 10);
    ShardPrepStats stats;
    char err[512] = "";
    shard_prep(&ds, &opt, &stats, err, sizeof err);
    size_t size;
    char path[300];
    shard_name(path, sizeof path, opt.out_dir, 0);
    uint8_t *data = (uint8_t *)read_file(path, &size), *copy;
    CHECK(data != NULL, "read %s", path);
    if (!data) return;
    ShardFile sf;
    CHECK(parse_flipped(data, size, size, &copy, &sf, err, sizeof err) == 0, "intact: %s", err);
    CHECK(shard_verify(&sf, err, sizeof err) == 0, "intact verifies: %s", err);
    uint64_t record1 = le64(sf.index + 8);
    uint32_t meta_size = data[record1 + 12] | data[record1 + 13] << 8;
    shard_close(&sf);
    free(copy);
    /* a pixel byte of record 1: the file parses, record 0 reads, record 1 and verify fail */
    const uint8_t *pixels;
    CHECK(parse_flipped(data, size, record1 + 16 + meta_size + 5, &copy, &sf, err, sizeof err) == 0,
          "pixel flip parses: %s", err);
    CHECK(shard_read_pixels(&sf, 0, &pixels, err, sizeof err) == 0, "record 0 intact: %s", err);
    err[0] = 0;
    CHECK(shard_read_pixels(&sf, 1, &pixels, err, sizeof err) == -1 && strstr(err, "pixel CRC"),
          "record 1: %s", err);
    CHECK(shard_verify(&sf, err, sizeof err) == -1, "verify sees the flip");
    shard_close(&sf);
    free(copy);
    /* a metadata byte: the record's metadata read fails */
    Dataset meta = {0};
    uint64_t item;
    CHECK(parse_flipped(data, size, record1 + 16 + 10, &copy, &sf, err, sizeof err) == 0, "meta flip parses");
    CHECK(shard_read_meta(&sf, 1, &meta, &item, err, sizeof err) == -1 && strstr(err, "metadata CRC") &&
              meta.count == 0, "meta: %s", err);
    shard_close(&sf);
    free(copy);
    /* header, index and truncation are caught by the parser */
    CHECK(parse_flipped(data, size, 13, &copy, &sf, err, sizeof err) == -1 && strstr(err, "header CRC"),
          "header: %s", err);
    shard_close(&sf);
    free(copy);
    CHECK(parse_flipped(data, size, size - 6, &copy, &sf, err, sizeof err) == -1 && strstr(err, "index CRC"),
          "index: %s", err);
    shard_close(&sf);
    free(copy);
    CHECK(shard_parse(&sf, data, size - 1, "short.tng", err, sizeof err) == -1 && strstr(err, "truncated"),
          "truncated: %s", err);
    shard_close(&sf);
    free(data);
    dataset_free(&ds);
}

static int file_equal(const char *a, const char *b) {
    size_t na, nb;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void test_prep_resume(void) {
    Dataset ds;
    make_dataset(&ds, 8, 3);
    ShardPrepOptions opt = prep_options(tmp_path("resume"), 2);
    ShardPrepStats stats;
    char err[512] = "", path[300], saved[320];
    CHECK(shard_prep(&ds, &opt, &stats, err, sizeof err) == 0 && stats.shards == 4, "first run: %s", err);
    /* keep copies of the complete result, then simulate an interrupted second run: shard 1
     * was never written (only its .tmp exists), shard 2 is corrupt, no manifest */
    for (int k = 0; k < 4; k++) {
        shard_name(path, sizeof path, opt.out_dir, k);
        snprintf(saved, sizeof saved, "%s.saved", path);
        size_t n;
        char *bytes = read_file(path, &n);
        write_file_atomic(saved, bytes, n);
        if (k == 2) {
            bytes[n / 2] ^= 1;
            write_file_atomic(path, bytes, n);
        }
        free(bytes);
    }
    shard_name(path, sizeof path, opt.out_dir, 1);
    rename(path, strcat(strcpy(saved, path), ".tmp"));
    unlink(tmp_path("resume/" SHARD_MANIFEST));
    struct stat before, after;
    shard_name(path, sizeof path, opt.out_dir, 0);
    stat(path, &before);
    int rc = shard_prep(&ds, &opt, &stats, err, sizeof err);
    CHECK(rc == 0 && stats.shards_kept == 2 && stats.shards_written == 2 && stats.records == 8,
          "resume: rc %d kept %d written %d (%s)", rc, stats.shards_kept, stats.shards_written, err);
    stat(path, &after);
    CHECK(before.st_ino == after.st_ino && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec &&
              before.st_mtim.tv_sec == after.st_mtim.tv_sec, "shard 0 was kept, not rewritten");
    for (int k = 0; k < 4; k++) {
        shard_name(path, sizeof path, opt.out_dir, k);
        snprintf(saved, sizeof saved, "%s.saved", path);
        CHECK(file_equal(path, saved), "shard %d identical to the uninterrupted run", k);
    }
    CHECK(access(tmp_path("resume/" SHARD_MANIFEST), F_OK) == 0, "manifest written again");
    /* different settings must not reuse shards */
    opt.image_size = R + 1;
    rc = shard_prep(&ds, &opt, &stats, err, sizeof err);
    CHECK(rc == 0 && stats.shards_kept == 0 && stats.shards_written == 4, "new size redoes all");
    dataset_free(&ds);
}

/* Two unreadable files and a missing one among good images. */
static void add_bad_items(Dataset *ds) {
    write_file_atomic(tmp_path("empty.jpg"), "", 0);
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                  'I', 'H', 'D', 'R', 0, 0, 0, 8, 0, 0, 0, 8, 8, 2, 0, 0, 0};
    write_file_atomic(tmp_path("png_named.jpg"), png, sizeof png);
    const char *bad[] = {"empty.jpg", "png_named.jpg", "missing.jpg"};
    for (int i = 0; i < 3; i++) {
        /* spread them out: positions 1, 4 and 7 */
        DatasetItem *item = dataset_push_item(ds, tmp_path(bad[i]), bad[i]);
        dataset_item_add_caption(item, "unreadable");
        int at = 1 + 3 * i;
        DatasetItem moved = ds->items[ds->count - 1];
        memmove(&ds->items[at + 1], &ds->items[at], sizeof(DatasetItem) * (size_t)(ds->count - 1 - at));
        ds->items[at] = moved;
    }
}

static void test_prep_skips_bad_images(void) {
    Dataset ds;
    make_dataset(&ds, 6, 4);
    add_bad_items(&ds);
    ShardPrepOptions opt = prep_options(tmp_path("bad"), 4);
    ShardPrepStats stats;
    char err[512] = "";
    int rc = shard_prep(&ds, &opt, &stats, err, sizeof err);
    CHECK(rc == 0 && stats.records == 6 && stats.skipped == 3, "rc %d records %ld skipped %ld",
          rc, stats.records, stats.skipped);
    char *listed = read_file(tmp_path("bad/" SHARD_SKIPPED), NULL);
    CHECK(listed && strstr(listed, "empty.jpg\t") && strstr(listed, "png_named.jpg\t") &&
              strstr(listed, "missing.jpg\t"), "skipped.txt: %s", listed ? listed : "(none)");
    free(listed);
    /* a resumed run keeps every shard and still reports (and lists) the skipped files */
    unlink(tmp_path("bad/" SHARD_SKIPPED));
    rc = shard_prep(&ds, &opt, &stats, err, sizeof err);
    listed = read_file(tmp_path("bad/" SHARD_SKIPPED), NULL);
    CHECK(rc == 0 && stats.shards_kept == 3 && stats.skipped == 3 && listed &&
              strstr(listed, "png_named.jpg\t"), "resumed skip list");
    free(listed);
    dataset_free(&ds);
}

/* Every image unreadable: an error naming the count, and neither a manifest (the folder is
 * not loadable) nor a shard that a rerun after fixing the images would keep. It used to end
 * with 0 and "0 images in 1 shards". */
static void test_prep_all_unreadable(void) {
    Dataset ds = {0};
    const char *names[] = {"gone-1.jpg", "gone-2.jpg", "gone-3.jpg"};
    for (int i = 0; i < 3; i++) dataset_item_add_caption(dataset_push_item(&ds, tmp_path(names[i]), names[i]), "a cat");
    ShardPrepOptions opt = prep_options(tmp_path("none"), 2);
    ShardPrepStats stats;
    char err[512] = "", shard[300];
    int rc = shard_prep(&ds, &opt, &stats, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "none of the 3 images could be read") && strstr(err, SHARD_SKIPPED),
          "rc %d: %s", rc, err);
    CHECK(access(tmp_path("none/" SHARD_MANIFEST), F_OK) != 0, "no manifest for a folder without images");
    for (int k = 0; k < 2; k++) {
        shard_name(shard, sizeof shard, opt.out_dir, k);
        CHECK(access(shard, F_OK) != 0, "no shard %d left to keep", k);
    }
    CHECK(access(tmp_path("none/" SHARD_SKIPPED), F_OK) == 0, "the reasons are listed");
    dataset_free(&ds);
}

/* ----------------------------------------------------------------------------
 * Loader */

static LoaderOptions loader_options(const Dataset *ds, int batch, int threads) {
    return (LoaderOptions){.dataset = ds, .image_size = R, .mode = IMAGE_EXACT, .batch_size = batch,
                           .threads = threads, .seed = 5, .shuffle = 1, .world = 1, .quiet = 1};
}

/* Hashes of the next n batches. */
static void run_batches(Loader *l, int n, uint64_t *out) {
    for (int i = 0; i < n; i++) out[i] = batch_hash(loader_next(l));
}

static void test_loader_deterministic(void) {
    Dataset ds;
    make_dataset(&ds, 10, 5);
    enum { N = 9 }; /* batches of 3 over 10 items: 4 per epoch (3,3,3,1); 9 spans 3 epochs */
    uint64_t a[N], b[N], c[N];
    LoaderOptions opt = loader_options(&ds, 3, 1);
    opt.prefetch_batches = 1;
    Loader *l = open_loader(&opt);
    CHECK(loader_batches_per_epoch(l) == 4 && loader_samples_per_epoch(l) == 10, "epoch shape");
    run_batches(l, N, a);
    loader_close(l);
    opt.threads = 3;
    opt.prefetch_batches = 4;
    l = open_loader(&opt);
    run_batches(l, N, b);
    loader_close(l);
    CHECK(memcmp(a, b, sizeof a) == 0, "same batches with 1 thread and 3 threads");
    opt.seed = 6;
    l = open_loader(&opt);
    run_batches(l, N, c);
    loader_close(l);
    CHECK(memcmp(a, c, sizeof a) != 0, "another seed gives another order");
    CHECK(a[0] != a[4], "epochs are shuffled differently");
    /* shards give the very same batches as the raw JPEGs (exact decode both ways) */
    ShardPrepOptions popt = prep_options(tmp_path("det"), 4);
    ShardPrepStats stats;
    char err[512];
    shard_prep(&ds, &popt, &stats, err, sizeof err);
    opt.seed = 5;
    opt.dataset = NULL;
    opt.shard_dir = popt.out_dir;
    opt.image_size = 0;
    l = open_loader(&opt);
    run_batches(l, N, c);
    loader_close(l);
    CHECK(memcmp(a, c, sizeof a) == 0, "shards and raw images give identical batches");
    dataset_free(&ds);
}

static void test_loader_ranks(void) {
    Dataset ds;
    make_dataset(&ds, 10, 6);
    for (int mode = 0; mode < 2; mode++) {
        long total = mode == LOADER_ALL_PAIRS ? dataset_caption_count(&ds) : ds.count;
        int seen[10][3] = {{0}}, count[3] = {0};
        for (int r = 0; r < 3; r++) {
            LoaderOptions opt = loader_options(&ds, 2, 2);
            opt.rank = r;
            opt.world = 3;
            opt.captions = (LoaderCaptions)mode;
            Loader *l = open_loader(&opt);
            long batches = loader_batches_per_epoch(l);
            for (long k = 0; k < batches; k++) {
                const LoaderBatch *b = loader_next(l);
                CHECK(b->epoch == 0 && b->last_in_epoch == (k == batches - 1), "epoch flags");
                for (int i = 0; i < b->size; i++) {
                    int c = mode == LOADER_ALL_PAIRS ? b->caption_index[i] : 0;
                    seen[b->item_index[i]][c]++;
                    count[r]++;
                }
            }
            loader_close(l);
        }
        long covered = 0;
        int twice = 0;
        for (int i = 0; i < 10; i++)
            for (int c = 0; c < 3; c++) {
                covered += seen[i][c] > 0;
                twice += seen[i][c] > 1;
            }
        CHECK(covered == total && twice == 0, "mode %d: %ld of %ld samples covered, %d repeated",
              mode, covered, total, twice);
        if (mode == LOADER_ONE_CAPTION)
            CHECK(count[0] == 4 && count[1] == 3 && count[2] == 3, "uneven split 4/3/3: %d/%d/%d",
                  count[0], count[1], count[2]);
    }
    /* drop_last: every rank gets the same number of full batches */
    LoaderOptions opt = loader_options(&ds, 2, 1);
    opt.world = 3;
    opt.drop_last = 1;
    Loader *l = open_loader(&opt);
    const LoaderBatch *b = loader_next(l);
    CHECK(loader_batches_per_epoch(l) == 1 && b->size == 2 && b->last_in_epoch, "drop_last");
    loader_close(l);
    dataset_free(&ds);
}

static void test_loader_captions(void) {
    Dataset ds;
    make_dataset(&ds, 4, 7); /* item 2 has 3 captions */
    LoaderOptions opt = loader_options(&ds, 4, 1);
    Loader *l = open_loader(&opt);
    int seen[3] = {0};
    for (int epoch = 0; epoch < 12; epoch++) {
        const LoaderBatch *b = loader_next(l);
        for (int i = 0; i < b->size; i++) {
            const DatasetItem *item = b->items[i];
            CHECK(b->caption_index[i] >= 0 && b->caption_index[i] < item->n_captions &&
                      b->captions[i] == item->captions[b->caption_index[i]], "caption in range");
            if (b->item_index[i] == 2) seen[b->caption_index[i]]++;
        }
    }
    CHECK((seen[0] > 0) + (seen[1] > 0) + (seen[2] > 0) >= 2, "the caption varies by epoch: %d %d %d",
          seen[0], seen[1], seen[2]);
    loader_close(l);
    dataset_free(&ds);
}

static void test_loader_resume(void) {
    Dataset ds;
    make_dataset(&ds, 10, 8);
    LoaderOptions opt = loader_options(&ds, 3, 2);
    Loader *l = open_loader(&opt);
    uint64_t first[6], resumed[3];
    run_batches(l, 3, first);
    LoaderPosition pos = loader_position(l);
    CHECK(pos.epoch == 0 && pos.index == 9, "position after 3 batches: %llu/%llu",
          (unsigned long long)pos.epoch, (unsigned long long)pos.index);
    run_batches(l, 3, first + 3);
    LoaderPosition later = loader_position(l);
    CHECK(later.epoch == 1 && later.index == 6, "position crosses the epoch");
    loader_close(l);
    opt.start = pos;
    opt.threads = 1;
    l = open_loader(&opt);
    run_batches(l, 3, resumed);
    loader_close(l);
    CHECK(memcmp(first + 3, resumed, sizeof resumed) == 0, "resumed run continues exactly");
    char err[256];
    opt.start.index = 4; /* not a batch boundary */
    CHECK(loader_open(&opt, err, sizeof err) == NULL && strstr(err, "multiple"), "bad start: %s", err);
    dataset_free(&ds);
}

static void test_loader_bad_images(void) {
    Dataset ds;
    make_dataset(&ds, 6, 9);
    add_bad_items(&ds);
    LoaderOptions opt = loader_options(&ds, 4, 2);
    opt.quiet = 0; /* the three warnings appear once each in the test log */
    Loader *l = open_loader(&opt);
    for (int epoch = 0; epoch < 2; epoch++) {
        int delivered = 0, skipped = 0;
        for (long k = 0; k < loader_batches_per_epoch(l); k++) {
            const LoaderBatch *b = loader_next(l);
            delivered += b->size;
            skipped += b->skipped;
            for (int i = 0; i < b->size; i++)
                CHECK(strstr(b->items[i]->image_path, "img_") != NULL, "only good images delivered");
        }
        CHECK(delivered == 6 && skipped == 3, "epoch %d: %d delivered, %d skipped", epoch, delivered, skipped);
    }
    CHECK(loader_bad_items(l) == 3, "3 distinct bad files, got %ld", loader_bad_items(l));
    loader_close(l);
    dataset_free(&ds);
}

/* ----------------------------------------------------------------------------
 * Embedding cache */

static Clip *tiny_model(uint64_t seed) {
    ClipConfig c = {0};
    c.vision = (TowerConfig){32, 2, 2, 64, ACT_QUICK_GELU};
    c.image_size = R;
    c.patch_size = 4;
    c.text = (TowerConfig){32, 1, 2, 64, ACT_GELU};
    c.vocab_size = 64;
    c.context_length = 8;
    c.embed_dim = 8;
    c.logit_scale_init = logf(1 / 0.07f);
    Clip *m = clip_create(&c, backend_cpu());
    clip_init_random(m, seed);
    ClipTrainConfig train = {.temperature = 0.07f, .train_vision = 0, .train_text = 1};
    clip_prepare(m, &train, 4, 4);
    return m;
}

/* Adds delta to the first element of the named parameter. */
static void nudge(Clip *m, const char *name, float delta) {
    float *params = mallocCheck(sizeof(float) * m->layout.total);
    clip_get_params(m, params);
    params[param_layout_find(&m->layout, name)->offset] += delta;
    clip_set_params(m, params);
    free(params);
}

static void test_embed_cache(void) {
    Dataset ds;
    make_dataset(&ds, 6, 10);
    Clip *m = tiny_model(11);
    LoaderOptions source = {.dataset = &ds, .mode = IMAGE_EXACT, .threads = 2, .quiet = 1};
    const char *cache = tmp_path("features.cache");
    float *f1, *f2, *f3;
    int n;
    EmbedCacheStats st;
    char err[512] = "";
    int rc = embed_cache_image_features(m, &source, cache, &f1, &n, &st, err, sizeof err);
    CHECK(rc == 0 && n == 6 && !st.reused && st.computed == 6 && st.bad == 0, "first: %s", err);
    if (rc != 0) return;
    /* row i is item i's image through the tower */
    LoaderOptions in_order = loader_options(&ds, 4, 1);
    in_order.shuffle = 0;
    Loader *l = open_loader(&in_order);
    const LoaderBatch *b = loader_next(l);
    float direct[4 * 8];
    for (int i = 0; i < 4 * 8; i++) direct[i] = NAN;
    clip_encode_images(m, b->images, b->size, direct);
    loader_close(l);
    /* same batches, same op order: bitwise equal in principle; 1e-6 leaves room for BLAS
     * threading differences */
    harness_allclose("cached rows == direct features", f1, direct, 4 * 8, 1e-6, 0);
    rc = embed_cache_image_features(m, &source, cache, &f2, &n, &st, err, sizeof err);
    CHECK(rc == 0 && st.reused && st.computed == 0 && memcmp(f1, f2, sizeof(float) * 6 * 8) == 0,
          "second call reuses the file bit for bit");
    free(f2);
    /* the text tower is not part of the key */
    nudge(m, "text_model.final_layer_norm.weight", 0.5f);
    rc = embed_cache_image_features(m, &source, cache, &f2, &n, &st, err, sizeof err);
    CHECK(rc == 0 && st.reused, "text weights do not invalidate image features");
    free(f2);
    /* a vision weight changes the key: rebuilt, and the features move */
    nudge(m, "vision_model.post_layernorm.weight", 0.5f);
    rc = embed_cache_image_features(m, &source, cache, &f3, &n, &st, err, sizeof err);
    CHECK(rc == 0 && !st.reused && st.computed == 6, "vision change rebuilds");
    CHECK(rc == 0 && memcmp(f1, f3, sizeof(float) * 6 * 8) != 0, "new features differ");
    free(f3);
    /* features computed in another precision are another cache; fp32 ones share the key on
     * every backend (a copy of the CPU table that says bf16 stands for the GPU's) */
    Backend bf16 = *backend_cpu();
    bf16.precision = PRECISION_BF16;
    uint64_t key = embed_cache_key(m, IMAGE_EXACT);
    m->be = &bf16;
    CHECK(embed_cache_key(m, IMAGE_EXACT) != key, "the precision is part of the key");
    bf16.precision = PRECISION_FP32;
    CHECK(embed_cache_key(m, IMAGE_EXACT) == key, "fp32 keys do not depend on the backend table");
    m->be = backend_cpu();
    /* another decode mode, a corrupt file, and another item list all rebuild */
    source.mode = IMAGE_FAST;
    rc = embed_cache_image_features(m, &source, cache, &f3, &n, &st, err, sizeof err);
    CHECK(rc == 0 && !st.reused, "decode mode is part of the key");
    free(f3);
    size_t size;
    char *bytes = read_file(cache, &size);
    bytes[size / 2] ^= 4;
    write_file_atomic(cache, bytes, size);
    free(bytes);
    rc = embed_cache_image_features(m, &source, cache, &f3, &n, &st, err, sizeof err);
    CHECK(rc == 0 && !st.reused, "a corrupt cache is rebuilt");
    free(f3);
    free(ds.items[5].source_id);
    ds.items[5].source_id = strdupCheck("renamed");
    rc = embed_cache_image_features(m, &source, cache, &f3, &n, &st, err, sizeof err);
    CHECK(rc == 0 && !st.reused, "a changed image id is rebuilt");
    free(f3);
    free(f1);
    clip_free(m);
    dataset_free(&ds);
}

/* Issue defects: an image replaced under the same path kept its old row; an unreadable image
 * was cached as a NaN row, poisoning every later run after the file was fixed; a dataset with no
 * readable image got an internal error later on. */
static void test_embed_cache_content_and_failures(void) {
    Dataset ds;
    make_dataset(&ds, 4, 21);
    Clip *m = tiny_model(12);
    LoaderOptions source = {.dataset = &ds, .mode = IMAGE_EXACT, .threads = 1, .quiet = 1};
    const char *cache = tmp_path("content.cache");
    float *f1 = NULL, *f2 = NULL;
    int n;
    EmbedCacheStats st;
    char err[512] = "";
    size_t size0;
    char *original = read_file(ds.items[2].image_path, &size0);
    int rc = embed_cache_image_features(m, &source, cache, &f1, &n, &st, err, sizeof err);
    CHECK(rc == 0 && !st.reused && st.bad == 0, "first: %s", err);
    /* the same path, another picture (another size too, so the stamp differs on any clock) */
    Dataset other;
    make_dataset(&other, 3, 99); /* rewrites img_00..img_02 with other pixels */
    dataset_free(&other);
    rc = embed_cache_image_features(m, &source, cache, &f2, &n, &st, err, sizeof err);
    CHECK(rc == 0 && !st.reused && st.computed == 4, "a replaced image rebuilds: %s", err);
    CHECK(rc == 0 && memcmp(f1 + 2 * 8, f2 + 2 * 8, sizeof(float) * 8) != 0, "its row moves");
    free(f2);
    /* an unreadable image: NaN row, and no cache file written */
    write_file_atomic(ds.items[2].image_path, "not a jpeg", 10);
    unlink(cache);
    rc = embed_cache_image_features(m, &source, cache, &f2, &n, &st, err, sizeof err);
    CHECK(rc == 0 && st.bad == 1 && st.computed == 3, "one bad image: %s (bad %d)", err, st.bad);
    CHECK(rc == 0 && isnan(f2[2 * 8]), "the bad image's row is NaN");
    CHECK(access(cache, F_OK) != 0, "a run with a failed image must not write the cache");
    free(f2);
    /* fixed: read again, cached, finite */
    write_file_atomic(ds.items[2].image_path, original, size0);
    rc = embed_cache_image_features(m, &source, cache, &f2, &n, &st, err, sizeof err);
    CHECK(rc == 0 && st.bad == 0 && !st.reused && isfinite(f2[2 * 8]), "fixed image read: %s", err);
    CHECK(access(cache, F_OK) == 0, "now the cache is written");
    free(f2);
    /* nothing readable at all: refused with a message */
    for (int i = 0; i < 4; i++) write_file_atomic(ds.items[i].image_path, "junk", 4);
    rc = embed_cache_image_features(m, &source, cache, &f2, &n, &st, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "none of the 4 images"), "all unreadable: rc %d, '%s'", rc, err);
    if (rc == 0) free(f2);
    free(original);
    free(f1);
    clip_free(m);
    dataset_free(&ds);
}

int main(void) {
    scratch_make("test_loader");
    RUN_TEST(test_shard_round_trip);
    RUN_TEST(test_shard_crc);
    RUN_TEST(test_prep_resume);
    RUN_TEST(test_prep_skips_bad_images);
    RUN_TEST(test_prep_all_unreadable);
    RUN_TEST(test_loader_deterministic);
    RUN_TEST(test_loader_ranks);
    RUN_TEST(test_loader_captions);
    RUN_TEST(test_loader_resume);
    RUN_TEST(test_loader_bad_images);
    RUN_TEST(test_embed_cache);
    RUN_TEST(test_embed_cache_content_and_failures);
    scratch_remove();
    return test_summary();
}
