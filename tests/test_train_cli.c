/*
 * test_train_cli.c: the programs end to end, run as subprocesses on a tiny synthetic world.
 *
 * tng_synth writes a 64-image world into a temporary folder; tng_train trains the tiny
 * config on it for a few steps (batch 4, vision frozen: the paper's recipe, and the cheapest);
 * tng_eval scores the result. Checked: every CLI error exits 2 with a message that names the
 * problem, --help and the parser agree, --help prints the recipes and a --recipe run trains, a
 * resumed or interrupted (SIGINT) run ends with the very bytes of a straight run, and
 * tng_eval's table and JSON agree.
 *
 * The programs run as tests/programs.h says.
 */
#include <signal.h>

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <zlib.h>

#include "dataset/dataset.h" // defines: Dataset, DatasetItem, dataset_load
#include "engine/config.h"  // defines: clip_config_preset
#include "engine/model.h"   // defines: Clip, clip_create, clip_init_random, clip_get_params
#include "harness.h"
#include "engine/model.h"
#include "io/checkpoint.h"  // defines: checkpoint_save_hf
#include "programs.h"       // defines: run, spawn, Outcome, work, make_world, programs_setup
#include "train/recipe.h"   // defines: train_recipes, recipe_print
#include "util/common.h"    // defines: die, read_file

static char world[512];

/* ----------------------------------------------------------------------------
 * The fixture: the world and one straight reference run, made once */

enum { BATCH = 4, STEPS = 6, HALF = 3 };
static char straight_run[PATH_LEN];

/* Trains the tiny config on the world: STEPS steps into RUN_DIR, plus up to two extra
 * arguments (e.g. --resume). Pass NULL for unused extras. */
static Outcome train(const char *run_dir, int steps, const char *extra1, const char *extra2) {
    char steps_text[16];
    format_text(steps_text, sizeof steps_text, "%d", steps);
    return run(NULL, "tng_train", "--config", "tiny", "--data", world, "--batch", "4", "--steps", steps_text,
               "--seed", "3", "--log-every", "1", "--out", run_dir, extra1, extra2, (char *)NULL);
}

static void make_fixture(void) {
    make_world(world, 64);
    strcat(world, "/train.csv");
    format_text(straight_run, sizeof straight_run, "%s/straight", work);
    Outcome o = train(straight_run, STEPS, NULL, NULL);
    if (o.status != 0) die("the straight run failed (%d): %s", o.status, o.err);
    outcome_free(&o);
}

/* ----------------------------------------------------------------------------
 * --help against the parser */

/* The options each program's --help must list (its rows in host/bin/ or host/train/options.c);
 * new ones may be added without touching this test. */
static const char *const TRAIN_OPTIONS[] = {
    "recipe", "config", "init", "data", "format", "image-root", "captions", "fast-decode", "tng", "neg-per-image",
    "tng-ratio", "contradictions", "standalone-negations", "mcq-loss", "contradiction-weight", "tng-compat", "tng-scope", "i2t-target", "temperature",
    "freeze", "hard-batches", "twin-batches", "lr", "wd", "wd-on", "beta1", "beta2", "eps", "batch", "accum", "epochs", "steps", "warmup",
    "schedule", "grad-clip", "seed", "backend", "out", "checkpoint-every", "resume", "resume-changed", "overwrite",
    "val-mcq", "eval-every", "log-every", "log-texts", "threads",
    "max-nonfinite", "check-sync", "hang-timeout", "help", NULL};
static const char *const EVAL_OPTIONS[] = {"model", "name", "mcq", "retrieval", "ccneg", "zeroshot", "templates",
                                           "image-root", "json", "batch", "quiet", "help", NULL};
static const char *const EMBED_OPTIONS[] = {"model", "image", "text", "npy", "batch", "help", NULL};
static const char *const PREP_OPTIONS[] = {"data", "out", "format", "image-root", "instances", "splits", "image-size",
                                           "shard-items", "threads", "fast", "no-progress", "help", NULL};
static const char *const SYNTH_OPTIONS[] = {"out", "seed", "size", "train", "val", "test", "captions", "quality",
                                            "phrasing", "twins", "quiet", "help", NULL};
static const char *const TOKENIZE_OPTIONS[] = {"context", "vocab", "help", NULL};
static const char *const NEGATE_OPTIONS[] = {"data", "format", "image-root", "model", "embed-cache", "captions",
                                             "shuffle", "last-batch", "neg-per-image", "contradictions",
                                             "tng-compat", "seed", "batch", "ranks", "batches", "threads", "jsonl",
                                             "stats", "top", "help", NULL};

/* One help line's option: "  [-x, ]--name ARG   text" or "  [-x, ]--name   text". Returns 1
 * and fills name, the short alias (0 for none) and takes_value when the line documents an
 * option. */
