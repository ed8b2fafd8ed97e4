/*
 * trainer.c: one training run (trainer.h).
 *
 * Reading order: trainer_run is the loop (steps of --accum micro-steps, then the optimizer,
 * the log line, and the checkpoint and validation when due); micro_step is one forward and
 * backward on the head batch; trainer_open and open_model set the run up. The one choice to
 * know: every rank runs the same steps in the same order; only rank 0 (lead) writes.
 */
#include "train/trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/embed_cache.h" // defines: embed_cache_image_features
#include "dataset/loader.h"      // defines: Loader, loader_open, loader_batches_per_epoch
#include "dataset/neighbours.h"  // defines: neighbours_nearest
#include "dataset/shard.h"       // defines: shard_dir_open, shard_close
#include "engine/model.h"        // defines: Clip, clip_create, clip_forward_queued, clip_backward
#include "engine/optim.h"        // defines: clip_optimizer_queue, clip_step_read, optim_lr_at
#include "eval/encoder.h"        // defines: Encoder, encoder_attach
#include "eval/evaluate.h"       // defines: evaluate_mcq
#include "io/metrics_log.h"      // defines: MetricsLog, metrics_log_open, metrics_log_write
#include "io/model_path.h"       // defines: model_path_load
#include "io/train_state.h"      // defines: train_state_save, train_state_load, train_state_latest
#include "tng/batch.h"           // defines: TngLayout, tng_text_count, tng_i2t_targets
#include "tng/mcq.h"             // defines: TNG_MCQ_OPTIONS
#include "train/lookahead.h"     // defines: Lookahead, Pending, lookahead_advance, lookahead_texts
#include "train/run_dir.h"       // defines: RunDir, run_dir_open, run_dir_check_resume, run_dir_meta
#include "train/texts_log.h"     // defines: TextsLog, texts_log_open, texts_log_batch
#include "util/common.h"         // defines: die, mallocCheck, now_seconds, make_dirs

struct Trainer {
    TrainOptions opt;
    Dist *dist; /* not const: the trainer starts its hang watchdog */
    int lead; /* rank 0: logs, validates, checkpoints */
    Clip *model;
    Dataset dataset;
    Loader *loader;
    float *cached_features; /* [items, D] when the vision tower is frozen */
    int *nearest;           /* [items, NEAREST_PER_GROUP x --hard-batches] with hard batches;
                               [items, 1] each image's twin with --twin-batches */
    Tokenizer *tokenizer;
    Lexicon *lexicon;
    TngConfig tng;
    Lookahead ahead;
    int *plain_tokens, *plain_txt2img; /* --tng off: the captions' tokens */
    int *targets;                      /* [batch] the image->text targets */
    int *absent;                       /* [texts] each text's denied object for the loss, -1
                                          but for standalone negations (engine/loss.h) */
    RunDir run_dir;                    /* rank 0: the folder's lock and the run's identity */
    MetricsLog *metrics;               /* rank 0 */
    uint64_t resumed_total;            /* the total steps the resumed run had planned, 0: none */
    TextsLog *texts_log;               /* --log-texts */
    Encoder val_encoder;
};

/* ----------------------------------------------------------------------------
 * Signals: the first asks for a checkpoint and a clean end, the second exits at once */

/* Atomic, not just sig_atomic_t: a signal sent to the process may land on any of its threads
 * (OpenMP workers, the text producer, the loader), so two signals can run this handler at the
 * same time on two threads; the exchange makes exactly one of them the second. */
static atomic_int stop_requested;     /* the signal that asked, 0: none */
static char second_signal_note[4200]; /* made before any signal can come */

static void on_signal(int sig) {
    if (atomic_exchange(&stop_requested, sig) != 0) {
        if (write(STDERR_FILENO, second_signal_note, strlen(second_signal_note)) < 0) { /* exiting anyway */ }
        _exit(128 + sig);
    }
}

