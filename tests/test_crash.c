/*
 * test_crash.c: crash consistency of a training run. A short tiny-config run (checkpointing
 * every step, so that much of its time is spent inside checkpoint writes) is killed with
 * SIGKILL over and over and resumed each time, and after every kill the run folder must hold:
 *
 *   - a `latest` naming a complete checkpoint that loads (or no `latest` before the first),
 *   - no temporary file but those of the last two processes killed (a killed write leaves
 *     one; the next run removes it as it starts or saves) and at most one incomplete
 *     checkpoint folder, newer than `latest` (the one being written),
 *   - a metrics.jsonl whose every whole line is a JSON object, steps strictly increasing
 *     (a SIGKILL may tear the very last line, which the resume cuts away),
 *
 * and once the run gets to its end, its checkpoint and per-step losses must equal an
 * uninterrupted run's, byte for byte. Half the kills come at a random moment (a fraction of the uninterrupted
 * run's time), half the moment a given temporary file appears, i.e. inside a write. The
 * random choices come from a fixed seed, so the sequence of kill points is reproducible
 * (where they land in the run depends on the machine's speed).
 */
#include <dirent.h>
#include <signal.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "engine/config.h"  // defines: clip_config_preset
#include "engine/model.h"   // defines: Clip, clip_create, clip_prepare
#include "harness.h"
#include "io/checkpoint.h"  // defines: checkpoint_is_complete, checkpoint_meta_free
#include "io/train_state.h" // defines: train_state_latest, train_state_load, train_state_checkpoint_step
#include "programs.h"       // defines: spawn, run_args, Outcome, work, make_world, format_text
#include "util/common.h"    // defines: die, read_file, now_seconds, temporary_file_pid

enum { STEPS = 6, KILLS = 16, MAX_TEMPORARIES = 64 };
#define KILL_SEED 0x5eed15u

static char train_csv[PATH_LEN];

/* The command of every run: only --resume / --overwrite vary, which no checkpoint records. */
static void train_args(const char *run_dir, const char *mode, const char **args) {
    static char steps[16];
    format_text(steps, sizeof steps, "%d", STEPS);
    const char *const fixed[] = {"tng_train", "--config", "tiny", "--data", train_csv, "--batch", "4", "--steps", steps,
                                 "--seed", "7", "--checkpoint-every", "1", "--log-every", "1", "--out", run_dir};
    int n = (int)(sizeof fixed / sizeof *fixed);
    memcpy(args, fixed, sizeof fixed);
    args[n++] = mode;
    args[n] = NULL;
}

/* xorshift32: the kill points' randomness, fixed by KILL_SEED */
static uint32_t next_random(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return *state = x;
}

/* What the run folder holds besides its files proper: temporary files (their pids and names)
 * and incomplete checkpoint folders (their steps). */
typedef struct {
    int n_temporaries, n_incomplete;
    long pids[MAX_TEMPORARIES];
    char names[MAX_TEMPORARIES][256];
    long long incomplete_step[8];
} Leftovers;

static void scan_folder(const char *dir, Leftovers *l, int top) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        long pid = temporary_file_pid(e->d_name);
        if (pid && l->n_temporaries < MAX_TEMPORARIES) {
            l->pids[l->n_temporaries] = pid;
            snprintf(l->names[l->n_temporaries++], 256, "%s", e->d_name);
        }
        long long step = top ? train_state_checkpoint_step(e->d_name) : -1;
        if (step < 0) continue;
        char sub[PATH_LEN];
        format_text(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (!checkpoint_is_complete(sub) && l->n_incomplete < 8) l->incomplete_step[l->n_incomplete++] = step;
        scan_folder(sub, l, 0);
    }
    closedir(d);
}

static Leftovers leftovers(const char *run_dir) {
    Leftovers l = {0};
    scan_folder(run_dir, &l, 1);
    return l;
}

/* Polls the run folder until the k-th distinct temporary file of pid appears (1 when it did),
 * or the process ends (0). */
static int wait_for_temporary(const char *run_dir, pid_t pid, int k) {
    char seen[8][256];
    int n_seen = 0;
    for (;;) {
        siginfo_t info = {0}; /* WNOWAIT: the caller reaps it and reads its status */
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == pid) break;
        Leftovers l = leftovers(run_dir);
        for (int i = 0; i < l.n_temporaries; i++) {
            if (l.pids[i] != pid) continue;
            int known = 0;
            for (int j = 0; j < n_seen; j++) known |= strcmp(seen[j], l.names[i]) == 0;
            if (known) continue;
            if (++n_seen >= k) return 1;
            snprintf(seen[n_seen - 1], 256, "%s", l.names[i]);
        }
        usleep(1000);
    }
    return 0;
}

