/*
 * tng_negate: the negation texts TNG training makes, printed for reading (one record per
 * text, TSV or JSON lines, tng/records.h) or summed up (--stats, tng/stats.h).
 *
 *   tng_negate [--data FILE [--model DIR]] [generator options] [--jsonl | --stats]
 *   ... | tng_negate --batch 8            (captions on stdin, one per line)
 *
 * The one design choice: nothing here re-implements training's path. Batches come from the
 * same loader, through the same look-ahead and TNG producer (train/lookahead.h) that
 * tng_train uses, so with the same data, --seed, --batch, --captions and generator options
 * the texts are byte for byte the ones tng_train trains on (tests/test_negate.c checks it
 * against tng_train --log-texts). That holds for a run with the vision tower frozen (the
 * default) given its model (--model RUN), and with --ranks N for `mpirun -np N tng_train`
 * with --tng-scope local; --tng-scope global trains on the texts one process makes with
 * --batch N*B.
 *
 * Without --model the images are not read at all: their embeddings are stand-ins made from
 * the captions (tng/caption_embed.h), so the neighbours, and the objects and negated captions
 * they pick, follow caption similarity instead of image similarity.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset/caption_lines.h" // defines: caption_lines_parse
#include "dataset/embed_cache.h"   // defines: embed_cache_image_features
#include "dataset/loader.h"        // defines: Loader, LoaderOptions, loader_open, loader_items
#include "io/model_path.h"         // defines: model_path_load
#include "train/lookahead.h"       // defines: Lookahead, lookahead_open, lookahead_texts
#include "tng/caption_embed.h"     // defines: caption_embed_items, CAPTION_EMBED_DIM
#include "tng/generator.h"         // defines: TNG_TEXT_OPTION_ROWS
#include "tng/records.h"           // defines: TngRecordFrame, tng_records_write
#include "tng/stats.h"             // defines: TngStats, tng_stats_add, tng_stats_print
#include "util/cli.h"              // defines: CliOption, CliProgram, cli_parse, cli_fail, CLI_* row specs
#include "util/common.h"           // defines: die, mallocCheck, callocCheck

enum { MAX_RANKS = 64 };

typedef struct {
    const char *data, *format, *image_root, *model, *embed_cache;
    int captions_all, shuffle, keep_last;
    int neg_per_image, contradictions, standalone, released;
    float mcq_loss; /* > 0: the multiple-choice options too (its value weighs tng_train's loss) */
    uint64_t seed;
    int batch, ranks, threads;
    int precision; /* Precision */
    int backend; /* BackendChoice: where --model computes the image embeddings */
    long batches;
    int jsonl, stats, top;
} NegateArgs;

static const char *const ON_OFF[] = {"off", "on"}, *const COMPAT[] = {"ours", "released"};
static const char *const CAPTIONS[] = {"one", "all"}, *const LAST[] = {"drop", "keep"};

/* X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP): see util/cli.h */
#define NEGATE_OPTIONS(X)                                                                                    \
    X(DATA, 0, "data", "PATH", NULL, CLI_STRING(data),                                                       \
      "CSV/COCO/Karpathy file or shard folder, as tng_train; none: stdin")                 \
    X(FORMAT, 0, "format", "NAME", "auto", CLI_STRING(format), "dataset format: auto, csv, coco, karpathy")  \
    X(IMAGE_ROOT, 0, "image-root", "DIR", NULL, CLI_STRING(image_root), "re-root the image paths of --data") \
    X(MODEL, 0, "model", "DIR", NULL, CLI_STRING(model),                                                     \
      "neighbours from its image embeddings (HF dir, checkpoint, run); none: captions")      \
    X(EMBED_CACHE, 0, "embed-cache", "FILE", NULL, CLI_STRING(embed_cache),                                  \
      "keep --model's image embeddings here (reused while model and images match)")                   \
    X(CAPTIONS, 0, "captions", "MODE", "one", CLI_CHOICE(captions_all, CAPTIONS),                            \
      "one (a caption per image per epoch) or all (every pair)")                               \
    X(SHUFFLE, 0, "shuffle", "on|off", NULL, CLI_CHOICE(shuffle, ON_OFF),                                    \
      "tng_train's shuffled order, or the input's: on for --data, off for stdin")                 \
    X(LAST_BATCH, 0, "last-batch", "MODE", NULL, CLI_CHOICE(keep_last, LAST),                                \
      "an epoch's short last batch: drop (as tng_train, for --data) or keep (stdin)") \
    TNG_TEXT_OPTION_ROWS(X)                                                                                  \
    X(TNG_COMPAT, 0, "tng-compat", "MODE", "ours", CLI_CHOICE(released, COMPAT),                             \
      "ours or released: the authors' code's full-negation pairing")                                         \
    X(SEED, 0, "seed", "N", "0", CLI_U64(seed, 1ULL << 62), "seed of the data order and TNG, as tng_train")  \
    BACKEND_OPTION_ROWS(X, CLI_AS_IS, backend, precision)                                                    \
    X(BATCH, 0, "batch", "N", "128", CLI_INT(batch, 1, 65536), "images per micro-batch (per rank)")          \
    X(RANKS, 0, "ranks", "N", "1", CLI_INT(ranks, 1, MAX_RANKS),                                             \
      "the texts of each rank of mpirun -np N tng_train --tng-scope local")                                  \
    X(BATCHES, 0, "batches", "N", NULL, CLI_LONG(batches, 1, 1L << 40),                                      \
      "micro-batches to make (default: one epoch); later epochs follow as in training")                      \
    X(THREADS, 0, "threads", "N", "1", CLI_INT(threads, 1, 256), "image decoding threads (with --model)")    \
    X(JSONL, 0, "jsonl", NULL, NULL, CLI_FLAG(jsonl, 1), "JSON lines instead of TSV")                        \
    X(STATS, 0, "stats", NULL, NULL, CLI_FLAG(stats, 1), "print summary numbers instead of the texts")       \
    X(TOP, 0, "top", "N", "25", CLI_INT(top, 1, 100000), "--stats: most frequent objects listed")            \
    X(HELP, 0, "help", NULL, NULL, CLI_HELP, "show this help")

