/*
 * run_dir.c: the run folder as a run starts, and the run's identity in its checkpoints
 * (run_dir.h).
 *
 * The order in run_dir_open matters: the lock comes first, so that nothing below it (the
 * check of a used folder, --overwrite's deletions, tidying a killed run's leftovers) can race
 * with another trainer in the same folder.
 */
#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/run_lock.h"    // defines: run_lock_take, run_lock_release
#include "io/train_state.h" // defines: train_state_latest, train_state_tidy, train_state_remove_all
#include "train/trainer.h"  // defines: TRAINER_METRICS_FILE
#include "util/common.h"    // defines: die, make_dirs, strdupCheck

#define OPTION_KEY_PREFIX "option."

/* ----------------------------------------------------------------------------
 * A fresh run in a used folder */

/* Appends name to a ", "-separated list in out (len bytes), or counts it in *more once the
 * list is long enough to make the point. */
static void list_add(char *out, size_t len, int *more, const char *name) {
    size_t used = strlen(out);
    if (used > 200 || used + strlen(name) + 3 >= len) {
        (*more)++;
        return;
    }
    snprintf(out + used, len - used, "%s%s", used ? ", " : "", name);
}

static long long file_size(const char *dir, const char *name) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* What an earlier run left in dir: `latest`, ckpt-* folders, a metrics.jsonl with records. Returns how many
 * such entries there are, listed (the first few) in out. */
static int earlier_run_files(const char *dir, char *out, size_t len) {
    out[0] = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0, more = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int metrics = strcmp(e->d_name, TRAINER_METRICS_FILE) == 0;
        if (strcmp(e->d_name, TRAIN_STATE_LATEST_FILE) != 0 && !metrics && train_state_checkpoint_step(e->d_name) < 0)
            continue;
        if (metrics && file_size(dir, e->d_name) == 0) continue; /* a run that ended before its first step */
        found++;
        list_add(out, len, &more, e->d_name);
    }
    closedir(d);
    if (more) snprintf(out + strlen(out), len - strlen(out), " and %d more", more);
    return found;
}

/* A fresh run (no --resume) starts only in a folder that holds no earlier run, or, with
 * --overwrite, after deleting that run. */
static void check_fresh(const TrainOptions *o) {
    char found[512], latest[4096], err[1024];
    if (!earlier_run_files(o->out, found, sizeof found)) return;
    if (o->overwrite) {
        int removed = train_state_remove_all(o->out);
        char metrics[4096];
        snprintf(metrics, sizeof metrics, "%s/%s", o->out, TRAINER_METRICS_FILE);
        if (unlink(metrics) != 0 && errno != ENOENT) die("--overwrite: cannot delete %s: %s", metrics, strerror(errno));
        fprintf(stderr, "--overwrite: deleted the earlier run in %s (%d checkpoint%s, latest, %s)\n", o->out,
                removed, removed == 1 ? "" : "s", TRAINER_METRICS_FILE);
        return;
    }
    if (train_state_latest(o->out, latest, sizeof latest, err, sizeof err) == 0)
        fprintf(stderr, "tng: %s already holds a run (%s; latest: %s): --resume continues it, --overwrite "
                "deletes it and starts afresh, or choose another --out\n", o->out, found, latest);
    else
        fprintf(stderr, "tng: %s already holds a run's files (%s) but no checkpoint to resume (%s): "
                "--overwrite deletes them and starts afresh, or choose another --out\n", o->out, found, err);
    exit(2);
}

void run_dir_open(RunDir *rd, const TrainOptions *o, int world) {
    *rd = (RunDir){.lock_fd = -1};
    char err[1024];
    if (make_dirs(o->out, err, sizeof err) != 0) die("run directory: %s", err);
    rd->lock_fd = run_lock_take(o->out, err, sizeof err);
    if (rd->lock_fd < 0) {
        fprintf(stderr, "tng: %s\n", err);
        exit(2);
    }
    if (!o->resume) check_fresh(o);
    train_state_tidy(o->out);
    train_options_identity(o, world, &rd->identity);
    for (int i = 0; i < rd->identity.n; i++) {
        size_t len = strlen(OPTION_KEY_PREFIX) + strlen(rd->identity.names[i]) + 1;
        rd->keys[i] = mallocCheck(len);
        snprintf(rd->keys[i], len, "%s%s", OPTION_KEY_PREFIX, rd->identity.names[i]);
    }
}

/* ----------------------------------------------------------------------------
 * Resume: the command against the run */

/* Whether name is one of the comma-separated names in list (NULL: none). */
static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0) return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

static const char *shown(const char *value) { return value[0] ? value : "(none)"; }

/* "--seed", or "ranks (mpirun -np)" for the one entry that is no option, into out[64]. */
static const char *label(const char *name, char *out) {
    if (strcmp(name, RUN_IDENTITY_RANKS) == 0) snprintf(out, 64, "ranks (mpirun -np)");
    else snprintf(out, 64, "--%s", name);
    return out;
}

void run_dir_check_resume(const RunDir *rd, const TrainOptions *o, const char *ckpt, const CheckpointMeta *meta) {
    int recorded = 0, refused = 0;
    for (int i = 0; i < meta->count; i++)
        recorded += strncmp(meta->keys[i], OPTION_KEY_PREFIX, strlen(OPTION_KEY_PREFIX)) == 0;
    if (!recorded) {
        fprintf(stderr, "warning: %s records no options (written before checkpoints did): this command cannot "
                "be checked against the run it continues\n", ckpt);
        return;
    }
    for (int i = 0; i < rd->identity.n; i++) {
        const char *name = rd->identity.names[i], *now = rd->identity.values[i];
        char what[64];
        const char *then = checkpoint_meta_get(meta, rd->keys[i]);
        if (!then) {
            fprintf(stderr, "warning: %s does not record %s (an option added since): not checked\n", ckpt,
                    label(name, what));
            continue;
        }
        if (strcmp(then, now) == 0) continue;
        if (listed(o->resume_changed, name)) {
            fprintf(stderr, "resuming with %s changed from %s to %s (--resume-changed)\n", label(name, what),
                    shown(then), shown(now));
            continue;
        }
        if (!refused++) fprintf(stderr, "tng: --resume: this command changes what defines the run in %s:\n", o->out);
        fprintf(stderr, "  %s: the run was trained with %s, this command gives %s\n", label(name, what), shown(then),
                shown(now));
    }
    if (refused) {
        fprintf(stderr, "give the run's values, or name what is to change on purpose in --resume-changed "
                "(e.g. --resume-changed seed,lr)\n");
        exit(2);
    }
}

int run_dir_meta(const RunDir *rd, const char **keys, const char **values, int max) {
    if (rd->identity.n > max) die("run_dir_meta: room for %d pairs, %d needed", max, rd->identity.n);
    for (int i = 0; i < rd->identity.n; i++) keys[i] = rd->keys[i], values[i] = rd->identity.values[i];
    return rd->identity.n;
}

void run_dir_close(RunDir *rd) {
    run_lock_release(rd->lock_fd);
    for (int i = 0; i < rd->identity.n; i++) free(rd->keys[i]);
    run_identity_free(&rd->identity);
    *rd = (RunDir){.lock_fd = -1};
}
