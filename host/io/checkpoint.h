/*
 * checkpoint.h: model checkpoints on disk: Hugging Face CLIPModel directories, OpenAI /
 * open_clip state dicts saved as safetensors, and the trainer-state sidecar.
 *
 * A checkpoint directory holds
 *   config.json                 HF CLIPConfig (transformers.CLIPModel.from_pretrained loads it)
 *   model.safetensors           every parameter, F32, HF names
 *   trainer_state.safetensors   optional: AdamW moments adam_m, adam_v plus string metadata
 * Each file is written atomically (temp file, fsync, rename). config.json is written last
 * and marks the directory complete: a crash leaves the old checkpoint, the new one, or a
 * directory without config.json, never new weights under a config they do not match. A
 * trainer therefore saves its state first, then calls checkpoint_save_hf.
 *
 * Every function returns 0, or -1 with a message naming the file, the tensor or field, and
 * what was expected versus found. None exits on bad input, and loaders validate everything
 * before they write into the caller's buffers, so a failed load leaves them untouched.
 */
#ifndef TNG_CHECKPOINT_H
#define TNG_CHECKPOINT_H

#include <stddef.h>

#include "engine/config.h"      // defines: ClipConfig, ActKind
#include "io/safetensors.h" // defines: SafeTensors

#define CHECKPOINT_CONFIG_FILE "config.json"
#define CHECKPOINT_WEIGHTS_FILE "model.safetensors"
#define CHECKPOINT_STATE_FILE "trainer_state.safetensors"

/* ----------------------------------------------------------------------------
 * config.json */

/* Parses an HF CLIPConfig. source names the file in messages. Required: text_config and
 * vision_config {hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 * hidden_act}, text_config {vocab_size, max_position_embeddings}, vision_config
 * {image_size, patch_size}, projection_dim. Optional: logit_scale_init_value (default
 * 2.6592), and fields checked only when present: model_type "clip", layer_norm_eps 1e-5,
 * num_channels 3, text eos_token_id vocab_size-1 (or HF's legacy 2, meaning argmax). */
int checkpoint_parse_config(const char *json, size_t len, const char *source, ClipConfig *cfg,
                            char *err, size_t err_len);
/* The config.json text for cfg (malloc'd; free it). */
char *checkpoint_format_config(const ClipConfig *cfg);
/* Reads DIR/config.json. */
int checkpoint_read_config(const char *dir, ClipConfig *cfg, char *err, size_t err_len);

/* ----------------------------------------------------------------------------
 * Weights: HF or OpenAI / open_clip names, told apart by which names are present */

typedef enum { WEIGHTS_HF = 0, WEIGHTS_OPENAI = 1 } WeightNaming;

int checkpoint_detect_naming(const SafeTensors *st, WeightNaming *naming, char *err,
                             size_t err_len);

/* Fills params (param_layout_build(cfg).total floats, in layout order) from a parsed file
 * with either naming. F32, F16, BF16 and F64 tensors convert; *.position_ids buffers (and
 * OpenAI's input_resolution / context_length / vocab_size scalars) are skipped; any other
 * tensor the layout lacks is an error. cfg_source says where cfg came from, for messages
 * ("config.json implies [128]"). OpenAI's attn.in_proj_{weight,bias} are split into
 * q/k/v and visual.proj / text_projection are transposed to HF's [out, in]. */
int checkpoint_load_weights_st(const SafeTensors *st, const ClipConfig *cfg, const char *cfg_source,
                               float *params, char *err, size_t err_len);
/* The same from a file. */
int checkpoint_load_weights(const char *path, const ClipConfig *cfg, const char *cfg_source,
                            float *params, char *err, size_t err_len);

/* Infers the config of an OpenAI-named file from its shapes, with heads = width / 64 (the
 * rule OpenAI's build_model uses; no shape records heads) and logit_scale_init ln(1/0.07).
 * The activation cannot be seen in weights, so the caller names it (quick_gelu for OpenAI
 * weights, gelu for open_clip models without -quickgelu). */
int checkpoint_infer_openai_config(const SafeTensors *st, ActKind act, ClipConfig *cfg, char *err,
                                   size_t err_len);

/* Loads DIR/config.json and DIR/model.safetensors. On success *params is a malloc'd array
 * of *n_params floats in param_layout order (free it); on failure it is NULL. */
int checkpoint_load_hf(const char *dir, ClipConfig *cfg, float **params, size_t *n_params,
                       char *err, size_t err_len);

/* Writes DIR/model.safetensors (F32, metadata format=pt) and then DIR/config.json, creating
 * DIR (and its parents) if missing. If DIR already holds a different config.json, that is
 * removed first so that a crash cannot pair new weights with it. */
int checkpoint_save_hf(const char *dir, const ClipConfig *cfg, const float *params, char *err,
                       size_t err_len);

/* 1 if DIR holds both config.json and model.safetensors. */
int checkpoint_is_complete(const char *dir);

/* ----------------------------------------------------------------------------
 * Trainer state: DIR/trainer_state.safetensors */

typedef struct {
    int count;
    char **keys, **values;
} CheckpointMeta;

/* Writes the AdamW moments (n floats each, tensors adam_m and adam_v) and the caller's
 * metadata (step, RNG state, schedule, ... as strings) atomically. Creates DIR if missing. */
int checkpoint_save_state(const char *dir, const float *m, const float *v, size_t n,
                          const char *const *keys, const char *const *values, int n_meta, char *err,
                          size_t err_len);
/* Reads the moments into m and v, which must hold n floats each (the file must say n).
 * meta (may be NULL) receives every metadata pair; free it with checkpoint_meta_free. */
int checkpoint_load_state(const char *dir, float *m, float *v, size_t n, CheckpointMeta *meta,
                          char *err, size_t err_len);
/* The value for key, or NULL. */
const char *checkpoint_meta_get(const CheckpointMeta *meta, const char *key);
void checkpoint_meta_free(CheckpointMeta *meta);

#endif
