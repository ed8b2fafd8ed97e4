/*
 * train_state.c: run checkpoints (train_state.h). The model and moments go through
 * checkpoint.c; this file adds the step, the ckpt-<step> naming, the `latest` pointer and
 * pruning of old checkpoints.
 *
 * Pruning and tidying delete only what is provably this run's past or garbage: older
 * checkpoints beyond `keep`, folders a kill left incomplete and temporary files of dead
 * writers. They never delete the checkpoint `latest` names, nor complete checkpoints of later
 * steps.
 */
#include "io/train_state.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h" // defines: die, make_dirs, read_file, write_file_atomic, temporary_file_pid

#define PATH_LEN 4096

/* DIR/NAME into out (PATH_LEN bytes); dies on a path too long to be real. */
static void join_path(char *out, const char *dir, const char *name) {
    int len = snprintf(out, PATH_LEN, "%s/%s", dir, name);
    if (len < 0 || len >= PATH_LEN) die("path too long: %s/%s", dir, name);
}
#define STEP_KEY "step"

/* Removes a checkpoint folder with every file in it: the three checkpoint.c writes and any
 * temporary file a killed write left behind (a ckpt-* folder holds nothing else). */
static void remove_checkpoint(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        char path[PATH_LEN];
        for (struct dirent *e; (e = readdir(d));) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            join_path(path, dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

long long train_state_checkpoint_step(const char *name) {
    if (strncmp(name, "ckpt-", 5) != 0 || name[5] < '0' || name[5] > '9') return -1;
    char *end;
    unsigned long long step = strtoull(name + 5, &end, 10);
    return *end == '\0' ? (long long)step : -1;
}

/* A temporary file of write_file_atomic (NAME.tmp<pid>) whose writer is gone: a kill during
 * a write left it. A live writer's file (ours, or another process's) is left alone. */
static int stale_temporary(const char *name) {
    long pid = temporary_file_pid(name);
    return pid && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[PATH_LEN];
    for (struct dirent *e; (e = readdir(d));)
        if (stale_temporary(e->d_name)) {
            join_path(path, dir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

/* The ckpt-* folder names in run_dir, newest first (free each, then the array). */
static char **checkpoint_names(const char *run_dir, int *count) {
    *count = 0;
    DIR *d = opendir(run_dir);
    if (!d) return NULL;
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (train_state_checkpoint_step(e->d_name) < 0) continue;
        names = reallocCheck(names, sizeof(char *) * (size_t)(n + 1));
        names[n++] = strdupCheck(e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* a handful of names */
        for (int j = i; j > 0; j--) {
            if (train_state_checkpoint_step(names[j - 1]) >= train_state_checkpoint_step(names[j])) break;
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    *count = n;
    return names;
}

static void free_names(char **names, int count) {
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

/* The folder name `latest` names (its first line) into name[PATH_LEN]. Returns 0, or -1
 * (errno set, name "") when there is no `latest` to read. */
static int latest_name(const char *run_dir, char *name) {
    char latest[PATH_LEN];
    join_path(latest, run_dir, TRAIN_STATE_LATEST_FILE);
    char *text = read_file(latest, NULL);
    name[0] = 0;
    if (!text) return -1;
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(name, PATH_LEN, "%s", text);
    free(text);
    return 0;
}

/* After checkpoint `saved_step` became `latest`: keeps it and the newest keep-1 complete
 * checkpoints BEFORE it, and removes older ones. Complete checkpoints of later steps are not
 * this run's past (a folder reused by hand): they are never removed. */
static void prune_checkpoints(const char *run_dir, int keep, long long saved_step) {
    int count;
    char **names = checkpoint_names(run_dir, &count);
    char path[PATH_LEN];
    int kept = 0;
    for (int i = 0; i < count; i++) {
        long long step = train_state_checkpoint_step(names[i]);
        join_path(path, run_dir, names[i]);
        if (step == saved_step) kept++;
        else if (step < saved_step && checkpoint_is_complete(path) && ++kept > keep) remove_checkpoint(path);
    }
    free_names(names, count);
}

void train_state_tidy(const char *run_dir) {
    int count;
    char **names = checkpoint_names(run_dir, &count), latest[PATH_LEN], path[PATH_LEN];
    latest_name(run_dir, latest);
    for (int i = 0; i < count; i++) {
        join_path(path, run_dir, names[i]);
        if (!checkpoint_is_complete(path) && strcmp(names[i], latest) != 0) remove_checkpoint(path);
        else remove_stale_temporaries(path);
    }
    free_names(names, count);
    remove_stale_temporaries(run_dir);
}

int train_state_remove_all(const char *run_dir) {
    int count;
    char **names = checkpoint_names(run_dir, &count), path[PATH_LEN];
    for (int i = 0; i < count; i++) {
        join_path(path, run_dir, names[i]);
        remove_checkpoint(path);
    }
    free_names(names, count);
    join_path(path, run_dir, TRAIN_STATE_LATEST_FILE);
    unlink(path);
    return count;
}

int train_state_save(const char *run_dir, const Clip *m, const char *const *keys,
                     const char *const *values, int n_meta, int keep, char *saved_path,
                     size_t saved_path_len, char *err, size_t err_len) {
    const Backend *be = m->be;
    size_t n = m->layout.total;
    char dir[PATH_LEN], step_text[32], name[64];
    snprintf(name, sizeof name, "ckpt-%08" PRIu64, m->step);
    join_path(dir, run_dir, name);
    snprintf(step_text, sizeof step_text, "%" PRIu64, m->step);
    /* metadata: the step first, then the caller's pairs */
    const char **all_keys = mallocCheck(sizeof(char *) * (size_t)(n_meta + 1));
    const char **all_values = mallocCheck(sizeof(char *) * (size_t)(n_meta + 1));
    all_keys[0] = STEP_KEY;
    all_values[0] = step_text;
    for (int i = 0; i < n_meta; i++) all_keys[i + 1] = keys[i], all_values[i + 1] = values[i];
    float *host = mallocCheck(sizeof(float) * n * 2);
    int rc = -1;
    if (!m->adam_m) {
        snprintf(err, err_len, "%s: the model has no optimizer state to save", dir);
        goto done;
    }
    be->to_host(host, m->adam_m, sizeof(float) * n);
    be->to_host(host + n, m->adam_v, sizeof(float) * n);
    if (checkpoint_save_state(dir, host, host + n, n, all_keys, all_values, n_meta + 1, err,
                              err_len) != 0)
        goto done;
    clip_get_params(m, host);
    if (checkpoint_save_hf(dir, &m->cfg, host, err, err_len) != 0) goto done;
    /* the switch: `latest` names the folder relative to the run directory */
    char latest[PATH_LEN];
    join_path(latest, run_dir, TRAIN_STATE_LATEST_FILE);
    strcat(name, "\n");
    if (write_file_atomic(latest, name, strlen(name)) != 0) {
        snprintf(err, err_len, "%s: cannot write: %s", latest, strerror(errno));
        goto done;
    }
    if (keep > 0) prune_checkpoints(run_dir, keep, (long long)m->step);
    train_state_tidy(run_dir);
    if (saved_path) snprintf(saved_path, saved_path_len, "%s", dir);
    rc = 0;
done:
    free(host);
    free(all_keys);
    free(all_values);
    return rc;
}

int train_state_latest(const char *run_dir, char *path, size_t path_len, char *err,
                       size_t err_len) {
    char latest[PATH_LEN], name[PATH_LEN];
    join_path(latest, run_dir, TRAIN_STATE_LATEST_FILE);
    if (latest_name(run_dir, name) != 0) {
        snprintf(err, err_len, "%s: no checkpoint to resume from (%s)", latest, strerror(errno));
        return -1;
    }
    int len = snprintf(path, path_len, "%s/%s", run_dir, name);
    if (len < 0 || (size_t)len >= path_len) {
        snprintf(err, err_len, "%s: checkpoint path too long", latest);
        return -1;
    }
    struct stat info;
    if (stat(path, &info) != 0) {
        snprintf(err, err_len, "%s names %s, which does not exist", latest, path);
        return -1;
    }
    if (!checkpoint_is_complete(path)) {
        snprintf(err, err_len, "%s names %s, which is not a complete checkpoint (it lacks %s or %s)",
                 latest, path, CHECKPOINT_CONFIG_FILE, CHECKPOINT_WEIGHTS_FILE);
        return -1;
    }
    return 0;
}

int train_state_load(const char *ckpt_dir, Clip *m, CheckpointMeta *meta, char *err,
                     size_t err_len) {
    ClipConfig cfg;
    float *params = NULL;
    size_t n = 0;
    if (checkpoint_load_hf(ckpt_dir, &cfg, &params, &n, err, err_len) != 0) return -1;
    char difference[128];
    if (clip_config_diff(&cfg, &m->cfg, difference, sizeof difference) || n != m->layout.total) {
        snprintf(err, err_len, "%s/%s: the checkpoint's model config differs from this run's (%s: "
                 "checkpoint vs run)", ckpt_dir, CHECKPOINT_CONFIG_FILE, difference);
        free(params);
        return -1;
    }
    if (!m->adam_m) {
        snprintf(err, err_len, "%s: prepare the model for training before loading its state",
                 ckpt_dir);
        free(params);
        return -1;
    }
    float *moments = mallocCheck(sizeof(float) * n * 2);
    CheckpointMeta loaded = {0};
    int rc = -1;
    if (checkpoint_load_state(ckpt_dir, moments, moments + n, n, &loaded, err, err_len) != 0)
        goto done;
    const char *step = checkpoint_meta_get(&loaded, STEP_KEY);
    char *end = NULL;
    unsigned long long step_value = step ? strtoull(step, &end, 10) : 0;
    if (!step || *end != '\0') {
        snprintf(err, err_len, "%s/%s: metadata '%s' is missing or not a number", ckpt_dir,
                 CHECKPOINT_STATE_FILE, STEP_KEY);
        goto done;
    }
    clip_set_params(m, params);
    m->be->to_device(m->adam_m, moments, sizeof(float) * n);
    m->be->to_device(m->adam_v, moments + n, sizeof(float) * n);
    m->be->zero(m->grads, sizeof(float) * n);
    m->step = step_value;
    rc = 0;
done:
    if (rc == 0 && meta) *meta = loaded;
    else checkpoint_meta_free(&loaded);
    free(moments);
    free(params);
    return rc;
}