/* The checkpoint `latest` names loads into a prepared tiny model; returns its step, or -1
 * when there is no `latest` (no checkpoint yet), -2 when it does not load. */
static long latest_step(Clip *m, const char *run_dir) {
    char path[PATH_LEN], err[1024], latest[PATH_LEN];
    format_text(latest, sizeof latest, "%s/latest", run_dir);
    if (!file_exists(latest)) return -1;
    CheckpointMeta meta = {0};
    if (train_state_latest(run_dir, path, sizeof path, err, sizeof err) != 0 ||
        train_state_load(path, m, &meta, err, sizeof err) != 0) {
        fprintf(stderr, "  %s\n", err);
        return -2;
    }
    checkpoint_meta_free(&meta);
    return (long)m->step;
}

/* metrics.jsonl: every whole line one JSON object with steps strictly increasing; a last line
 * without its newline (a torn write) is allowed only when torn_ok. Fills the losses by step
 * (NAN where none) and returns the number of step records, or -1 when malformed. */
static int check_metrics(const char *run_dir, int torn_ok, double *loss_by_step) {
    char path[PATH_LEN];
    format_text(path, sizeof path, "%s/metrics.jsonl", run_dir);
    for (int s = 0; s <= STEPS; s++) loss_by_step[s] = NAN;
    size_t size;
    char *text = read_file(path, &size);
    if (!text) return 0;
    int records = 0, last = 0, ok = 1;
    for (char *line = text; ok && line < text + size;) {
        char *nl = strchr(line, '\n');
        if (!nl) { /* the last line, torn */
            ok = torn_ok;
            break;
        }
        *nl = 0;
        cJSON *record = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(record, "step");
        const cJSON *loss = cJSON_GetObjectItemCaseSensitive(record, "loss");
        ok = cJSON_IsObject(record) && cJSON_IsNumber(step) && step->valueint > last && step->valueint <= STEPS;
        if (ok) {
            last = step->valueint;
            loss_by_step[last] = cJSON_IsNumber(loss) ? loss->valuedouble : NAN;
            records++;
        } else {
            fprintf(stderr, "  bad metrics line: %.200s\n", line);
        }
        cJSON_Delete(record);
        line = nl + 1;
    }
    free(text);
    return ok ? records : -1;
}

/* After a kill: the folder's invariants (see the top of the file). */
static void check_after_kill(Clip *m, const char *run_dir, int round, const pid_t *killed, int n_killed) {
    long step = latest_step(m, run_dir);
    CHECK(step != -2, "kill %d: `latest` names a checkpoint that does not load", round);
    Leftovers l = leftovers(run_dir);
    for (int i = 0; i < l.n_temporaries; i++) {
        int recent = 0;
        for (int k = n_killed - 2; k < n_killed; k++) recent |= k >= 0 && l.pids[i] == killed[k];
        CHECK(recent, "kill %d: a stray temporary of an earlier process: %s", round, l.names[i]);
    }
    CHECK(l.n_incomplete <= 1, "kill %d: %d incomplete checkpoint folders", round, l.n_incomplete);
    for (int i = 0; i < l.n_incomplete; i++)
        CHECK(l.incomplete_step[i] > step, "kill %d: incomplete ckpt-%lld is not newer than latest (%ld)", round,
              l.incomplete_step[i], step);
    double losses[STEPS + 1];
    CHECK(check_metrics(run_dir, 1, losses) >= 0, "kill %d: metrics.jsonl is malformed", round);
}

/* A finished run: its last checkpoint and its per-step losses are the uninterrupted run's,
 * and nothing a kill left remains. */
