/*
 * tng_train: fine-tune (or pre-train) CLIP, the TNG-CLIP way or plainly.
 *
 * A caption travels one road: loader -> TNG generator thread -> tokenizer -> text tower ->
 * InfoNCE -> AdamW. With --tng on, every image gets M negation texts besides its caption,
 * built on the producer thread from the batch's image embeddings (tng.h). The training loop
 * keeps one batch of look-ahead: while step k runs, the producer builds the texts of batch
 * k+1, so the step never waits for generation.
 *
 * Image embeddings for TNG: with the vision tower frozen they never change, so they are
 * computed once per image (embed_cache.h) and the vision tower is not run in training at
 * all. When the vision tower trains, the look-ahead batch is embedded with the weights of
 * the step before it: the latest forward pass available, one step stale.
 *
 * A run directory holds metrics.jsonl (one JSON line per step and per validation), the
 * checkpoints (train_state.h) and the image-embedding cache. SIGINT/SIGTERM write a
 * checkpoint and exit; a second signal exits at once. --resume continues bit-exactly.
 *
 * Data parallel (mpirun -np N ./tng_train ...; dist.h): --batch is per rank, every rank reads
 * a disjoint share of each epoch, and the loss is the exact loss of the N batches as one
 * (model.h, ClipTrainConfig.dist). Rank 0 alone resolves the model and the resume point and
 * broadcasts them, and alone logs, validates and writes checkpoints. Every decision that
 * changes the control flow (stop on a signal, skip a non-finite step) is taken from values
 * all ranks share, so they stay in step. TNG neighbours come from the rank's own batch
 * (--tng-scope local, the paper's per-GPU behaviour) or from all ranks' batches (global).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cli.h"         // defines: CliOption, cli_getopt_table, cli_usage, cli_long, cli_double
#include "util/common.h"      // defines: die, mallocCheck, now_seconds
#include "engine/dist.h"        // defines: Dist, dist_init, dist_finalize, dist_barrier, dist_abort
#include "dataset/embed_cache.h" // defines: embed_cache_image_features
#include "eval/encoder.h"     // defines: Encoder, encoder_attach
#include "eval/evaluate.h"    // defines: evaluate_mcq
#include "dataset/loader.h"      // defines: Loader, loader_open, loader_next, loader_position
#include "engine/model.h"       // defines: Clip, clip_create, clip_forward, clip_backward
#include "engine/optim.h"       // defines: OptimConfig, clip_gradient_norm, clip_optimizer_apply
#include "util/rng.h"         // defines: splitmix64
#include "tng/generator.h"         // defines: TngConfig, tng_producer_start, tng_producer_pop
#include "io/train_state.h" // defines: train_state_save, train_state_load, train_state_latest

/* ----------------------------------------------------------------------------
 * Options */

static const CliOption OPTIONS[] = {
    {"config", "NAME", "train from scratch with a preset: tiny or vit-b-32 (default tiny)"},
    {"init", "DIR", "start from an HF CLIP directory, a tng checkpoint or a tng run"},
    {"data", "PATH", "training data: CSV/COCO/Karpathy file or tng_prep shard folder (default data/cache/synth/train.csv)"},
    {"format", "NAME", "dataset format: auto, csv, coco, karpathy (default auto)"},
    {"image-root", "DIR", "re-root the image paths of --data and --val-mcq"},
    {"captions", "MODE", "one (a caption per image per epoch) or all (every pair) (default one)"},
    {"fast-decode", NULL, "DCT-scaled JPEG decoding: faster, not bit-exact (training only)"},
    {"tng", "on|off", "generate negation texts each batch (default on)"},
    {"neg-per-image", "M", "negation texts per image (default 2: one hybrid, one full)"},
    {"tng-ratio", "R", "fraction of steps on TNG texts; the rest on the original captions alone (default 1)"},
    {"contradictions", "C", "contradiction negatives per image: false for it, positive of no image (default 0)"},
    {"contradiction-weight", "W", "weight of contradiction negatives in the image->text softmax (default 1)"},
    {"tng-compat", "MODE", "ours (default) or released: the authors' code's pairing and targets"},
    {"tng-scope", "MODE", "local (neighbours from this rank's batch, default) or global (all ranks')"},
    {"i2t-target", "MODE", "own, mean, each or released-random (default own; released-random with --tng-compat released)"},
    {"temperature", "T", "fixed:VALUE (e.g. fixed:0.07) or learned (default fixed:0.07)"},
    {"freeze", "TOWER", "vision, text or none (default vision)"},
    {"lr", "X", "peak learning rate (default 5e-6)"},
    {"wd", "X", "AdamW weight decay (default 0.01)"},
    {"beta1", "X", "AdamW beta1 (default 0.9)"},
    {"beta2", "X", "AdamW beta2 (default 0.98)"},
    {"eps", "X", "AdamW epsilon (default 1e-6)"},
    {"batch", "N", "images per micro-batch (default 128)"},
    {"accum", "N", "micro-batches per optimizer step (default 1)"},
    {"epochs", "N", "epochs to train when --steps is not given (default 1)"},
    {"steps", "N", "optimizer steps to train (overrides --epochs)"},
    {"warmup", "N", "linear warmup steps (default 0)"},
    {"schedule", "NAME", "constant or cosine (default constant)"},
    {"grad-clip", "X", "global gradient-norm clip, 0 = off (default 0)"},
    {"seed", "N", "seed of the initialisation, the data order and TNG (default 0)"},
    {"out", "DIR", "run directory (default runs/latest)"},
    {"checkpoint-every", "N", "also checkpoint every N steps, 0 = only at the end (default 0)"},
    {"resume", NULL, "continue the run in --out from its latest checkpoint"},
    {"val-mcq", "CSV", "validation MCQ file (NegBench format), scored every --eval-every steps"},
    {"eval-every", "N", "validation interval in steps, 0 = only at the end (default 0)"},
    {"log-every", "N", "log line interval when not on a terminal (default 10)"},
    {"threads", "N", "image decoding threads (default 1)"},
    {"max-nonfinite", "K", "abort after K non-finite steps in a row (default 5)"},
    {"check-sync", "N", "under mpirun: compare a hash of the weights across ranks every N steps (default 0: off)"},
    {"hang-timeout", "SECONDS", "under mpirun: end the job when a rank makes no progress this long, 0 = never (default 600)"},
    {"help", NULL, "show this help"},
};
enum { OPT_CONFIG, OPT_INIT, OPT_DATA, OPT_FORMAT, OPT_IMAGE_ROOT, OPT_CAPTIONS, OPT_FAST_DECODE,
       OPT_TNG, OPT_NEG_PER_IMAGE, OPT_TNG_RATIO, OPT_CONTRADICTIONS, OPT_CONTRADICTION_WEIGHT,
       OPT_TNG_COMPAT, OPT_TNG_SCOPE, OPT_I2T_TARGET, OPT_TEMPERATURE, OPT_FREEZE,
       OPT_LR, OPT_WD, OPT_BETA1, OPT_BETA2, OPT_EPS, OPT_BATCH, OPT_ACCUM, OPT_EPOCHS, OPT_STEPS,
       OPT_WARMUP, OPT_SCHEDULE, OPT_GRAD_CLIP, OPT_SEED, OPT_OUT, OPT_CHECKPOINT_EVERY,
       OPT_RESUME, OPT_VAL_MCQ, OPT_EVAL_EVERY, OPT_LOG_EVERY, OPT_THREADS, OPT_MAX_NONFINITE,
       OPT_CHECK_SYNC, OPT_HANG_TIMEOUT, OPT_HELP, N_OPTIONS };