static int help_line_option(const char *line, char *name, size_t name_len, char *alias, int *takes_value) {
    while (*line == ' ') line++;
    *alias = 0;
    if (line[0] == '-' && line[1] != '-' && line[2] == ',' && line[3] == ' ') { // "-o, "
        *alias = line[1];
        line += 4;
    }
    if (strncmp(line, "--", 2) != 0) return 0;
    line += 2;
    size_t n = strspn(line, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (n == 0 || n >= name_len) return 0;
    memcpy(name, line, n);
    name[n] = 0;
    *takes_value = line[n] == ' ' && line[n + 1] != ' ' && line[n + 1] != '\0';
    return 1;
}

/* The X of a help line ending in "(default X)", into out; 0 when the line shows no default. */
static int help_line_default(const char *line, char *out, size_t len) {
    const char *at = NULL;
    for (const char *p = line; (p = strstr(p, "(default ")) != NULL; p++) at = p; /* the last */
    size_t n = at ? strlen(at) : 0;
    if (!at || at[n - 1] != ')') return 0;
    at += strlen("(default ");
    n = strlen(at) - 1;
    if (n == 0 || n >= len) return 0;
    memcpy(out, at, n);
    out[n] = 0;
    return 1;
}

/* Runs PROGRAM with one argument (or two); wants exit code WANT and, unless NULL, NEEDLE in
 * stderr without "unrecognized". Returns 1 when it holds (each failure is reported). */
static int probe(const char *program, const char *arg, const char *value, int want, const char *needle) {
    Outcome o = run(work, program, arg, value, (char *)NULL);
    int ok = o.status == want && (!needle || (strstr(o.err, needle) && !strstr(o.err, "unrecognized")));
    CHECK(ok, "%s %s %s: exit %d, want %d and '%s'; stderr: %.300s", program, arg, value ? value : "", o.status,
          want, needle ? needle : "", o.err);
    outcome_free(&o);
    return ok;
}

/* For every option in PROGRAM's --help, asks the parser about it without letting it work
 * (in an empty folder, so a mistake cannot touch the repository): a value option given no
 * value must be refused with "requires an argument" (its short alias too), a flag given "=x"
 * with "doesn't allow", neither may be "unrecognized", and the default --help shows must be a
 * value the parser takes (given before --help, the program must still exit 0). Returns the
 * number of options listed. */
static int check_help_matches_parser(const char *program, const char *const *expected) {
    Outcome help = run(work, program, "--help", (char *)NULL);
    CHECK(help.status == 0, "%s --help exited %d", program, help.status);
    CHECK(help.err[0] == 0, "%s --help wrote to stderr: %s", program, help.err);
    int listed = 0, defaults = 0, found[64] = {0}, n_expected = 0;
    while (expected[n_expected]) n_expected++;
    if (n_expected > 64) die("raise found[] to %d options", n_expected);
    for (char *line = help.out; line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char name[64], probe_arg[80], alias, shown[256];
        int takes_value;
        if (help_line_option(line, name, sizeof name, &alias, &takes_value)) {
            listed++;
            for (int i = 0; i < n_expected; i++) found[i] |= strcmp(expected[i], name) == 0;
            format_text(probe_arg, sizeof probe_arg, takes_value ? "--%s" : "--%s=x", name);
            probe(program, probe_arg, NULL, 2, takes_value ? "requires an argument" : "doesn't allow an argument");
            if (alias && takes_value) {
                format_text(probe_arg, sizeof probe_arg, "-%c", alias);
                probe(program, probe_arg, NULL, 2, "requires an argument");
            }
            if (takes_value && help_line_default(line, shown, sizeof shown)) {
                format_text(probe_arg, sizeof probe_arg, "--%s=%s", name, shown);
                defaults += probe(program, probe_arg, "--help", 0, NULL);
            }
        }
        line = end ? end + 1 : NULL;
    }
    for (int i = 0; i < n_expected; i++)
        CHECK(found[i], "%s --help does not list --%s, which the parser accepts", program, expected[i]);
    CHECK(listed >= n_expected, "%s --help lists %d options, want at least %d", program, listed, n_expected);
    outcome_free(&help);
    return defaults;
}

/* Help and getopt table come from one row per option (host/util/cli.h), so a listed option the
 * parser rejects, or a shown default it refuses, means the rows and the parser drifted. */
static void test_help_matches_parser(void) {
    static const struct {
        const char *program;
        const char *const *options;
        int min_defaults; /* defaults --help must show (and the parser must take) */
    } programs[] = {{"tng_train", TRAIN_OPTIONS, 30}, {"tng_eval", EVAL_OPTIONS, 1},
                    {"tng_embed", EMBED_OPTIONS, 1},  {"tng_prep", PREP_OPTIONS, 4},
                    {"tng_synth", SYNTH_OPTIONS, 8},  {"tng_tokenize", TOKENIZE_OPTIONS, 1},
                    {"tng_negate", NEGATE_OPTIONS, 9}};
    for (size_t k = 0; k < sizeof programs / sizeof *programs; k++) {
        int defaults = check_help_matches_parser(programs[k].program, programs[k].options);
        CHECK(defaults >= programs[k].min_defaults, "%s --help shows %d accepted defaults, want %d",
              programs[k].program, defaults, programs[k].min_defaults);
    }
}

/* --help prints every recipe in full, as the settings block prints it (one recipe_print). */
static void test_help_lists_the_recipes(void) {
    Outcome help = run(work, "tng_train", "--help", (char *)NULL);
    for (int i = 0; i < N_RECIPES; i++) {
        char *text = NULL, head[256];
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        recipe_print(&train_recipes[i], 0, "    ", out);
        fclose(out);
        format_text(head, sizeof head, "\n  %s: %s\n", train_recipes[i].name, train_recipes[i].about);
        const char *at = strstr(help.out, head);
        CHECK(at && strncmp(at + strlen(head), text, strlen(text) - 1) == 0,
              "--help does not list recipe %s as\n%s%s--- help:\n%s", train_recipes[i].name, head, text, help.out);
        free(text);
    }
    outcome_free(&help);
}

/* A recipe run: it trains, and its settings block names the recipe and the overrides. */
static void test_recipe_run(void) {
    char run_dir[PATH_LEN];
    format_text(run_dir, sizeof run_dir, "%s/recipe_run", work);
    Outcome o = run(NULL, "tng_train", "--config", "tiny", "--data", world, "--recipe", "tng-released", "--batch", "4",
                    "--steps", "2", "--out", run_dir, (char *)NULL);
    CHECK(o.status == 0, "exit %d: %.400s", o.status, o.err);
    CHECK(strstr(o.err, "recipe     tng-released: ") &&
              strstr(o.err, "--batch 128 (overridden) --accum 1 --epochs 10 (overridden)") &&
              strstr(o.err, "compat released, i2t target released-random") &&
              strstr(o.err, "wd 0.01 on all, betas (0.9, 0.999)"),
          "settings block: %.1500s", o.err);
    outcome_free(&o);
}

/* ----------------------------------------------------------------------------
 * CLI errors: exit 2 (usage) or non-zero (data), a message naming the problem, no work */

/* Runs tng_train with the arguments; wants exit code WANT_STATUS and NEEDLE in stderr. */
#define CHECK_REFUSED(want_status, needle, ...)                                                   \
    do {                                                                                          \
        Outcome o_ = run(NULL, "tng_train", __VA_ARGS__, (char *)NULL);                           \
        CHECK(o_.status == (want_status) && strstr(o_.err, needle),                               \
              "tng_train %s: exit %d (want %d), stderr lacks '%s': %.400s", #__VA_ARGS__, o_.status, \
              want_status, needle, o_.err);                                                       \
        outcome_free(&o_);                                                                        \
    } while (0)

/* A model directory of a tiny-like CLIP with 2 text layers instead of 4: another model. */
static void write_other_model(const char *dir) {
    ClipConfig cfg;
    if (clip_config_preset("tiny", &cfg) != 0) die("no tiny preset");
    cfg.text.layers = 2;
    Clip *m = clip_create(&cfg, backend_cpu());
    clip_init_random(m, 11);
    float *params = mallocCheck(sizeof(float) * m->layout.total);
    clip_get_params(m, params);
    char err[512];
    if (checkpoint_save_hf(dir, &cfg, params, err, sizeof err) != 0) die("%s", err);
    free(params);
    clip_free(m);
}

static void test_cli_errors(void) {
    char empty_run[PATH_LEN], other_model[PATH_LEN], missing[PATH_LEN], latest[PATH_LEN];
    format_text(empty_run, sizeof empty_run, "%s/empty_run", work);
    format_text(other_model, sizeof other_model, "%s/other_model", work);
    format_text(missing, sizeof missing, "%s/no_such_data.csv", work);
    CHECK_REFUSED(2, "no-such-option", "--no-such-option");
    CHECK_REFUSED(2, "--lr expects a number", "--lr", "abc");
    CHECK_REFUSED(2, "--batch expects a whole number", "--batch", "0");
    CHECK_REFUSED(2, "choose one of", "--tng", "maybe");
    CHECK_REFUSED(2, "fixed:VALUE or learned", "--temperature", "0.07");
    CHECK_REFUSED(2, "not both", "--config", "tiny", "--init", other_model);
    CHECK_REFUSED(2, "unknown --config 'huge'", "--config", "huge", "--data", world, "--batch", "4", "--out",
                  empty_run);
    CHECK_REFUSED(2, "unexpected argument 'stray'", "stray");
    CHECK_REFUSED(2, "--recipe expects none or a recipe", "--recipe", "paper");
    CHECK_REFUSED(2, "--tng-compat released needs --tng on", "--recipe", "tng", "--tng", "off", "--tng-compat",
                  "released");
    CHECK_REFUSED(2, "--mcq-loss needs --tng on", "--tng", "off", "--mcq-loss", "1");
    CHECK_REFUSED(2, "--mcq-loss", "--mcq-loss", "-0.5");
    CHECK_REFUSED(2, "--mcq-loss expects a number", "--mcq-loss", "lots");
    CHECK_REFUSED(2, "--mcq-loss", "--mcq-loss", "nan");
    /* --resume into a folder that holds no run */
    CHECK_REFUSED(2, "no checkpoint to resume from", "--data", world, "--batch", "4", "--out", empty_run, "--resume");
    /* a finished run's folder, without --resume: refused rather than overwritten */
    CHECK_REFUSED(2, "already holds a run", "--data", world, "--batch", "4", "--out", straight_run, "--steps", "1");
    /* --resume with another MCQ weight: it defines the run */
    Outcome changed = train(straight_run, STEPS + 1, "--resume", "--mcq-loss=1");
    CHECK(changed.status == 2 && strstr(changed.err, "--mcq-loss: the run was trained with 0, this command gives 1"),
          "--resume with --mcq-loss 1: exit %d: %.400s", changed.status, changed.err);
    outcome_free(&changed);
    /* --resume of the tiny run with a different model: the checkpoint's config differs */
    write_other_model(other_model);
    CHECK_REFUSED(2, "model config differs", "--init", other_model, "--data", world, "--out", straight_run,
                  "--batch", "4", "--resume");
    /* a missing dataset: a clear error, and no checkpoint written */
    format_text(latest, sizeof latest, "%s/missing_data_run/latest", work);
    char missing_run[PATH_LEN];
    format_text(missing_run, sizeof missing_run, "%s/missing_data_run", work);
    Outcome o = run(NULL, "tng_train", "--data", missing, "--out", missing_run, "--steps", "1", (char *)NULL);
    CHECK(o.status != 0 && strstr(o.err, missing) && strstr(o.err, "no training data"),
          "missing dataset: exit %d, stderr %.400s", o.status, o.err);
    CHECK(!file_exists(latest), "a checkpoint was written for a missing dataset");
    outcome_free(&o);
}

/* ----------------------------------------------------------------------------
 * Resume: 3 steps then --resume to 6 ends with the straight run's bytes */

static void test_resume_is_bit_exact(void) {
    char run_dir[PATH_LEN];
    format_text(run_dir, sizeof run_dir, "%s/halves", work);
    Outcome o = train(run_dir, HALF, NULL, NULL);
    CHECK(o.status == 0, "first half exited %d: %.400s", o.status, o.err);
    outcome_free(&o);
    o = train(run_dir, STEPS, "--resume", NULL);
    CHECK(o.status == 0, "resumed half exited %d: %.400s", o.status, o.err);
    CHECK(strstr(o.err, "at step 3") != NULL, "the resumed run does not say it starts at step 3: %.400s", o.err);
    CHECK(strstr(o.err, "step 4/6") && !strstr(o.err, "step 3/6"), "the resumed run's progress: %.600s", o.err);
    outcome_free(&o);
    check_same_checkpoint(run_dir, straight_run, STEPS);
}

/* --tng-ratio 0.5 trains step 0 on the original captions alone and step 1 on the TNG texts:
 * after one step it equals a --tng off run byte for byte, after two it does not. */
static void test_tng_ratio(void) {
    char plain[PATH_LEN], half[PATH_LEN], a[PATH_LEN], b[PATH_LEN];
    format_text(plain, sizeof plain, "%s/ratio_plain", work);
    format_text(half, sizeof half, "%s/ratio_half", work);
    const char *ratio_flags[2][2] = {{"--tng", "off"}, {"--tng-ratio", "0.5"}};
    const char *dirs[2] = {plain, half};
    for (int k = 0; k < 2; k++) {
        Outcome o = run(NULL, "tng_train", "--config", "tiny", "--data", world, "--batch", "4", "--steps", "2",
                        "--seed", "3", "--checkpoint-every", "1", "--out", dirs[k], ratio_flags[k][0],
                        ratio_flags[k][1], (char *)NULL);
        CHECK(o.status == 0, "%s %s exited %d: %.400s", ratio_flags[k][0], ratio_flags[k][1], o.status, o.err);
        CHECK(k == 0 || strstr(o.err, "ratio 0.5"), "the settings do not show the ratio: %.400s", o.err);
        outcome_free(&o);
    }
    for (int step = 1; step <= 2; step++) {
        format_text(a, sizeof a, "%s/ckpt-%08d/model.safetensors", plain, step);
        format_text(b, sizeof b, "%s/ckpt-%08d/model.safetensors", half, step);
        CHECK(file_exists(a) && file_exists(b), "checkpoints of step %d are missing", step);
        CHECK(same_bytes(a, b) == (step == 1), "step %d: --tng-ratio 0.5 %s --tng off", step,
              step == 1 ? "differs from" : "equals");
    }
    CHECK_REFUSED(2, "--tng-ratio needs --tng on", "--tng", "off", "--tng-ratio", "0.5");
    CHECK_REFUSED(2, "--tng-ratio expects", "--tng-ratio", "0");
}

/* --hard-batches: batches of neighbour groups change what trains (the straight run's random
 * batches differ), are a pure function of the options (two runs, the same bytes), and resume bit
 * for bit (3 steps, then --resume to 6, equals 6 straight); refused where no frozen embedding
 * gives neighbours or a sample is not an image. */
static void test_hard_batches(void) {
    char once[PATH_LEN], twice[PATH_LEN], resumed[PATH_LEN];
    format_text(once, sizeof once, "%s/hard_once", work);
    format_text(twice, sizeof twice, "%s/hard_twice", work);
    format_text(resumed, sizeof resumed, "%s/hard_resumed", work);
    const char *dirs[2] = {once, twice};
    for (int k = 0; k < 2; k++) {
        Outcome o = train(dirs[k], STEPS, "--hard-batches", "2");
        CHECK(o.status == 0 && strstr(o.err, "nearest-neighbour groups"), "run %d: exit %d: %.400s", k, o.status,
              o.err);
        outcome_free(&o);
    }
    check_same_checkpoint(twice, once, STEPS);
    char a[PATH_LEN], b[PATH_LEN];
    format_text(a, sizeof a, "%s/ckpt-%08d/model.safetensors", once, STEPS);
    format_text(b, sizeof b, "%s/ckpt-%08d/model.safetensors", straight_run, STEPS);
    CHECK(file_exists(a) && file_exists(b) && !same_bytes(a, b), "hard batches trained what random batches did");
    for (int half = 0; half < 2; half++) {
        Outcome o = run(NULL, "tng_train", "--config", "tiny", "--data", world, "--batch", "4", "--steps",
                        half ? "6" : "3", "--seed", "3", "--log-every", "1", "--out", resumed, "--hard-batches",
                        "2", half ? "--resume" : NULL, (char *)NULL);
        CHECK(o.status == 0, "part %d: exit %d: %.400s", half, o.status, o.err);
        outcome_free(&o);
    }
    check_same_checkpoint(resumed, once, STEPS);
    CHECK_REFUSED(2, "--hard-batches finds neighbours by the frozen vision tower", "--hard-batches", "2",
                  "--freeze", "none");
    CHECK_REFUSED(2, "--hard-batches groups images: it needs --captions one", "--hard-batches", "2",
                  "--captions", "all");
}

/* The item of data with this source id, or NULL. */
static const DatasetItem *item_named(const Dataset *data, const char *id) {
    for (int i = 0; i < data->count; i++)
        if (strcmp(data->items[i].source_id, id) == 0) return &data->items[i];
    return NULL;
}

/* The object an original item's twin adds (its twin's one object the original lacks), or NULL
 * for a twin (its own twin adds nothing). */
static const char *twin_added_object(const Dataset *data, const DatasetItem *item) {
    if (item->twin < 0) return NULL;
    const DatasetItem *twin = &data->items[item->twin];
    for (int k = 0; k < twin->n_objects; k++) {
        int own = 0;
        for (int m = 0; m < item->n_objects; m++) own |= strcmp(item->objects[m], twin->objects[k]) == 0;
        if (!own) return twin->objects[k];
    }
    return NULL;
}

/* Read from run_dir/texts.jsonl against the CSV's objects (not the generator's bookkeeping):
 * the hybrids of original images (*originals) and how many of them deny the twin's added object. */
static int hybrids_denying_twin_object(const char *run_dir, const char *csv, int *originals) {
    Dataset data = {0};
    char err[512], path[PATH_LEN];
    CHECK(dataset_load(csv, &(DatasetOptions){0}, &data, err, sizeof err) == 0, "%s", err);
    format_text(path, sizeof path, "%s/texts.jsonl", run_dir);
    char *text = read_file(path, NULL);
    CHECK(text != NULL, "no %s", path);
    int denying = 0;
    *originals = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *record = cJSON_Parse(line);
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(record, "kind"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(record, "id"));
        const char *object = cJSON_GetStringValue(cJSON_GetObjectItem(record, "object"));
        const DatasetItem *item = id ? item_named(&data, id) : NULL;
        const char *added = item ? twin_added_object(&data, item) : NULL;
        if (kind && strcmp(kind, "hybrid") == 0 && added) {
            ++*originals;
            denying += object && strcmp(object, added) == 0;
        }
        cJSON_Delete(record);
    }
    free(text);
    dataset_free(&data);
    return denying;
}

