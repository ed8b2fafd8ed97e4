/*
 * checkpoint.c: config.json, model weights and trainer state on disk (see checkpoint.h).
 *
 * Loading a weights file runs in two passes. The first resolves, for every tensor of our
 * ParamLayout, the file tensor it comes from (the same HF name, or the OpenAI name with a
 * q/k/v slice or a transpose), and checks its shape and dtype, and that the file holds
 * nothing else. Only then does the second pass convert values into the caller's buffer, so
 * a bad file never leaves a half-loaded model behind.
 */
#include "io/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h" // defines: mallocCheck, strdupCheck, read_file, write_file_atomic
#include "engine/model.h"  // defines: ParamLayout, param_layout_build, param_layout_free

/* HF CLIPConfig's default, used when config.json omits logit_scale_init_value. */
#define HF_LOGIT_SCALE_INIT 2.6592f

static char *path_join(const char *dir, const char *file) {
    size_t len = strlen(dir) + strlen(file) + 2;
    char *path = mallocCheck(len);
    snprintf(path, len, "%s/%s", dir, file);
    return path;
}

/* ----------------------------------------------------------------------------
 * config.json */

static const char *json_type_name(const cJSON *item) {
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsObject(item)) return "an object";
    return "invalid";
}

/* Where a field lives, for messages: "text_config.hidden_size" or "projection_dim". */
typedef struct {
    const cJSON *obj;
    const char *obj_name; /* NULL at the top level */
    const char *source;
    char *err;
    size_t err_len;
} ConfigScope;

/* The dotted name of a field, e.g. "text_config.hidden_size", in a caller's buffer. */
static const char *field_path(const ConfigScope *s, const char *key, char *buf, size_t len) {
    snprintf(buf, len, "%s%s%s", s->obj_name ? s->obj_name : "", s->obj_name ? "." : "", key);
    return buf;
}

static const cJSON *field(const ConfigScope *s, const char *key, int required, int *rc) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(s->obj, key);
    char path[96];
    if (!item && required)
        *rc = set_error_in(s->err, s->err_len, s->source, "%s is missing",
                   field_path(s, key, path, sizeof path));
    return item;
}

static int type_error(const ConfigScope *s, const char *key, const char *want, const cJSON *item) {
    char path[96];
    return set_error_in(s->err, s->err_len, s->source, "%s must be %s, found %s",
                field_path(s, key, path, sizeof path), want, json_type_name(item));
}

static int positive_int(const ConfigScope *s, const char *key, int *out) {
    int rc = 0;
    const cJSON *item = field(s, key, 1, &rc);
    if (rc) return rc;
    if (!cJSON_IsNumber(item)) return type_error(s, key, "a positive integer", item);
    double d = item->valuedouble;
    char path[96];
    if (d != floor(d) || d < 1.0 || d > 1e9)
        return set_error_in(s->err, s->err_len, s->source, "%s must be a positive integer, found %g",
                    field_path(s, key, path, sizeof path), d);
    *out = (int)d;
    return 0;
}

static int activation(const ConfigScope *s, ActKind *out) {
    int rc = 0;
    const cJSON *item = field(s, "hidden_act", 1, &rc);
    if (rc) return rc;
    if (!cJSON_IsString(item)) return type_error(s, "hidden_act", "a string", item);
    if (act_kind_parse(item->valuestring, out) != 0)
        return set_error_in(s->err, s->err_len, s->source,
                    "%s.hidden_act is \"%.40s\", expected \"quick_gelu\" or \"gelu\"", s->obj_name,
                    item->valuestring);
    return 0;
}

/* An optional number; *out keeps its value when the field is absent. */
static int optional_number(const ConfigScope *s, const char *key, double *out) {
    int rc = 0;
    const cJSON *item = field(s, key, 0, &rc);
    if (!item) return 0;
    if (!cJSON_IsNumber(item)) return type_error(s, key, "a number", item);
    *out = item->valuedouble;
    return 0;
}