static void install_signal_handlers(const char *run_dir) {
    snprintf(second_signal_note, sizeof second_signal_note,
             "\ntng: a second signal: exiting at once, without a checkpoint (the last one in %s is intact)\n", run_dir);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* A stop request (signal) on any rank stops every rank at the same step. */
static int stop_agreed(const Dist *d) {
    int stop = stop_requested;
    if (d->world > 1) d->host->all_reduce(d, &stop, 1, DIST_I32, DIST_MAX);
    if (stop) stop_requested = stop;
    return stop;
}

/* ----------------------------------------------------------------------------
 * Opening a run */

/* The layout of a TNG step's texts for n images (tng/batch.h); --tng off: the captions'. */
static TngLayout tng_layout_of(const TrainOptions *o, int n_images) {
    if (!o->tng) return tng_layout_captions(n_images);
    return (TngLayout){.n_images = n_images, .negations = o->neg_per_image,
                       .contradictions = o->contradictions, .standalone = o->standalone,
                       .mcq_options = o->mcq_loss > 0 ? TNG_MCQ_OPTIONS : 0};
}

/* --cuda-graphs where the backend has graphs, in one process (a data-parallel step exchanges
 * batch sizes with the other ranks on the host mid-step); texts are then cut at a multiple of
 * GRAPH_TEXT_MULTIPLE tokens (ClipTrainConfig.text_length_multiple): the same features, and at
 * most 77 / 8 step shapes for the backend's graphs instead of one per longest-text length. */
enum { GRAPH_TEXT_MULTIPLE = 8 };
static int uses_graphs(const TrainOptions *o, const Dist *d) {
    return o->cuda_graphs && o->be->graph_begin && d->world == 1;
}

/* Rank 0 takes the run directory (run_dir.h) and resolves the model (config, initial weights,
 * resume point, checked against the run); the other ranks receive them, so only rank 0 needs
 * --init and the run directory on its disk. */
static void open_model(Trainer *t, LoaderPosition *start, int64_t *empty_batches) {
    const TrainOptions *o = &t->opt;
    const Dist *d = t->dist;
    char err[1024], resume_from[4096] = "";
    ClipConfig cfg;
    float *params = NULL;
    if (t->lead) {
        run_dir_open(&t->run_dir, o, d->world);
        if (o->resume && train_state_latest(o->out, resume_from, sizeof resume_from, err, sizeof err) != 0) {
            fprintf(stderr, "tng: --resume: %s\n", err);
            exit(2);
        }
        if (o->init) {
            /* an HF directory, a checkpoint or a run directory: config and weights, no model */
            if (model_path_load(o->init, &cfg, &params, NULL, 0, err, sizeof err) != 0) die("--init: %s", err);
        } else if (clip_config_preset(o->config, &cfg) != 0) {
            fprintf(stderr, "tng: unknown --config '%s' (tiny or vit-b-32)\n", o->config);
            exit(2);
        }
    }
    d->host->broadcast(d, &cfg, sizeof cfg, DIST_BYTE, 0);
    t->model = clip_create(&cfg, o->be);
    if (params) clip_set_params(t->model, params), free(params);
    else clip_init_random(t->model, o->seed);
    TngLayout most_texts = tng_layout_of(o, o->batch);
    /* with graphs, texts are cut at a multiple of GRAPH_TEXT_MULTIPLE: a few step shapes, so a
     * few graphs, each replayed */
    ClipTrainConfig train = {.temperature = o->temperature, .train_vision = o->train_vision,
                             .train_text = o->train_text, .dist = d,
                             .contradiction_log_weight = logf(o->contradiction_weight),
                             .i2t_each = o->i2t == TNG_I2T_EACH, .text_groups = o->text_groups,
                             .text_length_multiple = uses_graphs(o, d) ? GRAPH_TEXT_MULTIPLE : 1,
                             .mcq_weight = o->mcq_loss, .mcq_options = TNG_MCQ_OPTIONS};
    clip_prepare(t->model, &train, o->batch, tng_text_count(&most_texts));
    Clip *m = t->model;
    uint64_t resume_state[4] = {0, 0, 0, 0}; /* step, loader epoch, loader index, empty batches */
    if (o->resume && t->lead) {
        CheckpointMeta meta = {0};
        if (train_state_load(resume_from, m, &meta, err, sizeof err) != 0) {
            fprintf(stderr, "tng: --resume: %s\n", err);
            exit(2);
        }
        run_dir_check_resume(&t->run_dir, o, resume_from, &meta);
        const char *e = checkpoint_meta_get(&meta, "loader_epoch"), *i = checkpoint_meta_get(&meta, "loader_index");
        const char *empty = checkpoint_meta_get(&meta, "empty_batches");
        const char *total = checkpoint_meta_get(&meta, "total_steps");
        if (!e || !i) die("%s: checkpoint lacks the data position", resume_from);
        resume_state[0] = m->step;
        resume_state[1] = strtoull(e, NULL, 10);
        resume_state[2] = strtoull(i, NULL, 10);
        resume_state[3] = empty ? strtoull(empty, NULL, 10) : 0;
        t->resumed_total = total ? strtoull(total, NULL, 10) : 0;
        checkpoint_meta_free(&meta);
        fprintf(stderr, "resuming from %s at step %" PRIu64 "\n", resume_from, m->step);
    }
    /* every rank starts from rank 0's weights, moments and step */
    d->device->broadcast(d, m->params, m->layout.total, DIST_F32, 0);
    clip_params_changed(m, 0, m->layout.total); /* the compute copy follows (bf16) */
    if (o->resume) {
        d->device->broadcast(d, m->adam_m, m->layout.total, DIST_F32, 0);
        d->device->broadcast(d, m->adam_v, m->layout.total, DIST_F32, 0);
        d->host->broadcast(d, resume_state, 4, DIST_U64, 0);
        m->step = resume_state[0];
        *start = (LoaderPosition){.epoch = resume_state[1], .index = resume_state[2]};
        *empty_batches = (int64_t)resume_state[3];
    }
}

/* With the vision tower frozen, every image's embedding once, cached across runs. Returns the
 * item count. */
static int cache_image_features(Trainer *t, const LoaderOptions *lopt) {
    const TrainOptions *o = &t->opt;
    char cache[4096], err[1024];
    snprintf(cache, sizeof cache, "%s/image_embeddings.cache", o->out);
    int n = 0;
    EmbedCacheStats stats;
    if (t->lead) fprintf(stderr, "image embeddings (frozen vision tower)...\n");
    /* rank 0 first: on a shared disk the others then reuse its file instead of racing */
    if (!t->lead) {
        dist_barrier(t->dist);
        if (make_dirs(o->out, err, sizeof err) != 0) die("run directory: %s", err);
    }
    if (embed_cache_image_features(t->model, lopt, cache, &t->cached_features, &n, &stats, err, sizeof err) != 0)
        die("%s", err);
    if (t->lead) {
        dist_barrier(t->dist);
        fprintf(stderr, "image embeddings: %d images, %s\n", n, stats.reused ? "reused from the cache" : "computed");
    }
    return n;
}

/* A group of G takes its G - 1 closest still unplaced: twice G candidates per image leave
 * room for those an earlier group took. */
enum { NEAREST_PER_GROUP = 2 };

/* a counter rewritten in place on a terminal; a log file gets the final line only */
static void report_neighbours(int done, int n) {
    if (done == n || isatty(STDERR_FILENO))
        fprintf(stderr, "hard batches: nearest images of %d / %d%s", done, n, done == n ? "\n" : "\r");
}

/* --hard-batches: every image's nearest by the cached embeddings, for the loader's groups */
static void find_neighbours(Trainer *t, LoaderOptions *lopt, int items) {
    int group = t->opt.hard_batches, k = NEAREST_PER_GROUP * group;
    t->nearest = neighbours_nearest(t->cached_features, items, t->model->cfg.embed_dim, k,
                                    t->lead ? report_neighbours : NULL);
    lopt->nearest = t->nearest;
    lopt->nearest_k = k;
    lopt->group = group;
}

/* --twin-batches: each image's twin (the CSV's twin column, -1 for none) as a one-neighbour
 * table, so the loader's groups of 2 are the pairs (a pair names each other, so no image can
 * take another's twin). */
static void use_twins(Trainer *t, LoaderOptions *lopt) {
    const Dataset *ds = &t->dataset;
    t->nearest = mallocCheck(sizeof(int) * (size_t)ds->count);
    for (int i = 0; i < ds->count; i++) t->nearest[i] = ds->items[i].twin;
    lopt->nearest = t->nearest;
    lopt->nearest_k = 1;
    lopt->group = 2;
}

/* --batch against the data, before anything is sized by it (a batch of 65536 would allocate
 * tens of GB first): every rank needs one full batch per epoch. Shards are counted from their
 * metadata, mapped and closed again. */
static void check_batch_fits(const Trainer *t, int is_shards) {
    const TrainOptions *o = &t->opt;
    const Dataset *items = &t->dataset;
    Dataset shard_items;
    ShardFile *shards = NULL;
    int n_shards = 0, image_size;
    char err[1024];
    if (is_shards) {
        if (shard_dir_open(o->data, &shards, &n_shards, &shard_items, &image_size, err, sizeof err) != 0)
            die("%s", err);
        items = &shard_items;
    }
    long samples = o->captions_all ? dataset_caption_count(items) : items->count;
    if (is_shards) {
        for (int k = 0; k < n_shards; k++) shard_close(&shards[k]);
        free(shards);
        dataset_free(&shard_items);
    }
    if (samples / t->dist->world < o->batch)
        die("%s: %ld samples%s give each of %d rank%s fewer than one batch of %d (--batch)", o->data, samples,
            o->captions_all ? " (image-caption pairs)" : "", t->dist->world, t->dist->world == 1 ? "" : "s", o->batch);
}

/* With the vision tower training, images are decoded only as batches need them, so a dataset
 * with no image file to read would fail only inside the loop: one must open, found at the
 * cost of an access(2) per unreadable image. (A frozen tower's embedding pass decodes every
 * image up front and fails on none readable.) An image that opens but does not decode is
 * left to the loop, which skips empty batches and stops after a whole epoch of them. */
static void check_some_image_readable(const Dataset *ds, const char *data) {
    int first_error = 0;
    for (int i = 0; i < ds->count; i++) {
        if (access(ds->items[i].image_path, R_OK) == 0) return;
        if (!first_error) first_error = errno;
    }
    die("%s: none of its %d images can be read (the first, %s: %s); check the paths or --image-root", data,
        ds->count, ds->items[0].image_path, strerror(first_error));
}

Trainer *trainer_open(const TrainOptions *opt, Dist *dist) {
    Trainer *t = callocCheck(1, sizeof(Trainer));
    t->opt = *opt;
    t->dist = dist;
    t->lead = dist->rank == 0;
    const TrainOptions *o = &t->opt;
    char err[1024];
    /* the data first: a missing or empty dataset is reported before any model is built */
    DatasetOptions dopt = {.image_root = o->image_root};
    if (dataset_format_parse(o->format, &dopt.format) != 0) {
        fprintf(stderr, "tng: unknown --format '%s'\n", o->format);
        exit(2);
    }
    struct stat st;
    if (stat(o->data, &st) != 0)
        die("%s: no training data here (%s); for the synthetic world run ./tng_synth --out data/cache/synth",
            o->data, strerror(errno));
    int is_shards = S_ISDIR(st.st_mode);
    if (!is_shards) {
        if (dataset_load(o->data, &dopt, &t->dataset, err, sizeof err) != 0) die("%s", err);
        if (t->dataset.count == 0) die("%s: the dataset is empty", o->data);
        if (o->train_vision) check_some_image_readable(&t->dataset, o->data);
    }
    check_batch_fits(t, is_shards);
    if (o->twin_batches && (is_shards || !t->dataset.has_twins))
        die("%s: --twin-batches needs a CSV with a twin column (tng_synth --twins writes one)%s", o->data,
            is_shards ? "; this is a shard folder" : "");
    if (o->val_mcq && t->lead && access(o->val_mcq, R_OK) != 0) die("%s: cannot read the validation file", o->val_mcq);
    LoaderPosition start = {0};
    int64_t empty_batches = 0;
    open_model(t, &start, &empty_batches);
    const ClipConfig cfg = t->model->cfg;
    LoaderOptions lopt = {.shard_dir = is_shards ? o->data : NULL,
                          .dataset = is_shards ? NULL : &t->dataset,
                          .image_size = cfg.image_size,
                          .mode = o->fast_decode ? IMAGE_FAST : IMAGE_EXACT,
                          .batch_size = o->batch,
                          .threads = o->threads,
                          .seed = o->seed,
                          .shuffle = 1,
                          .rank = dist->rank,
                          .world = dist->world,
                          .captions = o->captions_all ? LOADER_ALL_PAIRS : LOADER_ONE_CAPTION,
                          .drop_last = 1,
                          .start = start};
    if (!o->train_vision) { /* before the loader: hard batches group its first epoch by them */
        int items = cache_image_features(t, &lopt);
        if (o->hard_batches) find_neighbours(t, &lopt, items);
    }
    if (o->twin_batches) use_twins(t, &lopt);
    t->loader = loader_open(&lopt, err, sizeof err);
    if (!t->loader) die("%s", err);
    /* text side */
    t->tokenizer = tokenizer_load(NULL);
    t->plain_tokens = mallocCheck(sizeof(int) * (size_t)o->batch * cfg.context_length);
    t->plain_txt2img = mallocCheck(sizeof(int) * (size_t)o->batch);
    t->targets = mallocCheck(sizeof(int) * (size_t)o->batch);
    if (o->tng) {
        t->lexicon = lexicon_load(NULL);
        tng_config_default(&t->tng);
        t->tng.negations_per_image = o->neg_per_image;
        t->tng.context = cfg.context_length;
        t->tng.seed = o->seed;
        t->tng.released = o->released;
        t->tng.contradictions = o->contradictions;
        t->tng.standalone = o->standalone;
        t->tng.mcq = o->mcq_loss > 0;
        TngLayout most_texts = tng_layout_of(o, o->batch);
        t->absent = mallocCheck(sizeof(int) * (size_t)tng_text_count(&most_texts));
    }
    LookaheadOptions la = {.loader = t->loader, .model = t->model, .cached_features = t->cached_features,
                           .dim = cfg.embed_dim,
                           .dist = dist, .batch = o->batch,
                           .first_index = (int64_t)t->model->step * o->accum, .empty_batches = empty_batches,
                           .tng = o->tng ? &t->tng : NULL, .tng_global = o->tng_global,
                           .twins = o->twin_batches,
                           .lexicon = t->lexicon, .tokenizer = t->tokenizer};
    lookahead_open(&t->ahead, &la);
    if (o->log_texts)
        t->texts_log = texts_log_open(o->out, o->log_texts, o->resume ? (long)t->model->step : -1, dist, t->lexicon);
    if (t->lead) {
        /* resumed: the records of steps after the checkpoint go, since they are trained again */
        char metrics_path[4096];
        snprintf(metrics_path, sizeof metrics_path, "%s/%s", o->out, TRAINER_METRICS_FILE);
        t->metrics = metrics_log_open(metrics_path, o->resume ? (long)t->model->step : -1, err, sizeof err);
        if (!t->metrics) die("%s", err);
        if (o->val_mcq) encoder_attach(&t->val_encoder, t->model);
    }
    return t;
}

void trainer_close(Trainer *t) {
    lookahead_close(&t->ahead);
    texts_log_close(t->texts_log);
    if (t->opt.val_mcq && t->lead) encoder_close(&t->val_encoder);
    if (t->lexicon) lexicon_free(t->lexicon);
    tokenizer_free(t->tokenizer);
    free(t->plain_tokens), free(t->plain_txt2img), free(t->targets), free(t->absent);
    loader_close(t->loader); /* before the neighbour lists it reads */
    free(t->cached_features), free(t->nearest);
    dataset_free(&t->dataset);
    metrics_log_close(t->metrics);
    if (t->lead) run_dir_close(&t->run_dir);
    clip_free(t->model);
    free(t);
}

/* ----------------------------------------------------------------------------
 * One micro-step */

/* --tng-ratio R: step s trains on the TNG texts when floor((s + 1) R) > floor(s R), so the
 * TNG steps are spread evenly, every rank agrees, and a resumed run makes the same choices. */
static int uses_tng_texts(const TrainOptions *o, int64_t step) {
    return floor((double)(step + 1) * o->tng_ratio) > floor((double)step * o->tng_ratio);
}

/* The standalone negations of a batch of TNG texts laid out as l, for the loss: each one's
 * object (every other text -1) and each image's named lemmas (engine/loss.h). */
static ClipAbsence standalone_absence(Trainer *t, const TngTexts *texts, const TngLayout *l) {
    for (int k = 0; k < tng_text_count(l); k++) t->absent[k] = -1;
    for (int j = 0; j < l->n_images; j++)
        for (int s = 0; s < l->standalone; s++) {
            int k = tng_standalone_text(l, j, s);
            t->absent[k] = texts->text_object[k];
        }
    return (ClipAbsence){.absent = t->absent, .named_start = texts->named_start, .named = texts->named};
}

/* Queues one micro-batch's forward and backward on the backend (nothing is read back: a
 * non-finite loss makes non-finite gradients, and the optimizer step skips itself on the
 * backend). last: the step's last micro-batch, whose backward starts the gradients'
 * all-reduce. */
static void micro_step(Trainer *t, const Pending *p, double *tng_wait, int last) {
    Clip *m = t->model;
    const TrainOptions *o = &t->opt;
    ClipBatch batch = {.n_images = p->n};
    if (t->cached_features) batch.image_features = p->features;
    else batch.images = p->images;
    /* the texts of this step: TNG's, or on a step off the ratio (or with --tng off) the
     * captions alone, which are the first texts of TNG's layout too */
    TngLayout tng_layout = tng_layout_of(o, p->n);
    int tng_step = o->tng && uses_tng_texts(o, p->index / o->accum);
    TngLayout layout = tng_step ? tng_layout : tng_layout_captions(p->n);
    const TngTexts *texts = NULL;
    if (o->tng) {
        texts = lookahead_texts(&t->ahead, p, tng_wait);
        if (texts->n_texts != tng_text_count(&tng_layout)) die("TNG producer out of step");
        batch.tokens = texts->tokens;
        batch.txt2img = texts->txt2img;
        /* the images outside a standalone negation's softmaxes: only on steps that train on it */
        if (tng_step && o->standalone) batch.absence = standalone_absence(t, texts, &layout);
        if (tng_step && layout.mcq_options)
            batch.mcq = (McqQuestions){.first_text = tng_contrastive_text_count(&layout), .answer = texts->mcq_answer};
        if (t->texts_log) texts_log_batch(t->texts_log, p, texts, tng_text_count(&layout), (long)(p->index / o->accum) + 1);
    } else {
        int ctx = m->cfg.context_length;
        memset(t->plain_tokens, 0, sizeof(int) * (size_t)p->n * ctx);
        for (int i = 0; i < p->n; i++) {
            int text = tng_caption_text(&layout, i);
            tokenizer_encode(t->tokenizer, p->captions[i], t->plain_tokens + (size_t)text * ctx, ctx);
            t->plain_txt2img[text] = i;
        }
        batch.tokens = t->plain_tokens;
        batch.txt2img = t->plain_txt2img;
    }
    batch.n_texts = tng_text_count(&layout);
    /* released-random draws from this rank's positive texts (the released code's per-GPU
     * batch), seeded by the batch so a resumed run draws the same */
    tng_i2t_targets(o->i2t, &layout, o->seed, p->stream, t->targets);
    batch.i2t_target = t->targets;
    clip_forward_queued(m, &batch); /* the uploads copy the texts: they may be released */
    if (texts) lookahead_release(&t->ahead, texts);
    if (last) clip_backward_last(m);
    else clip_backward(m);
}

/* ----------------------------------------------------------------------------
 * Checkpoints, validation, checks */

/* The checkpoint records where the data continues (next: the batch to train next), the empty
 * batches skipped before it, the planned total of steps, and the options that define the run. */
static void save_checkpoint(Trainer *t, const Pending *next) {
    if (!t->lead) return;
    char epoch[32], index[32], empty[32], total[32], path[4096], err[1024];
    snprintf(epoch, sizeof epoch, "%" PRIu64, next->start.epoch);
    snprintf(index, sizeof index, "%" PRIu64, next->start.index);
    snprintf(empty, sizeof empty, "%" PRId64, next->empty_before);
    snprintf(total, sizeof total, "%ld", t->opt.optim.total_steps);
    const char *keys[4 + RUN_IDENTITY_MAX] = {"loader_epoch", "loader_index", "empty_batches", "total_steps"};
    const char *values[4 + RUN_IDENTITY_MAX] = {epoch, index, empty, total};
    int n = 4 + run_dir_meta(&t->run_dir, keys + 4, values + 4, RUN_IDENTITY_MAX);
    if (train_state_save(t->opt.out, t->model, keys, values, n, 2, path, sizeof path, err,
                         sizeof err) != 0)
        die("checkpoint failed: %s", err);
    fprintf(stderr, "\ncheckpoint: %s\n", path);
}

static void validate(Trainer *t, long step) {
    McqResult res;
    evaluate_mcq(&t->val_encoder, t->opt.val_mcq, t->opt.image_root, 0, TIES_STRICT, &res);
    fprintf(stderr, "\nvalidation at step %ld: MCQ %.1f%% (positive %.1f, negative %.1f, hybrid %.1f)%s\n",
            step, 100 * res.accuracy, 100 * res.accuracy_by_type[MCQ_POSITIVE],
            100 * res.accuracy_by_type[MCQ_NEGATIVE], 100 * res.accuracy_by_type[MCQ_HYBRID],
            res.n_skipped ? " without the questions skipped above" : "");
    metrics_log_write(t->metrics,
                      "{\"step\": %ld, \"val_mcq\": %.6f, \"val_positive\": %.6f, \"val_negative\": %.6f, "
                      "\"val_hybrid\": %.6f}",
                      step, res.accuracy, res.accuracy_by_type[MCQ_POSITIVE],
                      res.accuracy_by_type[MCQ_NEGATIVE], res.accuracy_by_type[MCQ_HYBRID]);
}

/* Rank 0's checkpoint (next != NULL) and validation (validate_step > 0) inside the loop. They
 * may take minutes, which the other ranks spend waiting at a barrier: the hang watchdog is
 * paused for them on every rank, and rank 0 watches again from that barrier on (dist.h). */
static void lead_work(Trainer *t, const Pending *next, long validate_step) {
    dist_watchdog_pause(1);
    if (t->lead) {
        if (next) save_checkpoint(t, next);
        if (validate_step) validate(t, validate_step);
        dist_watchdog_pause(0);
    }
    dist_barrier(t->dist);
    dist_watchdog_pause(0);
}

/* --check-sync: every rank hashes its weights; any rank that differs from rank 0 ends the
 * job, named in the message, before the divergence is trained further or checkpointed. */
static void check_weights_in_sync(const Trainer *t, long step) {
    const Dist *d = t->dist;
    const Clip *m = t->model;
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
    if (t->lead) dist_abort(d, 3, msg);
    dist_barrier(d); /* never returns: rank 0's abort ends the job */
}

/* ----------------------------------------------------------------------------
 * The loop */

static void format_eta(double seconds, char *out, size_t len) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, len, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else snprintf(out, len, "%ldm%02lds", s / 60, s % 60);
}

