/*
 * test_train_faults.c: the programs against the faults a demanding user makes or meets, each
 * one a case that once lost state, crashed or went silently wrong (issue 15), run as
 * subprocesses (tests/programs.h) on a 16-image synthetic world with the tiny config:
 *
 *   a fresh run into a used folder         refused, naming what is there; --overwrite starts over
 *   batches with no readable image         skipped and counted (TNG on/off, tower frozen/training)
 *   a dataset with no readable image       refused before training
 *   a resume after a kill                  metrics.jsonl holds each step once, no torn line
 *   --resume with changed options          refused naming each, unless --resume-changed names it
 *   two trainers on one folder             the second refused, naming the first
 *   SIGTERM / a second signal              exit 143 / at once with a message
 *   --batch larger than the data           refused before anything is allocated or written
 *   an evaluation row without its image    skipped and counted, named by its CSV line
 *   tng_prep with no readable image        fails
 *
 * The crash-consistency test (kill -9 at random moments) is tests/test_crash.c.
 */
#include <signal.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "engine/config.h"  // defines: clip_config_preset
#include "engine/model.h"   // defines: Clip, clip_create, clip_prepare, clip_init_random
#include "harness.h"
#include "io/train_state.h" // defines: train_state_save
#include "programs.h"       // defines: run, run_args, spawn, Outcome, work, make_world, format_text
#include "util/common.h"    // defines: die, read_file, write_file_atomic

static char world_dir[PATH_LEN], train_csv[PATH_LEN];
static char resumed_run[PATH_LEN]; /* test_metrics_log_on_resume's run, which later tests reuse */

/* tng_train on DATA for STEPS steps into RUN (tiny config, batch 4 unless an extra argument
 * gives --batch again: the last one counts), then the extra arguments, ending with NULL. */
static Outcome train(const char *run_dir, const char *data, int steps, ...) {
    char steps_text[16];
    format_text(steps_text, sizeof steps_text, "%d", steps);
    const char *args[MAX_ARGS + 1] = {"tng_train", "--config", "tiny", "--data", data, "--batch", "4", "--steps",
                                      steps_text, "--seed", "3", "--log-every", "1", "--out", run_dir};
    int n = 15;
    va_list ap;
    va_start(ap, steps);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        if (n == MAX_ARGS) die("too many arguments");
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return run_args(NULL, args);
}

/* work/NAME into out[PATH_LEN] */
static void in_work(char *out, const char *name) { format_text(out, PATH_LEN, "%s/%s", work, name); }

/* The folder `latest` names, "" when none. */
static void latest_of(const char *run_dir, char *out, size_t len) {
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/latest", run_dir);
    char *text = read_file(path, NULL);
    snprintf(out, len, "%s", text ? text : "");
    out[strcspn(out, "\n")] = 0;
    free(text);
}

static int exists_in(const char *dir, const char *name) {
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/%s", dir, name);
    return file_exists(path);
}

/* The metrics log's records (a cJSON array), or NULL when a line is not one JSON object. */
static cJSON *metrics_records(const char *run_dir) {
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/metrics.jsonl", run_dir);
    char *text = read_file(path, NULL);
    if (!text) return NULL;
    cJSON *all = cJSON_CreateArray();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *record = cJSON_Parse(line);
        if (!cJSON_IsObject(record)) {
            cJSON_Delete(record), cJSON_Delete(all);
            all = NULL;
            break;
        }
        cJSON_AddItemToArray(all, record);
    }
    free(text);
    return all;
}