static void check_finished(const char *run_dir, const char *reference, int round) {
    check_same_checkpoint(run_dir, reference, STEPS);
    Leftovers l = leftovers(run_dir);
    CHECK(l.n_temporaries == 0 && l.n_incomplete == 0, "round %d: %d temporaries (%s) and %d incomplete folders left",
          round, l.n_temporaries, l.n_temporaries ? l.names[0] : "", l.n_incomplete);
    double want[STEPS + 1], got[STEPS + 1];
    CHECK(check_metrics(reference, 0, want) == STEPS, "the uninterrupted run's log");
    CHECK(check_metrics(run_dir, 0, got) == STEPS, "round %d: the log lacks steps or has one twice", round);
    for (int s = 1; s <= STEPS; s++)
        CHECK(got[s] == want[s], "round %d, step %d: loss %g, uninterrupted %g", round, s, got[s], want[s]);
}

/* KILLS kills, each followed by a resume (or a fresh start before the first checkpoint).
 * When a run gets to its end between two kills it is checked as finished and started over
 * (--overwrite), so every round kills something; after the last kill the run is resumed to
 * its end and checked. */
static void test_kill_and_resume(void) {
    char reference[PATH_LEN], crashed[PATH_LEN];
    format_text(reference, sizeof reference, "%s/reference", work);
    format_text(crashed, sizeof crashed, "%s/crashed", work);
    const char *args[MAX_ARGS + 1];
    train_args(reference, "--overwrite", args);
    double t0 = now_seconds();
    Outcome o = run_args(NULL, args);
    double straight_seconds = now_seconds() - t0;
    if (o.status != 0) die("the uninterrupted run failed (%d): %s", o.status, o.err);
    outcome_free(&o);

    ClipConfig cfg;
    if (clip_config_preset("tiny", &cfg) != 0) die("no tiny preset");
    Clip *m = clip_create(&cfg, backend_cpu());
    ClipTrainConfig train_cfg = {.temperature = 0.07f, .train_vision = 0, .train_text = 1};
    clip_prepare(m, &train_cfg, 4, 12);
    uint32_t random = KILL_SEED;
    pid_t killed[KILLS];
    int n_killed = 0, inside_writes = 0, finished = 0, start_over = 1;
    char out_path[PATH_LEN], err_path[PATH_LEN], latest[PATH_LEN];
    format_text(out_path, sizeof out_path, "%s/crash.out", work);
    format_text(err_path, sizeof err_path, "%s/crash.err", work);
    format_text(latest, sizeof latest, "%s/latest", crashed);
    for (int round = 0; n_killed < KILLS && round < 4 * KILLS; round++) {
        train_args(crashed, file_exists(latest) && !start_over ? "--resume" : "--overwrite", args);
        int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pid_t pid = spawn(NULL, out_path, err_fd, args);
        close(err_fd);
        int at_write = round % 2 == 1, reached;
        if (at_write) {
            reached = wait_for_temporary(crashed, pid, 1 + (int)(next_random(&random) % 4));
        } else {
            double fraction = 0.6 * (next_random(&random) % 1000) / 1000.0;
            usleep((useconds_t)(fraction * straight_seconds * 1e6));
            reached = 1;
        }
        int status = 0;
        if (reached) kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        start_over = WIFEXITED(status);
        if (start_over) { /* it ended before the kill: it must have finished */
            char *err = read_file(err_path, NULL);
            CHECK(WEXITSTATUS(status) == 0, "round %d exited %d: %.600s", round, WEXITSTATUS(status), err ? err : "");
            free(err);
            check_finished(crashed, reference, round);
            finished++;
            continue;
        }
        killed[n_killed++] = pid;
        inside_writes += at_write;
        check_after_kill(m, crashed, round, killed, n_killed);
    }
    train_args(crashed, file_exists(latest) ? "--resume" : "--overwrite", args);
    o = run_args(NULL, args);
    CHECK(o.status == 0, "the last resume exited %d: %.600s", o.status, o.err);
    outcome_free(&o);
    check_finished(crashed, reference, -1);
    printf("  %d kills (%d inside a checkpoint or log write), %d runs finished between kills, uninterrupted run "
           "%.1f s\n", n_killed, inside_writes, finished, straight_seconds);
    CHECK(n_killed == KILLS, "only %d kills", n_killed);
    clip_free(m);
}

int main(int argc, char **argv) {
    (void)argc;
    programs_setup(argv[0], "crash");
    char world[PATH_LEN];
    format_text(world, sizeof world, "%s/world", work);
    make_world(world, 16);
    format_text(train_csv, sizeof train_csv, "%s/train.csv", world);
    RUN_TEST(test_kill_and_resume);
    programs_cleanup();
    return test_summary();
}
