/*
 * options.c: tng_train's command line (options.h), one row per option (util/cli.h).
 *
 * The optimizer's betas, epsilon, decay set, warmup, schedule and clipping default to the
 * engine's own (optim_defaults); a row shows them as they are, so --help follows the engine.
 * A named recipe (--recipe, train/recipe.h) is applied after the command line, to the options
 * it did not give, through the same rows.
 *
 * Every option defines the run (a checkpoint records it and --resume refuses a change, see
 * train_options_identity) unless its row says MAY_CHANGE: so an option added later is
 * checked on resume until someone decides it may change.
 */
#include "train/options.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"  // defines: CLIP_MAX_TEXT_GROUPS
#include "train/recipe.h"  // defines: Recipe, train_recipes, recipe_find, recipe_print
#include "tng/generator.h" // defines: TNG_TEXT_OPTION_ROWS
#include "util/cli.h"      // defines: CliOption, CliProgram, cli_parse, cli_set, cli_fail, cli_format_value
#include "util/common.h"   // defines: die, strdupCheck

static const char *const ON_OFF[] = {"off", "on"}, *const COMPAT[] = {"ours", "released"};
static const char *const SCOPES[] = {"local", "global"}, *const CAPTIONS[] = {"one", "all"};
static const char *const FREEZE[] = {"vision", "text", "none"};
static const char *const SCHEDULES[] = {"constant", "cosine"};

/* The rows' mark (CliOption.mark): 0 = defines the run, the default */
enum { MARK_MAY_CHANGE = 1 };
#define MAY_CHANGE(spec) spec, .mark = MARK_MAY_CHANGE

static void parse_temperature(const CliProgram *prog, const CliOption *opt, const char *value,
                              void *args) {
    float *temperature = cli_field(opt, args); /* 0: learned */
    if (strcmp(value, "learned") == 0) *temperature = 0;
    else if (strncmp(value, "fixed:", 6) == 0) *temperature = (float)cli_number(prog, opt, value + 6, 1e-4, 100);
    else cli_fail(prog, "--temperature expects fixed:VALUE or learned, got '%s'", value);
}

static void parse_recipe(const CliProgram *prog, const CliOption *opt, const char *value, void *args) {
    int *recipe = cli_field(opt, args); /* -1: none */
    const Recipe *r = recipe_find(value);
    if (!r && strcmp(value, "none") != 0)
        cli_fail(prog, "--recipe expects none or a recipe --help lists, got '%s'", value);
    *recipe = r ? (int)(r - train_recipes) : -1;
}

static void format_temperature(const CliOption *opt, const void *args, char *out, size_t len) {
    float temperature = *(const float *)((const char *)args + opt->offset);
    if (temperature == 0) snprintf(out, len, "learned");
    else snprintf(out, len, "fixed:%.9g", temperature);
}