typedef enum { I2T_OWN, I2T_MEAN, I2T_RELEASED_RANDOM, I2T_EACH } I2tTarget;
static const char *const I2T_NAMES[] = {"own", "mean", "released-random", "each"};

typedef struct {
    const char *config, *init, *data, *format, *image_root, *out, *val_mcq;
    int captions_all, fast_decode, tng, neg_per_image, released, i2t_given, tng_global;
    int contradictions;
    float contradiction_weight;
    double tng_ratio; /* fraction of steps that use the TNG texts (the rest: originals only) */
    I2tTarget i2t;
    float temperature; /* 0 = learned */
    int train_vision, train_text;
    OptimConfig optim;
    int batch, accum, epochs;
    long steps;
    uint64_t seed;
    long checkpoint_every, eval_every, log_every;
    int resume, threads, max_nonfinite;
    long check_sync;
    double hang_timeout; /* seconds; 0 = no watchdog */
} TrainArgs;

static void usage(FILE *out) {
    cli_usage(out, "tng_train", "[options]",
              "Fine-tunes CLIP with TNG negation texts (or plainly with --tng off) on the CPU.\n"
              "Data parallel: mpirun -np N tng_train ... (--batch is per rank).",
              OPTIONS, N_OPTIONS);
}

static void bad_option(const char *fmt, const char *value) {
    fprintf(stderr, "tng: ");
    fprintf(stderr, fmt, value);
    fprintf(stderr, " (see --help)\n");
    exit(2);
}

static int parse_choice(const char *option, const char *value, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0) return i;
    fprintf(stderr, "tng: --%s does not accept '%s'; choose one of:", option, value);
    for (int i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    exit(2);
}