/* What one optimizer step reports. */
typedef struct {
    long step, total, first_step; /* step counts from 1 */
    uint64_t epoch;
    int64_t empty_batches; /* skipped so far, for having no readable image */
    double loss, seconds, tng_wait, started;
    float mcq_loss;     /* the MCQ loss, weighted (engine/mcq_loss.h); logged when --mcq-loss is on */
    float mcq_accuracy; /* its last micro-batch's training accuracy, or < 0: not read this step */
    float t2i, i2t, lr, grad_norm;
    int pairs;
} StepReport;

/* Rank 0's metrics line, and the progress line (every step on a terminal). */
static void log_step(Trainer *t, const StepReport *s, int tty) {
    const Dist *d = t->dist;
    char mcq[96] = "", mcq_text[48] = ""; /* the MCQ loss where it is on, and its accuracy where read */
    if (t->opt.mcq_loss > 0) {
        int n = snprintf(mcq, sizeof mcq, ", \"loss_mcq\": %.6f", s->mcq_loss);
        int m = snprintf(mcq_text, sizeof mcq_text, " | mcq %.4f", s->mcq_loss);
        if (s->mcq_accuracy >= 0) {
            snprintf(mcq + n, sizeof mcq - (size_t)n, ", \"mcq_train_acc\": %.4f", s->mcq_accuracy);
            snprintf(mcq_text + m, sizeof mcq_text - (size_t)m, " (acc %.1f%%)", 100 * s->mcq_accuracy);
        }
    }
    metrics_log_write(t->metrics,
                      "{\"step\": %ld, \"epoch\": %" PRIu64 ", \"loss\": %.6f, \"loss_t2i\": %.6f, "
                      "\"loss_i2t\": %.6f, \"lr\": %.4g, \"grad_norm\": %.6f, \"pairs_per_s\": %.2f, "
                      "\"pairs_per_s_per_rank\": %.2f, \"step_s\": %.4f, \"tng_wait_s\": %.6f, "
                      "\"empty_batches\": %" PRId64 "%s}",
                      s->step, s->epoch, s->loss, s->t2i, s->i2t, s->lr, s->grad_norm, s->pairs / s->seconds,
                      s->pairs / s->seconds / d->world, s->seconds, s->tng_wait, s->empty_batches, mcq);
    double elapsed = now_seconds() - s->started, eta = elapsed / (s->step - s->first_step) * (s->total - s->step);
    char eta_text[32];
    format_eta(eta, eta_text, sizeof eta_text);
    if (tty || s->step % t->opt.log_every == 0 || s->step == s->total) {
        fprintf(stderr, "%sstep %ld/%ld | epoch %" PRIu64 " | loss %.4f%s | lr %.3g | %.0f img/s | ETA %s%s",
                tty ? "\r" : "", s->step, s->total, s->epoch, s->loss, mcq_text, s->lr, s->pairs / s->seconds,
                eta_text, tty ? "   " : "\n");
        fflush(stderr);
    }
}