/* Writes prep's image embedding cache (dataset/embed_cache.h: 32 header bytes, n ids, n rows
 * of D floats, crc32) into run_dir with every twin's row the negation of its original's, so
 * that the twin is the least similar image of all. (A random tower sees a twin, the same
 * picture plus one object, as the nearest: it would not tell a preference from none.) */
static void cache_with_twins_apart(const char *prep, const char *run_dir, const char *csv) {
    Dataset data = {0};
    char err[512], path[PATH_LEN];
    CHECK(dataset_load(csv, &(DatasetOptions){0}, &data, err, sizeof err) == 0, "%s", err);
    format_text(path, sizeof path, "%s/image_embeddings.cache", prep);
    size_t size = 0;
    unsigned char *bytes = (unsigned char *)read_file(path, &size);
    uint32_t dim = 0;
    uint64_t n = 0;
    if (bytes && size > 32) memcpy(&dim, bytes + 8, 4), memcpy(&n, bytes + 24, 8);
    CHECK(bytes && n == (uint64_t)data.count && size == 32 + n * 8 + n * dim * 4 + 4, "%s: %zu bytes", path, size);
    if (bytes && n == (uint64_t)data.count) {
        float *rows = (float *)(bytes + 32 + n * 8);
        for (int i = 0; i < data.count; i++)
            if (twin_added_object(&data, &data.items[i]))
                for (uint32_t d = 0; d < dim; d++) rows[(size_t)data.items[i].twin * dim + d] = -rows[(size_t)i * dim + d];
        uint32_t crc = (uint32_t)crc32(0L, bytes, (uInt)(size - 4));
        memcpy(bytes + size - 4, &crc, 4);
        format_text(path, sizeof path, "%s/image_embeddings.cache", run_dir);
        FILE *f = mkdir(run_dir, 0755) == 0 ? fopen(path, "wb") : NULL;
        CHECK(f && fwrite(bytes, 1, size, f) == size && fclose(f) == 0, "cannot write %s", path);
    }
    free(bytes);
    dataset_free(&data);
}

