/*
 * config.h: the shape of a CLIP dual encoder, and its named presets.
 *
 * A ClipConfig is plain data. Presets live in config.c; Hugging Face config.json files are
 * read and written by checkpoint.c. Each tower carries its own activation because HF's
 * config.json does (text_config.hidden_act, vision_config.hidden_act).
 */
#ifndef TNG_CONFIG_H
#define TNG_CONFIG_H

#include <stddef.h>

typedef enum { ACT_QUICK_GELU = 0, ACT_GELU = 1 } ActKind;

typedef struct {
    int width;     /* hidden size C */
    int layers;    /* transformer blocks */
    int heads;     /* attention heads; head dim = width / heads */
    int mlp_width; /* MLP hidden size (4 * width in CLIP) */
    ActKind act;   /* quick_gelu (OpenAI weights) or exact erf gelu */
} TowerConfig;

typedef struct {
    TowerConfig vision;
    int image_size; /* input resolution R (square) */
    int patch_size; /* P; R must be a multiple of P */
    TowerConfig text;
    int vocab_size;     /* token embedding rows; the EOT token is vocab_size - 1 */
    int context_length; /* positional embedding rows (77 in CLIP) */
    int embed_dim;      /* shared embedding space D */
    float logit_scale_init; /* ln(1/0.07) for CLIP */
} ClipConfig;

/* The layer norm epsilon every CLIP LayerNorm uses. */
#define CLIP_LN_EPS 1e-5f

/* Fills *cfg with a named preset ("vit-b-32", "tiny"). Returns 0, or -1 if unknown. */
int clip_config_preset(const char *name, ClipConfig *cfg);

/* Checks divisibility and ranges. Returns 0, or -1 with a reason in err. */
int clip_config_validate(const ClipConfig *cfg, char *err, size_t err_len);

/* Describes the first architecture field where a and b differ ("text layers: 4 vs 2") into
 * out and returns 1, or returns 0 and writes "" when the architectures are equal (the
 * logit_scale initial value is not architecture and is not compared). */
int clip_config_diff(const ClipConfig *a, const ClipConfig *b, char *out, size_t out_len);

/* Derived sizes. */
static inline int clip_num_patches(const ClipConfig *c) {
    return (c->image_size / c->patch_size) * (c->image_size / c->patch_size);
}
static inline int clip_vision_tokens(const ClipConfig *c) { return clip_num_patches(c) + 1; }
static inline int clip_eot_token(const ClipConfig *c) { return c->vocab_size - 1; }

const char *act_kind_name(ActKind act);
/* Parses "quick_gelu" or "gelu" (exact erf GELU). Returns 0, or -1 if neither. */
int act_kind_parse(const char *name, ActKind *out);

#endif
