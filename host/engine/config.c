/*
 * config.c: named model presets and config validation.
 *
 * vit-b-32 is OpenAI's ViT-B/32 exactly (docs/REFERENCE.md §1). tiny is a small model that
 * trains in minutes on two CPU cores: it keeps CLIP's vocabulary and context so the real
 * tokenizer feeds it, and shrinks everything else (64x64 images in 16 patches, width 128,
 * 4 layers per tower).
 */
#include "engine/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int clip_config_preset(const char *name, ClipConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = 49408;
    cfg->context_length = 77;
    cfg->logit_scale_init = logf(1.0f / 0.07f);
    if (strcmp(name, "vit-b-32") == 0) {
        cfg->vision = (TowerConfig){768, 12, 12, 3072, ACT_QUICK_GELU};
        cfg->image_size = 224;
        cfg->patch_size = 32;
        cfg->text = (TowerConfig){512, 12, 8, 2048, ACT_QUICK_GELU};
        cfg->embed_dim = 512;
        return 0;
    }
    if (strcmp(name, "tiny") == 0) {
        cfg->vision = (TowerConfig){128, 4, 4, 512, ACT_QUICK_GELU};
        cfg->image_size = 64;
        cfg->patch_size = 16; /* 16 patches: the synthetic world's objects span several */
        cfg->text = (TowerConfig){128, 4, 4, 512, ACT_QUICK_GELU};
        cfg->embed_dim = 128;
        return 0;
    }
    return -1;
}

static int tower_validate(const char *which, const TowerConfig *t, char *err, size_t err_len) {
    if (t->width <= 0 || t->layers <= 0 || t->heads <= 0 || t->mlp_width <= 0) {
        snprintf(err, err_len, "%s tower: width, layers, heads and mlp width must be positive", which);
        return -1;
    }
    if (t->width % t->heads != 0) {
        snprintf(err, err_len, "%s tower: width %d is not a multiple of heads %d", which, t->width,
                 t->heads);
        return -1;
    }
    if (t->act != ACT_QUICK_GELU && t->act != ACT_GELU) {
        snprintf(err, err_len, "%s tower: unknown activation %d", which, (int)t->act);
        return -1;
    }
    return 0;
}

int clip_config_validate(const ClipConfig *cfg, char *err, size_t err_len) {
    if (tower_validate("vision", &cfg->vision, err, err_len) ||
        tower_validate("text", &cfg->text, err, err_len))
        return -1;
    if (cfg->patch_size <= 0 || cfg->image_size <= 0 || cfg->image_size % cfg->patch_size != 0) {
        snprintf(err, err_len, "image size %d is not a positive multiple of patch size %d",
                 cfg->image_size, cfg->patch_size);
        return -1;
    }
    if (cfg->vocab_size < 2 || cfg->context_length < 2 || cfg->embed_dim <= 0) {
        snprintf(err, err_len, "vocab size (%d), context (%d) and embed dim (%d) are too small",
                 cfg->vocab_size, cfg->context_length, cfg->embed_dim);
        return -1;
    }
    return 0;
}

const char *act_kind_name(ActKind act) { return act == ACT_GELU ? "gelu" : "quick_gelu"; }

int act_kind_parse(const char *name, ActKind *out) {
    if (strcmp(name, "quick_gelu") == 0) *out = ACT_QUICK_GELU;
    else if (strcmp(name, "gelu") == 0) *out = ACT_GELU;
    else return -1;
    return 0;
}

int clip_config_diff(const ClipConfig *a, const ClipConfig *b, char *out, size_t out_len) {
    const struct {
        const char *name;
        int a, b;
    } fields[] = {
        {"vision width", a->vision.width, b->vision.width},
        {"vision layers", a->vision.layers, b->vision.layers},
        {"vision heads", a->vision.heads, b->vision.heads},
        {"vision mlp width", a->vision.mlp_width, b->vision.mlp_width},
        {"vision activation", (int)a->vision.act, (int)b->vision.act},
        {"image size", a->image_size, b->image_size},
        {"patch size", a->patch_size, b->patch_size},
        {"text width", a->text.width, b->text.width},
        {"text layers", a->text.layers, b->text.layers},
        {"text heads", a->text.heads, b->text.heads},
        {"text mlp width", a->text.mlp_width, b->text.mlp_width},
        {"text activation", (int)a->text.act, (int)b->text.act},
        {"vocab size", a->vocab_size, b->vocab_size},
        {"context length", a->context_length, b->context_length},
        {"embed dim", a->embed_dim, b->embed_dim},
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        if (fields[i].a != fields[i].b) {
            snprintf(out, out_len, "%s: %d vs %d", fields[i].name, fields[i].a, fields[i].b);
            return 1;
        }
    }
    if (out_len) out[0] = '\0';
    return 0;
}