/* --twin-batches with TNG: an original's hybrid denies the object its twin adds, though the twin
 * is its least similar batch-mate (TNG tries the twin first), read from texts.jsonl against
 * the CSV; without the preference next to none would. */
static void check_twin_hybrids(const char *data, const char *prep) {
    char run_dir[PATH_LEN];
    format_text(run_dir, sizeof run_dir, "%s/twin_tng", work);
    cache_with_twins_apart(prep, run_dir, data);
    Outcome o = run(NULL, "tng_train", "--config", "tiny", "--data", data, "--batch", "4", "--steps", "8", "--seed",
                    "3", "--tng", "on", "--log-texts", "8", "--out", run_dir, "--twin-batches", (char *)NULL);
    CHECK(o.status == 0 && strstr(o.err, "reused from the cache"), "--twin-batches --tng on: exit %d: %.400s",
          o.status, o.err);
    outcome_free(&o);
    int originals, denying = hybrids_denying_twin_object(run_dir, data, &originals);
    CHECK(originals == 16 && denying == originals, "%d of %d originals' hybrids deny the twin's added object",
          denying, originals);
}

/* --twin-batches on a world with counterfactual twins (tng_synth --twins): the batches change
 * what trains (the same world's random batches differ), are a pure function of the options (two
 * runs, the same bytes), resume bit for bit (3 steps, then --resume to 6), and a resume that
 * drops the option is refused. It needs no frozen tower; refused with --hard-batches, with
 * --captions all, with an odd --batch and on a CSV without a twin column. */
