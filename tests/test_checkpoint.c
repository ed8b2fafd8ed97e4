/*
 * test_checkpoint.c: safetensors parsing and writing, config.json, HF and OpenAI weight
 * loading, the trainer-state sidecar, and what a failed save leaves behind.
 *
 * Every bad input must give -1 and a message naming the file and the tensor or field, with
 * expected and found values; the tests check those words, not just the status. Files live
 * in a mkdtemp directory that is removed at the end. Values are random from a seeded
 * generator and output buffers are NaN-poisoned first, so "bit-exact" means something.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"  // defines: checkpoint_*, CheckpointMeta
#include "util/common.h"      // defines: mallocCheck, read_file, write_file_atomic
#include "harness.h"     // defines: RUN_TEST, CHECK, test_summary
#include "engine/model.h"       // defines: ParamLayout, param_layout_build
#include "util/rng.h"         // defines: Rng, rng_seed, rng_normal
#include "io/safetensors.h" // defines: st_*
#include "scratch.h"     // defines: scratch_make, tmp_path, scratch_remove

static char err[1024];

/* ----------------------------------------------------------------------------
 * Helpers */

static void fill_random(float *x, size_t n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&rng);
}

static void poison(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static int all_nan(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) return 0;
    return 1;
}

/* rc must be -1 and err must contain every given fragment. */
#define CHECK_FAILS(rc, ...)                                                                       \
    do {                                                                                           \
        const char *fragments_[] = {__VA_ARGS__};                                                  \
        int rc_ = (rc);                                                                            \
        CHECK(rc_ == -1, "expected failure, got %d", rc_);                                         \
        for (size_t f_ = 0; f_ < sizeof fragments_ / sizeof fragments_[0]; f_++)                   \
            CHECK(strstr(err, fragments_[f_]) != NULL, "message \"%s\" lacks \"%s\"", err,         \
                  fragments_[f_]);                                                                 \
    } while (0)

/* A small config with every dimension distinct, so a transposed or misplaced tensor cannot
 * match by accident, and heads = width / 64 so OpenAI config inference can recover it. */
static ClipConfig micro_config(void) {
    ClipConfig c;
    clip_config_preset("tiny", &c);
    c.vision = (TowerConfig){128, 2, 2, 320, ACT_QUICK_GELU};
    c.image_size = 32;
    c.patch_size = 8;
    c.text = (TowerConfig){64, 3, 1, 192, ACT_GELU};
    c.vocab_size = 1000;
    c.context_length = 16;
    c.embed_dim = 48;
    return c;
}

static float *random_params(const ClipConfig *cfg, size_t *n, uint64_t seed) {
    ParamLayout layout;
    param_layout_build(cfg, &layout);
    *n = layout.total;
    param_layout_free(&layout);
    float *p = mallocCheck(*n * sizeof(float));
    fill_random(p, *n, seed);
    return p;
}

/* A safetensors file from a literal header (padded to 8) and data bytes. */
static uint8_t *make_file(const char *header, const void *data, size_t data_len, size_t *size) {
    size_t n = strlen(header), padded = (n + 7) & ~(size_t)7;
    *size = 8 + padded + data_len;
    uint8_t *buf = mallocCheck(*size);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, ' ', padded - n);
    if (data_len) memcpy(buf + 8 + padded, data, data_len);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    if (write_file_atomic(path, data, n) != 0) die("cannot write %s: %s", path, strerror(errno));
}

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

/* Entries in a directory, so a test can see that no temp file was left behind. */
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* ----------------------------------------------------------------------------
 * safetensors */

