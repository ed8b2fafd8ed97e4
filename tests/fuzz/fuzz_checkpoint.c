/*
 * fuzz_checkpoint.c: libFuzzer target for everything that reads checkpoint files.
 *
 * The first input byte picks the parser, the rest is the file:
 *   odd:  config.json -> checkpoint_parse_config; a config it accepts must survive
 *         format -> parse unchanged.
 *   even: safetensors -> st_parse; a file it accepts is read tensor by tensor (as float
 *         and as int, whichever converts), re-serialised and re-parsed to the same tensors,
 *         and fed to the weight loader: under the tests' small config (small_model.h; the
 *         seed hf_small_f16 holds its weights), and under the config inferred from OpenAI
 *         names when that is small enough to allocate.
 * Any crash, sanitizer report or broken invariant (__builtin_trap) is a bug.
 * Run: make fuzz && build-fuzz/fuzz/fuzz_checkpoint -max_total_time=600 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"  // defines: checkpoint_parse_config, checkpoint_load_weights_st, ...
#include "engine/model.h"       // defines: param_layout_build
#include "io/safetensors.h" // defines: st_parse, st_read_f32, st_serialize, ...
#include "small_model.h"    // defines: small_config

/* Weight loads allocate the whole model: skip configs above this many floats. */
#define FUZZ_MAX_PARAMS (1u << 20)

static void fuzz_config(const uint8_t *data, size_t size) {
    char err[512];
    ClipConfig cfg, again;
    if (checkpoint_parse_config((const char *)data, size, "fuzz/config.json", &cfg, err,
                                sizeof err) != 0)
        return;
    char *json = checkpoint_format_config(&cfg);
    if (checkpoint_parse_config(json, strlen(json), "reformatted", &again, err, sizeof err) != 0 ||
        memcmp(&cfg, &again, sizeof cfg) != 0)
        __builtin_trap();
    free(json);
}

static void load_under(const SafeTensors *st, const ClipConfig *cfg) {
    ParamLayout layout;
    param_layout_build(cfg, &layout);
    size_t total = layout.total;
    param_layout_free(&layout);
    if (total > FUZZ_MAX_PARAMS) return;
    float *params = malloc(total * sizeof(float));
    char err[512];
    checkpoint_load_weights_st(st, cfg, "fuzz config", params, err, sizeof err);
    free(params);
}

/* Reads every tensor, then writes the file anew and checks it parses to the same tensors. */
static void read_and_rewrite(const SafeTensors *st) {
    char err[512];
    StWriteTensor *tensors = calloc((size_t)st->count + 1, sizeof *tensors);
    for (int i = 0; i < st->count; i++) {
        const StTensor *t = &st->tensors[i];
        /* validated: numel * dtype size bytes lie inside the input */
        void *out = malloc(t->numel * sizeof(float) + 1);
        if (st_read_f32(st, t, out, err, sizeof err) != 0) st_read_i32(st, t, out, err, sizeof err);
        free(out);
        tensors[i] = (StWriteTensor){t->name, t->dtype, t->ndim, {0}, st->data + t->begin};
        memcpy(tensors[i].shape, t->shape, sizeof t->shape);
    }
    void *buf;
    size_t size;
    if (st_serialize(tensors, st->count, (const char *const *)st->meta_keys,
                     (const char *const *)st->meta_values, st->meta_count, &buf, &size, err,
                     sizeof err) != 0)
        __builtin_trap();
    SafeTensors again;
    if (st_parse(&again, buf, size, "rewritten", err, sizeof err) != 0 ||
        again.count != st->count || again.meta_count != st->meta_count)
        __builtin_trap();
    for (int i = 0; i < st->count; i++) {
        const StTensor *a = &st->tensors[i], *b = &again.tensors[i];
        if (strcmp(a->name, b->name) != 0 || a->dtype != b->dtype || a->numel != b->numel ||
            memcmp(st->data + a->begin, again.data + b->begin, a->end - a->begin) != 0)
            __builtin_trap();
    }
    st_close(&again);
    free(buf);
    free(tensors);
}

static void fuzz_safetensors(const uint8_t *data, size_t size) {
    char err[512];
    SafeTensors st;
    if (st_parse(&st, data, size, "fuzz.safetensors", err, sizeof err) != 0) return;
    read_and_rewrite(&st);
    ClipConfig small = small_config();
    load_under(&st, &small);
    ClipConfig inferred;
    if (checkpoint_infer_openai_config(&st, ACT_QUICK_GELU, &inferred, err, sizeof err) == 0)
        load_under(&st, &inferred);
    st_close(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1)
        fuzz_config(data + 1, size - 1);
    else
        fuzz_safetensors(data + 1, size - 1);
    return 0;
}