static void test_twin_batches(void) {
    char twins[PATH_LEN], data[PATH_LEN], runs[4][PATH_LEN];
    format_text(twins, sizeof twins, "%s/twin_world", work);
    format_text(data, sizeof data, "%s/train.csv", twins);
    Outcome o = run(NULL, "tng_synth", "--out", twins, "--train", "32", "--val", "16", "--test", "16", "--size", "32",
                    "--captions", "2", "--seed", "5", "--quiet", "--twins", (char *)NULL);
    CHECK(o.status == 0, "tng_synth --twins: exit %d: %.400s", o.status, o.err);
    outcome_free(&o);
    const char *names[4] = {"twin_once", "twin_twice", "twin_plain", "twin_resumed"};
    for (int k = 0; k < 4; k++) format_text(runs[k], sizeof runs[k], "%s/%s", work, names[k]);
    for (int k = 0; k < 3; k++) {
        o = run(NULL, "tng_train", "--config", "tiny", "--data", data, "--batch", "4", "--steps", "6", "--seed", "3",
                "--log-every", "1", "--out", runs[k], k < 2 ? "--twin-batches" : NULL, (char *)NULL);
        CHECK(o.status == 0 && (k == 2) == !strstr(o.err, "batches of counterfactual twins"), "run %d: exit %d: %.400s", k,
              o.status, o.err);
        outcome_free(&o);
    }
    check_same_checkpoint(runs[1], runs[0], STEPS);
    char a[PATH_LEN], b[PATH_LEN];
    format_text(a, sizeof a, "%s/ckpt-%08d/model.safetensors", runs[0], STEPS);
    format_text(b, sizeof b, "%s/ckpt-%08d/model.safetensors", runs[2], STEPS);
    CHECK(file_exists(a) && file_exists(b) && !same_bytes(a, b), "twin batches trained what random batches did");
    for (int part = 0; part < 3; part++) { // 3 steps; a resume without the option, refused; the resume to 6
        o = run(NULL, "tng_train", "--config", "tiny", "--data", data, "--batch", "4", "--steps", part ? "6" : "3",
                "--seed", "3", "--log-every", "1", "--out", runs[3], part ? "--resume" : "--twin-batches",
                part == 2 ? "--twin-batches" : NULL, (char *)NULL);
        CHECK(part == 1 ? o.status == 2 && strstr(o.err, "twin-batches") : o.status == 0, "part %d: exit %d: %.400s",
              part, o.status, o.err);
        outcome_free(&o);
    }
    check_same_checkpoint(runs[3], runs[0], STEPS);
    check_twin_hybrids(data, runs[0]);
    format_text(a, sizeof a, "%s/twin_unfrozen", work);
    o = run(NULL, "tng_train", "--config", "tiny", "--data", data, "--batch", "4", "--steps", "1", "--freeze", "none",
            "--out", a, "--twin-batches", (char *)NULL);
    CHECK(o.status == 0, "--twin-batches --freeze none: exit %d: %.400s", o.status, o.err);
    outcome_free(&o);
    CHECK_REFUSED(2, "--twin-batches and --hard-batches both regroup the batches", "--data", data, "--twin-batches",
                  "--hard-batches", "2");
    CHECK_REFUSED(2, "--twin-batches groups images: it needs --captions one", "--data", data, "--twin-batches",
                  "--captions", "all");
    CHECK_REFUSED(2, "--twin-batches puts an image and its twin in one batch: it needs an even --batch", "--data", data,
                  "--twin-batches", "--batch", "3");
    format_text(b, sizeof b, "%s/twin_refused", work);
    CHECK_REFUSED(1, "--twin-batches needs a CSV with a twin column", "--config", "tiny", "--data", world, "--batch",
                  "4", "--out", b, "--twin-batches");
}