static int tower_config(const ConfigScope *s, TowerConfig *t) {
    double eps = CLIP_LN_EPS;
    if (positive_int(s, "hidden_size", &t->width) ||
        positive_int(s, "intermediate_size", &t->mlp_width) ||
        positive_int(s, "num_hidden_layers", &t->layers) ||
        positive_int(s, "num_attention_heads", &t->heads) || activation(s, &t->act) ||
        optional_number(s, "layer_norm_eps", &eps))
        return -1;
    if (fabs(eps - CLIP_LN_EPS) > 1e-9)
        return set_error_in(s->err, s->err_len, s->source,
                    "%s.layer_norm_eps is %g, but this engine's LayerNorm uses 1e-05", s->obj_name,
                    eps);
    return 0;
}

static int sub_config(const ConfigScope *top, const char *key, ConfigScope *sub) {
    int rc = 0;
    const cJSON *item = field(top, key, 1, &rc);
    if (rc) return rc;
    if (!cJSON_IsObject(item)) return type_error(top, key, "an object", item);
    *sub = *top;
    sub->obj = item;
    sub->obj_name = key;
    return 0;
}

static int parse_config_object(const ConfigScope *top, ClipConfig *cfg) {
    int rc = 0;
    const cJSON *model_type = field(top, "model_type", 0, &rc);
    if (model_type && !cJSON_IsString(model_type))
        return type_error(top, "model_type", "a string", model_type);
    if (model_type && strcmp(model_type->valuestring, "clip") != 0)
        return set_error_in(top->err, top->err_len, top->source,
                    "model_type is \"%.40s\", expected \"clip\"", model_type->valuestring);
    ConfigScope text, vision;
    double logit_scale = HF_LOGIT_SCALE_INIT, eos = -1.0, channels = 3.0;
    if (sub_config(top, "text_config", &text) || sub_config(top, "vision_config", &vision) ||
        tower_config(&text, &cfg->text) || positive_int(&text, "vocab_size", &cfg->vocab_size) ||
        positive_int(&text, "max_position_embeddings", &cfg->context_length) ||
        optional_number(&text, "eos_token_id", &eos) || tower_config(&vision, &cfg->vision) ||
        positive_int(&vision, "image_size", &cfg->image_size) ||
        positive_int(&vision, "patch_size", &cfg->patch_size) ||
        optional_number(&vision, "num_channels", &channels) ||
        positive_int(top, "projection_dim", &cfg->embed_dim) ||
        optional_number(top, "logit_scale_init_value", &logit_scale))
        return -1;
    /* HF pools the text at the first eos_token_id (or, when it is 2, at the argmax id); we
     * pool at the first vocab_size-1, which is the same row only in these two cases. */
    if (eos >= 0.0 && eos != 2.0 && eos != (double)(cfg->vocab_size - 1))
        return set_error_in(top->err, top->err_len, top->source,
                    "text_config.eos_token_id is %g, expected %d (vocab_size - 1) so that HF pools "
                    "the same token as this engine",
                    eos, cfg->vocab_size - 1);
    if (channels != 3.0)
        return set_error_in(top->err, top->err_len, top->source,
                    "vision_config.num_channels is %g, expected 3", channels);
    if (!(fabs(logit_scale) <= 100.0))
        return set_error_in(top->err, top->err_len, top->source,
                    "logit_scale_init_value is %g, expected a log scale within [-100, 100]",
                    logit_scale);
    cfg->logit_scale_init = (float)logit_scale;
    char why[256];
    if (clip_config_validate(cfg, why, sizeof why) != 0)
        return set_error_in(top->err, top->err_len, top->source, "%s", why);
    return 0;
}

int checkpoint_parse_config(const char *json, size_t len, const char *source, ClipConfig *cfg,
                            char *err, size_t err_len) {
    if (!source) source = "config.json";
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &parse_end, 0);
    if (!root) {
        size_t at = parse_end && parse_end >= json ? (size_t)(parse_end - json) : 0;
        return set_error_in(err, err_len, source, "not valid JSON (error near byte %zu of %zu)", at, len);
    }
    ClipConfig parsed;
    memset(&parsed, 0, sizeof parsed);
    ConfigScope top = {root, NULL, source, err, err_len};
    int rc = cJSON_IsObject(root) ? parse_config_object(&top, &parsed)
                                  : set_error_in(err, err_len, source, "the top level is %s, not an object",
                                         json_type_name(root));
    cJSON_Delete(root);
    if (rc == 0) *cfg = parsed;
    return rc;
}

