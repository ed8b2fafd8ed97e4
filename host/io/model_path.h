/*
 * model_path.h: what a user may pass where a model is expected (tng_eval --model,
 * tng_embed --model, tng_train --init), turned into a config and weights in host memory.
 *
 * Three kinds of directory are accepted:
 *   - an HF CLIPModel directory: config.json + model.safetensors;
 *   - a tng checkpoint directory: the same two files, plus trainer_state.safetensors (which
 *     is ignored here: loading a model needs no optimizer state);
 *   - a tng run directory: a file `latest` naming one of its ckpt-<step> folders.
 * Resolving only reads; nothing here builds a model, a tokenizer or activations, so a caller
 * that wants only the weights (a trainer's --init) pays for nothing else.
 */
#ifndef TNG_MODEL_PATH_H
#define TNG_MODEL_PATH_H

#include <stddef.h>

#include "engine/config.h" // defines: ClipConfig

/* Finds the model directory that path stands for (path itself, or the checkpoint its
 * `latest` names) and writes it into dir. Returns 0, or -1 with a message that says what
 * path is and what was expected: a file, a missing path, a run whose `latest` names a
 * checkpoint that does not exist or is incomplete, a directory with only one of the two
 * model files, or a directory that is none of the three kinds. */
int model_path_resolve(const char *path, char *dir, size_t dir_len, char *err, size_t err_len);

/* Resolves path and loads its config and weights: *params is a malloc'd array of
 * param_layout_build(cfg).total floats in layout order (free it); NULL on failure. resolved
 * (may be NULL) receives the model directory actually read. Returns 0, or -1 with a message. */
int model_path_load(const char *path, ClipConfig *cfg, float **params, char *resolved,
                    size_t resolved_len, char *err, size_t err_len);

#endif