int trainer_run(Trainer *t) {
    TrainOptions *o = &t->opt;
    Dist *dist = t->dist;
    Clip *m = t->model;
    long per_epoch = loader_batches_per_epoch(t->loader) / o->accum;
    if (per_epoch < 1) die("%s: fewer batches per epoch than --accum %d", o->data, o->accum);
    long total = o->steps ? o->steps : per_epoch * o->epochs;
    o->optim.total_steps = total;
    if (t->lead && t->resumed_total && t->resumed_total != (uint64_t)total && o->optim.schedule == SCHEDULE_COSINE)
        fprintf(stderr, "note: the cosine schedule now decays over %ld steps; the run planned %" PRIu64
                ", so the learning rate from step %" PRIu64 " on differs from its plan\n", total, t->resumed_total,
                m->step + 1);
    install_signal_handlers(o->out);
    int tty = isatty(STDERR_FILENO);
    /* from here on every rank reports progress; the setup (rank 0 loading a checkpoint, the
     * image embeddings) may take any time */
    if (dist->world > 1) dist_watchdog_start(dist, o->hang_timeout);

    lookahead_start(&t->ahead);
    int nonfinite_run = 0;
    double started = now_seconds(), tng_wait_total = 0;
    long first_step = (long)m->step;
    /* --cuda-graphs: each step after the first (eager: it builds the optimizer's table and
     * warms the libraries up) is launched as one graph, replayed from the graph of its shape
     * when it has one, else captured (backend.h) */
    const Backend *be = m->be;
    int graphs = uses_graphs(o, dist);
    for (long step = first_step; step < total && !stop_agreed(dist); step++) {
        dist_watchdog_step(step + 1);
        double t0 = now_seconds(), tng_wait = 0;
        float stats[INFONCE_NSTATS], mcq_stats[INFONCE_NSTATS];
        int pairs = 0, graph = graphs && step > first_step;
        if (graph) be->graph_begin();
        for (int micro = 0; micro < o->accum; micro++) {
            micro_step(t, t->ahead.head, &tng_wait, micro == o->accum - 1);
            pairs += m->loss->n_images_global;
            lookahead_advance(&t->ahead);
        }
        clip_reduce_gradients(m);
        float lr = optim_lr_at(&o->optim, m->step);
        /* the whole step is queued before its one read-back: the loss, its terms and the norm */
        clip_optimizer_queue(m, &o->optim, o->accum);
        if (graph) be->graph_launch();
        float grad_norm = clip_step_read(m, o->accum, stats, mcq_stats);
        /* the gradients are all-reduced, so every rank sees the same norm and took the same
         * decision on the backend: a non-finite norm skipped the update (the step is spent, so
         * the schedule and data stay aligned) */
        if (!isfinite(grad_norm)) {
            int loss_finite = isfinite(stats[INFONCE_LOSS]);
            if (t->lead) fprintf(stderr, "\nstep %ld: non-finite %s, step skipped\n", step + 1, loss_finite ? "gradient" : "loss");
            if (++nonfinite_run >= o->max_nonfinite)
                die("%d non-finite steps in a row: stopping; the last checkpoint in %s is intact "
                    "(try a lower --lr)", nonfinite_run, o->out);
            continue;
        }
        nonfinite_run = 0;
        /* the MCQ training accuracy reads the scored block back: on the log lines' steps only
         * (the same on every rank, since it is a collective) */
        int log_due = (step + 1) % o->log_every == 0 || step + 1 == total;
        float mcq_accuracy = o->mcq_loss > 0 && m->mcq_scored && log_due ? mcq_loss_accuracy(m->mcq) : -1;
        double seconds = now_seconds() - t0;
        tng_wait_total += tng_wait;
        if (o->check_sync && (step + 1) % o->check_sync == 0 && dist->world > 1)
            check_weights_in_sync(t, step + 1);
        if (t->lead)
            log_step(t, &(StepReport){.step = step + 1, .total = total, .first_step = first_step,
                                      .epoch = t->ahead.head->epoch, .empty_batches = t->ahead.head->empty_before,
                                      .loss = stats[INFONCE_LOSS], .mcq_loss = mcq_stats[INFONCE_LOSS],
                                      .mcq_accuracy = mcq_accuracy,
                                      .seconds = seconds, .tng_wait = tng_wait, .started = started,
                                      .t2i = stats[INFONCE_T2I], .i2t = stats[INFONCE_I2T], .lr = lr, .grad_norm = grad_norm,
                                      .pairs = pairs},
                     tty);
        int checkpoint_due = o->checkpoint_every && (step + 1) % o->checkpoint_every == 0 && step + 1 < total;
        int validation_due = o->val_mcq && o->eval_every && (step + 1) % o->eval_every == 0;
        if (checkpoint_due || validation_due)
            lead_work(t, checkpoint_due ? t->ahead.head : NULL, validation_due ? step + 1 : 0);
    }
    dist_watchdog_pause(1); /* rank 0's last checkpoint and validation; the others wait at the end */
    if (stop_requested && t->lead) fprintf(stderr, "\ninterrupted: saving a checkpoint\n");
    save_checkpoint(t, t->ahead.head);
    int validated_now = o->eval_every && (long)m->step % o->eval_every == 0;
    if (o->val_mcq && !stop_requested && t->lead && !validated_now) validate(t, (long)m->step);
    double elapsed = now_seconds() - started;
    if (t->lead)
        fprintf(stderr, "trained %ld steps in %.1f s; waited %.3f s for TNG texts (%.3f%% of the time); %ld unreadable "
                "images skipped; %" PRId64 " batches with no readable image skipped\n",
                (long)m->step - first_step, elapsed, tng_wait_total, elapsed > 0 ? 100 * tng_wait_total / elapsed : 0.0,
                loader_bad_items(t->loader), t->ahead.head->empty_before);
    return stop_requested ? 128 + stop_requested : 0;
}