static void add_number(cJSON *obj, const char *key, double value) {
    if (!cJSON_AddNumberToObject(obj, key, value)) die("out of memory writing config.json");
}
/* transformers validates config types strictly: a float field written as 1 (an int) is
 * refused, so floats always carry a decimal point or an exponent. */
static void add_float(cJSON *obj, const char *key, double value) {
    char text[40];
    snprintf(text, sizeof text, "%.9g", value);
    if (!strpbrk(text, ".e")) strcat(text, ".0");
    if (!cJSON_AddRawToObject(obj, key, text)) die("out of memory writing config.json");
}
static void add_string(cJSON *obj, const char *key, const char *value) {
    if (!cJSON_AddStringToObject(obj, key, value)) die("out of memory writing config.json");
}

/* The fields both towers share, in HF's spelling. */
static cJSON *tower_json(const TowerConfig *t, const ClipConfig *cfg, const char *model_type) {
    cJSON *obj = cJSON_CreateObject();
    if (!obj) die("out of memory writing config.json");
    add_string(obj, "model_type", model_type);
    add_number(obj, "hidden_size", t->width);
    add_number(obj, "intermediate_size", t->mlp_width);
    add_number(obj, "num_hidden_layers", t->layers);
    add_number(obj, "num_attention_heads", t->heads);
    add_string(obj, "hidden_act", act_kind_name(t->act));
    add_number(obj, "projection_dim", cfg->embed_dim);
    add_float(obj, "layer_norm_eps", 1e-5); /* CLIP_LN_EPS, written as the decimal, not the float */
    add_float(obj, "attention_dropout", 0.0);
    add_float(obj, "initializer_range", 0.02);
    add_float(obj, "initializer_factor", 1.0);
    return obj;
}

char *checkpoint_format_config(const ClipConfig *cfg) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = root ? cJSON_AddArrayToObject(root, "architectures") : NULL;
    if (!arch || !cJSON_AddItemToArray(arch, cJSON_CreateString("CLIPModel")))
        die("out of memory writing config.json");
    add_string(root, "model_type", "clip");
    add_string(root, "dtype", "float32");
    add_number(root, "projection_dim", cfg->embed_dim);
    add_float(root, "logit_scale_init_value", cfg->logit_scale_init);
    add_float(root, "initializer_factor", 1.0);

    cJSON *text = tower_json(&cfg->text, cfg, "clip_text_model");
    add_number(text, "vocab_size", cfg->vocab_size);
    add_number(text, "max_position_embeddings", cfg->context_length);
    /* HF pools at the first eos_token_id: make that our EOT, the last id */
    add_number(text, "eos_token_id", clip_eot_token(cfg));
    add_number(text, "bos_token_id", cfg->vocab_size - 2);
    add_number(text, "pad_token_id", 1);
    cJSON_AddItemToObject(root, "text_config", text);

    cJSON *vision = tower_json(&cfg->vision, cfg, "clip_vision_model");
    add_number(vision, "image_size", cfg->image_size);
    add_number(vision, "patch_size", cfg->patch_size);
    add_number(vision, "num_channels", 3);
    cJSON_AddItemToObject(root, "vision_config", vision);

    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    if (!json) die("out of memory writing config.json");
    /* cJSON allocates with malloc, so the caller's free() matches */
    return json;
}

int checkpoint_read_config(const char *dir, ClipConfig *cfg, char *err, size_t err_len) {
    char *path = path_join(dir, CHECKPOINT_CONFIG_FILE);
    size_t size = 0;
    char *text = read_file(path, &size);
    int rc = text ? checkpoint_parse_config(text, size, path, cfg, err, err_len)
                  : set_error_in(err, err_len, path, "cannot read: %s", strerror(errno));
    free(text);
    free(path);
    return rc;
}

/* ----------------------------------------------------------------------------
 * Weights */

