/*
 * test_run_dir.c: what train_state_save leaves in a run directory. Pruning keeps the newest
 * checkpoints of this run's past and never deletes the one `latest` names (a fresh run into a
 * folder holding later-step checkpoints once lost its own); folders a kill left incomplete and
 * temporary files of dead writers are removed; a live writer's temporary file is not. The
 * run lock admits one trainer and never blocks after its holder died; metrics.jsonl is cut back
 * to the checkpoint's step on resume, and after kills at random moments holds only whole lines.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "scratch.h"
#include "small_model.h"
#include "engine/model.h"    // defines: Clip, clip_create, clip_prepare
#include "io/metrics_log.h" // defines: MetricsLog, metrics_log_open, metrics_log_write
#include "io/run_lock.h"    // defines: run_lock_take, run_lock_release
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

/* Runs run_lock_take in a child process (its own open file, as another trainer would have):
 * returns the child's exit status, 0 when it got the lock; its message goes to msg. */
static int lock_in_child(const char *run, int die_holding, char *msg, size_t msg_len) {
    int pipe_fd[2];
    if (pipe(pipe_fd) != 0) return -1;
    pid_t child = fork();
    if (child == 0) {
        char err[512] = "";
        int fd = run_lock_take(run, err, sizeof err);
        if (write(pipe_fd[1], err, strlen(err) + 1) < 0) _exit(3);
        if (fd >= 0 && die_holding) kill(getpid(), SIGKILL); /* dies with the lock held */
        _exit(fd >= 0 ? 0 : 1);
    }
    close(pipe_fd[1]);
    ssize_t n = read(pipe_fd[0], msg, msg_len - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pipe_fd[0]);
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_run_lock(void) {
    const char *run = tmp_path("locked");
    char err[512], msg[512];
    CHECK(make_dirs(run, err, sizeof err) == 0, "%s", err);
    int fd = run_lock_take(run, err, sizeof err);
    CHECK(fd >= 0, "first trainer takes the lock: %s", err);
    char pid_text[64];
    snprintf(pid_text, sizeof pid_text, "pid %ld", (long)getpid());
    CHECK(lock_in_child(run, 0, msg, sizeof msg) == 1 && strstr(msg, "in use by another trainer") &&
              strstr(msg, pid_text), "a second trainer is refused, naming the holder: '%s'", msg);
    run_lock_release(fd);
    CHECK(lock_in_child(run, 0, msg, sizeof msg) == 0, "free after release: '%s'", msg);
    /* a holder killed with the lock: the next trainer is not blocked by its stale file */
    CHECK(lock_in_child(run, 1, msg, sizeof msg) == 128 + SIGKILL, "the child died holding it");
    fd = run_lock_take(run, err, sizeof err);
    CHECK(fd >= 0, "a dead holder's lock never blocks: %s", err);
    run_lock_release(fd);
}

/* Counts the lines of a file and checks each is a whole record: '{' ... '}' then '\n'. */
static int whole_lines(const char *path, int *lines) {
    size_t size;
    char *text = read_file(path, &size);
    if (!text) return 0;
    int ok = size == 0 || text[size - 1] == '\n';
    *lines = 0;
    for (char *line = text; ok && line < text + size;) {
        char *nl = strchr(line, '\n');
        ok = line[0] == '{' && nl[-1] == '}';
        (*lines)++;
        line = nl + 1;
    }
    free(text);
    return ok;
}

static void test_metrics_log_resume_and_kill(void) {
    const char *path = tmp_path("metrics.jsonl");
    char err[512];
    MetricsLog *log = metrics_log_open(path, -1, err, sizeof err);
    CHECK(log != NULL, "%s", err);
    if (!log) return;
    for (int step = 1; step <= 5; step++) metrics_log_write(log, "{\"step\": %d, \"loss\": %.3f}", step, 1.0 / step);
    metrics_log_write(log, "{\"step\": 4, \"val_mcq\": 0.5}");
    metrics_log_close(log);
    FILE *f = fopen(path, "a"); /* a torn last line, as a full disk could leave */
    fputs("{\"step\": 6, \"lo", f);
    fclose(f);
    log = metrics_log_open(path, 3, err, sizeof err); /* resume from the step-3 checkpoint */
    CHECK(log != NULL, "%s", err);
    if (!log) return;
    metrics_log_write(log, "{\"step\": 4, \"loss\": 0.250}");
    metrics_log_close(log);
    size_t size;
    char *text = read_file(path, &size);
    const char *want = "{\"step\": 1, \"loss\": 1.000}\n{\"step\": 2, \"loss\": 0.500}\n"
                       "{\"step\": 3, \"loss\": 0.333}\n{\"step\": 4, \"loss\": 0.250}\n";
    CHECK(text && strcmp(text, want) == 0, "cut back to step 3, then step 4 once:\n%s", text ? text : "(none)");
    free(text);
    /* kill -9 a writer at a random moment, many times: only whole lines remain */
    for (int round = 0; round < 20; round++) {
        pid_t child = fork();
        if (child == 0) {
            MetricsLog *l = metrics_log_open(path, -1, err, sizeof err);
            for (long step = 1;; step++)
                metrics_log_write(l, "{\"step\": %ld, \"pad\": \"%0300d\"}", step, 7);
        }
        usleep(2000 + 1500 * (useconds_t)round);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        int lines = 0;
        /* SIGKILL may cut the write in flight at a page boundary (the kernel stops copying a
         * write when a fatal signal is pending), so only the last line may be torn; the
         * resume's cut-back drops it, and no record is ever glued to a torn one */
        MetricsLog *resumed = metrics_log_open(path, 1L << 40, err, sizeof err);
        CHECK(resumed != NULL, "%s", err);
        metrics_log_close(resumed);
        CHECK(whole_lines(path, &lines), "round %d: a torn record after %d lines", round, lines);
    }
}

int main(void) {
    scratch_make("run_dir");
    RUN_TEST(test_keeps_newest_two);
    RUN_TEST(test_never_deletes_latest);
    RUN_TEST(test_incomplete_and_temporaries);
    RUN_TEST(test_run_lock);
    RUN_TEST(test_metrics_log_resume_and_kill);
    scratch_remove();
    return test_summary();
}