enum { NEGATE_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

#define CLI_ARGS NegateArgs
CLI_PROGRAM(NEGATE_OPTIONS, "tng_negate", "[--data FILE [--model DIR]] [options] [--jsonl | --stats]",
            "Prints the TNG texts training makes: one line per text, as TSV with a header (batch,\n"
            "image, id, kind, object, source, text) or as JSON lines (also tokens and cut). In a\n"
            "field a tab, newline, carriage return and backslash are written \\t \\n \\r \\\\.\n"
            "Captions come from a dataset (--data) or one per line on stdin. With a model the\n"
            "neighbours come from its image embeddings, as in tng_train with the vision tower\n"
            "frozen. Without one the images are not read: each image's embedding is a bag of its\n"
            "captions' words (lexicon nouns weigh 1, other words of 4+ letters 1/4, hashed into\n"
            "256 dimensions), so neighbours follow caption similarity. The same data, seed, batch\n"
            "and generator options as a tng_train run given as the model: its texts, byte for byte.");

/* The dataset: --data (a file; a folder is tng_prep shards, read by the loader) or stdin. */
static void load_input(const NegateArgs *a, Dataset *ds, const char **shard_dir) {
    char err[1024];
    *shard_dir = NULL;
    if (!a->data) {
        size_t cap = 1 << 16, len = 0;
        char *text = mallocCheck(cap);
        for (size_t got; (got = fread(text + len, 1, cap - len, stdin)) > 0;)
            if ((len += got) == cap) text = reallocCheck(text, cap *= 2);
        if (ferror(stdin)) die("tng_negate: cannot read stdin: %s", strerror(errno));
        if (caption_lines_parse(text, len, "stdin", ds, err, sizeof err) != 0) die("tng_negate: %s", err);
        free(text);
        if (ds->count == 0) die("tng_negate: no captions on stdin (one per line; or give --data)");
        return;
    }
    struct stat st;
    if (stat(a->data, &st) != 0) die("tng_negate: %s: %s", a->data, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        *shard_dir = a->data;
        return;
    }
    DatasetOptions dopt = {.image_root = a->image_root};
    if (dataset_format_parse(a->format, &dopt.format) != 0) cli_fail(&PROGRAM, "unknown --format '%s'", a->format);
    if (dataset_load(a->data, &dopt, ds, err, sizeof err) != 0) die("tng_negate: %s", err);
    if (ds->count == 0) die("tng_negate: %s: the dataset is empty", a->data);
}

/* --model: the model, prepared like tng_train prepares it (the same batch, so the image
 * embeddings come out of the same computation). */
static Clip *open_model(const NegateArgs *a) {
    ClipConfig cfg;
    float *params = NULL;
    char err[1024];
    if (model_path_load(a->model, &cfg, &params, NULL, 0, err, sizeof err) != 0) die("tng_negate: --model: %s", err);
    char backend[256];
    const Backend *be = backend_select((BackendChoice)a->backend, (Precision)a->precision, 0, backend, sizeof backend);
    Clip *m = clip_create(&cfg, be);
    clip_set_params(m, params);
    free(params);
    ClipTrainConfig inference = {.temperature = 1.0f, .train_vision = 0, .train_text = 0};
    clip_prepare(m, &inference, a->batch, 1);
    return m;
}

/* The embedding of every item: the model's image embeddings, or caption stand-ins. */
static float *item_features(const NegateArgs *a, Clip *model, const LoaderOptions *source, const Dataset *items,
                            const Lexicon *lex, int *dim) {
    if (!model) {
        *dim = CAPTION_EMBED_DIM;
        float *features = mallocCheck(sizeof(float) * (size_t)items->count * CAPTION_EMBED_DIM);
        caption_embed_items(items, lex, CAPTION_EMBED_DIM, features);
        return features;
    }
    float *features;
    int n;
    EmbedCacheStats stats;
    char err[1024];
    fprintf(stderr, "tng_negate: image embeddings of %d images...\n", items->count);
    if (embed_cache_image_features(model, source, a->embed_cache, &features, &n, &stats, err, sizeof err) != 0)
        die("tng_negate: %s", err);
    *dim = model->cfg.embed_dim;
    return features;
}

int main(int argc, char **argv) {
    NegateArgs a = {0};
    int seen[N_OPTIONS];
    cli_parse(&PROGRAM, argc, argv, &a, seen);
    if (!seen[OPT_SHUFFLE]) a.shuffle = a.data != NULL;
    if (!seen[OPT_LAST_BATCH]) a.keep_last = a.data == NULL;
    if (a.model && !a.data) cli_fail(&PROGRAM, "--model needs --data: captions on stdin have no images");
    if (a.embed_cache && !a.model) cli_fail(&PROGRAM, "--embed-cache needs --model");
    if (a.jsonl && a.stats) cli_fail(&PROGRAM, "give --jsonl or --stats, not both");

    Dataset ds = {0};
    const char *shard_dir;
    load_input(&a, &ds, &shard_dir);
    Tokenizer *tok = tokenizer_load(NULL);
    Lexicon *lex = lexicon_load(NULL);
    Clip *model = a.model ? open_model(&a) : NULL;
    TngConfig cfg;
    tng_config_default(&cfg);
    cfg.negations_per_image = a.neg_per_image;
    cfg.contradictions = a.contradictions;
    cfg.standalone = a.standalone;
    cfg.mcq = a.mcq_loss > 0;
    cfg.seed = a.seed;
    cfg.released = a.released;
    if (model) cfg.context = model->cfg.context_length;

    /* one loader and one look-ahead per rank, as each rank of the run has */
    int W = a.ranks;
    Loader *loaders[MAX_RANKS];
    Lookahead ahead[MAX_RANKS];
    Dist *dists[MAX_RANKS];
    char err[1024];
    float *features = NULL;
    int dim = 0;
    for (int r = 0; r < W; r++) {
        LoaderOptions lopt = {.shard_dir = shard_dir, .dataset = shard_dir ? NULL : &ds,
                              .image_size = model ? model->cfg.image_size : 0, .mode = IMAGE_EXACT,
                              .batch_size = a.batch, .threads = a.threads, .seed = a.seed, .shuffle = a.shuffle,
                              .rank = r, .world = W,
                              .captions = a.captions_all ? LOADER_ALL_PAIRS : LOADER_ONE_CAPTION,
                              .drop_last = !a.keep_last, .skip_images = !model};
        loaders[r] = loader_open(&lopt, err, sizeof err);
        if (!loaders[r]) die("tng_negate: %s", err);
        if (loader_batches_per_epoch(loaders[r]) < 1)
            die("tng_negate: fewer samples than one batch of %d per rank; give a smaller --batch", a.batch);
        if (r == 0) features = item_features(&a, model, &lopt, loader_items(loaders[0]), lex, &dim);
        /* a one-process Dist told its rank: the streams and the loader's shares are rank r's. Its
         * collectives see this rank alone, so a batch that is empty on another rank only (every
         * image unreadable) is not skipped here as the run skips it on every rank */
        dists[r] = dist_init(NULL, NULL);
        dists[r]->rank = r;
        dists[r]->world = W;
        LookaheadOptions la = {.loader = loaders[r], .model = model, .cached_features = features, .dim = dim,
                               .dist = dists[r], .batch = a.batch, .tng = &cfg, .lexicon = lex, .tokenizer = tok};
        lookahead_open(&ahead[r], &la);
        lookahead_start(&ahead[r]);
    }

    long batches = seen[OPT_BATCHES] ? a.batches : loader_batches_per_epoch(loaders[0]);
    TngStats *stats = a.stats ? tng_stats_create(lex) : NULL;
    if (!a.stats && !a.jsonl) tng_records_tsv_header(stdout);
    for (long b = 0; b < batches; b++) {
        for (int r = 0; r < W; r++) {
            double wait = 0;
            const Pending *p = ahead[r].head;
            const TngTexts *texts = lookahead_texts(&ahead[r], p, &wait);
            if (stats) {
                tng_stats_add(stats, texts);
            } else {
                TngRecordFrame frame = {.batch = p->index, .world = W, .rank = r, .ids = p->ids};
                tng_records_write(stdout, texts, texts->n_texts, &frame, lex, a.jsonl, -1);
            }
            lookahead_release(&ahead[r], texts);
            lookahead_advance(&ahead[r]);
        }
    }
    if (stats) tng_stats_print(stats, stdout, a.top);
    if (fflush(stdout) != 0 || ferror(stdout)) die("tng_negate: error writing stdout");

    tng_stats_free(stats);
    for (int r = 0; r < W; r++) {
        lookahead_close(&ahead[r]);
        loader_close(loaders[r]);
        dists[r]->world = 1;
        dist_finalize(dists[r]);
    }
    free(features);
    if (model) clip_free(model);
    lexicon_free(lex);
    tokenizer_free(tok);
    dataset_free(&ds);
    return 0;
}