/* X(ID, SHORT, NAME, METAVAR, DEFAULT, TYPE, HELP): see util/cli.h */
#define TRAIN_OPTIONS(X)                                                                                     \
    X(RECIPE, 0, "recipe", "NAME", "none", MAY_CHANGE(CLI_CUSTOM(recipe, int, parse_recipe)),                \
      "tng-released or tng (above): defaults for the options the command line does not give")                \
    X(CONFIG, 0, "config", "NAME", "tiny", CLI_STRING(config),                                               \
      "train from scratch with a preset: tiny or vit-b-32")                                                  \
    X(INIT, 0, "init", "DIR", NULL, CLI_STRING(init),                                                        \
      "start from an HF CLIP directory, a tng checkpoint or a tng run")                                      \
    X(DATA, 0, "data", "PATH", "data/cache/synth/train.csv", CLI_STRING(data),                               \
      "training data: CSV/COCO/Karpathy file or tng_prep shard folder")                                      \
    X(FORMAT, 0, "format", "NAME", "auto", CLI_STRING(format), "dataset format: auto, csv, coco, karpathy")  \
    X(IMAGE_ROOT, 0, "image-root", "DIR", NULL, CLI_STRING(image_root),                                      \
      "re-root the image paths of --data and --val-mcq")                                                     \
    X(CAPTIONS, 0, "captions", "MODE", "one", CLI_CHOICE(captions_all, CAPTIONS),                            \
      "one (a caption per image per epoch) or all (every pair)")                                             \
    X(FAST_DECODE, 0, "fast-decode", NULL, NULL, CLI_FLAG(fast_decode, 1),                                   \
      "DCT-scaled JPEG decoding: faster, not bit-exact (training only)")                                     \
    X(TNG, 0, "tng", "on|off", "on", CLI_CHOICE(tng, ON_OFF), "generate negation texts each batch")          \
    TNG_TEXT_OPTION_ROWS(X)                                                                                  \
    X(TNG_RATIO, 0, "tng-ratio", "R", "1", CLI_DOUBLE(tng_ratio, 0.01, 1),                                   \
      "fraction of steps on TNG texts; the rest on the original captions alone")                             \
    X(CONTRADICTION_WEIGHT, 0, "contradiction-weight", "W", "1", CLI_FLOAT(contradiction_weight, 1e-6, 1e6), \
      "weight of contradiction negatives in the image->text softmax")                                        \
    X(TNG_COMPAT, 0, "tng-compat", "MODE", "ours", CLI_CHOICE(released, COMPAT),                             \
      "ours or released: the authors' code's pairing and targets")                                           \
    X(TNG_SCOPE, 0, "tng-scope", "MODE", "local", CLI_CHOICE(tng_global, SCOPES),                            \
      "local (neighbours from this rank's batch) or global (all ranks')")                                    \
    X(I2T_TARGET, 0, "i2t-target", "MODE", "own", CLI_CHOICE(i2t, tng_i2t_names),                            \
      "own, mean, each or released-random (which --tng-compat released makes the default)")                  \
    X(TEMPERATURE, 0, "temperature", "T", "fixed:0.07",                                                      \
      CLI_CUSTOM_FORMAT(temperature, float, parse_temperature, format_temperature),                          \
      "fixed:VALUE (e.g. fixed:0.07) or learned")                                                            \
    X(FREEZE, 0, "freeze", "TOWER", "vision", CLI_CHOICE(freeze, FREEZE), "vision, text or none")            \
    X(HARD_BATCHES, 0, "hard-batches", "G", "0", CLI_INT(hard_batches, 0, 64),                               \
      "batches of G-image groups of nearest neighbours (frozen image embeddings); 0: random batches")      \
    X(TWIN_BATCHES, 0, "twin-batches", NULL, NULL, CLI_FLAG(twin_batches, 1),                                \
      "batches that hold each image with its counterfactual twin (the CSV's twin column: tng_synth --twins), " \
      "whose objects TNG's hybrids deny first (--tng-compat released: the batches only)")                   \
    X(LR, 0, "lr", "X", "5e-6", CLI_FLOAT(optim.lr, 0, 10), "peak learning rate")                            \
    X(WD, 0, "wd", "X", "0.01", CLI_FLOAT(optim.weight_decay, 0, 10), "AdamW weight decay")                  \
    X(WD_ON, 0, "wd-on", "SET", CLI_INITIAL, CLI_CHOICE(optim.decay_set, optim_decay_set_names),             \
      "decay matrices (none on biases, LayerNorms, embeddings) or all trained tensors (as torch)")           \
    X(BETA1, 0, "beta1", "X", CLI_INITIAL, CLI_FLOAT(optim.beta1, 0, 0.999999), "AdamW beta1")               \
    X(BETA2, 0, "beta2", "X", CLI_INITIAL, CLI_FLOAT(optim.beta2, 0, 0.999999), "AdamW beta2")               \
    X(EPS, 0, "eps", "X", CLI_INITIAL, CLI_FLOAT(optim.eps, 1e-12, 1), "AdamW epsilon")                      \
    X(BATCH, 0, "batch", "N", "128", CLI_INT(batch, 1, 65536), "images per micro-batch")                     \
    X(ACCUM, 0, "accum", "N", "1", CLI_INT(accum, 1, 1024), "micro-batches per optimizer step")              \
    X(TEXT_GROUPS, 0, "text-groups", "K", "1", CLI_INT(text_groups, 1, CLIP_MAX_TEXT_GROUPS),                \
      "run a batch's texts in up to K groups by length, each cut to its own longest (1: one group)")        \
    X(EPOCHS, 0, "epochs", "N", "1", MAY_CHANGE(CLI_INT(epochs, 1, 100000)),                                 \
      "epochs to train when --steps is not given")                                                           \
    X(STEPS, 0, "steps", "N", NULL, MAY_CHANGE(CLI_LONG(steps, 1, 1L << 40)),                                \
      "optimizer steps to train (overrides --epochs)")                                                       \
    X(WARMUP, 0, "warmup", "N", CLI_INITIAL, CLI_LONG(optim.warmup_steps, 0, 1L << 40),                      \
      "linear warmup steps")                                                                                 \
    X(SCHEDULE, 0, "schedule", "NAME", CLI_INITIAL, CLI_CHOICE(optim.schedule, SCHEDULES),                   \
      "constant or cosine")                                                                                  \
    X(GRAD_CLIP, 0, "grad-clip", "X", CLI_INITIAL, CLI_FLOAT(optim.grad_clip, 0, 1e9),                       \
      "global gradient-norm clip, 0 = off")                                                                  \
    X(SEED, 0, "seed", "N", "0", CLI_U64(seed, 1ULL << 62),                                                  \
      "seed of the initialisation, the data order and TNG")                                                  \
    BACKEND_OPTION_ROWS(X, MAY_CHANGE, backend_choice, precision)                                            \
    X(CUDA_GRAPHS, 0, "cuda-graphs", "on|off", "off", MAY_CHANGE(CLI_CHOICE(cuda_graphs, ON_OFF)),            \
      "one process on CUDA: each step one graph, captured once per shape and replayed (off until measured on a GPU)")      \
    X(OUT, 0, "out", "DIR", "runs/latest", MAY_CHANGE(CLI_STRING(out)),                                      \
      "run directory")                                                                                       \
    X(CHECKPOINT_EVERY, 0, "checkpoint-every", "N", "0",                                                     \
      MAY_CHANGE(CLI_LONG(checkpoint_every, 0, 1L << 40)),                                                   \
      "also checkpoint every N steps, 0 = only at the end")                                                  \
    X(RESUME, 0, "resume", NULL, NULL, MAY_CHANGE(CLI_FLAG(resume, 1)),                                      \
      "continue the run in --out from its latest checkpoint")                                                \
    X(RESUME_CHANGED, 0, "resume-changed", "NAMES", NULL, MAY_CHANGE(CLI_STRING(resume_changed)),            \
      "with --resume: options (e.g. lr,seed) this command may change; others must match the run's")          \
    X(OVERWRITE, 0, "overwrite", NULL, NULL, MAY_CHANGE(CLI_FLAG(overwrite, 1)),                             \
      "start afresh in a used --out: first delete its checkpoints, latest and metrics.jsonl")                \
    X(VAL_MCQ, 0, "val-mcq", "CSV", NULL, MAY_CHANGE(CLI_STRING(val_mcq)),                                   \
      "validation MCQ file (NegBench format), scored every --eval-every steps")                              \
    X(EVAL_EVERY, 0, "eval-every", "N", "0", MAY_CHANGE(CLI_LONG(eval_every, 0, 1L << 40)),                  \
      "validation interval in steps, 0 = only at the end")                                                   \
    X(LOG_EVERY, 0, "log-every", "N", "10", MAY_CHANGE(CLI_LONG(log_every, 1, 1L << 40)),                    \
      "log line interval when not on a terminal")                                                            \
    X(LOG_TEXTS, 0, "log-texts", "N", "0", MAY_CHANGE(CLI_LONG(log_texts, 0, 1L << 40)),                     \
      "keep the TNG texts of the first N micro-batches in texts.jsonl (tng_negate shows any)")               \
    X(THREADS, 0, "threads", "N", "1", MAY_CHANGE(CLI_INT(threads, 1, 256)),                                 \
      "image decoding threads")                                                                              \
    X(MAX_NONFINITE, 0, "max-nonfinite", "K", "5", MAY_CHANGE(CLI_INT(max_nonfinite, 1, 1000000)),           \
      "abort after K non-finite steps in a row")                                                             \
    X(CHECK_SYNC, 0, "check-sync", "N", "0", MAY_CHANGE(CLI_LONG(check_sync, 0, 1L << 40)),                  \
      "under mpirun: compare a hash of the weights across ranks every N steps, 0 = off")                     \
    X(HANG_TIMEOUT, 0, "hang-timeout", "SECONDS", "600", MAY_CHANGE(CLI_DOUBLE(hang_timeout, 0, 1e7)),       \
      "under mpirun: end the job when a rank makes no progress this long, 0 = never")                        \
    X(HELP, 0, "help", NULL, NULL, CLI_HELP, "show this help")

