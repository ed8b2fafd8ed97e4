/*
 * run_dir.h: tng_train's run folder as a run starts, and what its checkpoints record of the
 * run (rank 0 alone; the other ranks never touch the folder).
 *
 * Three promises. One trainer at a time: the folder's lock (io/run_lock.h) is held for the
 * whole run and the kernel drops it however the process ends. A fresh run never mixes with an
 * earlier one: a folder holding checkpoints, `latest` or metrics.jsonl is refused (exit 2,
 * naming what is there) unless --overwrite asks to delete them first; refusing is the default
 * because a mistyped --out must not cost a run. A resumed run is the run it continues: each
 * checkpoint records the options that define the run (train/options.h, RunIdentity) and
 * --resume refuses a command that changes one (exit 2, naming each) unless --resume-changed
 * names it.
 */
#ifndef TNG_RUN_DIR_H
#define TNG_RUN_DIR_H

#include "io/checkpoint.h" // defines: CheckpointMeta
#include "train/options.h" // defines: TrainOptions, RunIdentity

typedef struct {
    int lock_fd;         /* io/run_lock.h; -1 when not held */
    RunIdentity identity; /* this command's run-defining options */
    /* what a checkpoint records of the run: "option.NAME" = value */
    char *keys[RUN_IDENTITY_MAX];
} RunDir;

/* Makes the folder, takes its lock, refuses a used folder for a fresh run (or empties it with
 * --overwrite), and removes what killed runs left (train_state_tidy). Exits 2 with a message
 * on a refusal (the lock held by another trainer, a used folder), 1 on an I/O failure. */
void run_dir_open(RunDir *rd, const TrainOptions *o, int world);

/* --resume: compares this command's identity with what the checkpoint at ckpt recorded; a
 * change that --resume-changed does not name ends the process (exit 2, each one named). A
 * checkpoint that recorded no options (written before they were) resumes with a warning. */
void run_dir_check_resume(const RunDir *rd, const TrainOptions *o, const char *ckpt, const CheckpointMeta *meta);

/* The identity as checkpoint metadata pairs: fills keys/values (up to max) and returns the
 * count. The strings belong to rd. */
int run_dir_meta(const RunDir *rd, const char **keys, const char **values, int max);

/* Releases the lock and frees rd. */
void run_dir_close(RunDir *rd);

#endif