/* SIGINT after the first progress line: exit 130 with a checkpoint; --resume finishes the run
 * with the straight run's bytes. */
static void test_sigint_checkpoints_and_resumes(void) {
    char run_dir[PATH_LEN], out_path[PATH_LEN];
    format_text(run_dir, sizeof run_dir, "%s/interrupted", work);
    format_text(out_path, sizeof out_path, "%s/stdout.txt", work);
    int fds[2]; /* the child's stderr, read line by line to time the signal */
    if (pipe(fds) != 0) die("pipe failed");
    /* long enough that it cannot finish before the signal lands */
    const char *args[] = {"tng_train", "--config", "tiny", "--data", world, "--batch", "4", "--steps", "100000",
                          "--seed", "3", "--log-every", "1", "--out", run_dir, NULL};
    pid_t pid = spawn(NULL, out_path, fds[1], args);
    close(fds[1]);
    FILE *err = fdopen(fds[0], "r");
    char line[1024], log[8192] = "";
    int signalled = 0;
    while (fgets(line, sizeof line, err)) {
        if (strlen(log) + strlen(line) < sizeof log) strcat(log, line);
        if (!signalled && strncmp(line, "step 1/", 7) == 0) signalled = kill(pid, SIGINT) == 0;
    }
    fclose(err);
    int ws = 0;
    waitpid(pid, &ws, 0);
    CHECK(signalled, "no progress line to interrupt after: %.600s", log);
    CHECK(exit_code(ws) == 130, "interrupted run exited %d, want 130: %.600s", exit_code(ws), log);
    CHECK(strstr(log, "interrupted: saving a checkpoint") != NULL, "no interruption message: %.600s", log);
    char latest_path[PATH_LEN];
    format_text(latest_path, sizeof latest_path, "%s/latest", run_dir);
    char *latest = read_file(latest_path, NULL);
    CHECK(latest != NULL, "no checkpoint after SIGINT (%s)", latest_path);
    const char *name = latest ? strstr(latest, "ckpt-") : NULL; /* latest holds "ckpt-<step>" */
    int stopped_at = name ? atoi(name + 5) : 0;
    free(latest);
    CHECK(stopped_at >= 1, "the checkpoint after SIGINT is at step %d", stopped_at);
    /* the signal lands within a step or two; should a very slow machine pass STEPS first,
     * the resumed run only continues and there is no straight run to compare with */
    int target = stopped_at < STEPS ? STEPS : stopped_at + 1;
    Outcome o = train(run_dir, target, "--resume", NULL);
    char want[64];
    format_text(want, sizeof want, "at step %d", stopped_at);
    CHECK(o.status == 0 && strstr(o.err, want), "resume after SIGINT: exit %d, stderr %.600s", o.status, o.err);
    outcome_free(&o);
    if (target == STEPS) check_same_checkpoint(run_dir, straight_run, STEPS);
}

/* tng_eval --probe on the world's test split: one AUC row per object kind the CSV names, in
 * name order ("-" where the small split's half lacks a class), and the minimum of the known
 * ones, all in [0, 100]; a captions CSV without objects is refused, naming the column */