static void parse_args(int argc, char **argv, TrainArgs *a) {
    *a = (TrainArgs){.config = NULL, .data = "data/cache/synth/train.csv", .format = "auto",
                     .out = "runs/latest", .tng = 1, .neg_per_image = 2, .contradiction_weight = 1,
                     .tng_ratio = 1, .i2t = I2T_OWN,
                     .temperature = 0.07f, .train_vision = 0, .train_text = 1, .batch = 128,
                     .accum = 1, .epochs = 1, .steps = 0, .log_every = 10, .threads = 1,
                     .max_nonfinite = 5, .hang_timeout = 600};
    a->optim = optim_defaults();
    a->optim.lr = 5e-6f;
    a->optim.weight_decay = 0.01f;
    static const char *const on_off[] = {"off", "on"}, *const compat[] = {"ours", "released"};
    static const char *const scopes[] = {"local", "global"};
    static const char *const freeze[] = {"vision", "text", "none"};
    static const char *const schedules[] = {"constant", "cosine"}, *const captions[] = {"one", "all"};
    struct option *table = cli_getopt_table(OPTIONS, N_OPTIONS);
    for (int opt; (opt = getopt_long(argc, argv, "", table, NULL)) != -1;) {
        const char *name = opt >= CLI_OPTION_BASE ? OPTIONS[opt - CLI_OPTION_BASE].name : "";
        switch (opt - CLI_OPTION_BASE) {
        case OPT_CONFIG: a->config = optarg; break;
        case OPT_INIT: a->init = optarg; break;
        case OPT_DATA: a->data = optarg; break;
        case OPT_FORMAT: a->format = optarg; break;
        case OPT_IMAGE_ROOT: a->image_root = optarg; break;
        case OPT_CAPTIONS: a->captions_all = parse_choice(name, optarg, captions, 2); break;
        case OPT_FAST_DECODE: a->fast_decode = 1; break;
        case OPT_TNG: a->tng = parse_choice(name, optarg, on_off, 2); break;
        case OPT_NEG_PER_IMAGE: a->neg_per_image = (int)cli_long(name, optarg, 1, 16); break;
        case OPT_TNG_RATIO: a->tng_ratio = cli_double(name, optarg, 0.01, 1); break;
        case OPT_CONTRADICTIONS: a->contradictions = (int)cli_long(name, optarg, 0, 16); break;
        case OPT_CONTRADICTION_WEIGHT:
            a->contradiction_weight = (float)cli_double(name, optarg, 1e-6, 1e6);
            break;
        case OPT_TNG_COMPAT: a->released = parse_choice(name, optarg, compat, 2); break;
        case OPT_TNG_SCOPE: a->tng_global = parse_choice(name, optarg, scopes, 2); break;
        case OPT_I2T_TARGET:
            a->i2t = (I2tTarget)parse_choice(name, optarg, I2T_NAMES, 4);
            a->i2t_given = 1;
            break;
        case OPT_TEMPERATURE:
            if (strcmp(optarg, "learned") == 0) a->temperature = 0;
            else if (strncmp(optarg, "fixed:", 6) == 0)
                a->temperature = (float)cli_double(name, optarg + 6, 1e-4, 100);
            else bad_option("--temperature expects fixed:VALUE or learned, got '%s'", optarg);
            break;
        case OPT_FREEZE: {
            int f = parse_choice(name, optarg, freeze, 3);
            a->train_vision = f != 0;
            a->train_text = f != 1;
            break;
        }
        case OPT_LR: a->optim.lr = (float)cli_double(name, optarg, 0, 10); break;
        case OPT_WD: a->optim.weight_decay = (float)cli_double(name, optarg, 0, 10); break;
        case OPT_BETA1: a->optim.beta1 = (float)cli_double(name, optarg, 0, 0.999999); break;
        case OPT_BETA2: a->optim.beta2 = (float)cli_double(name, optarg, 0, 0.999999); break;
        case OPT_EPS: a->optim.eps = (float)cli_double(name, optarg, 1e-12, 1); break;
        case OPT_BATCH: a->batch = (int)cli_long(name, optarg, 1, 65536); break;
        case OPT_ACCUM: a->accum = (int)cli_long(name, optarg, 1, 1024); break;
        case OPT_EPOCHS: a->epochs = (int)cli_long(name, optarg, 1, 100000); break;
        case OPT_STEPS: a->steps = cli_long(name, optarg, 1, 1L << 40); break;
        case OPT_WARMUP: a->optim.warmup_steps = cli_long(name, optarg, 0, 1L << 40); break;
        case OPT_SCHEDULE: a->optim.schedule = (Schedule)parse_choice(name, optarg, schedules, 2); break;
        case OPT_GRAD_CLIP: a->optim.grad_clip = (float)cli_double(name, optarg, 0, 1e9); break;
        case OPT_SEED: a->seed = (uint64_t)cli_long(name, optarg, 0, 1L << 62); break;
        case OPT_OUT: a->out = optarg; break;
        case OPT_CHECKPOINT_EVERY: a->checkpoint_every = cli_long(name, optarg, 0, 1L << 40); break;
        case OPT_RESUME: a->resume = 1; break;
        case OPT_VAL_MCQ: a->val_mcq = optarg; break;
        case OPT_EVAL_EVERY: a->eval_every = cli_long(name, optarg, 0, 1L << 40); break;
        case OPT_LOG_EVERY: a->log_every = cli_long(name, optarg, 1, 1L << 40); break;
        case OPT_THREADS: a->threads = (int)cli_long(name, optarg, 1, 256); break;
        case OPT_MAX_NONFINITE: a->max_nonfinite = (int)cli_long(name, optarg, 1, 1000000); break;
        case OPT_CHECK_SYNC: a->check_sync = cli_long(name, optarg, 0, 1L << 40); break;
        case OPT_HANG_TIMEOUT: a->hang_timeout = cli_double(name, optarg, 0, 1e7); break;
        case OPT_HELP: usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    free(table);
    if (optind < argc) bad_option("unexpected argument '%s'", argv[optind]);
    if (a->config && a->init) bad_option("give --config or --init, not both (%s)", "--config with --init");
    if (!a->config && !a->init) a->config = "tiny";
    if (!a->train_vision && !a->train_text && a->temperature > 0)
        bad_option("%s: nothing would train", "--freeze with a fixed temperature");
    if (a->released && !a->i2t_given) a->i2t = I2T_RELEASED_RANDOM;
    if (!a->tng && a->released) bad_option("%s needs --tng on", "--tng-compat released");
    if (!a->tng && a->contradictions) bad_option("%s needs --tng on", "--contradictions");
    if (!a->tng && a->tng_ratio < 1) bad_option("%s needs --tng on", "--tng-ratio");
}

static void print_settings(const TrainArgs *a, const Dist *d, FILE *out) {
    fprintf(out, "tng_train settings:\n");
    fprintf(out, "  model      %s %s\n", a->init ? "init" : "config", a->init ? a->init : a->config);
    fprintf(out, "  data       %s (format %s, captions %s%s)\n", a->data, a->format,
            a->captions_all ? "all" : "one", a->fast_decode ? ", fast decode" : "");
    fprintf(out, "  tng        %s, M=%d, compat %s, i2t target %s, scope %s, contradictions %d (weight %g), "
                 "ratio %g\n",
            a->tng ? "on" : "off", a->neg_per_image, a->released ? "released" : "ours",
            I2T_NAMES[a->i2t], a->tng_global ? "global" : "local", a->contradictions,
            a->contradiction_weight, a->tng_ratio);
    if (a->temperature > 0) fprintf(out, "  temperature fixed %g\n", a->temperature);
    else fprintf(out, "  temperature learned\n");
    fprintf(out, "  train      vision %s, text %s\n", a->train_vision ? "yes" : "frozen",
            a->train_text ? "yes" : "frozen");
    fprintf(out, "  optimizer  AdamW lr %g wd %g betas (%g, %g) eps %g, %s schedule, warmup %ld, clip %g\n",
            a->optim.lr, a->optim.weight_decay, a->optim.beta1, a->optim.beta2, a->optim.eps,
            a->optim.schedule == SCHEDULE_COSINE ? "cosine" : "constant", a->optim.warmup_steps,
            a->optim.grad_clip);
    fprintf(out, "  batch      %d x accum %d, %s %ld\n", a->batch, a->accum, a->steps ? "steps" : "epochs",
            a->steps ? a->steps : (long)a->epochs);
    fprintf(out, "  parallel   %d rank%s (%s), global batch %d, check-sync every %ld, hang timeout %g s\n",
            d->world, d->world == 1 ? "" : "s", d->world == 1 ? "one process" : dist_transport(),
            a->batch * d->world, a->check_sync, a->hang_timeout);
    fprintf(out, "  run        out %s, seed %" PRIu64 ", checkpoint every %ld, eval every %ld%s\n", a->out,
            a->seed, a->checkpoint_every, a->eval_every, a->resume ? ", resuming" : "");
}

/* ----------------------------------------------------------------------------
 * Signals: the first asks for a checkpoint and a clean exit, the second exits at once */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    if (stop_requested) _exit(128 + sig);
    stop_requested = 1;
}

static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ----------------------------------------------------------------------------
 * The look-ahead batch: what step k needs of loader batch k after the loader has moved on */

typedef struct {
    int n;
    LoaderPosition start; /* where this batch starts: the resume point if it is next */
    uint64_t epoch;
    int64_t index;        /* global micro-batch number, the same on every rank */
    int64_t stream;       /* index * world + rank: seeds this rank's TNG texts (local scope)
                             and released targets; = index in one process */
    const char **captions; /* borrowed from the dataset items, which outlive the loader */
    float *features;      /* [n, D] image embeddings (frozen tower or look-ahead) */
    float *images;        /* [n, 3, R, R] when the vision tower trains, else NULL */
    /* --tng-scope global: all ranks' images in the loader's order (gather_global), the pool
       this rank's texts are made from */
    int global_n;
    int *own_at;          /* [n] where this rank's image j sits in that order */
    const char **global_captions; /* [global_n], pointers into caption_arena */
    float *global_features;       /* [global_n, D] */
    char *caption_arena;
    size_t arena_capacity;
} Pending;

/* The producer's input queue: the training loop pushes look-ahead batches, the producer's
 * source callback pops them. Closing it ends the producer. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    Pending *slots[4];
    int head, count, closed;
    int dim;
} InputQueue;

static void queue_push(InputQueue *q, Pending *p) {
    pthread_mutex_lock(&q->lock);
    while (q->count == 4) pthread_cond_wait(&q->changed, &q->lock);
    q->slots[(q->head + q->count++) % 4] = p;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

static void queue_close(InputQueue *q) {
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

/* TngSourceFn, on the producer thread. */
static int queue_source(void *ctx, TngInput *in) {
    InputQueue *q = ctx;
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed) pthread_cond_wait(&q->changed, &q->lock);
    if (q->count == 0) {
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    Pending *p = q->slots[q->head];
    q->head = (q->head + 1) % 4;
    q->count--;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    if (p->global_n) /* this rank's images' texts, made from every rank's images */
        *in = (TngInput){.n_pool = p->global_n, .dim = q->dim, .captions = p->global_captions,
                         .image_emb = p->global_features, .batch_index = p->index,
                         .make_for = p->own_at, .n_make = p->n};
    else
        *in = (TngInput){.n_pool = p->n, .dim = q->dim, .captions = p->captions,
                         .image_emb = p->features, .batch_index = p->stream};
    return 1;
}

/* ----------------------------------------------------------------------------
 * The run */

typedef struct {
    TrainArgs args;
    const Dist *dist;
    int lead; /* rank 0: logs, validates, checkpoints */
    Clip *model;
    Dataset dataset;
    Loader *loader;
    float *cached_features; /* [items, D] when the vision tower is frozen */
    Pending pending[3];     /* ring: the batch being trained and the look-ahead */
    int64_t next_index;     /* micro-batches fetched so far */
    TngProducer *producer;
    Tokenizer *tokenizer;
    Lexicon *lexicon;
    InputQueue queue;
    int *plain_tokens, *plain_txt2img, *plain_target; /* --tng off */
    FILE *metrics;
    Encoder val_encoder;
    int ring_next;
} Run;

/* --tng-scope global: gathers every rank's captions and image embeddings and puts them in
 * the loader's order, the order one process with the global batch would see: rank k's j-th
 * sample is position j * world + k of the step's window (loader.h), so the texts made for
 * this rank's images (at own_at in that pool) equal that process's texts of them. Ranks whose
 * batch lost an image still get a fixed order. */
static void gather_global(Run *r, Pending *p) {
    const Dist *d = r->dist;
    int W = d->world, D = r->model->cfg.embed_dim;
    int *counts = mallocCheck(sizeof(int) * (size_t)W), *ones = mallocCheck(sizeof(int) * (size_t)W);
    int *offsets = mallocCheck(sizeof(int) * ((size_t)W + 1));
    for (int k = 0; k < W; k++) ones[k] = 1;
    d->host->all_gather(d, counts, &p->n, ones, DIST_I32);
    int total = dist_offsets(d, counts, offsets);
    /* embeddings, rank after rank */
    int *floats = mallocCheck(sizeof(int) * (size_t)W);
    for (int k = 0; k < W; k++) floats[k] = counts[k] * D;
    float *features = mallocCheck(sizeof(float) * (size_t)total * D);
    d->host->all_gather(d, features, p->features, floats, DIST_F32);
    /* captions: their lengths (NUL included), then their bytes */
    int *lengths = mallocCheck(sizeof(int) * (size_t)total), *own = lengths + offsets[d->rank];
    for (int j = 0; j < p->n; j++) own[j] = (int)strlen(p->captions[j]) + 1;
    d->host->all_gather(d, lengths, own, counts, DIST_I32);
    int *bytes = mallocCheck(sizeof(int) * (size_t)W);
    size_t all_bytes = 0;
    for (int k = 0; k < W; k++) {
        bytes[k] = 0;
        for (int j = 0; j < counts[k]; j++) bytes[k] += lengths[offsets[k] + j];
        all_bytes += (size_t)bytes[k];
    }
    char *mine = mallocCheck((size_t)bytes[d->rank] + 1), *at = mine;
    for (int j = 0; j < p->n; j++) at = stpcpy(at, p->captions[j]) + 1;
    if (all_bytes > p->arena_capacity) {
        p->caption_arena = reallocCheck(p->caption_arena, all_bytes);
        p->arena_capacity = all_bytes;
    }
    d->host->all_gather(d, p->caption_arena, mine, bytes, DIST_BYTE);
    const char **by_rank = mallocCheck(sizeof(char *) * (size_t)total);
    const char *text = p->caption_arena;
    for (int k = 0; k < total; k++) {
        by_rank[k] = text;
        text += lengths[k];
    }
    /* the loader's order: sample j of every rank in rank order, then j + 1 */
    int g = 0, longest = 0;
    for (int k = 0; k < W; k++) longest = counts[k] > longest ? counts[k] : longest;
    for (int j = 0; j < longest; j++)
        for (int k = 0; k < W; k++) {
            if (j >= counts[k]) continue;
            int from = offsets[k] + j;
            p->global_captions[g] = by_rank[from];
            memcpy(p->global_features + (size_t)g * D, features + (size_t)from * D, sizeof(float) * D);
            if (k == d->rank) p->own_at[j] = g;
            g++;
        }
    p->global_n = total;
    free(counts), free(ones), free(offsets), free(floats), free(features), free(lengths);
    free(bytes), free(mine), free(by_rank);
}

static void pending_fill(Run *r, Pending *p) {
    Clip *m = r->model;
    int D = m->cfg.embed_dim, R = m->cfg.image_size;
    p->start = loader_position(r->loader);
    const LoaderBatch *b = loader_next(r->loader);
    p->n = b->size;
    p->epoch = b->epoch;
    p->index = r->next_index++;
    p->stream = p->index * r->dist->world + r->dist->rank;
    for (int i = 0; i < b->size; i++) p->captions[i] = b->captions[i];
    size_t image_floats = (size_t)3 * R * R;
    if (r->cached_features) {
        for (int i = 0; i < b->size; i++)
            memcpy(p->features + (size_t)i * D, r->cached_features + (size_t)b->item_index[i] * D,
                   sizeof(float) * D);
    } else {
        memcpy(p->images, b->images, sizeof(float) * image_floats * b->size);
        if (r->args.tng) clip_encode_images(m, p->images, b->size, p->features);
    }
    if (r->args.tng && r->args.tng_global && r->dist->world > 1) gather_global(r, p);
}

/* --tng-ratio R: step s trains on the TNG texts when floor((s + 1) R) > floor(s R), so the
 * TNG steps are spread evenly, every rank agrees, and a resumed run makes the same choices. */
static int uses_tng_texts(const TrainArgs *a, int64_t step) {
    return floor((double)(step + 1) * a->tng_ratio) > floor((double)step * a->tng_ratio);
}

/* Runs one micro-batch forward and backward; returns its loss (NaN skips the backward).
 * last: the step's last micro-batch, whose backward starts the gradients' all-reduce. */
static float micro_step(Run *r, Pending *p, float stats[INFONCE_NSTATS], double *tng_wait, int last) {
    Clip *m = r->model;
    const TrainArgs *a = &r->args;
    ClipBatch batch = {.n_images = p->n};
    if (r->cached_features) batch.image_features = p->features;
    else batch.images = p->images;
    const TngTexts *texts = NULL;
    int tng_step = a->tng && uses_tng_texts(a, p->index / a->accum);
    if (a->tng) {
        double t0 = now_seconds();
        texts = tng_producer_pop(r->producer);
        *tng_wait += now_seconds() - t0;
        /* both scopes give this rank's images' texts in the local layout */
        if (!texts || texts->batch_index != (p->global_n ? p->index : p->stream) ||
            texts->n_images != p->n)
            die("TNG producer out of step");
        /* a step off the ratio keeps the originals: texts 0..n-1, image j's caption is text j */
        batch.n_texts = tng_step ? texts->n_texts : p->n;
        batch.tokens = texts->tokens;
        batch.txt2img = texts->txt2img;
    } else {
        int ctx = m->cfg.context_length;
        memset(r->plain_tokens, 0, sizeof(int) * (size_t)p->n * ctx);
        for (int i = 0; i < p->n; i++) {
            tokenizer_encode(r->tokenizer, p->captions[i], r->plain_tokens + (size_t)i * ctx, ctx);
            r->plain_txt2img[i] = i;
        }
        batch.n_texts = p->n;
        batch.tokens = r->plain_tokens;
        batch.txt2img = r->plain_txt2img;
    }
    /* The image->text target. Text i is image i's caption in both layouts; released-random
     * draws from all of this rank's texts with a positive image (the released code's per-GPU
     * batch; contradictions come last), seeded by the batch so a resumed run draws the same. */
    int n_positive_texts = batch.n_texts - (tng_step ? a->contradictions * p->n : 0);
    int *targets = r->plain_target;
    uint64_t state = a->seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(p->stream + 1));
    for (int i = 0; i < p->n; i++) {
        if (a->i2t == I2T_OWN) targets[i] = i;
        else if (a->i2t == I2T_MEAN || a->i2t == I2T_EACH) targets[i] = -1;
        else targets[i] = (int)(splitmix64(&state) % (uint64_t)n_positive_texts);
    }
    batch.i2t_target = targets;
    float loss = clip_forward(m, &batch, stats);
    if (texts) tng_producer_release(r->producer, texts);
    if (!isfinite(loss)) return loss;
    if (last) clip_backward_last(m);
    else clip_backward(m);
    return loss;
}