enum { TRAIN_OPTIONS(CLI_ENUM_ROW) N_OPTIONS };

/* The summary --help shows: a fixed paragraph and every recipe in full (filled by
 * train_options_parse before the command line is read). */
static char summary[4096];

#define CLI_ARGS TrainOptions
CLI_PROGRAM(TRAIN_OPTIONS, "tng_train", "[options]", summary);

static void write_summary(void) {
    FILE *out = fmemopen(summary, sizeof summary, "w");
    if (!out) die("tng_train: cannot format the help");
    fprintf(out, "Fine-tunes CLIP with TNG negation texts (or plainly with --tng off) on a GPU or the CPU.\n"
                 "Data parallel: mpirun -np N tng_train ... (--batch is per rank).\n\n"
                 "Recipes: --recipe NAME gives these options as defaults; an option given on the command\n"
                 "line wins, before or after --recipe. The model is --init's (the paper: OpenAI ViT-B/32).");
    for (int i = 0; i < N_RECIPES; i++) {
        fprintf(out, "\n  %s: %s\n", train_recipes[i].name, train_recipes[i].about);
        recipe_print(&train_recipes[i], 0, "    ", out);
    }
    long length = ftell(out);
    fclose(out);
    if (length < 0 || (size_t)length + 1 >= sizeof summary) die("tng_train: the help outgrew its buffer");
    summary[length - 1] = 0; /* the last newline: print_usage adds its own */
}

