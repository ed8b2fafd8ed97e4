/*
 * test_checkpoint.c: config.json (parse, format, every refusal) and model weights: HF
 * directories in F32/F16/BF16, missing, extra and mistyped tensors, OpenAI / open_clip names
 * with their q/k/v split and transposes, config inference from OpenAI shapes, and files that
 * Python wrote. The trainer state and failed saves are in test_checkpoint_save.c.
 *
 * Every bad input must give -1 and a message naming the file and the tensor or field, with
 * expected and found values; the tests check those words, not just the status. The model is
 * the tests' small CLIP (small_model.h). Files live in a mkdtemp directory that is removed at
 * the end; values are random from a seeded generator and output buffers are NaN-poisoned
 * first, so "bit-exact" means something.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_helpers.h" // defines: err, CHECK_FAILS, fill_random, poison, random_params, ...
#include "engine/model.h"       // defines: ParamLayout, param_layout_build, param_layout_find
#include "harness.h"            // defines: RUN_TEST, CHECK, test_summary
#include "io/checkpoint.h"      // defines: checkpoint_*
#include "io/safetensors.h"     // defines: st_*
#include "scratch.h"            // defines: scratch_make, tmp_path, scratch_remove
#include "small_model.h"        // defines: small_config
#include "util/common.h"        // defines: mallocCheck, callocCheck, read_file
#include "util/rng.h"           // defines: Rng, rng_seed, rng_next, rng_below

/* Rewrites one field of DIR/config.json (a JSON value given as text; NULL deletes it). */
static void edit_config(const char *dir, const char *section, const char *key, const char *value) {
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_file(path, NULL);
    cJSON *root = cJSON_Parse(text);
    cJSON *obj = section ? cJSON_GetObjectItem(root, section) : root;
    cJSON_DeleteItemFromObject(obj, key);
    if (value) cJSON_AddItemToObject(obj, key, cJSON_Parse(value));
    char *out = cJSON_Print(root);
    write_bytes(path, out, strlen(out));
    free(out);
    cJSON_Delete(root);
    free(text);
}

/* ----------------------------------------------------------------------------
 * config.json */

static void test_config_roundtrip(void) {
    ClipConfig want = small_config(), got;
    want.logit_scale_init = 2.5f;
    char *json = checkpoint_format_config(&want);
    memset(&got, 0xff, sizeof got);
    CHECK(checkpoint_parse_config(json, strlen(json), "config.json", &got, err, sizeof err) == 0,
          "%s", err);
    CHECK(memcmp(&got, &want, sizeof want) == 0, "config changed in the round trip");
    cJSON *root = cJSON_Parse(json);
    cJSON *text = cJSON_GetObjectItem(root, "text_config");
    CHECK(cJSON_GetObjectItem(text, "eos_token_id")->valueint == 63, "eos_token_id");
    CHECK(strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "architectures"), 0)->valuestring,
                 "CLIPModel") == 0,
          "architectures");
    cJSON_Delete(root);
    /* transformers refuses an int where its config declares a float: 1.0, never 1 */
    const char *floats[] = {"logit_scale_init_value", "initializer_factor", "layer_norm_eps",
                            "attention_dropout", "initializer_range"};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", floats[i]);
        for (const char *at = strstr(json, key); at; at = strstr(at + 1, key)) {
            at += strlen(key);
            size_t len = strcspn(at, ",\n}");
            CHECK(memchr(at, '.', len) || memchr(at, 'e', len), "%s written as %.*s", floats[i],
                  (int)len, at);
        }
    }
    free(json);
}

