/*
 * train_state.h: the checkpoints of a training run, and resuming from them bit-exactly.
 *
 * A run directory holds one folder per checkpoint, ckpt-<step> (an HF model directory plus
 * trainer_state.safetensors with the AdamW moments, the step and the caller's metadata:
 * RNG state, data position, ...), and a file `latest` naming the newest complete one.
 * A checkpoint is written in full before `latest` is switched to it (atomically), so a
 * crash at any moment leaves `latest` pointing at a complete checkpoint. After the switch,
 * complete checkpoints older than the new one beyond the newest `keep`, incomplete ckpt-*
 * folders and temporary files of killed writers are removed (train_state.c says exactly what).
 */
#ifndef TNG_TRAIN_STATE_H
#define TNG_TRAIN_STATE_H

#include <stddef.h>

#include "io/checkpoint.h" // defines: CheckpointMeta, checkpoint_meta_get, checkpoint_meta_free
#include "engine/model.h"      // defines: Clip

/* The file in a run directory that names its newest complete checkpoint folder. */
#define TRAIN_STATE_LATEST_FILE "latest"

/* Saves the model's weights, moments and step, plus extra metadata pairs, as
 * RUN_DIR/ckpt-<step>, then points RUN_DIR/latest at it. Writes the folder's path into
 * saved_path (may be NULL). Returns 0 or -1 with a message. */
int train_state_save(const char *run_dir, const Clip *m, const char *const *keys,
                     const char *const *values, int n_meta, int keep, char *saved_path,
                     size_t saved_path_len, char *err, size_t err_len);

/* The step a ckpt-<step> folder name stands for, or -1 for any other name. */
long long train_state_checkpoint_step(const char *name);

/* Removes what killed writers left in a run directory: ckpt-* folders that are not complete
 * (unless `latest` names one) and temporary files of processes that are gone (NAME.tmpPID),
 * in the run directory and its checkpoint folders. train_state_save does it after each save;
 * a trainer holding the run's lock (io/run_lock.h) does it as it starts. */
void train_state_tidy(const char *run_dir);

/* Deletes every ckpt-* folder and `latest` (a run started afresh in a used folder, when the
 * user asked for it). Returns the number of checkpoint folders removed. */
int train_state_remove_all(const char *run_dir);

/* The newest complete checkpoint of a run: writes its path into path. Returns 0, or -1 if
 * the run has none (err says why: no `latest`, or a `latest` naming a folder that does not
 * exist or lacks a model file). */
int train_state_latest(const char *run_dir, char *path, size_t path_len, char *err,
                       size_t err_len);

/* Restores weights, moments and step from a checkpoint folder into a prepared model whose
 * config must equal the checkpoint's. meta (may be NULL) receives the metadata. */
int train_state_load(const char *ckpt_dir, Clip *m, CheckpointMeta *meta, char *err,
                     size_t err_len);

#endif