static void test_st_roundtrip(void) {
    float a[12], scalar[1], empty[1];
    fill_random(a, 12, 1);
    fill_random(scalar, 1, 2);
    int64_t ids64[5] = {0, -7, 49407, 2147483647, -2147483647 - 1};
    int32_t ids32[4] = {3, -1, 1 << 30, 5};
    StWriteTensor tensors[] = {
        {"z.first", ST_F32, 2, {3, 4}, a},   {"a.scalar", ST_F32, 0, {0}, scalar},
        {"ids64", ST_I64, 1, {5}, ids64},    {"ids32", ST_I32, 2, {2, 2}, ids32},
        {"empty", ST_F32, 2, {0, 3}, empty},
    };
    const char *keys[] = {"step", "note"}, *values[] = {"1234", "quote \" and \\ and \xc3\xa9"};
    const char *path = tmp_path("roundtrip.safetensors");
    CHECK(st_write(path, tensors, 5, keys, values, 2, err, sizeof err) == 0, "%s", err);

    SafeTensors st;
    CHECK(st_open(&st, path, err, sizeof err) == 0, "%s", err);
    size_t size;
    char *raw = read_file(path, &size);
    uint64_t header_len = 0;
    memcpy(&header_len, raw, 8);
    CHECK(header_len % 8 == 0 && raw[8] == '{', "header length %llu",
          (unsigned long long)header_len);
    free(raw);
    CHECK(st.count == 5, "count %d", st.count);
    for (int i = 0; i < st.count && i < 5; i++) /* kept in the given order */
        CHECK(strcmp(st.tensors[i].name, tensors[i].name) == 0, "tensor %d is %s", i,
              st.tensors[i].name);
    CHECK(st.data_size == 48 + 4 + 40 + 16, "data size %zu", st.data_size);
    const StTensor *t = st_find(&st, "z.first");
    float got[12];
    poison(got, 12);
    CHECK(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4 && t->dtype == ST_F32,
          "z.first");
    CHECK(t && st_read_f32(&st, t, got, err, sizeof err) == 0 && memcmp(got, a, sizeof a) == 0,
          "F32 not bit-exact: %s", err);
    t = st_find(&st, "a.scalar");
    poison(got, 1);
    CHECK(t && t->ndim == 0 && t->numel == 1, "scalar shape");
    CHECK(t && st_read_f32(&st, t, got, err, sizeof err) == 0 && got[0] == scalar[0], "scalar");
    t = st_find(&st, "empty");
    CHECK(t && t->numel == 0 && t->begin == t->end, "empty tensor");
    int32_t ints[5] = {0};
    t = st_find(&st, "ids64");
    CHECK(t && st_read_i32(&st, t, ints, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 5; i++) CHECK(ints[i] == ids64[i], "ids64[%d] = %d", i, ints[i]);
    t = st_find(&st, "ids32");
    CHECK(t && st_read_i32(&st, t, ints, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 4; i++) CHECK(ints[i] == ids32[i], "ids32[%d] = %d", i, ints[i]);
    CHECK(st_meta(&st, "step") && strcmp(st_meta(&st, "step"), "1234") == 0, "metadata step");
    CHECK(st_meta(&st, "note") && strcmp(st_meta(&st, "note"), values[1]) == 0, "metadata note");
    CHECK(st_meta(&st, "absent") == NULL, "absent metadata key");
    t = st_find(&st, "ids32");
    CHECK_FAILS(st_read_f32(&st, t, got, err, sizeof err), "ids32", "I32", "expected a float");
    st_close(&st);
}

static void test_st_float_conversions(void) {
    /* hand-computed binary16 values, including subnormals, the largest finite and inf */
    const uint16_t f16[] = {0x3C00, 0xC000, 0x3555, 0x0001, 0x03FF,
                            0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x8000};
    const float f16_want[] = {1.0f,     -2.0f,    0.333251953125f, 0x1p-24f,  1023 * 0x1p-24f,
                              0x1p-14f, 65504.0f, INFINITY,        -INFINITY, -0.0f};
    /* bfloat16 is the top half of a float32 */
    const uint16_t bf16[] = {0x3F80, 0xC0A0, 0x3EAB, 0x7F80, 0x0001, 0xFF80};
    const float bf16_want[] = {1.0f, -5.0f, 0.333984375f, INFINITY, 0x1p-133f, -INFINITY};
    /* float64 narrows to nearest, ties to even: 1+2^-24 is a tie that goes down to 1 (even),
     * 1+3*2^-24 one that goes up to 1+2^-22; just above a tie goes up */
    const double f64[] = {0.1,   1.0 + 0x1p-24, 1.0 + 3 * 0x1p-24, 1.0 + 0x1p-24 + 0x1p-50,
                          1e300, -1e-50};
    const float f64_want[] = {0.1f, 1.0f, 1.0f + 0x1p-22f, 1.0f + 0x1p-23f, INFINITY, -0.0f};
    const uint16_t nan16 = 0x7E00;
    StWriteTensor tensors[] = {
        {"h", ST_F16, 1, {10}, f16},
        {"b", ST_BF16, 1, {6}, bf16},
        {"d", ST_F64, 1, {6}, f64},
        {"nan", ST_F16, 0, {0}, &nan16},
    };
    void *buf;
    size_t size;
    CHECK(st_serialize(tensors, 4, NULL, NULL, 0, &buf, &size, err, sizeof err) == 0, "%s", err);
    SafeTensors st;
    CHECK(st_parse(&st, buf, size, "conv.safetensors", err, sizeof err) == 0, "%s", err);
    struct {
        const char *name;
        const float *want;
        int n;
    } cases[] = {{"h", f16_want, 10}, {"b", bf16_want, 6}, {"d", f64_want, 6}};
    for (int c = 0; c < 3; c++) {
        float got[10];
        poison(got, 10);
        CHECK(st_read_f32(&st, st_find(&st, cases[c].name), got, err, sizeof err) == 0, "%s", err);
        for (int i = 0; i < cases[c].n; i++) /* compare bits: -0.0 and 0.0 must differ */
            CHECK(memcmp(&got[i], &cases[c].want[i], 4) == 0, "%s[%d]: got %a want %a",
                  cases[c].name, i, got[i], cases[c].want[i]);
    }
    float got_nan = 0;
    CHECK(st_read_f32(&st, st_find(&st, "nan"), &got_nan, err, sizeof err) == 0 && isnan(got_nan),
          "F16 NaN gave %g", got_nan);
    /* a sub-range read starts at the right element */
    float part[3];
    CHECK(st_read_f32_range(&st, st_find(&st, "h"), 6, 3, part, err, sizeof err) == 0 &&
              part[0] == 65504.0f && isinf(part[1]) && part[2] == -INFINITY,
          "range read");
    CHECK_FAILS(st_read_f32_range(&st, st_find(&st, "h"), 8, 3, part, err, sizeof err),
                "conv.safetensors: tensor h", "[8, 11)", "it has 10");
    st_close(&st);
    free(buf);
}

/* Each malformed header must be rejected with words that name what is wrong. */
static void test_st_bad_headers(void) {
    static const uint8_t zeros[64];
    struct {
        const char *header;
        size_t data_len;
        const char *expect[3];
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
         24,
         {"tensor b", "overlap tensor a", "[8, 24)"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         8,
         {"tensor a", "[0, 16)", "run past the 8 bytes"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
         20,
         {"gap", "[8, 12)", "next is b"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         12,
         {"tensors end at byte 8", "12 bytes of data"}},
        {"{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8,
         {"tensor a", "unknown dtype \"F7\""}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",
         16,
         {"tensor a", "hold 16 bytes", "F32 [3] needs 12"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}",
         8,
         {"tensor a", "overflows"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}",
         0,
         {"tensor a", "shape entry 0 is -1", "non-negative integer"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
         4,
         {"tensor a", "shape entry 0 is 1.5"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
         4,
         {"tensor a", "end before they begin"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
         4,
         {"tensor a", "data_offsets", "two non-negative integers"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8,
         {"tensor a appears twice"}},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],", 4, {"not valid JSON"}},
        {"[1,2]", 0, {"not an object"}},
        {"{} x", 0, {"stray bytes"}},
        {"{\"__metadata__\":{\"k\":1}}", 0, {"__metadata__ value of \"k\"", "not a string"}},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}",
         0,
         {"__metadata__ key \"k\" appears twice"}},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, {"__metadata__ appears twice"}},
        {"{\"a\":[1]}", 0, {"tensor a", "not an object"}},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, {"tensor a", "\"dtype\" is missing"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t size;
        uint8_t *file = make_file(cases[c].header, zeros, cases[c].data_len, &size);
        SafeTensors st;
        err[0] = '\0';
        int rc = st_parse(&st, file, size, "bad.safetensors", err, sizeof err);
        CHECK_FAILS(rc, "bad.safetensors: ");
        for (int e = 0; e < 3 && cases[c].expect[e]; e++)
            CHECK(strstr(err, cases[c].expect[e]) != NULL, "case %zu: \"%s\" lacks \"%s\"", c, err,
                  cases[c].expect[e]);
        CHECK(st.count == 0 && st.tensors == NULL, "case %zu left state behind", c);
        st_close(&st); /* harmless after a failure */
        free(file);
    }
}

static void test_st_bad_lengths(void) {
    SafeTensors st;
    uint8_t file[64];
    memset(file, ' ', sizeof file);
    CHECK_FAILS(st_parse(&st, file, 5, "t.safetensors", err, sizeof err), "t.safetensors",
                "truncated header", "has 5 bytes");
    uint64_t huge = 200000000; /* above the 100 MB limit */
    memcpy(file, &huge, 8);
    CHECK_FAILS(st_parse(&st, file, sizeof file, "t.safetensors", err, sizeof err),
                "header length 200000000", "exceeds the limit");
    uint64_t longer = 1000; /* more than the 56 bytes that follow */
    memcpy(file, &longer, 8);
    CHECK_FAILS(st_parse(&st, file, sizeof file, "t.safetensors", err, sizeof err),
                "header length 1000", "exceeds the 56 bytes that follow");
    CHECK_FAILS(st_open(&st, tmp_path("absent.safetensors"), err, sizeof err),
                "absent.safetensors: cannot open");
    const char *empty = tmp_path("empty.safetensors");
    write_bytes(empty, "", 0);
    CHECK_FAILS(st_open(&st, empty, err, sizeof err), "empty.safetensors", "truncated header");
}

static void test_st_writer_rejects(void) {
    float x[2] = {1, 2};
    StWriteTensor dup[] = {{"w", ST_F32, 1, {1}, x}, {"w", ST_F32, 1, {1}, x + 1}};
    void *buf = NULL;
    size_t size;
    CHECK_FAILS(st_serialize(dup, 2, NULL, NULL, 0, &buf, &size, err, sizeof err),
                "tensor w given twice");
    StWriteTensor reserved[] = {{"__metadata__", ST_F32, 1, {1}, x}};
    CHECK_FAILS(st_serialize(reserved, 1, NULL, NULL, 0, &buf, &size, err, sizeof err),
                "reserved name");
    StWriteTensor negative[] = {{"n", ST_F32, 1, {-2}, x}};
    CHECK_FAILS(st_serialize(negative, 1, NULL, NULL, 0, &buf, &size, err, sizeof err),
                "tensor n has a bad dtype or shape");
    const char *keys[] = {"k", "k"}, *values[] = {"1", "2"};
    CHECK_FAILS(st_serialize(NULL, 0, keys, values, 2, &buf, &size, err, sizeof err),
                "metadata key \"k\" given twice");
    CHECK(buf == NULL, "a failed serialise returned a buffer");
}

/* ----------------------------------------------------------------------------
 * config.json */

static void test_config_roundtrip(void) {
    ClipConfig want = micro_config(), got;
    want.logit_scale_init = 2.5f;
    char *json = checkpoint_format_config(&want);
    memset(&got, 0xff, sizeof got);
    CHECK(checkpoint_parse_config(json, strlen(json), "config.json", &got, err, sizeof err) == 0,
          "%s", err);
    CHECK(memcmp(&got, &want, sizeof want) == 0, "config changed in the round trip");
    cJSON *root = cJSON_Parse(json);
    cJSON *text = cJSON_GetObjectItem(root, "text_config");
    CHECK(cJSON_GetObjectItem(text, "eos_token_id")->valueint == 999, "eos_token_id");
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
    ClipConfig cfg = micro_config(), got;
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
        {"text_config", "eos_token_id", "49407", {"eos_token_id is 49407", "expected 999"}},
        {"vision_config", "num_channels", "1", {"num_channels is 1, expected 3"}},
        {"vision_config", "image_size", "36", {"image size 36", "patch size 8"}},
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
    ClipConfig cfg = micro_config();
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
    int64_t position_ids[16];
    for (int i = 0; i < 16; i++) position_ids[i] = i;
    tensors[layout.count] =
        (StWriteTensor){"text_model.embeddings.position_ids", ST_I64, 2, {1, 16}, position_ids};
    const char *path = tmp_path("half.safetensors");
    CHECK(st_write(path, tensors, layout.count + 1, NULL, NULL, 0, err, sizeof err) == 0, "%s",
          err);
    float *got = mallocCheck(layout.total * sizeof(float));
    poison(got, layout.total);
    CHECK(checkpoint_load_weights(path, &cfg, "the micro config", got, err, sizeof err) == 0, "%s",
          err);
    CHECK(memcmp(got, want, layout.total * sizeof(float)) == 0, "F16/BF16 weights not exact");
    free(got);
    free(tensors);
    free(halves);
    free(want);
    param_layout_free(&layout);
}

/* Saves a micro checkpoint with one tensor left out, renamed, retyped or added. */
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
    ClipConfig cfg = micro_config(), got_cfg;
    size_t n;
    float *params = random_params(&cfg, &n, 3);
    float *got = NULL;
    const char *dir = tmp_path("bad_hf");

    write_hf_variant(dir, &cfg, params, "text_model.final_layer_norm.bias", NULL, ST_F32);
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "bad_hf/model.safetensors: tensor text_model.final_layer_norm.bias is missing",
                "bad_hf/config.json implies shape [64]");
    CHECK(got == NULL, "params returned after a failure");

    write_hf_variant(dir, &cfg, params, NULL, "text_model.encoder.layers.7.mlp.fc1.bias", ST_F32);
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "unexpected tensor text_model.encoder.layers.7.mlp.fc1.bias");

    write_hf_variant(dir, &cfg, params, NULL, NULL, ST_I32);
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "tensor logit_scale has dtype I32", "expected F32");

    /* the weights are right; config.json now says a shorter text context */
    write_hf_variant(dir, &cfg, params, NULL, NULL, ST_F32);
    edit_config(dir, "text_config", "max_position_embeddings", "12");
    CHECK_FAILS(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err),
                "bad_hf/model.safetensors: tensor text_model.embeddings.position_embedding.weight "
                "has shape [16, 64], ",
                "bad_hf/config.json implies [12, 64]");

    /* loading into the caller's buffer: a failure leaves it untouched */
    ClipConfig wider = cfg;
    wider.text.width = 128;
    wider.text.heads = 2;
    ParamLayout layout;
    param_layout_build(&wider, &layout);
    float *buf = mallocCheck(layout.total * sizeof(float));
    poison(buf, layout.total);
    char weights[600];
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    CHECK_FAILS(checkpoint_load_weights(weights, &wider, "preset wide", buf, err, sizeof err),
                "has shape [1000, 64], preset wide implies [1000, 128]");
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
 * explicitly, not relying on our layout keeping them adjacent), projections transposed. */