static void save_checkpoint(Run *r, const Pending *next) {
    if (!r->lead) return;
    char epoch[32], index[32], path[4096], err[1024];
    snprintf(epoch, sizeof epoch, "%" PRIu64, next->start.epoch);
    snprintf(index, sizeof index, "%" PRIu64, next->start.index);
    const char *keys[] = {"loader_epoch", "loader_index"}, *values[] = {epoch, index};
    if (train_state_save(r->args.out, r->model, keys, values, 2, 2, path, sizeof path, err,
                         sizeof err) != 0)
        die("checkpoint failed: %s", err);
    fprintf(stderr, "\ncheckpoint: %s\n", path);
}

static void validate(Run *r, long step) {
    McqResult res;
    evaluate_mcq(&r->val_encoder, r->args.val_mcq, r->args.image_root, 0, TIES_STRICT, &res);
    fprintf(stderr, "\nvalidation at step %ld: MCQ %.1f%% (positive %.1f, negative %.1f, hybrid %.1f)\n",
            step, 100 * res.accuracy, 100 * res.accuracy_by_type[MCQ_POSITIVE],
            100 * res.accuracy_by_type[MCQ_NEGATIVE], 100 * res.accuracy_by_type[MCQ_HYBRID]);
    fprintf(r->metrics,
            "{\"step\": %ld, \"val_mcq\": %.6f, \"val_positive\": %.6f, \"val_negative\": %.6f, "
            "\"val_hybrid\": %.6f}\n",
            step, res.accuracy, res.accuracy_by_type[MCQ_POSITIVE],
            res.accuracy_by_type[MCQ_NEGATIVE], res.accuracy_by_type[MCQ_HYBRID]);
    fflush(r->metrics);
}