/* The options whose values only TNG uses: a recipe's are skipped when the command line says
 * --tng off. */
static int tng_only(int id) {
    return id == OPT_NEG_PER_IMAGE || id == OPT_TNG_RATIO || id == OPT_CONTRADICTIONS || id == OPT_STANDALONE ||
           id == OPT_MCQ_LOSS ||
           id == OPT_TNG_COMPAT || id == OPT_TNG_SCOPE || id == OPT_I2T_TARGET;
}

/* 1 when the command line decided option id: given, or settled by another option given
 * (--steps replaces --epochs, --tng-compat picks its image-to-text target, --tng off makes
 * the TNG options moot). */
static int given(const TrainOptions *o, const int *seen, int id) {
    return seen[id] || (id == OPT_EPOCHS && seen[OPT_STEPS]) ||
           (id == OPT_I2T_TARGET && seen[OPT_TNG_COMPAT]) || (tng_only(id) && seen[OPT_TNG] && !o->tng);
}

/* Applies recipe r to the options the command line did not decide; the others' bits are set
 * in o->recipe_overridden. */
static void apply_recipe(TrainOptions *o, const Recipe *r, const int *seen) {
    if (r->count > 64) die("recipe %s: %d settings, at most 64", r->name, r->count);
    for (int k = 0; k < r->count; k++) {
        const CliOption *opt = NULL;
        for (int i = 0; i < N_OPTIONS && !opt; i++)
            if (strcmp(OPTIONS[i].name, r->settings[k].option) == 0) opt = &OPTIONS[i];
        if (!opt || !opt->metavar)
            die("recipe %s: --%s is no option with a value", r->name, r->settings[k].option);
        if (given(o, seen, opt->id)) o->recipe_overridden |= 1ULL << k;
        else cli_set(&PROGRAM, opt, r->settings[k].value, o);
    }
}

/* Whether a row's value defines the run; dies when such a row cannot write its value (a
 * custom row needs a format function), which the first run of any test catches. */
