/*
 * bench_loader.c: loader throughput (images/s delivered as normalised float batches) from
 * raw JPEGs (exact and fast decode) and from tng_prep shards.
 *
 *   bench_loader DIR [N] [THREADS] [R]
 *
 * Writes N COCO-sized JPEGs (640x480, quality 90, smooth content plus noise) into DIR once,
 * prepares shards from them into DIR/shards once, then times one epoch per configuration
 * (batch 64, shuffled, after one warm-up batch). Timing lives here, never in the tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>

#include "util/common.h"  // defines: die, mallocCheck, write_file_atomic, now_seconds
#include "dataset/dataset.h" // defines: Dataset, dataset_push_item
#include "dataset/loader.h"  // defines: Loader, loader_open, loader_next
#include "util/rng.h"     // defines: Rng
#include "dataset/shard.h"   // defines: shard_prep

static void make_images(const char *dir, int n, Dataset *ds) {
    const int W = 640, H = 480;
    uint8_t *rgb = mallocCheck((size_t)W * H * 3);
    Rng rng;
    rng_seed(&rng, 1);
    memset(ds, 0, sizeof *ds);
    for (int i = 0; i < n; i++) {
        char path[512], caption[64];
        snprintf(path, sizeof path, "%s/img_%05d.jpg", dir, i);
        if (access(path, F_OK) != 0) {
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    for (int c = 0; c < 3; c++) {
                        double v = 128 + 90 * sin((x + 7 * i) / (9.0 + c) + y / (13.0 + i % 5)) +
                                   (double)rng_below(&rng, 40) - 20;
                        rgb[((size_t)y * W + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
            uint8_t *jpeg;
            size_t size;
            char err[IMAGE_ERROR_SIZE];
            if (image_encode_jpeg(rgb, W, H, 90, &jpeg, &size, err, sizeof err) != IMAGE_OK) die("%s", err);
            if (write_file_atomic(path, jpeg, size) != 0) die("cannot write %s", path);
            free(jpeg);
        }
        snprintf(caption, sizeof caption, "image %d", i);
        dataset_item_add_caption(dataset_push_item(ds, path, caption), caption);
    }
    free(rgb);
}

static void time_epoch(const char *what, LoaderOptions opt) {
    char err[512];
    Loader *l = loader_open(&opt, err, sizeof err);
    if (!l) die("%s", err);
    loader_next(l); /* warm-up: threads started, page cache touched */
    long batches = loader_batches_per_epoch(l) - 1, images = 0;
    double start = now_seconds();
    for (long k = 0; k < batches; k++) images += loader_next(l)->size;
    double seconds = now_seconds() - start;
    printf("| %-28s | %d | %7.1f | %6.2f |\n", what, opt.threads, images / seconds,
           1000 * seconds / images);
    loader_close(l);
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: bench_loader DIR [N] [THREADS] [R]");
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 512, threads = argc > 3 ? atoi(argv[3]) : 2;
    int R = argc > 4 ? atoi(argv[4]) : 224;
    mkdir(dir, 0755);
    Dataset ds;
    make_images(dir, n, &ds);
    char shard_dir[512], err[512];
    snprintf(shard_dir, sizeof shard_dir, "%s/shards", dir);
    ShardPrepOptions popt = {.out_dir = shard_dir, .image_size = R, .mode = IMAGE_EXACT,
                             .shard_items = 256, .threads = threads, .progress = 0};
    ShardPrepStats stats;
    double t0 = now_seconds();
    if (shard_prep(&ds, &popt, &stats, err, sizeof err) != 0) die("%s", err);
    double prep = now_seconds() - t0;
    printf("%d JPEGs 640x480 q90, R=%d, batch 64; prep %s: %.1f s (%.1f img/s, %d threads)\n\n", n,
           R, stats.shards_written ? "ran" : "was already done", prep, n / prep, threads);
    printf("| source | threads | images/s | ms/image |\n|---|---|---|---|\n");
    LoaderOptions opt = {.dataset = &ds, .image_size = R, .mode = IMAGE_EXACT, .batch_size = 64,
                         .threads = threads, .seed = 1, .shuffle = 1, .world = 1};
    time_epoch("raw JPEG, exact decode", opt);
    opt.mode = IMAGE_FAST;
    time_epoch("raw JPEG, fast (DCT-scaled)", opt);
    opt.dataset = NULL;
    opt.shard_dir = shard_dir;
    opt.image_size = 0;
    time_epoch("shards (CRC + normalise)", opt);
    dataset_free(&ds);
    return 0;
}
