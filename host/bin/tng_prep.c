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

#include "util/cli.h"     // defines: CliOption, CliProgram, cli_parse, cli_fail, CLI_* row specs
#include "util/common.h"  // defines: die, now_seconds
#include "dataset/dataset.h" // defines: Dataset, dataset_load, dataset_format_parse
#include "dataset/shard.h"   // defines: ShardPrepOptions, shard_prep

typedef struct {
    const char *data;
    DatasetOptions dataset;
    ShardPrepOptions prep;
    int fast, no_progress;
} PrepArgs;

static void parse_format(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    if (dataset_format_parse(value, cli_field(opt, args)) != 0)
        cli_fail(prog, "unknown --%s '%s'", opt->name, value);
}

/* X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP): see util/cli.h */
#define PREP_OPTIONS(X)                                                                                      \
    X(DATA, 0, "data", "FILE", NULL, CLI_STRING(data),                                                       \
      "dataset: COCO captions JSON, Karpathy dataset_coco.json, CSV/TSV")                                    \
    X(OUT, 0, "out", "DIR", NULL, CLI_STRING(prep.out_dir), "output folder (created if missing)")            \
    X(FORMAT, 0, "format", "NAME", "auto", CLI_CUSTOM(dataset.format, DatasetFormat, parse_format),          \
      "auto, coco, karpathy, csv, negbench-mcq, negbench-retrieval, ccneg")                                  \
    X(IMAGE_ROOT, 0, "image-root", "DIR", NULL, CLI_STRING(dataset.image_root),                              \
      "image folder: relative paths go under it, absolute ones keep their name")                             \
    X(INSTANCES, 0, "instances", "FILE", NULL, CLI_STRING(dataset.instances),                                \
      "COCO instances JSON: object labels from its categories")                                              \
    X(SPLITS, 0, "splits", "LIST", NULL, CLI_STRING(dataset.splits),                                         \
      "Karpathy: comma-separated splits to keep (e.g. train,restval)")                                       \
    X(IMAGE_SIZE, 0, "image-size", "R", "224", CLI_INT(prep.image_size, 1, 4096), "crop size")               \
    X(SHARD_ITEMS, 0, "shard-items", "N", "1000", CLI_INT(prep.shard_items, 1, 1000000),                     \
      "dataset items per shard")                                                                             \
    X(THREADS, 0, "threads", "N", "2", CLI_INT(prep.threads, 1, 256), "decoding threads")                    \
    X(FAST, 0, "fast", NULL, NULL, CLI_FLAG(fast, 1),                                                        \
      "DCT-scaled decoding: faster, NOT bit-exact with Pillow")                                              \
    X(NO_PROGRESS, 0, "no-progress", NULL, NULL, CLI_FLAG(no_progress, 1), "no progress output")             \
    X(HELP, 0, "help", NULL, NULL, CLI_HELP, "show this help")

enum { PREP_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

#define CLI_ARGS PrepArgs
CLI_PROGRAM(PREP_OPTIONS, "tng_prep", "--data FILE --out DIR [options]",
            "Writes DIR/shard-NNNNN.tng (uint8 RxR crops + captions, objects, ids), DIR/skipped.txt\n"
            "and DIR/manifest.txt. Run the same command again to resume an interrupted run.");

int main(int argc, char **argv) {
    PrepArgs args = {0};
    cli_parse(&PROGRAM, argc, argv, &args, NULL);
    if (!args.data || !args.prep.out_dir) cli_fail(&PROGRAM, "--data and --out are required");
    const char *data = args.data;
    const DatasetOptions dopt = args.dataset;
    ShardPrepOptions popt = args.prep;
    popt.mode = args.fast ? IMAGE_FAST : IMAGE_EXACT;
    popt.progress = !args.no_progress;
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