/* Rank 0's checkpoint (next != NULL) and validation (validate_step > 0) inside the loop. They
 * may take minutes, which the other ranks spend waiting at a barrier: the hang watchdog is
 * paused for them on every rank, and rank 0 watches again from that barrier on (dist.h). */
static void lead_work(Run *r, const Pending *next, long validate_step) {
    dist_watchdog_pause(1);
    if (r->lead) {
        if (next) save_checkpoint(r, next);
        if (validate_step) validate(r, validate_step);
        dist_watchdog_pause(0);
    }
    dist_barrier(r->dist);
    dist_watchdog_pause(0);
}

static void format_eta(double seconds, char *out, size_t len) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, len, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else snprintf(out, len, "%ldm%02lds", s / 60, s % 60);
}

/* Rank 0 resolves the model (config, initial weights, resume point); the other ranks
 * receive them, so only rank 0 needs --init and the run directory on its disk. */
static void open_model(Run *r, LoaderPosition *start) {
    TrainArgs *a = &r->args;
    const Dist *d = r->dist;
    char err[1024], resume_from[4096] = "";
    ClipConfig cfg;
    float *params = NULL;
    if (r->lead) {
        if (make_dirs(a->out, err, sizeof err) != 0) die("run directory: %s", err);
        if (a->resume && train_state_latest(a->out, resume_from, sizeof resume_from, err, sizeof err) != 0) {
            fprintf(stderr, "tng: --resume: %s\n", err);
            exit(2);
        }
        if (!a->resume) {
            char probe[4096];
            if (train_state_latest(a->out, probe, sizeof probe, err, sizeof err) == 0) {
                fprintf(stderr, "tng: %s already holds a run (%s); use --resume or another --out\n", a->out, probe);
                exit(2);
            }
        }
        if (a->init) {
            Encoder probe_enc; /* reuse the encoder's loader: HF dir, checkpoint or run dir */
            if (encoder_open(&probe_enc, a->init, 1, err, sizeof err) != 0) die("--init: %s", err);
            cfg = probe_enc.model->cfg;
            params = mallocCheck(sizeof(float) * probe_enc.model->layout.total);
            clip_get_params(probe_enc.model, params);
            encoder_close(&probe_enc);
        } else if (clip_config_preset(a->config, &cfg) != 0) {
            fprintf(stderr, "tng: unknown --config '%s' (tiny or vit-b-32)\n", a->config);
            exit(2);
        }
    }
    d->host->broadcast(d, &cfg, sizeof cfg, DIST_BYTE, 0);
    r->model = clip_create(&cfg, backend_cpu());
    if (params) clip_set_params(r->model, params), free(params);
    else clip_init_random(r->model, a->seed);
    int n_texts = a->batch * (a->tng ? a->neg_per_image + 1 + a->contradictions : 1);
    ClipTrainConfig train = {.temperature = a->temperature, .train_vision = a->train_vision,
                             .train_text = a->train_text, .dist = d,
                             .contradiction_log_weight = logf(a->contradiction_weight),
                             .i2t_each = a->i2t == I2T_EACH};
    clip_prepare(r->model, &train, a->batch, n_texts);
    Clip *m = r->model;
    uint64_t resume_state[3] = {0, 0, 0}; /* step, loader epoch, loader index */
    if (a->resume && r->lead) {
        CheckpointMeta meta = {0};
        if (train_state_load(resume_from, m, &meta, err, sizeof err) != 0) {
            fprintf(stderr, "tng: --resume: %s\n", err);
            exit(2);
        }
        const char *e = checkpoint_meta_get(&meta, "loader_epoch"), *i = checkpoint_meta_get(&meta, "loader_index");
        if (!e || !i) die("%s: checkpoint lacks the data position", resume_from);
        resume_state[0] = m->step;
        resume_state[1] = strtoull(e, NULL, 10);
        resume_state[2] = strtoull(i, NULL, 10);
        checkpoint_meta_free(&meta);
        fprintf(stderr, "resuming from %s at step %" PRIu64 "\n", resume_from, m->step);
    }
    /* every rank starts from rank 0's weights, moments and step */
    d->device->broadcast(d, m->params, m->layout.total, DIST_F32, 0);
    if (a->resume) {
        d->device->broadcast(d, m->adam_m, m->layout.total, DIST_F32, 0);
        d->device->broadcast(d, m->adam_v, m->layout.total, DIST_F32, 0);
        d->host->broadcast(d, resume_state, 3, DIST_U64, 0);
        m->step = resume_state[0];
        *start = (LoaderPosition){.epoch = resume_state[1], .index = resume_state[2]};
    }
}