static void test_eval_probe(void) {
    char dir[PATH_LEN], test_csv[PATH_LEN], bare_csv[PATH_LEN];
    format_text(dir, sizeof dir, "%s", world);
    *strrchr(dir, '/') = 0;
    format_text(test_csv, sizeof test_csv, "%s/test.csv", dir);
    Outcome o = run(NULL, "tng_eval", "--quiet", "--model", straight_run, "--probe", test_csv, (char *)NULL);
    CHECK(o.status == 0, "tng_eval --probe exited %d: %.400s", o.status, o.err);
    int kinds = 0, known = 0;
    double lowest = 101, shown_min = -1;
    char previous[64] = "";
    for (const char *p = o.out ? strstr(o.out, "| test.csv probe AUC ") : NULL; p; p = strstr(p + 1, "| test.csv probe AUC ")) {
        char kind[64], value_text[32];
        CHECK(sscanf(p, "| test.csv probe AUC %63s | %31s |", kind, value_text) == 2, "a probe row: %.80s", p);
        double value = strcmp(value_text, "-") == 0 ? NAN : atof(value_text);
        CHECK(isnan(value) || (value >= 0 && value <= 100), "probe row %s: %s is not an AUC in %%", kind, value_text);
        if (strcmp(kind, "min") == 0) {
            shown_min = value;
            continue;
        }
        CHECK(strcmp(previous, kind) < 0, "probe rows out of name order: %s after %s", kind, previous);
        snprintf(previous, sizeof previous, "%s", kind);
        kinds++;
        if (!isnan(value)) known++, lowest = fmin(lowest, value);
    }
    CHECK(kinds >= 2 && known >= 1 && shown_min == lowest, "%d kinds (%d known), min row %g, lowest row %g: %s",
          kinds, known, shown_min, lowest, o.out);
    outcome_free(&o);
    format_text(bare_csv, sizeof bare_csv, "%s/no_objects.csv", work);
    char lines[2 * PATH_LEN];
    format_text(lines, sizeof lines, "filepath,caption\n%s/images/test/000000.jpg,a picture\n", dir);
    CHECK(write_file_atomic(bare_csv, lines, strlen(lines)) == 0, "cannot write %s", bare_csv);
    o = run(NULL, "tng_eval", "--quiet", "--model", straight_run, "--probe", bare_csv, (char *)NULL);
    CHECK(o.status != 0 && o.err && strstr(o.err, "objects"), "a CSV without objects: exit %d, %.200s", o.status,
          o.err);
    outcome_free(&o);
}

/* ----------------------------------------------------------------------------
 * tng_eval: the Markdown table has every expected row, and --json holds the same numbers */

static void test_eval_table_and_json(void) {
    char dir[PATH_LEN], json_path[PATH_LEN], mcq[PATH_LEN], retrieval[PATH_LEN],
        ccneg[PATH_LEN];
    format_text(dir, sizeof dir, "%s", world);
    *strrchr(dir, '/') = 0;
    format_text(json_path, sizeof json_path, "%s/results.json", work);
    format_text(mcq, sizeof mcq, "%s/mcq_test.csv", dir);
    format_text(retrieval, sizeof retrieval, "%s/negated_retrieval_test.csv", dir);
    format_text(ccneg, sizeof ccneg, "%s/ccneg_test.csv", dir);
    Outcome o = run(NULL, "tng_eval", "--quiet", "--model", straight_run, "--name", "tiny", "--mcq", mcq,
                    "--retrieval", retrieval, "--ccneg", ccneg, "--json", json_path, (char *)NULL);
    CHECK(o.status == 0, "tng_eval exited %d: %.400s", o.status, o.err);
    CHECK(strncmp(o.out, "| metric | tiny |\n|---|---:|\n", 29) == 0, "table header: %.200s", o.out);
    static const char *const rows[] = {
        "mcq_test.csv MCQ", "mcq_test.csv MCQ positive", "mcq_test.csv MCQ negative", "mcq_test.csv MCQ hybrid",
        "negated_retrieval_test.csv T2I R@1", "negated_retrieval_test.csv T2I R@5",
        "negated_retrieval_test.csv T2I R@10", "negated_retrieval_test.csv I2T R@1",
        "negated_retrieval_test.csv I2T R@5", "negated_retrieval_test.csv I2T R@10", "ccneg_test.csv CC-Neg acc"};
    enum { N_ROWS = sizeof rows / sizeof *rows };
    int table_lines = 0;
    for (const char *p = o.out; (p = strchr(p, '\n')) != NULL; p++) table_lines++;
    CHECK(table_lines == N_ROWS + 2, "the table has %d lines, want %d: %s", table_lines, N_ROWS + 2, o.out);
    char *json_text = read_file(json_path, NULL);
    cJSON *json = json_text ? cJSON_Parse(json_text) : NULL;
    CHECK(json != NULL, "%s is missing or not valid JSON", json_path);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(json, "tiny");
    CHECK(cJSON_IsObject(model), "the JSON has no object for model 'tiny'");
    cJSON *ties = cJSON_GetObjectItemCaseSensitive(json, "ties");
    CHECK(cJSON_IsString(ties) && strcmp(ties->valuestring, "strict") == 0, "the JSON names the tie rule");
    for (int r = 0; r < N_ROWS; r++) {
        char prefix[128];
        format_text(prefix, sizeof prefix, "\n| %s | ", rows[r]);
        const char *at = strstr(o.out, prefix);
        double shown = at ? atof(at + strlen(prefix)) : -1;
        CHECK(at && shown >= 0 && shown <= 100, "row '%s' missing or out of [0, 100]", rows[r]);
        cJSON *value = cJSON_GetObjectItemCaseSensitive(model, rows[r]);
        /* the table rounds to one decimal */
        CHECK(cJSON_IsNumber(value) && fabs(value->valuedouble - shown) <= 0.05 + 1e-9,
              "JSON '%s' = %g, table shows %g", rows[r], cJSON_IsNumber(value) ? value->valuedouble : NAN,
              shown);
    }
    cJSON_Delete(json);
    free(json_text);
    outcome_free(&o);
    /* an unwritable --json fails before any evaluation, naming the option */
    o = run(NULL, "tng_eval", "--quiet", "--model", straight_run, "--mcq", mcq, "--ties", "first-index",
            "--json", "/nonexistent-dir/results.json", (char *)NULL);
    CHECK(o.status != 0 && strstr(o.err, "--json /nonexistent-dir/results.json: cannot write") &&
              !strstr(o.out, "| metric |"), "exit %d, err '%.300s'", o.status, o.err);
    outcome_free(&o);
}