static int defines_run(const CliOption *opt) {
    if (opt->type == CLI_TYPE_HELP || opt->mark == MARK_MAY_CHANGE) return 0;
    if (opt->type == CLI_TYPE_CUSTOM && !opt->format)
        die("tng_train: --%s defines the run but its row has no format function (or mark it MAY_CHANGE)",
            opt->name);
    return 1;
}

void train_options_identity(const TrainOptions *o, int world, RunIdentity *id) {
    *id = (RunIdentity){0};
    char value[4096];
    for (int i = 0; i < PROGRAM.n_options; i++) {
        const CliOption *opt = &PROGRAM.options[i];
        if (!defines_run(opt)) continue;
        if (id->n == RUN_IDENTITY_MAX - 1) die("tng_train: raise RUN_IDENTITY_MAX");
        cli_format_value(opt, o, value, sizeof value);
        id->names[id->n] = opt->name;
        id->values[id->n++] = strdupCheck(value);
    }
    snprintf(value, sizeof value, "%d", world);
    id->names[id->n] = RUN_IDENTITY_RANKS;
    id->values[id->n++] = strdupCheck(value);
}

void run_identity_free(RunIdentity *id) {
    for (int i = 0; i < id->n; i++) free(id->values[i]);
    *id = (RunIdentity){0};
}

/* --resume-changed: every name must be an option that defines the run. */
static void check_resume_changed(const char *list) {
    char *copy = strdupCheck(list), *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        int known = strcmp(name, RUN_IDENTITY_RANKS) == 0;
        for (int i = 0; i < PROGRAM.n_options && !known; i++) {
            const CliOption *opt = &PROGRAM.options[i];
            if (strcmp(opt->name, name) != 0) continue;
            if (!defines_run(opt)) cli_fail(&PROGRAM, "--resume-changed: --%s may change on resume anyway", name);
            known = 1;
        }
        if (!known)
            cli_fail(&PROGRAM, "--resume-changed: '%s' is not an option (names without dashes, e.g. lr,seed)", name);
    }
    free(copy);
}

void train_options_parse(TrainOptions *o, int argc, char **argv) {
    write_summary();
    *o = (TrainOptions){.optim = optim_defaults()}; /* the rows set the rest */
    int seen[N_OPTIONS];
    cli_parse(&PROGRAM, argc, argv, o, seen);
    if (o->recipe >= 0) apply_recipe(o, &train_recipes[o->recipe], seen);
    o->train_vision = o->freeze != 0;
    o->train_text = o->freeze != 1;
    if (seen[OPT_CONFIG] && seen[OPT_INIT]) cli_fail(&PROGRAM, "give --config or --init, not both");
    if (!o->train_vision && !o->train_text && o->temperature > 0)
        cli_fail(&PROGRAM, "--freeze with a fixed temperature: nothing would train");
    /* a given --tng-compat brings its image-to-text target (released: released-random, ours:
     * own) unless --i2t-target is given too */
    if (seen[OPT_TNG_COMPAT] && !seen[OPT_I2T_TARGET])
        o->i2t = o->released ? TNG_I2T_RELEASED_RANDOM : TNG_I2T_OWN;
    if (!o->tng && o->released) cli_fail(&PROGRAM, "--tng-compat released needs --tng on");
    if (!o->tng && o->contradictions) cli_fail(&PROGRAM, "--contradictions needs --tng on");
    if (!o->tng && o->standalone) cli_fail(&PROGRAM, "--standalone-negations needs --tng on");
    if (!o->tng && o->mcq_loss > 0) cli_fail(&PROGRAM, "--mcq-loss needs --tng on");
    if (!o->tng && o->tng_ratio < 1) cli_fail(&PROGRAM, "--tng-ratio needs --tng on");
    if (!o->tng && o->log_texts) cli_fail(&PROGRAM, "--log-texts needs --tng on");
    if (o->resume && o->overwrite)
        cli_fail(&PROGRAM, "--resume continues the run in --out, --overwrite deletes it: not both");
    if (o->resume_changed && !o->resume) cli_fail(&PROGRAM, "--resume-changed needs --resume");
    if (o->hard_batches && o->train_vision)
        cli_fail(&PROGRAM, "--hard-batches finds neighbours by the frozen vision tower's embeddings: it needs "
                           "--freeze vision");
    if (o->hard_batches && o->captions_all)
        cli_fail(&PROGRAM, "--hard-batches groups images: it needs --captions one");
    if (o->twin_batches && o->hard_batches)
        cli_fail(&PROGRAM, "--twin-batches and --hard-batches both regroup the batches: give one");
    if (o->twin_batches && o->captions_all)
        cli_fail(&PROGRAM, "--twin-batches groups images: it needs --captions one");
    if (o->twin_batches && o->batch % 2)
        cli_fail(&PROGRAM, "--twin-batches puts an image and its twin in one batch: it needs an even --batch");
    if (o->resume_changed) check_resume_changed(o->resume_changed);
}