static void open_run(Run *r) {
    TrainArgs *a = &r->args;
    const Dist *d = r->dist;
    char err[1024];
    /* the data first: a missing or empty dataset is reported before any model is built */
    DatasetOptions dopt = {.image_root = a->image_root};
    if (dataset_format_parse(a->format, &dopt.format) != 0) {
        fprintf(stderr, "tng: unknown --format '%s'\n", a->format);
        exit(2);
    }
    struct stat st;
    if (stat(a->data, &st) != 0)
        die("%s: no training data here (%s); for the synthetic world run ./tng_synth --out data/cache/synth",
            a->data, strerror(errno));
    int is_shards = S_ISDIR(st.st_mode);
    if (!is_shards) {
        if (dataset_load(a->data, &dopt, &r->dataset, err, sizeof err) != 0) die("%s", err);
        if (r->dataset.count == 0) die("%s: the dataset is empty", a->data);
    }
    if (a->val_mcq && r->lead && access(a->val_mcq, R_OK) != 0) die("%s: cannot read the validation file", a->val_mcq);
    LoaderPosition start = {0};
    open_model(r, &start);
    const ClipConfig cfg = r->model->cfg;
    LoaderOptions lopt = {.shard_dir = is_shards ? a->data : NULL,
                          .dataset = is_shards ? NULL : &r->dataset,
                          .image_size = cfg.image_size,
                          .mode = a->fast_decode ? IMAGE_FAST : IMAGE_EXACT,
                          .batch_size = a->batch,
                          .threads = a->threads,
                          .seed = a->seed,
                          .shuffle = 1,
                          .rank = d->rank,
                          .world = d->world,
                          .captions = a->captions_all ? LOADER_ALL_PAIRS : LOADER_ONE_CAPTION,
                          .drop_last = 1,
                          .start = start};
    r->loader = loader_open(&lopt, err, sizeof err);
    if (!r->loader) die("%s", err);
    if (loader_batches_per_epoch(r->loader) < 1)
        die("%s: fewer samples than one batch of %d per rank", a->data, a->batch);
    if (!a->train_vision) { /* frozen tower: every image once, cached across runs */
        char cache[4096];
        snprintf(cache, sizeof cache, "%s/image_embeddings.cache", a->out);
        int n = 0;
        EmbedCacheStats stats;
        if (r->lead) fprintf(stderr, "image embeddings (frozen vision tower)...\n");
        /* rank 0 first: on a shared disk the others then reuse its file instead of racing */
        if (!r->lead) {
            dist_barrier(d);
            if (make_dirs(a->out, err, sizeof err) != 0) die("run directory: %s", err);
        }
        if (embed_cache_image_features(r->model, &lopt, cache, &r->cached_features, &n, &stats, err, sizeof err) != 0)
            die("%s", err);
        if (r->lead) {
            dist_barrier(d);
            fprintf(stderr, "image embeddings: %d images, %s\n", n, stats.reused ? "reused from the cache" : "computed");
        }
    }
    /* text side */
    r->tokenizer = tokenizer_load(NULL);
    int D = cfg.embed_dim, R = cfg.image_size, W = d->world;
    int tng_global = a->tng && a->tng_global && W > 1;
    for (int k = 0; k < 3; k++) {
        Pending *p = &r->pending[k];
        p->captions = mallocCheck(sizeof(char *) * (size_t)a->batch);
        p->features = mallocCheck(sizeof(float) * (size_t)a->batch * D);
        p->images = r->cached_features ? NULL : mallocCheck(sizeof(float) * (size_t)a->batch * 3 * R * R);
        if (tng_global) {
            p->own_at = mallocCheck(sizeof(int) * (size_t)a->batch);
            p->global_captions = mallocCheck(sizeof(char *) * (size_t)a->batch * W);
            p->global_features = mallocCheck(sizeof(float) * (size_t)a->batch * W * D);
        }
    }
    r->plain_tokens = mallocCheck(sizeof(int) * (size_t)a->batch * cfg.context_length);
    r->plain_txt2img = mallocCheck(sizeof(int) * (size_t)a->batch);
    r->plain_target = mallocCheck(sizeof(int) * (size_t)a->batch);
    r->next_index = (int64_t)r->model->step * a->accum;
    if (a->tng) {
        r->lexicon = lexicon_load(NULL);
        TngConfig tc;
        tng_config_default(&tc);
        tc.negations_per_image = a->neg_per_image;
        tc.context = cfg.context_length;
        tc.seed = a->seed;
        tc.released = a->released;
        tc.contradictions = a->contradictions;
        pthread_mutex_init(&r->queue.lock, NULL);
        pthread_cond_init(&r->queue.changed, NULL);
        r->queue.dim = D;
        r->producer = tng_producer_start(&tc, r->lexicon, r->tokenizer, queue_source, &r->queue, 2);
    }
    if (r->lead) {
        char metrics_path[4096];
        snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", a->out);
        r->metrics = fopenCheck(metrics_path, a->resume ? "a" : "w");
        if (a->val_mcq) encoder_attach(&r->val_encoder, r->model);
    }
}