/* --backend: cuda is refused with one clear line where it cannot run (exit 2 in a build without
 * CUDA, exit 1 where no device is visible), never a crash; auto falls back to the CPU and says so
 * in the settings block. This machine has no GPU; on one with a GPU the cuda run is bench/gpu.sh's. */
static void test_backend_choice(void) {
    char run_dir[PATH_LEN];
    format_text(run_dir, sizeof run_dir, "%s/backend_run", work);
    const char *programs[][12] = {
        {"tng_train", "--backend", "cuda", "--data", world, "--out", run_dir, "--steps", "1", NULL},
        {"tng_eval", "--backend", "cuda", "--quiet", "--model", straight_run, "--mcq", world, NULL},
        {"tng_embed", "--backend", "cuda", "--model", straight_run, "--text", "a dog", NULL},
    };
    for (size_t k = 0; k < sizeof programs / sizeof *programs; k++) {
        const char *const *a = programs[k];
        Outcome o = run(NULL, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
        int without = o.status == 2 && strstr(o.err, "built without CUDA");
        int no_device = o.status == 1 && strstr(o.err, "no CUDA device");
        const char *second_line = strchr(o.err, '\n');
        CHECK((without || no_device) && second_line && second_line[1] == '\0',
              "%s --backend cuda: exit %d, want one line 'built without CUDA' (2) or 'no CUDA device' (1): %.300s",
              a[0], o.status, o.err);
        outcome_free(&o);
    }
    char latest[PATH_LEN];
    format_text(latest, sizeof latest, "%s/latest", run_dir);
    CHECK(!file_exists(latest), "a refused --backend cuda wrote a checkpoint");
    Outcome o = run(NULL, "tng_train", "--backend", "tpu", (char *)NULL);
    CHECK(o.status == 2 && strstr(o.err, "choose one of"), "--backend tpu: exit %d %.200s", o.status, o.err);
    outcome_free(&o);
    o = run(NULL, "tng_train", "--data", world, "--out", run_dir, "--steps", "1", "--batch", "4", (char *)NULL);
    CHECK(o.status == 0 && strstr(o.err, "\n  backend    cpu fp32"), "auto without a GPU trains on the CPU in fp32, "
          "saying so: exit %d, %.300s", o.status, o.err);
    outcome_free(&o);
    /* the CPU computes in fp32 only: bf16 or tf32 asked of it is refused, in one line, before any work */
    const char *precisions[] = {"bf16", "tf32"};
    for (int k = 0; k < 2; k++) {
        o = run(NULL, "tng_eval", "--backend", "cpu", "--precision", precisions[k], "--quiet", "--model", straight_run,
                "--mcq", world, (char *)NULL);
        const char *second_line = strchr(o.err, '\n');
        CHECK(o.status == 2 && strstr(o.err, "the CPU backend computes in fp32 only") && second_line &&
                  second_line[1] == '\0',
              "--backend cpu --precision %s: exit %d %.300s", precisions[k], o.status, o.err);
        outcome_free(&o);
    }
    o = run(NULL, "tng_train", "--precision", "fp16", (char *)NULL);
    CHECK(o.status == 2 && strstr(o.err, "choose one of"), "--precision fp16: exit %d %.200s", o.status, o.err);
    outcome_free(&o);
}

/* tng_embed: a --text holding a tab, a newline and a backslash stays one escaped field on one
 * line (it used to add fields and lines to the TSV) */
static void test_embed_escapes_text(void) {
    Outcome o = run(NULL, "tng_embed", "--model", straight_run, "--text", "a cat\twith\nno \\ dog",
                    "--text", "plain", (char *)NULL);
    CHECK(o.status == 0, "tng_embed exited %d: %.300s", o.status, o.err);
    int lines = 0, tabs_first = 0;
    for (const char *p = o.out; *p; p++) {
        if (*p == '\n') lines++;
        if (*p == '\t' && lines == 0) tabs_first++;
    }
    const char *second = strchr(o.out, '\n');
    int tabs_second = 0;
    for (const char *p = second ? second + 1 : ""; *p && *p != '\n'; p++) tabs_second += *p == '\t';
    CHECK(lines == 2, "two inputs, %d lines: %.300s", lines, o.out);
    const char *want = "text\ta cat\\twith\\nno \\\\ dog\t";
    CHECK(strncmp(o.out, want, strlen(want)) == 0, "escaped field: %.80s", o.out);
    CHECK(tabs_first == tabs_second && tabs_first > 2, "both lines have the same fields (%d, %d tabs)",
          tabs_first, tabs_second);
    outcome_free(&o);
}

int main(int argc, char **argv) {
    (void)argc;
    programs_setup(argv[0], "train_cli");
    format_text(world, sizeof world, "%s/world", work);
    make_fixture();
    RUN_TEST(test_help_matches_parser);
    RUN_TEST(test_help_lists_the_recipes);
    RUN_TEST(test_recipe_run);
    RUN_TEST(test_cli_errors);
    RUN_TEST(test_resume_is_bit_exact);
    RUN_TEST(test_tng_ratio);
    RUN_TEST(test_hard_batches);
    RUN_TEST(test_twin_batches);
    RUN_TEST(test_sigint_checkpoints_and_resumes);
    RUN_TEST(test_eval_table_and_json);
    RUN_TEST(test_eval_probe);
    RUN_TEST(test_embed_escapes_text);
    RUN_TEST(test_backend_choice);
    programs_cleanup();
    return test_summary();
}