void train_options_print(const TrainOptions *o, const Dist *d, FILE *out) {
    fprintf(out, "tng_train settings:\n");
    fprintf(out, "  backend    %s\n", o->backend_desc);
    if (o->recipe >= 0) {
        const Recipe *r = &train_recipes[o->recipe];
        fprintf(out, "  recipe     %s: %s\n", r->name, r->about);
        recipe_print(r, o->recipe_overridden, "             ", out);
        if (o->recipe_overridden)
            fprintf(out, "             (overridden): the command line decided; the values in force follow\n");
    } else {
        fprintf(out, "  recipe     none\n");
    }
    fprintf(out, "  model      %s %s\n", o->init ? "init" : "config", o->init ? o->init : o->config);
    fprintf(out, "  data       %s (format %s, captions %s%s), batches %s\n", o->data, o->format,
            CAPTIONS[o->captions_all], o->fast_decode ? ", fast decode" : "",
            o->hard_batches ? "of nearest-neighbour groups" : o->twin_batches ? "of counterfactual twins" : "random");
    if (o->hard_batches) fprintf(out, "             (groups of %d images)\n", o->hard_batches);
    fprintf(out, "  tng        %s, M=%d, compat %s, i2t target %s, scope %s, contradictions %d (weight %g), "
                 "standalone negations %d, ratio %g, MCQ loss %g\n",
            ON_OFF[o->tng], o->neg_per_image, COMPAT[o->released], tng_i2t_names[o->i2t],
            SCOPES[o->tng_global], o->contradictions, o->contradiction_weight, o->standalone, o->tng_ratio,
            o->mcq_loss);
    if (o->temperature > 0) fprintf(out, "  temperature fixed %g\n", o->temperature);
    else fprintf(out, "  temperature learned\n");
    fprintf(out, "  train      vision %s, text %s\n", o->train_vision ? "yes" : "frozen",
            o->train_text ? "yes" : "frozen");
    fprintf(out, "  optimizer  AdamW lr %g wd %g on %s, betas (%g, %g) eps %g, %s schedule, warmup %ld, clip %g\n",
            o->optim.lr, o->optim.weight_decay, optim_decay_set_names[o->optim.decay_set], o->optim.beta1,
            o->optim.beta2, o->optim.eps, SCHEDULES[o->optim.schedule], o->optim.warmup_steps, o->optim.grad_clip);
    fprintf(out, "  batch      %d x accum %d, %s %ld, texts in %d length group%s\n", o->batch, o->accum,
            o->steps ? "steps" : "epochs", o->steps ? o->steps : (long)o->epochs, o->text_groups,
            o->text_groups == 1 ? "" : "s");
    fprintf(out, "  parallel   %d rank%s (%s; tensors over %s), global batch %d, check-sync every %ld, "
            "hang timeout %g s\n", d->world, d->world == 1 ? "" : "s",
            d->world == 1 ? "one process" : dist_transport(), d->device->name, o->batch * d->world,
            o->check_sync, o->hang_timeout);
    fprintf(out, "  run        out %s, seed %" PRIu64 ", checkpoint every %ld, eval every %ld%s\n", o->out,
            o->seed, o->checkpoint_every, o->eval_every, o->resume ? ", resuming" : "");
}