static void close_run(Run *r) {
    if (r->producer) {
        queue_close(&r->queue);
        tng_producer_stop(r->producer);
        pthread_mutex_destroy(&r->queue.lock);
        pthread_cond_destroy(&r->queue.changed);
    }
    if (r->args.val_mcq && r->lead) encoder_close(&r->val_encoder);
    if (r->lexicon) lexicon_free(r->lexicon);
    tokenizer_free(r->tokenizer);
    for (int k = 0; k < 3; k++) {
        Pending *p = &r->pending[k];
        free(p->captions), free(p->features), free(p->images);
        free(p->own_at), free(p->global_captions), free(p->global_features), free(p->caption_arena);
    }
    free(r->plain_tokens), free(r->plain_txt2img), free(r->plain_target);
    free(r->cached_features);
    loader_close(r->loader);
    dataset_free(&r->dataset);
    if (r->metrics) fclose(r->metrics);
    clip_free(r->model);
}

/* The next look-ahead batch: filled, and handed to the producer when TNG is on. */
static Pending *fetch_next(Run *r) {
    Pending *p = &r->pending[r->ring_next];
    r->ring_next = (r->ring_next + 1) % 3;
    pending_fill(r, p);
    if (r->args.tng) queue_push(&r->queue, p);
    return p;
}

/* A stop request (signal) on any rank stops every rank at the same step. */
static int stop_agreed(const Dist *d) {
    int stop = stop_requested;
    if (d->world > 1) d->host->all_reduce(d, &stop, 1, DIST_I32, DIST_MAX);
    if (stop) stop_requested = 1;
    return stop;
}

/* --check-sync: every rank hashes its weights; any rank that differs from rank 0 ends the
 * job, named in the message, before the divergence is trained further or checkpointed. */
static void check_weights_in_sync(const Run *r, long step) {
    const Dist *d = r->dist;
    const Clip *m = r->model;
    float *host = mallocCheck(sizeof(float) * m->layout.total);
    clip_get_params(m, host);
    uint64_t mine = dist_hash(host, sizeof(float) * m->layout.total);
    free(host);
    uint64_t *all = mallocCheck(sizeof(uint64_t) * (size_t)d->world);
    int *ones = mallocCheck(sizeof(int) * (size_t)d->world);
    for (int k = 0; k < d->world; k++) ones[k] = 1;
    d->host->all_gather(d, all, &mine, ones, DIST_U64);
    char msg[1024];
    int len = snprintf(msg, sizeof msg, "weights diverged at step %ld: rank 0 has %016" PRIx64, step, all[0]);
    int diverged = 0;
    for (int k = 1; k < d->world; k++)
        if (all[k] != all[0]) {
            diverged++;
            if (len < (int)sizeof msg - 64)
                len += snprintf(msg + len, sizeof msg - (size_t)len, ", rank %d has %016" PRIx64, k, all[k]);
        }
    free(all), free(ones);
    if (!diverged) return;
    if (r->lead) dist_abort(d, 3, msg);
    dist_barrier(d); /* never returns: rank 0's abort ends the job */
}