int checkpoint_detect_naming(const SafeTensors *st, WeightNaming *naming, char *err,
                             size_t err_len) {
    int hf = st_find(st, "vision_model.embeddings.patch_embedding.weight") ||
             st_find(st, "text_model.embeddings.token_embedding.weight");
    int openai = st_find(st, "visual.conv1.weight") || st_find(st, "token_embedding.weight");
    if (hf == openai)
        return set_error_in(err, err_len, st->source,
                    hf ? "holds both HF CLIPModel and OpenAI names"
                       : "holds neither HF CLIPModel names (vision_model.embeddings.patch_"
                         "embedding.weight) nor OpenAI/open_clip names (visual.conv1.weight)");
    *naming = hf ? WEIGHTS_HF : WEIGHTS_OPENAI;
    return 0;
}

/* Where one layout tensor comes from in the file. */
typedef struct {
    const StTensor *tensor;
    int part;      /* -1: the whole tensor; 0, 1, 2: the q, k or v third of in_proj */
    int transpose; /* 1: the file holds [in, out] */
} Source;

/* HF name prefixes (ending in '.') or whole names, and their OpenAI spellings. */
static const struct {
    const char *hf, *openai;
    int transpose;
} openai_names[] = {
    {"vision_model.embeddings.class_embedding", "visual.class_embedding", 0},
    {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight", 0},
    {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding", 0},
    {"vision_model.pre_layrnorm.", "visual.ln_pre.", 0},
    {"vision_model.encoder.layers.", "visual.transformer.resblocks.", 0},
    {"vision_model.post_layernorm.", "visual.ln_post.", 0},
    {"visual_projection.weight", "visual.proj", 1},
    {"text_model.embeddings.token_embedding.weight", "token_embedding.weight", 0},
    {"text_model.embeddings.position_embedding.weight", "positional_embedding", 0},
    {"text_model.encoder.layers.", "transformer.resblocks.", 0},
    {"text_model.final_layer_norm.", "ln_final.", 0},
    {"text_projection.weight", "text_projection", 1},
    {"logit_scale", "logit_scale", 0},
};

/* Inside a block, after "layers.N.". q/k/v map to one in_proj tensor and a part of it. */
static const struct {
    const char *hf, *openai;
    int part;
} openai_block_names[] = {
    {"layer_norm1.", "ln_1.", -1},
    {"layer_norm2.", "ln_2.", -1},
    {"self_attn.q_proj.", "attn.in_proj_", 0},
    {"self_attn.k_proj.", "attn.in_proj_", 1},
    {"self_attn.v_proj.", "attn.in_proj_", 2},
    {"self_attn.out_proj.", "attn.out_proj.", -1},
    {"mlp.fc1.", "mlp.c_fc.", -1},
    {"mlp.fc2.", "mlp.c_proj.", -1},
};

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The OpenAI name of an HF parameter name. Returns 0, or -1 if the name has no mapping. */
static int openai_name(const char *hf, char *out, size_t out_len, int *part, int *transpose) {
    *part = -1;
    *transpose = 0;
    for (size_t i = 0; i < sizeof openai_names / sizeof openai_names[0]; i++) {
        const char *prefix = openai_names[i].hf;
        size_t plen = strlen(prefix);
        if (strncmp(hf, prefix, plen) != 0) continue;
        const char *rest = hf + plen;
        if (prefix[plen - 1] != '.' && *rest) continue; /* whole names must match exactly */
        *transpose = openai_names[i].transpose;
        if (!strstr(prefix, ".layers.")) {
            snprintf(out, out_len, "%s%s", openai_names[i].openai, rest);
            return 0;
        }
        const char *dot = strchr(rest, '.'); /* rest is "N.<block tensor>" */
        if (!dot) return -1;
        for (size_t j = 0; j < sizeof openai_block_names / sizeof openai_block_names[0]; j++) {
            if (!starts_with(dot + 1, openai_block_names[j].hf)) continue;
            snprintf(out, out_len, "%s%.*s%s%s", openai_names[i].openai, (int)(dot + 1 - rest),
                     rest, openai_block_names[j].openai,
                     dot + 1 + strlen(openai_block_names[j].hf));
            *part = openai_block_names[j].part;
            return 0;
        }
        return -1;
    }
    return -1;
}

/* Buffers and scalars a weights file may hold that are not parameters. */
static int skippable(const char *name, WeightNaming naming) {
    size_t len = strlen(name), suffix = strlen(".position_ids");
    if (len >= suffix && strcmp(name + len - suffix, ".position_ids") == 0) return 1;
    return naming == WEIGHTS_OPENAI &&
           (strcmp(name, "input_resolution") == 0 || strcmp(name, "context_length") == 0 ||
            strcmp(name, "vocab_size") == 0);
}

static int is_float_dtype(StDtype dtype) {
    return dtype == ST_F32 || dtype == ST_F16 || dtype == ST_BF16 || dtype == ST_F64;
}

/* Pass one: find and check the source of every layout tensor. */
static int resolve_sources(const SafeTensors *st, const ParamLayout *layout, WeightNaming naming,
                           const char *cfg_source, Source *sources, char *err, size_t err_len) {
    char *used = callocCheck((size_t)st->count + 1, 1);
    int rc = 0;
    for (int i = 0; i < layout->count && rc == 0; i++) {
        const ParamInfo *p = &layout->params[i];
        char name[2 * PARAM_NAME_MAX];
        Source *s = &sources[i];
        int64_t want[ST_MAX_DIMS];
        for (int d = 0; d < p->ndim; d++) want[d] = p->shape[d];
        s->part = -1;
        s->transpose = 0;
        if (naming == WEIGHTS_HF) {
            snprintf(name, sizeof name, "%s", p->name);
        } else if (openai_name(p->name, name, sizeof name, &s->part, &s->transpose) != 0) {
            rc =
                set_error_in(err, err_len, st->source, "no OpenAI name is known for parameter %s", p->name);
            break;
        }
        if (s->transpose) { /* the file holds [in, out] */
            want[0] = p->shape[1];
            want[1] = p->shape[0];
        }
        if (s->part >= 0) want[0] *= 3; /* q, k and v stacked */
        s->tensor = st_find(st, name);
        char want_str[160], got_str[160];
        st_format_shape(want_str, sizeof want_str, want, p->ndim);
        if (!s->tensor) {
            rc = set_error_in(err, err_len, st->source, "tensor %s is missing (%s implies shape %s)", name,
                      cfg_source, want_str);
            break;
        }
        const StTensor *t = s->tensor;
        st_format_shape(got_str, sizeof got_str, t->shape, t->ndim);
        if (t->ndim != p->ndim || memcmp(t->shape, want, (size_t)p->ndim * sizeof want[0]) != 0)
            rc = set_error_in(err, err_len, st->source, "tensor %s has shape %s, %s implies %s", name,
                      got_str, cfg_source, want_str);
        else if (!is_float_dtype(t->dtype))
            rc = set_error_in(err, err_len, st->source,
                      "tensor %s has dtype %s, expected F32, F16, BF16 or F64", name,
                      st_dtype_name(t->dtype));
        used[t - st->tensors] = 1;
    }
    for (int i = 0; i < st->count && rc == 0; i++)
        if (!used[i] && !skippable(st->tensors[i].name, naming))
            rc = set_error_in(err, err_len, st->source,
                      "unexpected tensor %s: %s describes no such parameter", st->tensors[i].name,
                      cfg_source);
    free(used);
    return rc;
}

/* Pass two: convert. Every check has passed, so reads cannot fail on a valid Source. */
static int copy_sources(const SafeTensors *st, const ParamLayout *layout, const Source *sources,
                        float *params, char *err, size_t err_len) {
    for (int i = 0; i < layout->count; i++) {
        const ParamInfo *p = &layout->params[i];
        const Source *s = &sources[i];
        float *dst = params + p->offset;
        if (s->transpose) {
            /* file [in, out] -> ours [out, in] */
            int rows_out = p->shape[0], cols_in = p->shape[1];
            float *tmp = mallocCheck(p->numel * sizeof(float));
            int rc = st_read_f32(st, s->tensor, tmp, err, err_len);
            for (int r = 0; rc == 0 && r < rows_out; r++)
                for (int c = 0; c < cols_in; c++)
                    dst[(size_t)r * cols_in + c] = tmp[(size_t)c * rows_out + r];
            free(tmp);
            if (rc) return rc;
        } else {
            size_t first = s->part >= 0 ? (size_t)s->part * p->numel : 0;
            if (st_read_f32_range(st, s->tensor, first, p->numel, dst, err, err_len) != 0)
                return -1;
        }
    }
    return 0;
}

int checkpoint_load_weights_st(const SafeTensors *st, const ClipConfig *cfg, const char *cfg_source,
                               float *params, char *err, size_t err_len) {
    WeightNaming naming;
    if (checkpoint_detect_naming(st, &naming, err, err_len) != 0) return -1;
    ParamLayout layout;
    param_layout_build(cfg, &layout);
    Source *sources = callocCheck((size_t)layout.count, sizeof *sources);
    int rc = resolve_sources(st, &layout, naming, cfg_source ? cfg_source : "the config", sources,
                             err, err_len);
    if (rc == 0) rc = copy_sources(st, &layout, sources, params, err, err_len);
    free(sources);
    param_layout_free(&layout);
    return rc;
}

int checkpoint_load_weights(const char *path, const ClipConfig *cfg, const char *cfg_source,
                            float *params, char *err, size_t err_len) {
    SafeTensors st;
    if (st_open(&st, path, err, err_len) != 0) return -1;
    int rc = checkpoint_load_weights_st(&st, cfg, cfg_source, params, err, err_len);
    st_close(&st);
    return rc;
}

/* A tensor that must exist with ndim dims, each fitting an int. */
static const StTensor *need_tensor(const SafeTensors *st, const char *name, int ndim, int *rc,
                                   char *err, size_t err_len) {
    const StTensor *t = st_find(st, name);
    if (!t) {
        *rc = set_error_in(err, err_len, st->source, "tensor %s is missing (needed to infer the config)",
                   name);
        return NULL;
    }
    char shape[160];
    st_format_shape(shape, sizeof shape, t->shape, t->ndim);
    int fits = t->ndim == ndim;
    for (int d = 0; d < t->ndim && fits; d++) fits = t->shape[d] <= 1000000000;
    if (!fits) {
        *rc = set_error_in(err, err_len, st->source, "tensor %s has shape %s, expected %d dimensions", name,
                   shape, ndim);
        return NULL;
    }
    return t;
}

/* Blocks are numbered from 0: count them by their first LayerNorm. */
static int count_blocks(const SafeTensors *st, const char *prefix) {
    int n = 0;
    char name[128];
    for (;; n++) {
        snprintf(name, sizeof name, "%s%d.ln_1.weight", prefix, n);
        if (!st_find(st, name)) return n;
    }
}

static int heads_for(const SafeTensors *st, const char *tower, int width, int *heads, char *err,
                     size_t err_len) {
    if (width % 64 != 0)
        return set_error_in(err, err_len, st->source,
                    "%s width %d is not a multiple of 64, so heads cannot be inferred (give the "
                    "config)",
                    tower, width);
    *heads = width / 64;
    return 0;
}

int checkpoint_infer_openai_config(const SafeTensors *st, ActKind act, ClipConfig *cfg, char *err,
                                   size_t err_len) {
    int rc = 0;
    const StTensor *conv = need_tensor(st, "visual.conv1.weight", 4, &rc, err, err_len);
    const StTensor *vpos =
        rc ? NULL : need_tensor(st, "visual.positional_embedding", 2, &rc, err, err_len);
    const StTensor *vfc = rc ? NULL
                             : need_tensor(st, "visual.transformer.resblocks.0.mlp.c_fc.weight", 2,
                                           &rc, err, err_len);
    const StTensor *tok =
        rc ? NULL : need_tensor(st, "token_embedding.weight", 2, &rc, err, err_len);
    const StTensor *tpos =
        rc ? NULL : need_tensor(st, "positional_embedding", 2, &rc, err, err_len);
    const StTensor *tfc =
        rc ? NULL
           : need_tensor(st, "transformer.resblocks.0.mlp.c_fc.weight", 2, &rc, err, err_len);
    const StTensor *tproj = rc ? NULL : need_tensor(st, "text_projection", 2, &rc, err, err_len);
    if (rc) return rc;
    ClipConfig c;
    memset(&c, 0, sizeof c);
    c.vision = (TowerConfig){(int)conv->shape[0], count_blocks(st, "visual.transformer.resblocks."),
                             0, (int)vfc->shape[0], act};
    c.patch_size = (int)conv->shape[2];
    int64_t patches = vpos->shape[0] - 1,
            grid = patches > 0 ? (int64_t)lround(sqrt((double)patches)) : 0;
    if (grid < 1 || grid * grid != patches || grid * c.patch_size > 1000000000)
        return set_error_in(err, err_len, st->source,
                    "visual.positional_embedding has %lld rows, expected a square grid of "
                    "patches plus one",
                    (long long)vpos->shape[0]);
    c.image_size = (int)grid * c.patch_size;
    c.text = (TowerConfig){(int)tok->shape[1], count_blocks(st, "transformer.resblocks."), 0,
                           (int)tfc->shape[0], act};
    c.vocab_size = (int)tok->shape[0];
    c.context_length = (int)tpos->shape[0];
    c.embed_dim = (int)tproj->shape[1];
    c.logit_scale_init = logf(1.0f / 0.07f);
    if (heads_for(st, "vision", c.vision.width, &c.vision.heads, err, err_len) ||
        heads_for(st, "text", c.text.width, &c.text.heads, err, err_len))
        return -1;
    char why[256];
    if (clip_config_validate(&c, why, sizeof why) != 0)
        return set_error_in(err, err_len, st->source, "inferred config is invalid: %s", why);
    *cfg = c;
    return 0;
}

int checkpoint_load_hf(const char *dir, ClipConfig *cfg, float **params, size_t *n_params,
                       char *err, size_t err_len) {
    *params = NULL;
    ClipConfig loaded;
    if (checkpoint_read_config(dir, &loaded, err, err_len) != 0) return -1;
    ParamLayout layout;
    param_layout_build(&loaded, &layout);
    size_t total = layout.total;
    param_layout_free(&layout);
    float *buf = mallocCheck(total * sizeof(float));
    char *weights = path_join(dir, CHECKPOINT_WEIGHTS_FILE);
    char *config = path_join(dir, CHECKPOINT_CONFIG_FILE);
    int rc = checkpoint_load_weights(weights, &loaded, config, buf, err, err_len);
    free(weights);
    free(config);
    if (rc) {
        free(buf);
        return -1;
    }
    *cfg = loaded;
    *params = buf;
    if (n_params) *n_params = total;
    return 0;
}

/* Removes DIR/config.json if it differs from json, so that the directory reads as
 * incomplete until the new config lands after the new weights. */
static int retire_stale_config(const char *dir, const char *config_path, const char *json,
                               char *err, size_t err_len) {
    size_t size;
    char *old = read_file(config_path, &size);
    int same = old && size == strlen(json) && memcmp(old, json, size) == 0;
    free(old);
    if (!old || same) return 0;
    if (unlink(config_path) != 0)
        return set_error_in(err, err_len, config_path, "cannot remove the old config: %s", strerror(errno));
    /* make the removal durable before new weights replace the old ones */
    int dir_fd = open(dir, O_RDONLY);
    if (dir_fd >= 0) {
        fsync(dir_fd);
        close(dir_fd);
    }
    return 0;
}

int checkpoint_save_hf(const char *dir, const ClipConfig *cfg, const float *params, char *err,
                       size_t err_len) {
    char why[256];
    if (clip_config_validate(cfg, why, sizeof why) != 0)
        return set_error_in(err, err_len, dir, "refusing to save an invalid config: %s", why);
    if (make_dirs(dir, err, err_len) != 0) return -1;
    ParamLayout layout;
    param_layout_build(cfg, &layout);
    StWriteTensor *tensors = callocCheck((size_t)layout.count, sizeof *tensors);
    for (int i = 0; i < layout.count; i++) {
        const ParamInfo *p = &layout.params[i];
        tensors[i].name = p->name;
        tensors[i].dtype = ST_F32;
        tensors[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) tensors[i].shape[d] = p->shape[d];
        tensors[i].data = params + p->offset;
    }
    /* transformers refuses safetensors files whose metadata lacks format=pt */
    const char *meta_key = "format", *meta_value = "pt";
    char *json = checkpoint_format_config(cfg);
    char *weights_path = path_join(dir, CHECKPOINT_WEIGHTS_FILE);
    char *config_path = path_join(dir, CHECKPOINT_CONFIG_FILE);
    int rc = retire_stale_config(dir, config_path, json, err, err_len);
    if (rc == 0)
        rc = st_write(weights_path, tensors, layout.count, &meta_key, &meta_value, 1, err, err_len);
    if (rc == 0 && write_file_atomic(config_path, json, strlen(json)) != 0)
        rc = set_error_in(err, err_len, config_path, "cannot write: %s", strerror(errno));
    free(config_path);
    free(weights_path);
    free(json);
    free(tensors);
    param_layout_free(&layout);
    return rc;
}

int checkpoint_is_complete(const char *dir) {
    char *config = path_join(dir, CHECKPOINT_CONFIG_FILE);
    char *weights = path_join(dir, CHECKPOINT_WEIGHTS_FILE);
    int complete = access(config, R_OK) == 0 && access(weights, R_OK) == 0;
    free(config);
    free(weights);
    return complete;
}

/* ----------------------------------------------------------------------------
 * Trainer state */

static const char *const moment_names[2] = {"adam_m", "adam_v"};

int checkpoint_save_state(const char *dir, const float *m, const float *v, size_t n,
                          const char *const *keys, const char *const *values, int n_meta, char *err,
                          size_t err_len) {
    if (make_dirs(dir, err, err_len) != 0) return -1;
    const float *moments[2] = {m, v};
    StWriteTensor tensors[2];
    for (int i = 0; i < 2; i++)
        tensors[i] = (StWriteTensor){moment_names[i], ST_F32, 1, {(int64_t)n}, moments[i]};
    char *path = path_join(dir, CHECKPOINT_STATE_FILE);
    int rc = st_write(path, tensors, 2, keys, values, n_meta, err, err_len);
    free(path);
    return rc;
}

int checkpoint_load_state(const char *dir, float *m, float *v, size_t n, CheckpointMeta *meta,
                          char *err, size_t err_len) {
    char *path = path_join(dir, CHECKPOINT_STATE_FILE);
    SafeTensors st;
    int rc = st_open(&st, path, err, err_len);
    free(path);
    if (rc) return -1;
    const StTensor *found[2] = {NULL, NULL};
    for (int i = 0; i < 2 && rc == 0; i++) {
        found[i] = st_find(&st, moment_names[i]);
        if (!found[i]) {
            rc = set_error_in(err, err_len, st.source, "tensor %s is missing", moment_names[i]);
        } else if (found[i]->ndim != 1 || found[i]->numel != n ||
                   !is_float_dtype(found[i]->dtype)) {
            char shape[160];
            st_format_shape(shape, sizeof shape, found[i]->shape, found[i]->ndim);
            rc = set_error_in(err, err_len, st.source,
                      "tensor %s is %s %s, the model implies a float vector [%zu]", moment_names[i],
                      st_dtype_name(found[i]->dtype), shape, n);
        }
    }
    if (rc == 0) rc = st_read_f32(&st, found[0], m, err, err_len);
    if (rc == 0) rc = st_read_f32(&st, found[1], v, err, err_len);
    if (rc == 0 && meta) {
        meta->count = st.meta_count;
        meta->keys = mallocCheck((size_t)(st.meta_count ? st.meta_count : 1) * sizeof(char *));
        meta->values = mallocCheck((size_t)(st.meta_count ? st.meta_count : 1) * sizeof(char *));
        for (int i = 0; i < st.meta_count; i++) {
            meta->keys[i] = strdupCheck(st.meta_keys[i]);
            meta->values[i] = strdupCheck(st.meta_values[i]);
        }
    }
    st_close(&st);
    return rc;
}

const char *checkpoint_meta_get(const CheckpointMeta *meta, const char *key) {
    for (int i = 0; i < meta->count; i++)
        if (strcmp(meta->keys[i], key) == 0) return meta->values[i];
    return NULL;
}

void checkpoint_meta_free(CheckpointMeta *meta) {
    for (int i = 0; i < meta->count; i++) {
        free(meta->keys[i]);
        free(meta->values[i]);
    }
    free(meta->keys);
    free(meta->values);
    memset(meta, 0, sizeof *meta);
}