static void test_config_bad(void) {
    const char *dir = tmp_path("cfg");
    ClipConfig cfg = small_config(), got;
    CHECK_FAILS(checkpoint_read_config(dir, &got, err, sizeof err), "cfg/config.json: cannot read",
                "No such file");
    mkdir(dir, 0755);
    char *json = checkpoint_format_config(&cfg);
    struct {
        const char *section, *key, *value; /* value NULL: delete the field */
        const char *expect[2];
    } cases[] = {
        {"text_config", "hidden_size", NULL, {"text_config.hidden_size is missing"}},
        {"vision_config",
         "patch_size",
         "\"8\"",
         {"vision_config.patch_size must be a positive integer", "found a string"}},
        {"vision_config", "num_hidden_layers", "0", {"vision_config.num_hidden_layers", "found 0"}},
        {"text_config",
         "num_attention_heads",
         "2.5",
         {"text_config.num_attention_heads", "found 2.5"}},
        {"text_config",
         "hidden_act",
         "\"relu\"",
         {"text_config.hidden_act is \"relu\"", "quick_gelu"}},
        {"text_config",
         "hidden_act",
         "1",
         {"text_config.hidden_act must be a string", "found a number"}},
        {NULL, "text_config", "[]", {"text_config must be an object", "found an array"}},
        {NULL, "projection_dim", NULL, {"projection_dim is missing"}},
        {NULL, "model_type", "\"siglip\"", {"model_type is \"siglip\", expected \"clip\""}},
        {"vision_config",
         "layer_norm_eps",
         "1e-6",
         {"vision_config.layer_norm_eps is 1e-06", "1e-05"}},
        {"text_config", "eos_token_id", "49407", {"eos_token_id is 49407", "expected 63"}},
        {"vision_config", "num_channels", "1", {"num_channels is 1, expected 3"}},
        {"vision_config", "image_size", "18", {"image size 18", "patch size 4"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[600];
        snprintf(path, sizeof path, "%s/config.json", dir);
        write_bytes(path, json, strlen(json));
        edit_config(dir, cases[c].section, cases[c].key, cases[c].value);
        err[0] = '\0';
        int rc = checkpoint_read_config(dir, &got, err, sizeof err);
        CHECK_FAILS(rc, "cfg/config.json: ");
        for (int e = 0; e < 2 && cases[c].expect[e]; e++)
            CHECK(strstr(err, cases[c].expect[e]) != NULL, "case %zu: \"%s\" lacks \"%s\"", c, err,
                  cases[c].expect[e]);
    }
    const char *bad_json = "{\"text_config\": {\"hidden_size\": 64,";
    CHECK_FAILS(
        checkpoint_parse_config(bad_json, strlen(bad_json), "x/config.json", &got, err, sizeof err),
        "x/config.json: not valid JSON");
    CHECK_FAILS(checkpoint_parse_config("42", 2, "x/config.json", &got, err, sizeof err),
                "the top level is a number");
    free(json);
}

/* ----------------------------------------------------------------------------
 * Weights */

static void test_hf_roundtrip(void) {
    ClipConfig cfg, got_cfg;
    clip_config_preset("tiny", &cfg);
    size_t n;
    float *params = random_params(&cfg, &n, 42);
    const char *dir = tmp_path("runs/exp/hf_tiny"); /* parents are created too */
    CHECK(checkpoint_save_hf(dir, &cfg, params, err, sizeof err) == 0, "%s", err);
    CHECK(checkpoint_is_complete(dir), "checkpoint incomplete after save");
    float *got = NULL;
    size_t got_n = 0;
    CHECK(checkpoint_load_hf(dir, &got_cfg, &got, &got_n, err, sizeof err) == 0, "%s", err);
    CHECK(got_n == n, "loaded %zu floats, saved %zu", got_n, n);
    CHECK(got && memcmp(got, params, n * sizeof(float)) == 0, "weights not bit-exact");
    CHECK(memcmp(&got_cfg, &cfg, sizeof cfg) == 0, "config changed");
    char weights[600];
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    SafeTensors st;
    CHECK(st_open(&st, weights, err, sizeof err) == 0, "%s", err);
    CHECK(st_meta(&st, "format") && strcmp(st_meta(&st, "format"), "pt") == 0,
          "format=pt metadata");
    const StTensor *scale = st_find(&st, "logit_scale");
    CHECK(scale && scale->ndim == 0, "logit_scale is not a scalar");
    st_close(&st);
    CHECK(count_files(dir) == 2, "%d files in the checkpoint, expected 2 (temp files left?)",
          count_files(dir));
    free(got);
    free(params);
}

/* binary16 with a random sign, normal exponent and mantissa, and its value computed apart
 * from the reader's conversion */
static uint16_t random_f16(Rng *rng, float *value) {
    uint16_t sign = (uint16_t)(rng_next(rng) & 1), exponent = (uint16_t)(5 + rng_below(rng, 20));
    uint16_t mantissa = (uint16_t)rng_below(rng, 1024);
    *value = (sign ? -1.0f : 1.0f) * ldexpf((float)(1024 + mantissa), exponent - 25);
    return (uint16_t)(sign << 15 | exponent << 10 | mantissa);
}

/* An HF file whose tensors cycle through F32, F16 and BF16, with a position_ids buffer. */
static void test_hf_half_precision(void) {
    ClipConfig cfg = small_config();
    ParamLayout layout;
    param_layout_build(&cfg, &layout);
    float *want = mallocCheck(layout.total * sizeof(float));
    uint16_t *halves = mallocCheck(layout.total * sizeof(uint16_t));
    StWriteTensor *tensors = callocCheck((size_t)layout.count + 1, sizeof *tensors);
    Rng rng;
    rng_seed(&rng, 7);
    fill_random(want, layout.total, 8);
    for (int i = 0; i < layout.count; i++) {
        const ParamInfo *p = &layout.params[i];
        StDtype dtype = i % 3 == 0 ? ST_F32 : i % 3 == 1 ? ST_F16 : ST_BF16;
        for (size_t j = 0; j < p->numel; j++) {
            float *w = &want[p->offset + j];
            uint32_t bits;
            memcpy(&bits, w, 4);
            if (dtype == ST_F16) halves[p->offset + j] = random_f16(&rng, w);
            if (dtype == ST_BF16) { /* keep the top half; the value loses its low bits */
                halves[p->offset + j] = (uint16_t)(bits >> 16);
                bits &= 0xffff0000u;
                memcpy(w, &bits, 4);
            }
        }
        tensors[i] = (StWriteTensor){p->name,
                                     dtype,
                                     p->ndim,
                                     {0},
                                     dtype == ST_F32 ? (const void *)(want + p->offset)
                                                     : (const void *)(halves + p->offset)};
        for (int d = 0; d < p->ndim; d++) tensors[i].shape[d] = p->shape[d];
    }
    int64_t position_ids[12]; /* context_length of the small config */
    for (int i = 0; i < 12; i++) position_ids[i] = i;
    tensors[layout.count] =
        (StWriteTensor){"text_model.embeddings.position_ids", ST_I64, 2, {1, 12}, position_ids};
    const char *path = tmp_path("half.safetensors");
    CHECK(st_write(path, tensors, layout.count + 1, NULL, NULL, 0, err, sizeof err) == 0, "%s",
          err);
    float *got = mallocCheck(layout.total * sizeof(float));
    poison(got, layout.total);
    CHECK(checkpoint_load_weights(path, &cfg, "the small config", got, err, sizeof err) == 0, "%s",
          err);
    CHECK(memcmp(got, want, layout.total * sizeof(float)) == 0, "F16/BF16 weights not exact");
    free(got);
    free(tensors);
    free(halves);
    free(want);
    param_layout_free(&layout);
}

/* Saves a small checkpoint with one tensor left out, renamed, retyped or added. */
static void write_hf_variant(const char *dir, const ClipConfig *cfg, const float *params,
                             const char *drop, const char *extra, StDtype logit_dtype) {
    CHECK(checkpoint_save_hf(dir, cfg, params, err, sizeof err) == 0, "%s", err);
    ParamLayout layout;
    param_layout_build(cfg, &layout);
    StWriteTensor *tensors = callocCheck((size_t)layout.count + 1, sizeof *tensors);
    int n = 0;
    int32_t int_scale = 3;
    for (int i = 0; i < layout.count; i++) {
        const ParamInfo *p = &layout.params[i];
        if (drop && strcmp(p->name, drop) == 0) continue;
        int is_scale = strcmp(p->name, "logit_scale") == 0;
        tensors[n] =
            (StWriteTensor){p->name,
                            is_scale ? logit_dtype : ST_F32,
                            p->ndim,
                            {0},
                            is_scale && logit_dtype == ST_I32 ? (const void *)&int_scale
                                                              : (const void *)(params + p->offset)};
        for (int d = 0; d < p->ndim; d++) tensors[n].shape[d] = p->shape[d];
        n++;
    }
    if (extra) tensors[n++] = (StWriteTensor){extra, ST_F32, 1, {1}, params};
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(st_write(path, tensors, n, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    free(tensors);
    param_layout_free(&layout);
}

static void test_hf_bad_weights(void) {
    ClipConfig cfg = small_config(), got_cfg;
    size_t n;
    float *params = random_params(&cfg, &n, 3);
    float *got = NULL;
    const char *dir = tmp_path("bad_hf");

    write_hf_variant(dir, &cfg, params, "text_model.final_layer_norm.bias", NULL, ST_F32);
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "bad_hf/model.safetensors: tensor text_model.final_layer_norm.bias is missing",
                "bad_hf/config.json implies shape [32]");
    CHECK(got == NULL, "params returned after a failure");

    write_hf_variant(dir, &cfg, params, NULL, "text_model.encoder.layers.7.mlp.fc1.bias", ST_F32);
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "unexpected tensor text_model.encoder.layers.7.mlp.fc1.bias");

    write_hf_variant(dir, &cfg, params, NULL, NULL, ST_I32);
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "tensor logit_scale has dtype I32", "expected F32");

    /* the weights are right; config.json now says a shorter text context */
    write_hf_variant(dir, &cfg, params, NULL, NULL, ST_F32);
    edit_config(dir, "text_config", "max_position_embeddings", "10");
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "bad_hf/model.safetensors: tensor text_model.embeddings.position_embedding.weight "
                "has shape [12, 32], ",
                "bad_hf/config.json implies [10, 32]");

    /* loading into the caller's buffer: a failure leaves it untouched */
    ClipConfig wider = cfg;
    wider.text.width = 48;
    ParamLayout layout;
    param_layout_build(&wider, &layout);
    float *buf = mallocCheck(layout.total * sizeof(float));
    poison(buf, layout.total);
    char weights[600];
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    CHECK_FAILS(checkpoint_load_weights(weights, &wider, "preset wide", buf, err, sizeof err),
                "has shape [64, 32], preset wide implies [64, 48]");
    CHECK(all_nan(buf, layout.total), "a failed load wrote into the buffer");
    free(buf);
    param_layout_free(&layout);

    char config[600];
    snprintf(config, sizeof config, "%s/config.json", dir);
    unlink(config);
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "bad_hf/config.json: cannot read");
    CHECK(!checkpoint_is_complete(dir), "complete without config.json");

    /* a file with no CLIP names at all */
    float x = 1;
    StWriteTensor other = {"encoder.weight", ST_F32, 1, {1}, &x};
    const char *path = tmp_path("other.safetensors");
    CHECK(st_write(path, &other, 1, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    CHECK_FAILS(checkpoint_load_weights(path, &cfg, NULL, params, err, sizeof err),
                "other.safetensors: holds neither");
    free(params);
}

/* OpenAI names for an HF-layout model, built by hand: in_proj stacks q, k, v (copied here
 * explicitly, not relying on our layout keeping them adjacent), projections transposed.
 * OpenAI files record no head count and inference assumes 64 channels per head, so the
 * small model's towers are widened to 64 per head (vision 128, text 256) for this test. */
static void test_openai_mapping(void) {
    ClipConfig cfg = small_config();
    cfg.vision.width = 64 * cfg.vision.heads;
    cfg.text.width = 64 * cfg.text.heads;
    size_t n;
    float *params = random_params(&cfg, &n, 11);
    ParamLayout layout;
    param_layout_build(&cfg, &layout);
    const int max_tensors = 2 * layout.count;
    StWriteTensor *tensors = callocCheck((size_t)max_tensors, sizeof *tensors);
    char(*names)[128] = callocCheck((size_t)max_tensors, 128);
    float *scratch = mallocCheck(2 * n * sizeof(float)); /* stacked and transposed copies */
    size_t used = 0;
    int count = 0;
#define P(name) (param_layout_find(&layout, name))
#define ADD(src_name, ndim_, d0, d1, d2, d3, data_)                                                \
    do {                                                                                           \
        snprintf(names[count], 128, "%s", src_name);                                               \
        tensors[count] = (StWriteTensor){names[count], ST_F32, ndim_, {d0, d1, d2, d3}, data_};    \
        count++;                                                                                   \
    } while (0)
    const char *towers[2][2] = {{"vision_model", "visual.transformer"},
                                {"text_model", "transformer"}};
    const TowerConfig *tcs[2] = {&cfg.vision, &cfg.text};
    for (int t = 0; t < 2; t++) {
        int C = tcs[t]->width;
        for (int l = 0; l < tcs[t]->layers; l++) {
            char hf[128], oa[128];
            const char *kinds[2] = {"weight", "bias"};
            for (int k = 0; k < 2; k++) { /* in_proj_{weight,bias}: q | k | v */
                size_t part = k == 0 ? (size_t)C * C : (size_t)C;
                float *stacked = scratch + used;
                const char *qkv = "qkv";
                for (int j = 0; j < 3; j++) {
                    snprintf(hf, sizeof hf, "%s.encoder.layers.%d.self_attn.%c_proj.%s",
                             towers[t][0], l, qkv[j], kinds[k]);
                    memcpy(stacked + j * part, params + P(hf)->offset, part * sizeof(float));
                }
                used += 3 * part;
                snprintf(oa, sizeof oa, "%s.resblocks.%d.attn.in_proj_%s", towers[t][1], l,
                         kinds[k]);
                if (k == 0)
                    ADD(oa, 2, 3 * C, C, 0, 0, stacked);
                else
                    ADD(oa, 1, 3 * C, 0, 0, 0, stacked);
            }
            const char *pairs[][2] = {{"self_attn.out_proj", "attn.out_proj"},
                                      {"layer_norm1", "ln_1"},
                                      {"layer_norm2", "ln_2"},
                                      {"mlp.fc1", "mlp.c_fc"},
                                      {"mlp.fc2", "mlp.c_proj"}};
            for (int q = 0; q < 5; q++)
                for (int k = 0; k < 2; k++) {
                    snprintf(hf, sizeof hf, "%s.encoder.layers.%d.%s.%s", towers[t][0], l,
                             pairs[q][0], kinds[k]);
                    snprintf(oa, sizeof oa, "%s.resblocks.%d.%s.%s", towers[t][1], l, pairs[q][1],
                             kinds[k]);
                    const ParamInfo *p = P(hf);
                    ADD(oa, p->ndim, p->shape[0], p->ndim > 1 ? p->shape[1] : 0, 0, 0,
                        params + p->offset);
                }
        }
    }
    const char *same[][2] = {
        {"vision_model.embeddings.class_embedding", "visual.class_embedding"},
        {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
        {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
        {"vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"},
        {"vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"},
        {"vision_model.post_layernorm.weight", "visual.ln_post.weight"},
        {"vision_model.post_layernorm.bias", "visual.ln_post.bias"},
        {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
        {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
        {"text_model.final_layer_norm.weight", "ln_final.weight"},
        {"text_model.final_layer_norm.bias", "ln_final.bias"},
        {"logit_scale", "logit_scale"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const ParamInfo *p = P(same[i][0]);
        ADD(same[i][1], p->ndim, p->ndim > 0 ? p->shape[0] : 0, p->ndim > 1 ? p->shape[1] : 0,
            p->ndim > 2 ? p->shape[2] : 0, p->ndim > 3 ? p->shape[3] : 0, params + p->offset);
    }
    const char *proj[][2] = {{"visual_projection.weight", "visual.proj"},
                             {"text_projection.weight", "text_projection"}};
    for (int i = 0; i < 2; i++) { /* HF [out, in] -> OpenAI [in, out] */
        const ParamInfo *p = P(proj[i][0]);
        int out = p->shape[0], in = p->shape[1];
        float *transposed = scratch + used;
        for (int r = 0; r < out; r++)
            for (int c = 0; c < in; c++)
                transposed[(size_t)c * out + r] = params[p->offset + (size_t)r * in + c];
        used += p->numel;
        ADD(proj[i][1], 2, in, out, 0, 0, transposed);
    }
    int64_t resolution = cfg.image_size; /* OpenAI state dicts carry these scalars */
    ADD("input_resolution", 0, 0, 0, 0, 0, &resolution);
    tensors[count - 1].dtype = ST_I64;
#undef ADD
#undef P
    const char *path = tmp_path("openai.safetensors");
    CHECK(st_write(path, tensors, count, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);

    SafeTensors st;
    CHECK(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    WeightNaming naming = WEIGHTS_HF;
    CHECK(checkpoint_detect_naming(&st, &naming, err, sizeof err) == 0 && naming == WEIGHTS_OPENAI,
          "naming not detected as OpenAI: %s", err);
    float *got = mallocCheck(n * sizeof(float));
    poison(got, n);
    CHECK(checkpoint_load_weights_st(&st, &cfg, "small", got, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(got, params, n * sizeof(float)) == 0, "OpenAI mapping not exact");

    /* inference recovers everything but the activation, which the caller names */
    ClipConfig inferred, want = cfg;
    CHECK(checkpoint_infer_openai_config(&st, ACT_GELU, &inferred, err, sizeof err) == 0, "%s",
          err);
    want.vision.act = want.text.act = ACT_GELU;
    want.logit_scale_init = logf(1.0f / 0.07f);
    CHECK(memcmp(&inferred, &want, sizeof want) == 0,
          "inferred vision %d/%d/%d/%d text %d/%d/%d/%d image %d patch %d vocab %d ctx %d dim %d",
          inferred.vision.width, inferred.vision.layers, inferred.vision.heads,
          inferred.vision.mlp_width, inferred.text.width, inferred.text.layers, inferred.text.heads,
          inferred.text.mlp_width, inferred.image_size, inferred.patch_size, inferred.vocab_size,
          inferred.context_length, inferred.embed_dim);

    /* a config with the projection the other way round must be caught by shape */
    ClipConfig other = cfg;
    other.embed_dim = 64;
    CHECK_FAILS(
        checkpoint_load_weights_st(&st, &other, "preset x", got, err, sizeof err),
        "openai.safetensors: tensor visual.proj has shape [128, 16], preset x implies [128, 64]");
    st_close(&st);
    free(got);
    free(scratch);
    free(names);
    free(tensors);
    param_layout_free(&layout);
    free(params);
}

/* Files written by Python (tests/ref/make_fixtures.py): transformers' save_pretrained
 * directory and open_clip-named weights of the same model must load to the same buffer. */
static void test_python_written_files(void) {
    const char *dir = "tests/fixtures/parity/model";
    ClipConfig cfg;
    float *hf = NULL;
    size_t n = 0;
    CHECK(checkpoint_load_hf(dir, &cfg, &hf, &n, err, sizeof err) == 0,
          "%s (run from the repository root; fixtures come from make fixtures)", err);
    if (!hf) return;
    CHECK(cfg.vision.act == ACT_QUICK_GELU && cfg.text.act == ACT_GELU && cfg.vocab_size == 512 &&
              cfg.embed_dim == 24,
          "fixture config read wrongly");
    float *openai = mallocCheck(n * sizeof(float));
    poison(openai, n);
    CHECK(checkpoint_load_weights("tests/fixtures/parity/openai_names.safetensors", &cfg,
                                  "the fixture's config.json", openai, err, sizeof err) == 0,
          "%s", err);
    CHECK(memcmp(openai, hf, n * sizeof(float)) == 0,
          "OpenAI-named fixture differs from the HF one");
    free(openai);
    free(hf);
}

int main(void) {
    scratch_make("test_checkpoint");
    RUN_TEST(test_config_roundtrip);
    RUN_TEST(test_config_bad);
    RUN_TEST(test_hf_roundtrip);
    RUN_TEST(test_hf_half_precision);
    RUN_TEST(test_hf_bad_weights);
    RUN_TEST(test_openai_mapping);
    RUN_TEST(test_python_written_files);
    scratch_remove();
    return test_summary();
}