int main(int argc, char **argv) {
    Dist *dist = dist_init(&argc, &argv);
    Run run;
    memset(&run, 0, sizeof run);
    TrainArgs *a = &run.args;
    run.dist = dist;
    run.lead = dist->rank == 0;
    parse_args(argc, argv, a);
    if (run.lead) print_settings(a, dist, stderr);
    open_run(&run);
    Clip *m = run.model;
    long per_epoch = loader_batches_per_epoch(run.loader) / a->accum;
    if (per_epoch < 1) die("%s: fewer batches per epoch than --accum %d", a->data, a->accum);
    long total = a->steps ? a->steps : per_epoch * a->epochs;
    a->optim.total_steps = total;
    install_signal_handlers();
    int tty = isatty(STDERR_FILENO);
    /* from here on every rank reports progress; the setup above (rank 0 loading a checkpoint,
     * the image embeddings) may take any time */
    if (dist->world > 1) dist_watchdog_start(dist, a->hang_timeout);

    /* the loop keeps two fetched batches ahead: the producer may be building the second */
    Pending *queue_ahead[2] = {fetch_next(&run), fetch_next(&run)};
    int nonfinite_run = 0;
    double started = now_seconds(), tng_wait_total = 0;
    long first_step = (long)m->step;
    for (long step = first_step; step < total && !stop_agreed(dist); step++) {
        dist_watchdog_step(step + 1);
        double t0 = now_seconds(), tng_wait = 0, loss_sum = 0;
        float stats[INFONCE_NSTATS], t2i = 0, i2t = 0;
        int pairs = 0, finite = 1;
        for (int micro = 0; micro < a->accum; micro++) {
            Pending *p = queue_ahead[0];
            float loss = micro_step(&run, p, stats, &tng_wait, micro == a->accum - 1 && finite);
            finite &= isfinite(loss);
            loss_sum += loss;
            t2i += stats[INFONCE_T2I] / a->accum;
            i2t += stats[INFONCE_I2T] / a->accum;
            pairs += m->loss->n_images_global;
            queue_ahead[0] = queue_ahead[1];
            queue_ahead[1] = fetch_next(&run);
        }
        /* the loss is global, so every rank takes the same branch here */
        if (finite) clip_reduce_gradients(m);
        float grad_norm = finite ? clip_gradient_norm(m, a->accum) : NAN;
        float lr = optim_lr_at(&a->optim, m->step);
        if (!finite || !isfinite(grad_norm)) {
            m->be->zero(m->grads, sizeof(float) * m->layout.total);
            if (run.lead) fprintf(stderr, "\nstep %ld: non-finite %s, step skipped\n", step + 1, finite ? "gradient" : "loss");
            if (++nonfinite_run >= a->max_nonfinite)
                die("%d non-finite steps in a row: stopping; the last checkpoint in %s is intact "
                    "(try a lower --lr)", nonfinite_run, a->out);
            m->step++; /* the step is spent, so the schedule and data stay aligned */
            continue;
        }
        nonfinite_run = 0;
        clip_optimizer_apply(m, &a->optim, a->accum, grad_norm);
        double seconds = now_seconds() - t0;
        tng_wait_total += tng_wait;
        double loss = loss_sum / a->accum;
        if (a->check_sync && (step + 1) % a->check_sync == 0 && dist->world > 1)
            check_weights_in_sync(&run, step + 1);
        if (run.lead) {
            fprintf(run.metrics,
                    "{\"step\": %ld, \"epoch\": %" PRIu64 ", \"loss\": %.6f, \"loss_t2i\": %.6f, "
                    "\"loss_i2t\": %.6f, \"lr\": %.4g, \"grad_norm\": %.6f, \"pairs_per_s\": %.2f, "
                    "\"pairs_per_s_per_rank\": %.2f, \"step_s\": %.4f, \"tng_wait_s\": %.6f}\n",
                    step + 1, queue_ahead[0]->epoch, loss, t2i, i2t, lr, grad_norm, pairs / seconds,
                    pairs / seconds / dist->world, seconds, tng_wait);
            double elapsed = now_seconds() - started, eta = elapsed / (step + 1 - first_step) * (total - step - 1);
            char eta_text[32];
            format_eta(eta, eta_text, sizeof eta_text);
            if (tty || (step + 1) % a->log_every == 0 || step + 1 == total) {
                fprintf(stderr, "%sstep %ld/%ld | epoch %" PRIu64 " | loss %.4f | lr %.3g | %.0f img/s | ETA %s%s",
                        tty ? "\r" : "", step + 1, total, queue_ahead[0]->epoch, loss, lr, pairs / seconds,
                        eta_text, tty ? "   " : "\n");
                fflush(stderr);
            }
        }
        int checkpoint_due = a->checkpoint_every && (step + 1) % a->checkpoint_every == 0 && step + 1 < total;
        int validation_due = a->val_mcq && a->eval_every && (step + 1) % a->eval_every == 0;
        if (checkpoint_due || validation_due)
            lead_work(&run, checkpoint_due ? queue_ahead[0] : NULL, validation_due ? step + 1 : 0);
    }
    if (run.metrics) fflush(run.metrics);
    dist_watchdog_pause(1); /* rank 0's last checkpoint and validation; the others wait at the end */
    if (stop_requested && run.lead) fprintf(stderr, "\ninterrupted: saving a checkpoint\n");
    save_checkpoint(&run, queue_ahead[0]);
    int validated_now = a->eval_every && (long)m->step % a->eval_every == 0;
    if (a->val_mcq && !stop_requested && run.lead && !validated_now) validate(&run, (long)m->step);
    double elapsed = now_seconds() - started;
    if (run.lead)
        fprintf(stderr, "trained %ld steps in %.1f s; waited %.3f s for TNG texts (%.3f%% of the time); %ld unreadable images skipped\n",
            (long)m->step - first_step, elapsed, tng_wait_total,
            elapsed > 0 ? 100 * tng_wait_total / elapsed : 0.0, loader_bad_items(run.loader));
    close_run(&run);
    dist_barrier(dist); /* rank 0's checkpoint is complete before any rank reports success */
    dist_finalize(dist);
    return stop_requested ? 130 : 0;
}
