/*
 * test_run_dir.c: what train_state_save leaves in a run directory. Pruning keeps the newest
 * checkpoints of this run's past and never deletes the one `latest` names (a fresh run into a
 * folder holding later-step checkpoints once lost its own); folders a kill left incomplete and
 * temporary files of dead writers are removed; a live writer's temporary file is not.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "scratch.h"
#include "small_model.h"
#include "engine/model.h"    // defines: Clip, clip_create, clip_prepare
#include "io/train_state.h" // defines: train_state_save, train_state_latest
#include "util/common.h"     // defines: make_dirs, write_file_atomic

static Clip *model(void) {
    ClipConfig c = small_config();
    Clip *m = clip_create(&c, backend_cpu());
    clip_init_random(m, 1);
    ClipTrainConfig train = {.temperature = 0.07f, .train_vision = 0, .train_text = 1};
    clip_prepare(m, &train, 2, 2);
    return m;
}

static void save_at(Clip *m, const char *run, uint64_t step) {
    char err[512], path[1024];
    m->step = step;
    CHECK(train_state_save(run, m, NULL, NULL, 0, 2, path, sizeof path, err, sizeof err) == 0,
          "save step %llu: %s", (unsigned long long)step, err);
}

static int exists(const char *run, const char *name) {
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", run, name);
    return stat(path, &st) == 0;
}

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    if (f) fputs("junk", f), fclose(f);
}

/* The latest checkpoint's folder name, relative to the run. */
static const char *latest_name(const char *run) {
    static char path[1024];
    char err[512];
    if (train_state_latest(run, path, sizeof path, err, sizeof err) != 0) return "(none)";
    return path + strlen(run) + 1;
}

static void test_keeps_newest_two(void) {
    Clip *m = model();
    const char *run = tmp_path("keep");
    for (uint64_t s = 1; s <= 4; s++) save_at(m, run, s);
    CHECK(!exists(run, "ckpt-00000001") && !exists(run, "ckpt-00000002"), "old checkpoints pruned");
    CHECK(exists(run, "ckpt-00000003") && exists(run, "ckpt-00000004"), "the newest two stay");
    CHECK(strcmp(latest_name(run), "ckpt-00000004") == 0, "latest %s", latest_name(run));
    clip_free(m);
}

/* The repro: checkpoints 3 and 6 of an earlier run, `latest` removed by hand, then a
 * run that saves step 2: it must keep its own checkpoint (and leave the earlier run's). */
static void test_never_deletes_latest(void) {
    Clip *m = model();
    const char *run = tmp_path("latest");
    save_at(m, run, 3);
    save_at(m, run, 6);
    char latest[1024];
    snprintf(latest, sizeof latest, "%s/latest", run);
    CHECK(unlink(latest) == 0, "remove latest");
    save_at(m, run, 2);
    CHECK(exists(run, "ckpt-00000002"), "the checkpoint just written must stay");
    CHECK(strcmp(latest_name(run), "ckpt-00000002") == 0, "latest %s", latest_name(run));
    CHECK(exists(run, "ckpt-00000003") && exists(run, "ckpt-00000006"),
          "complete later-step checkpoints are not this run's to delete");
    clip_free(m);
}

static void test_incomplete_and_temporaries(void) {
    Clip *m = model();
    const char *run = tmp_path("tmp");
    save_at(m, run, 1);
    /* a pid that is certainly gone: a child that has exited and been reaped */
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/ckpt-00000009", run); /* a kill during its first file */
    CHECK(make_dirs(path, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/ckpt-00000009/model.safetensors.tmp%d", run, (int)child);
    touch(path);
    snprintf(path, sizeof path, "%s/ckpt-00000001/model.safetensors.tmp%d", run, (int)child);
    touch(path);
    snprintf(path, sizeof path, "%s/latest.tmp%d", run, (int)child);
    touch(path);
    snprintf(path, sizeof path, "%s/metrics.jsonl.tmp%d", run, (int)getpid()); /* a live writer */
    touch(path);
    save_at(m, run, 2);
    CHECK(!exists(run, "ckpt-00000009"), "an incomplete folder (with a temporary file) is removed");
    char name[128];
    snprintf(name, sizeof name, "latest.tmp%d", (int)child);
    CHECK(!exists(run, name), "a dead writer's temporary file is removed");
    snprintf(name, sizeof name, "metrics.jsonl.tmp%d", (int)getpid());
    CHECK(exists(run, name), "a live writer's temporary file stays");
    save_at(m, run, 3);
    save_at(m, run, 4);
    CHECK(!exists(run, "ckpt-00000001"), "a pruned folder goes with its stray temporary file");
    clip_free(m);
}

int main(void) {
    scratch_make("run_dir");
    RUN_TEST(test_keeps_newest_two);
    RUN_TEST(test_never_deletes_latest);
    RUN_TEST(test_incomplete_and_temporaries);
    scratch_remove();
    return test_summary();
}
