/*
 * tng_prep: converts a dataset into shards of preprocessed images (see shard.h).
 *
 * Decoding runs on --threads threads; shards are written one after another, each atomically,
 * so an interrupted run is resumed by running the same command again: finished shards are
 * verified and kept, the unfinished one is redone. Bad images are skipped with one warning
 * each and listed in OUT/skipped.txt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cli.h"     // defines: CliOption, cli_getopt_table, cli_usage, cli_long
#include "util/common.h"  // defines: die, now_seconds
#include "dataset/dataset.h" // defines: Dataset, dataset_load, dataset_format_parse
#include "dataset/shard.h"   // defines: ShardPrepOptions, shard_prep

static const CliOption OPTIONS[] = {
    {"data", "FILE", "dataset: COCO captions JSON, Karpathy dataset_coco.json, CSV/TSV"},
    {"out", "DIR", "output folder (created if missing)"},
    {"format", "NAME", "auto (default), coco, karpathy, csv, negbench-mcq, negbench-retrieval, ccneg"},
    {"image-root", "DIR", "image folder: relative paths go under it, absolute ones keep their name"},
    {"instances", "FILE", "COCO instances JSON: object labels from its categories"},
    {"splits", "LIST", "Karpathy: comma-separated splits to keep (e.g. train,restval)"},
    {"image-size", "R", "crop size (default 224)"},
    {"shard-items", "N", "dataset items per shard (default 1000)"},
    {"threads", "N", "decoding threads (default 2)"},
    {"fast", NULL, "DCT-scaled decoding: faster, NOT bit-exact with Pillow"},
    {"no-progress", NULL, "no progress output"},
    {"help", NULL, "show this help"},
};
enum { OPT_DATA, OPT_OUT, OPT_FORMAT, OPT_ROOT, OPT_INSTANCES, OPT_SPLITS, OPT_SIZE, OPT_ITEMS,
       OPT_THREADS, OPT_FAST, OPT_NO_PROGRESS, OPT_HELP, N_OPTIONS };

static void usage(FILE *out) {
    cli_usage(out, "tng_prep", "--data FILE --out DIR [options]",
              "Writes DIR/shard-NNNNN.tng (uint8 RxR crops + captions, objects, ids), DIR/skipped.txt\n"
              "and DIR/manifest.txt. Run the same command again to resume an interrupted run.",
              OPTIONS, N_OPTIONS);
}

int main(int argc, char **argv) {
    const char *data = NULL;
    DatasetOptions dopt = {0};
    ShardPrepOptions popt = {.image_size = 224, .shard_items = 1000, .threads = 2, .progress = 1,
                             .mode = IMAGE_EXACT};
    struct option *table = cli_getopt_table(OPTIONS, N_OPTIONS);
    for (int opt; (opt = getopt_long(argc, argv, "", table, NULL)) != -1;) {
        switch (opt - CLI_OPTION_BASE) {
        case OPT_DATA: data = optarg; break;
        case OPT_OUT: popt.out_dir = optarg; break;
        case OPT_FORMAT:
            if (dataset_format_parse(optarg, &dopt.format) != 0)
                die("tng_prep: unknown --format '%s' (see --help)", optarg);
            break;
        case OPT_ROOT: dopt.image_root = optarg; break;
        case OPT_INSTANCES: dopt.instances = optarg; break;
        case OPT_SPLITS: dopt.splits = optarg; break;
        case OPT_SIZE: popt.image_size = (int)cli_long("image-size", optarg, 1, 4096); break;
        case OPT_ITEMS: popt.shard_items = (int)cli_long("shard-items", optarg, 1, 1000000); break;
        case OPT_THREADS: popt.threads = (int)cli_long("threads", optarg, 1, 256); break;
        case OPT_FAST: popt.mode = IMAGE_FAST; break;
        case OPT_NO_PROGRESS: popt.progress = 0; break;
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    free(table);
    if (optind < argc || !data || !popt.out_dir) {
        if (optind < argc) fprintf(stderr, "tng_prep: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "tng_prep: --data and --out are required\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    Dataset ds;
    double start = now_seconds();
    if (dataset_load(data, &dopt, &ds, err, sizeof err) != 0) die("tng_prep: %s", err);
    fprintf(stderr, "tng_prep: %s: %d images, %ld captions (%s)\n", data, ds.count,
            dataset_caption_count(&ds), dataset_format_name(ds.format));
    ShardPrepStats stats;
    if (shard_prep(&ds, &popt, &stats, err, sizeof err) != 0) die("tng_prep: %s", err);
    fprintf(stderr,
            "tng_prep: %ld images in %d shards (%d written, %d kept from an earlier run), "
            "%ld skipped%s%s%s, %.1f s\n",
            stats.records, stats.shards, stats.shards_written, stats.shards_kept, stats.skipped,
            stats.skipped ? " (listed in " : "", stats.skipped ? popt.out_dir : "",
            stats.skipped ? "/" SHARD_SKIPPED ")" : "", now_seconds() - start);
    dataset_free(&ds);
    return 0;
}