static void test_openai_mapping(void) {
    ClipConfig cfg = micro_config();
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
    CHECK(checkpoint_load_weights_st(&st, &cfg, "micro", got, err, sizeof err) == 0, "%s", err);
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
        "openai.safetensors: tensor visual.proj has shape [128, 48], preset x implies [128, 64]");
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

/* ----------------------------------------------------------------------------
 * Trainer state */

static void test_state_roundtrip(void) {
    const size_t n = 12345;
    float *m = mallocCheck(n * sizeof(float)), *v = mallocCheck(n * sizeof(float));
    float *gm = mallocCheck(n * sizeof(float)), *gv = mallocCheck(n * sizeof(float));
    fill_random(m, n, 21);
    fill_random(v, n, 22);
    const char *keys[] = {"step", "rng", "schedule"};
    const char *values[] = {"1500", "0123456789abcdef 42 7 9", "cosine warmup=100 total=10000"};
    const char *dir = tmp_path("state");
    CHECK(checkpoint_save_state(dir, m, v, n, keys, values, 3, err, sizeof err) == 0, "%s", err);
    poison(gm, n);
    poison(gv, n);
    CheckpointMeta meta;
    CHECK(checkpoint_load_state(dir, gm, gv, n, &meta, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(gm, m, n * sizeof(float)) == 0 && memcmp(gv, v, n * sizeof(float)) == 0,
          "moments not bit-exact");
    CHECK(meta.count == 3, "%d metadata pairs", meta.count);
    for (int i = 0; i < 3; i++) {
        const char *got = checkpoint_meta_get(&meta, keys[i]);
        CHECK(got && strcmp(got, values[i]) == 0, "%s = %s", keys[i], got ? got : "(none)");
    }
    CHECK(checkpoint_meta_get(&meta, "absent") == NULL, "absent key found");
    checkpoint_meta_free(&meta);

    poison(gm, n);
    CHECK_FAILS(checkpoint_load_state(dir, gm, gv, n - 1, NULL, err, sizeof err),
                "state/trainer_state.safetensors: tensor adam_m is F32 [12345]",
                "the model implies a float vector [12344]");
    CHECK(all_nan(gm, n), "a failed state load wrote into m");
    CHECK_FAILS(checkpoint_load_state(tmp_path("no_state"), gm, gv, n, NULL, err, sizeof err),
                "no_state/trainer_state.safetensors: cannot open");
    free(m);
    free(v);
    free(gm);
    free(gv);
}

/* ----------------------------------------------------------------------------
 * Failed saves */

/* Runs checkpoint_save_hf with writes capped at `limit` bytes per file, as a full disk would. */
static int save_with_file_limit(const char *dir, const ClipConfig *cfg, const float *params,
                                rlim_t limit) {
    struct rlimit old, capped;
    getrlimit(RLIMIT_FSIZE, &old);
    capped = old;
    capped.rlim_cur = limit;
    signal(SIGXFSZ, SIG_IGN); /* make write() fail with EFBIG instead of killing us */
    setrlimit(RLIMIT_FSIZE, &capped);
    int rc = checkpoint_save_hf(dir, cfg, params, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    return rc;
}

static void test_failed_save_keeps_old(void) {
    ClipConfig cfg = micro_config(), got_cfg;
    size_t n;
    float *old_params = random_params(&cfg, &n, 31), *new_params = random_params(&cfg, &n, 32);
    const char *dir = tmp_path("atomic");
    CHECK(checkpoint_save_hf(dir, &cfg, old_params, err, sizeof err) == 0, "%s", err);

    /* same config: the old checkpoint stays whole and loadable */
    CHECK_FAILS(save_with_file_limit(dir, &cfg, new_params, 4096),
                "atomic/model.safetensors: cannot write");
    float *got = NULL;
    CHECK(checkpoint_load_hf(dir, &got_cfg, &got, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(got && memcmp(got, old_params, n * sizeof(float)) == 0, "old checkpoint changed");
    CHECK(count_files(dir) == 2, "%d files after a failed save (temp file left?)",
          count_files(dir));
    free(got);

    /* a different config: the old config.json goes first, so the directory reads as
     * incomplete rather than pairing the old config with whatever weights are there */
    ClipConfig other = cfg;
    other.vocab_size = 900;
    CHECK(save_with_file_limit(dir, &other, new_params, 4096) == -1, "capped save succeeded");
    CHECK(!checkpoint_is_complete(dir), "directory still complete with a config that was replaced");

    /* a directory that cannot be created */
    const char *file = tmp_path("plain_file");
    write_bytes(file, "x", 1);
    char below[600];
    snprintf(below, sizeof below, "%s/sub", file);
    CHECK_FAILS(checkpoint_save_hf(below, &cfg, old_params, err, sizeof err), "plain_file",
                "cannot create folder");
    /* a read-only directory (root ignores permissions, so only as another user) */
    if (geteuid() != 0) {
        const char *ro = tmp_path("readonly");
        CHECK(checkpoint_save_hf(ro, &cfg, old_params, err, sizeof err) == 0, "%s", err);
        chmod(ro, 0555);
        CHECK_FAILS(checkpoint_save_hf(ro, &cfg, new_params, err, sizeof err), "cannot write");
        chmod(ro, 0755);
        CHECK(checkpoint_load_hf(ro, &got_cfg, &got, NULL, err, sizeof err) == 0 &&
                  memcmp(got, old_params, n * sizeof(float)) == 0,
              "read-only checkpoint changed");
        free(got);
    }
    ClipConfig invalid = cfg;
    invalid.text.heads = 5;
    CHECK_FAILS(checkpoint_save_hf(tmp_path("invalid"), &invalid, old_params, err, sizeof err),
                "refusing to save an invalid config", "not a multiple of heads 5");
    free(old_params);
    free(new_params);
}

int main(void) {
    scratch_make("test_checkpoint");
    RUN_TEST(test_st_roundtrip);
    RUN_TEST(test_st_float_conversions);
    RUN_TEST(test_st_bad_headers);
    RUN_TEST(test_st_bad_lengths);
    RUN_TEST(test_st_writer_rejects);
    RUN_TEST(test_config_roundtrip);
    RUN_TEST(test_config_bad);
    RUN_TEST(test_hf_roundtrip);
    RUN_TEST(test_hf_half_precision);
    RUN_TEST(test_hf_bad_weights);
    RUN_TEST(test_openai_mapping);
    RUN_TEST(test_python_written_files);
    RUN_TEST(test_state_roundtrip);
    RUN_TEST(test_failed_save_keeps_old);
    scratch_remove();
    return test_summary();
}