static double field(const cJSON *record, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(record, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ----------------------------------------------------------------------------
 * Run folders */

/* The repro: a run's checkpoints 3 and 6, `latest` removed by hand, then a fresh run
 * of 2 steps. It used to prune its own checkpoint away; now it is refused (exit 2) naming what
 * it found, and with --overwrite it starts over and ends resumable. */
static void test_fresh_run_in_used_folder(void) {
    char run_dir[PATH_LEN], latest[64];
    in_work(run_dir, "used");
    Outcome o = train(run_dir, train_csv, 6, "--checkpoint-every", "3", NULL);
    CHECK(o.status == 0, "first run exited %d: %.300s", o.status, o.err);
    outcome_free(&o);
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/latest", run_dir);
    unlink(path);
    o = train(run_dir, train_csv, 2, NULL);
    CHECK(o.status == 2 && strstr(o.err, "already holds a run's files") && strstr(o.err, "ckpt-00000003") &&
              strstr(o.err, "ckpt-00000006") && strstr(o.err, "metrics.jsonl") && strstr(o.err, "--overwrite"),
          "a fresh run into a used folder: exit %d, %.400s", o.status, o.err);
    outcome_free(&o);
    CHECK(exists_in(run_dir, "ckpt-00000003") && exists_in(run_dir, "ckpt-00000006"), "nothing was deleted");
    o = train(run_dir, train_csv, 2, "--overwrite", NULL);
    CHECK(o.status == 0 && strstr(o.err, "--overwrite: deleted the earlier run"), "--overwrite: exit %d, %.300s",
          o.status, o.err);
    outcome_free(&o);
    latest_of(run_dir, latest, sizeof latest);
    CHECK(strcmp(latest, "ckpt-00000002") == 0 && !exists_in(run_dir, "ckpt-00000006"), "latest %s", latest);
    o = train(run_dir, train_csv, 3, "--resume", NULL);
    CHECK(o.status == 0 && strstr(o.err, "at step 2"), "resuming the new run: exit %d, %.300s", o.status, o.err);
    outcome_free(&o);
    cJSON *records = metrics_records(run_dir);
    CHECK(records && cJSON_GetArraySize(records) == 3, "the new run's log has its 3 steps only");
    cJSON_Delete(records);
}

/* The resume point's log: steps 4-6 logged, then a kill before checkpoint 6 (latest still
 * names 3) that tore a record in half. The resumed run used to append: steps 4-6 twice, the
 * half line glued to the next. Now each step is logged once, every line is JSON, and the
 * redone steps log the very losses of the first pass. */
static void test_metrics_log_on_resume(void) {
    const char *run_dir = resumed_run;
    Outcome o = train(run_dir, train_csv, 6, "--checkpoint-every", "3", NULL);
    CHECK(o.status == 0, "first run exited %d: %.300s", o.status, o.err);
    outcome_free(&o);
    cJSON *first = metrics_records(run_dir);
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/latest", run_dir);
    write_file_atomic(path, "ckpt-00000003\n", 14);
    format_text(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "a");
    if (f) fputs("{\"step\": 7, \"epoch\": 0, \"lo", f), fclose(f);
    o = train(run_dir, train_csv, 6, "--resume", NULL);
    CHECK(o.status == 0 && strstr(o.err, "at step 3"), "resume exited %d: %.300s", o.status, o.err);
    outcome_free(&o);
    cJSON *after = metrics_records(run_dir);
    CHECK(after != NULL, "a line of metrics.jsonl is not JSON");
    int n = after ? cJSON_GetArraySize(after) : 0;
    CHECK(n == 6, "%d records, want steps 1..6 once each", n);
    for (int i = 0; i < n && first; i++) {
        const cJSON *a = cJSON_GetArrayItem(first, i), *b = cJSON_GetArrayItem(after, i);
        CHECK(field(b, "step") == i + 1, "record %d is step %g", i, field(b, "step"));
        CHECK(field(a, "loss") == field(b, "loss"), "step %d: loss %g, the first pass had %g", i + 1,
              field(b, "loss"), field(a, "loss"));
    }
    cJSON_Delete(first), cJSON_Delete(after);
}

/* A checkpoint records the options that define the run; --resume refuses a change, naming
 * each, unless --resume-changed names it (the new value then defines the run). The run is
 * test_metrics_log_on_resume's: 6 steps, seed 3, batch 4, lr 5e-6. */
static void test_resume_checks_options(void) {
    const char *run_dir = resumed_run;
    char latest[64];
    Outcome o = train(run_dir, train_csv, 8, "--resume", "--seed", "4", "--lr", "1e-5", NULL);
    CHECK(o.status == 2 && strstr(o.err, "--seed: the run was trained with 3, this command gives 4") &&
              strstr(o.err, "--lr: the run was trained with 5e-06, this command gives 1e-05") &&
              strstr(o.err, "--resume-changed"),
          "changed seed and lr: exit %d, %.500s", o.status, o.err);
    outcome_free(&o);
    latest_of(run_dir, latest, sizeof latest);
    CHECK(strcmp(latest, "ckpt-00000006") == 0, "a refused resume trained anyway (latest %s)", latest);
    static const char *const changes[][3] = {{"--batch", "2", "--batch: the run was trained with 4"},
                                             {"--tng", "off", "--tng: the run was trained with on"},
                                             {"--freeze", "none", "--freeze: the run was trained with vision"},
                                             {"--schedule", "cosine", "--schedule: the run was trained with"}};
    for (int k = 0; k < 4; k++) {
        o = train(run_dir, train_csv, 8, "--resume", changes[k][0], changes[k][1], NULL);
        CHECK(o.status == 2 && strstr(o.err, changes[k][2]), "%s %s: exit %d, %.300s", changes[k][0], changes[k][1],
              o.status, o.err);
        outcome_free(&o);
    }
    o = train(run_dir, train_csv, 7, "--resume", "--seed", "4", "--resume-changed", "seed", NULL);
    CHECK(o.status == 0 && strstr(o.err, "resuming with --seed changed from 3 to 4"), "--resume-changed seed: %.300s",
          o.err);
    outcome_free(&o);
    o = train(run_dir, train_csv, 8, "--resume", NULL);
    CHECK(o.status == 2 && strstr(o.err, "--seed: the run was trained with 4, this command gives 3"),
          "the changed seed defines the run from then on: %.300s", o.err);
    outcome_free(&o);
    /* a deliberate switch to a cosine schedule, and more steps: the decay is reshaped, and said so */
    o = train(run_dir, train_csv, 9, "--resume", "--seed", "4", "--schedule", "cosine", "--resume-changed", "schedule",
              NULL);
    CHECK(o.status == 0 && strstr(o.err, "the cosine schedule now decays over 9 steps; the run planned 7"),
          "cosine with more steps: %.400s", o.err);
    outcome_free(&o);
    static const char *const wrong[][2] = {{"steps", "may change on resume anyway"}, {"nosuch", "is not an option"}};
    for (int k = 0; k < 2; k++) {
        o = train(run_dir, train_csv, 8, "--resume", "--resume-changed", wrong[k][0], NULL);
        CHECK(o.status == 2 && strstr(o.err, wrong[k][1]), "--resume-changed %s: %.300s", wrong[k][0], o.err);
        outcome_free(&o);
    }
}

/* A checkpoint from before checkpoints recorded options resumes, with a warning. */
static void test_resume_of_an_old_checkpoint(void) {
    char run_dir[PATH_LEN], err[512];
    in_work(run_dir, "old");
    ClipConfig cfg;
    if (clip_config_preset("tiny", &cfg) != 0) die("no tiny preset");
    Clip *m = clip_create(&cfg, backend_cpu());
    clip_init_random(m, 3);
    ClipTrainConfig train_cfg = {.temperature = 0.07f, .train_vision = 0, .train_text = 1};
    clip_prepare(m, &train_cfg, 4, 12);
    m->step = 1;
    const char *keys[] = {"loader_epoch", "loader_index"}, *values[] = {"0", "4"};
    CHECK(train_state_save(run_dir, m, keys, values, 2, 2, NULL, 0, err, sizeof err) == 0, "%s", err);
    clip_free(m);
    Outcome o = train(run_dir, train_csv, 2, "--resume", NULL);
    CHECK(o.status == 0 && strstr(o.err, "records no options"), "old checkpoint: exit %d, %.400s", o.status, o.err);
    outcome_free(&o);
}

/* ----------------------------------------------------------------------------
 * Data faults */

/* DIR/NAME.csv with the world's first 4 images and a fifth, unreadable one (an empty file):
 * with --batch 1, one batch per epoch has no readable image. */
static void write_dataset_with_unreadable_image(const char *csv) {
    char empty[PATH_LEN];
    format_text(empty, sizeof empty, "%s/images/train/empty.jpg", world_dir);
    write_file_atomic(empty, "", 0);
    const char *text = "filepath,caption\n"
                       "images/train/000000.jpg,a red ball\nimages/train/000001.jpg,a blue car\n"
                       "images/train/000002.jpg,a green tree\nimages/train/000003.jpg,a white cat\n"
                       "images/train/empty.jpg,an empty file\n";
    write_file_atomic(csv, text, strlen(text));
}

/* Empty batches are skipped and counted, TNG on and off, the vision tower frozen (cached
 * embeddings) and training; they used to end the run with the TNG producer's "invalid batch"
 * or the model's "a batch needs at least one image". A resume across them stays bit-exact. */
static void test_empty_batches_are_skipped(void) {
    char csv[PATH_LEN], run_dir[PATH_LEN], name[64];
    format_text(csv, sizeof csv, "%s/one_unreadable.csv", world_dir);
    write_dataset_with_unreadable_image(csv);
    static const char *const modes[][4] = {{"--tng", "on", "--freeze", "vision"},
                                           {"--tng", "off", "--freeze", "vision"},
                                           {"--tng", "on", "--freeze", "none"},
                                           {"--tng", "off", "--freeze", "none"}};
    for (int k = 0; k < 4; k++) {
        format_text(name, sizeof name, "empty_batches_%d", k);
        in_work(run_dir, name);
        Outcome o = train(run_dir, csv, 6, "--batch", "1", modes[k][0], modes[k][1], modes[k][2], modes[k][3], NULL);
        const char *said = strstr(o.err, "batches with no readable image skipped");
        const char *count = said ? said - 2 : NULL; /* "...; N batches" */
        while (count && count > o.err && count[-1] != ' ') count--;
        CHECK(o.status == 0 && count && atoi(count) >= 1, "%s %s %s %s: exit %d, %.400s", modes[k][0], modes[k][1],
              modes[k][2], modes[k][3], o.status, o.err);
        outcome_free(&o);
        cJSON *records = metrics_records(run_dir);
        int n = records ? cJSON_GetArraySize(records) : 0;
        CHECK(n == 6 && field(cJSON_GetArrayItem(records, n - 1), "empty_batches") >= 1,
              "the log counts the skipped batches (%d records)", n);
        cJSON_Delete(records);
    }
    /* skipping keeps resume bit-exact: 3 steps, then --resume to 6, equal the straight run (mode 0) */
    char halves[PATH_LEN], straight[PATH_LEN];
    in_work(halves, "empty_batches_halves");
    in_work(straight, "empty_batches_0");
    Outcome o = train(halves, csv, 3, "--batch", "1", NULL);
    outcome_free(&o);
    o = train(halves, csv, 6, "--batch", "1", "--resume", NULL);
    CHECK(o.status == 0, "resume: exit %d, %.300s", o.status, o.err);
    outcome_free(&o);
    check_same_checkpoint(halves, straight, 6);
}

/* A dataset none of whose images can be read is refused before training, with a message
 * that says so (it used to get the TNG producer's internal "invalid batch"): from the
 * frozen tower's embedding pass, from a cheap check of the files when the tower trains (before
 * any model or run folder exists), and when every file is there but none decodes, after one
 * epoch of empty batches. */
static void test_unreadable_dataset_is_refused(void) {
    char missing[PATH_LEN], corrupt[PATH_LEN], run_dir[PATH_LEN], empty[PATH_LEN];
    format_text(missing, sizeof missing, "%s/all_missing.csv", world_dir);
    const char *text = "filepath,caption\ngone/1.jpg,a cat\ngone/2.jpg,a dog\ngone/3.jpg,a cow\n";
    write_file_atomic(missing, text, strlen(text));
    in_work(run_dir, "missing_frozen");
    Outcome o = train(run_dir, missing, 2, "--batch", "1", NULL);
    CHECK(o.status != 0 && strstr(o.err, "none of the 3 images could be read") && !strstr(o.err, "producer"),
          "frozen tower: exit %d, %.400s", o.status, o.err);
    outcome_free(&o);
    in_work(run_dir, "missing_training");
    o = train(run_dir, missing, 2, "--batch", "1", "--freeze", "none", NULL);
    CHECK(o.status != 0 && strstr(o.err, "none of its 3 images can be read") && !file_exists(run_dir),
          "training tower: exit %d, %.400s", o.status, o.err);
    outcome_free(&o);
    format_text(empty, sizeof empty, "%s/images/train/empty.jpg", world_dir);
    write_file_atomic(empty, "", 0);
    format_text(corrupt, sizeof corrupt, "%s/all_corrupt.csv", world_dir);
    text = "filepath,caption\nimages/train/empty.jpg,a cat\nimages/train/empty.jpg,a dog\n";
    write_file_atomic(corrupt, text, strlen(text));
    in_work(run_dir, "corrupt_training");
    o = train(run_dir, corrupt, 2, "--batch", "1", "--freeze", "none", "--tng", "off", NULL);
    CHECK(o.status != 0 && strstr(o.err, "no batch of a whole epoch holds a readable image"),
          "undecodable images: exit %d, %.400s", o.status, o.err);
    outcome_free(&o);
}

/* --batch larger than the data is refused before the model is built (a batch of 65536 used
 * to allocate its activations, tens of GB at ViT-B/32, before the check) and before the run
 * folder is made. */
static void test_batch_larger_than_dataset(void) {
    char run_dir[PATH_LEN];
    in_work(run_dir, "big_batch");
    Outcome o = train(run_dir, train_csv, 1, "--batch", "65536", NULL);
    CHECK(o.status != 0 && strstr(o.err, "fewer than one batch of 65536") && !file_exists(run_dir),
          "exit %d, folder %s, %.300s", o.status, file_exists(run_dir) ? "made" : "not made", o.err);
    outcome_free(&o);
}

/* tng_prep with no readable image fails (it used to exit 0 with "0 images in 1 shards"). */
static void test_prep_without_images_fails(void) {
    char missing[PATH_LEN], out[PATH_LEN];
    format_text(missing, sizeof missing, "%s/all_missing.csv", world_dir);
    in_work(out, "prep");
    Outcome o = run(NULL, "tng_prep", "--data", missing, "--out", out, "--image-size", "32", "--no-progress",
                    (char *)NULL);
    CHECK(o.status != 0 && strstr(o.err, "none of the 3 images could be read"), "exit %d: %.300s", o.status, o.err);
    outcome_free(&o);
}

/* A copy of the world's CSV NAME with the image of file line LINE replaced by a missing one. */
static void break_row(const char *name, int line, char *out) {
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/%s", world_dir, name);
    format_text(out, PATH_LEN, "%s/broken_%s", world_dir, name);
    char *text = read_file(path, NULL);
    if (!text) die("%s: cannot read", path);
    char *at = text;
    for (int l = 1; l < line; l++) at = strchr(at, '\n') + 1;
    char *image = strstr(at, "images/test/"), *jpg = image ? strstr(image, ".jpg") : NULL;
    if (!jpg) die("%s:%d: no image path", path, line);
    size_t size = strlen(text) + 16;
    char *broken = mallocCheck(size);
    snprintf(broken, size, "%.*simages/test/gone%s", (int)(image - text), text, jpg);
    write_file_atomic(out, broken, strlen(broken));
    free(broken), free(text);
}

/* An evaluation row whose image is missing is skipped, counted and named by its CSV line;
 * it used to end the whole evaluation. */
static void test_eval_skips_rows_without_image(void) {
    const char *model = resumed_run;
    char mcq[PATH_LEN], retrieval[PATH_LEN], ccneg[PATH_LEN];
    break_row("mcq_test.csv", 3, mcq);
    break_row("negated_retrieval_test.csv", 2, retrieval);
    break_row("ccneg_test.csv", 4, ccneg);
    Outcome o = run(NULL, "tng_eval", "--quiet", "--model", model, "--mcq", mcq, "--retrieval", retrieval, "--ccneg",
                    ccneg, (char *)NULL);
    CHECK(o.status == 0, "tng_eval exited %d: %.400s", o.status, o.err);
    CHECK(strstr(o.err, "broken_mcq_test.csv:3: question skipped") && strstr(o.err, "1 of 48 questions skipped") &&
              strstr(o.err, "broken_negated_retrieval_test.csv:2: image skipped") &&
              strstr(o.err, "broken_ccneg_test.csv:4: pair skipped"),
          "warnings: %.600s", o.err);
    CHECK(strstr(o.out, "| broken_mcq_test.csv MCQ | ") && strstr(o.out, "| broken_ccneg_test.csv CC-Neg acc | "),
          "table: %.400s", o.out);
    outcome_free(&o);
}

/* ----------------------------------------------------------------------------
 * Two trainers, and signals */

/* A trainer started in the background, its stderr read line by line. */
typedef struct {
    pid_t pid;
    FILE *err;
    char log[16384];
} Background;

static void start_background(Background *b, const char *run_dir, const char *const *extra) {
    char out_path[PATH_LEN];
    format_text(out_path, sizeof out_path, "%s/background.out", work);
    const char *args[MAX_ARGS + 1] = {"tng_train", "--config", "tiny", "--data", train_csv, "--batch", "4",
                                      "--steps", "100000", "--seed", "3", "--log-every", "1", "--out", run_dir};
    int n = 15;
    for (; *extra; extra++) args[n++] = *extra;
    args[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0) die("pipe failed");
    b->pid = spawn(NULL, out_path, fds[1], args);
    close(fds[1]);
    b->err = fdopen(fds[0], "r");
    b->log[0] = 0;
}

/* Reads the trainer's stderr until a line starts with prefix; 1 if one did. */
static int wait_for_line(Background *b, const char *prefix) {
    char line[1024];
    while (fgets(line, sizeof line, b->err)) {
        if (strlen(b->log) + strlen(line) < sizeof b->log) strcat(b->log, line);
        if (strncmp(line, prefix, strlen(prefix)) == 0) return 1;
    }
    return 0;
}

/* Reads the rest and reaps it; returns its exit code. */
static int finish_background(Background *b) {
    wait_for_line(b, "\x01"); /* to the end */
    fclose(b->err);
    int ws = 0;
    waitpid(b->pid, &ws, 0);
    return exit_code(ws);
}

/* One trainer per run folder: a second one (here --resume, as the issue tried) is refused
 * with exit 2 naming the first, which used to run beside it to exit 0. SIGTERM then ends the
 * first with a checkpoint and 143 (it was 130); the lock dies with it, so the next resume
 * runs; and a second signal ends a run at once, saying so (it used to exit silently). */
static void test_one_trainer_per_folder_and_signals(void) {
    char run_dir[PATH_LEN], pid_text[64];
    in_work(run_dir, "locked");
    Background first;
    const char *const with_checkpoints[] = {"--checkpoint-every", "1", NULL};
    start_background(&first, run_dir, with_checkpoints);
    CHECK(wait_for_line(&first, "checkpoint: "), "no checkpoint from the first trainer: %.600s", first.log);
    Outcome o = train(run_dir, train_csv, 3, "--resume", NULL);
    format_text(pid_text, sizeof pid_text, "pid %d", (int)first.pid);
    CHECK(o.status == 2 && strstr(o.err, "in use by another trainer") && strstr(o.err, pid_text),
          "a second trainer: exit %d, %.400s", o.status, o.err);
    outcome_free(&o);
    kill(first.pid, SIGTERM);
    int status = finish_background(&first);
    CHECK(status == 143 && strstr(first.log, "interrupted: saving a checkpoint"), "SIGTERM: exit %d, %.600s", status,
          first.log);
    Background second;
    const char *const resume[] = {"--resume", NULL};
    start_background(&second, run_dir, resume);
    CHECK(wait_for_line(&second, "step "), "the lock outlived its holder: %.600s", second.log);
    kill(second.pid, SIGINT);
    kill(second.pid, SIGTERM);
    status = finish_background(&second);
    CHECK((status == 130 || status == 143) && strstr(second.log, "a second signal: exiting at once"),
          "two signals: exit %d, %.600s", status, second.log);
}

int main(int argc, char **argv) {
    (void)argc;
    programs_setup(argv[0], "train_faults");
    format_text(world_dir, sizeof world_dir, "%s/world", work);
    make_world(world_dir, 16);
    format_text(train_csv, sizeof train_csv, "%s/train.csv", world_dir);
    in_work(resumed_run, "resumed");
    RUN_TEST(test_fresh_run_in_used_folder);
    RUN_TEST(test_metrics_log_on_resume);
    RUN_TEST(test_resume_checks_options);
    RUN_TEST(test_eval_skips_rows_without_image);
    RUN_TEST(test_resume_of_an_old_checkpoint);
    RUN_TEST(test_empty_batches_are_skipped);
    RUN_TEST(test_unreadable_dataset_is_refused);
    RUN_TEST(test_batch_larger_than_dataset);
    RUN_TEST(test_prep_without_images_fails);
    RUN_TEST(test_one_trainer_per_folder_and_signals);
    programs_cleanup();
    return test_summary();
}
