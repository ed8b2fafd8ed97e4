/*
 * model_path.c: from a path the user gave to a model directory, and its weights
 * (model_path.h). A directory holding both model files is a model directory, whatever else
 * it holds; only otherwise is a `latest` file followed, so a checkpoint inside a run is read
 * the same way whether it is named directly or through the run.
 */
#include "io/model_path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"  // defines: checkpoint_load_hf, CHECKPOINT_{CONFIG,WEIGHTS}_FILE
#include "io/train_state.h" // defines: train_state_latest, TRAIN_STATE_LATEST_FILE
#include "util/common.h"    // defines: set_error_in

#define PATH_LEN 4096

/* What every refusal names, so the user learns what would have been accepted. */
#define EXPECTED_KINDS                                                                        \
    "expected an HF CLIPModel directory (" CHECKPOINT_CONFIG_FILE " + " CHECKPOINT_WEIGHTS_FILE \
    "), a tng checkpoint directory (the same files) or a tng run directory (a `"             \
    TRAIN_STATE_LATEST_FILE "` file naming its checkpoint)"

static int holds(const char *dir, const char *file) {
    char path[PATH_LEN];
    int len = snprintf(path, sizeof path, "%s/%s", dir, file);
    return len > 0 && (size_t)len < sizeof path && access(path, F_OK) == 0;
}

int model_path_resolve(const char *path, char *dir, size_t dir_len, char *err, size_t err_len) {
    struct stat info;
    if (stat(path, &info) != 0)
        return set_error_in(err, err_len, path, "cannot open: %s; " EXPECTED_KINDS,
                            strerror(errno));
    if (!S_ISDIR(info.st_mode))
        return set_error_in(err, err_len, path, "is not a directory; " EXPECTED_KINDS);
    int config = holds(path, CHECKPOINT_CONFIG_FILE);
    int weights = holds(path, CHECKPOINT_WEIGHTS_FILE);
    if (config && weights) {
        int len = snprintf(dir, dir_len, "%s", path);
        if (len < 0 || (size_t)len >= dir_len)
            return set_error_in(err, err_len, path, "path too long");
        return 0;
    }
    if (holds(path, TRAIN_STATE_LATEST_FILE))
        return train_state_latest(path, dir, dir_len, err, err_len);
    if (config || weights)
        return set_error_in(err, err_len, path,
                            "holds %s but no %s, so it is an incomplete model directory",
                            config ? CHECKPOINT_CONFIG_FILE : CHECKPOINT_WEIGHTS_FILE,
                            config ? CHECKPOINT_WEIGHTS_FILE : CHECKPOINT_CONFIG_FILE);
    return set_error_in(err, err_len, path, "holds none of %s, %s or %s; " EXPECTED_KINDS,
                        CHECKPOINT_CONFIG_FILE, CHECKPOINT_WEIGHTS_FILE, TRAIN_STATE_LATEST_FILE);
}

int model_path_load(const char *path, ClipConfig *cfg, float **params, char *resolved,
                    size_t resolved_len, char *err, size_t err_len) {
    *params = NULL;
    char dir[PATH_LEN];
    if (model_path_resolve(path, dir, sizeof dir, err, err_len) != 0) return -1;
    if (checkpoint_load_hf(dir, cfg, params, NULL, err, err_len) != 0) return -1;
    if (resolved) snprintf(resolved, resolved_len, "%s", dir);
    return 0;
}
