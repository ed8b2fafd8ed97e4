/*
 * test_model_path.c: io/model_path.h, the one place that turns what a user passes as a
 * model into a config and weights.
 *
 * The three accepted kinds (an HF directory, a tng checkpoint, a tng run) are written from
 * the same random weights and must load to the same bits and the same config. Every refusal
 * (a run whose `latest` dangles or names an incomplete checkpoint, an empty directory, a
 * directory with one model file, a file, a missing path) must say what it found and, where
 * nothing matched, what would have been accepted; the tests check those words.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint_helpers.h" // defines: err, CHECK_FAILS, random_params, write_bytes
#include "engine/model.h"       // defines: Clip, clip_create, clip_set_params, clip_prepare
#include "harness.h"            // defines: RUN_TEST, CHECK, test_summary
#include "io/checkpoint.h"      // defines: checkpoint_save_hf, checkpoint_load_hf
#include "io/model_path.h"      // defines: model_path_load, model_path_resolve
#include "io/train_state.h"     // defines: train_state_save
#include "scratch.h"            // defines: scratch_make, tmp_path, scratch_remove
#include "small_model.h"        // defines: small_config

/* Loads path, which must succeed with cfg and params, from the directory want_resolved. */
static void check_loads(const char *path, const ClipConfig *cfg, const float *params, size_t n,
                        const char *want_resolved) {
    ClipConfig got_cfg;
    float *got = NULL;
    char resolved[4096] = "";
    CHECK(model_path_load(path, &got_cfg, &got, resolved, sizeof resolved, err, sizeof err) == 0,
          "%s: %s", path, err);
    if (!got) return;
    CHECK(memcmp(&got_cfg, cfg, sizeof *cfg) == 0, "%s: config differs", path);
    CHECK(memcmp(got, params, n * sizeof(float)) == 0, "%s: weights differ", path);
    CHECK(strcmp(resolved, want_resolved) == 0, "%s resolved to %s, expected %s", path, resolved,
          want_resolved);
    free(got);
}

static void test_three_kinds_same_weights(void) {
    ClipConfig cfg = small_config();
    size_t n;
    float *params = random_params(&cfg, &n, 61);
    /* a run directory, written the way tng_train writes it: ckpt-<step> plus `latest` */
    Clip *m = clip_create(&cfg, backend_cpu());
    clip_set_params(m, params);
    ClipTrainConfig train = {.temperature = 0, .train_vision = 1, .train_text = 1};
    clip_prepare(m, &train, 2, 2);
    char run[600], ckpt[4096];
    snprintf(run, sizeof run, "%s", tmp_path("run"));
    CHECK(train_state_save(run, m, NULL, NULL, 0, 1, ckpt, sizeof ckpt, err, sizeof err) == 0,
          "%s", err);
    clip_free(m);
    char state[4200];
    snprintf(state, sizeof state, "%s/%s", ckpt, CHECKPOINT_STATE_FILE);
    struct stat info;
    CHECK(stat(state, &info) == 0, "the checkpoint lacks %s", state);
    const char *hf = tmp_path("hf");
    CHECK(checkpoint_save_hf(hf, &cfg, params, err, sizeof err) == 0, "%s", err);

    check_loads(hf, &cfg, params, n, hf);
    check_loads(ckpt, &cfg, params, n, ckpt);
    check_loads(run, &cfg, params, n, ckpt);
    /* a directory holding both model files is a model, even with a `latest` beside them */
    float *other = random_params(&cfg, &n, 62);
    CHECK(checkpoint_save_hf(run, &cfg, other, err, sizeof err) == 0, "%s", err);
    check_loads(run, &cfg, other, n, run);
    free(other);
    free(params);
}

static void test_dangling_latest(void) {
    const char *run = tmp_path("dangling");
    mkdir(run, 0755);
    char latest[600];
    snprintf(latest, sizeof latest, "%s/latest", run);
    write_bytes(latest, "ckpt-00000099\n", 14);
    ClipConfig cfg;
    float *params = (float *)&cfg; /* must come back NULL */
    CHECK_FAILS(model_path_load(run, &cfg, &params, NULL, 0, err, sizeof err),
                "dangling/latest names", "dangling/ckpt-00000099", "which does not exist");
    CHECK(params == NULL, "params set after a failure");

    /* the folder exists but its save never finished: config.json is written last */
    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt-00000099", run);
    mkdir(ckpt, 0755);
    char weights[800];
    snprintf(weights, sizeof weights, "%s/%s", ckpt, CHECKPOINT_WEIGHTS_FILE);
    write_bytes(weights, "x", 1);
    CHECK_FAILS(model_path_load(run, &cfg, &params, NULL, 0, err, sizeof err),
                "dangling/ckpt-00000099", "not a complete checkpoint", "config.json");
}

static void test_not_a_model(void) {
    char dir[4096];
    const char *empty = tmp_path("empty");
    mkdir(empty, 0755);
    CHECK_FAILS(model_path_resolve(empty, dir, sizeof dir, err, sizeof err),
                "empty: holds none of config.json, model.safetensors or latest",
                "expected an HF CLIPModel directory", "tng run directory");

    const char *half = tmp_path("half");
    mkdir(half, 0755);
    char config[600];
    snprintf(config, sizeof config, "%s/config.json", half);
    write_bytes(config, "{}", 2);
    CHECK_FAILS(model_path_resolve(half, dir, sizeof dir, err, sizeof err),
                "half: holds config.json but no model.safetensors");

    const char *file = tmp_path("model.safetensors");
    write_bytes(file, "x", 1);
    CHECK_FAILS(model_path_resolve(file, dir, sizeof dir, err, sizeof err),
                "model.safetensors: is not a directory", "expected an HF CLIPModel directory");

    CHECK_FAILS(model_path_resolve(tmp_path("absent"), dir, sizeof dir, err, sizeof err),
                "absent: cannot open", "No such file", "expected an HF CLIPModel directory");
}

int main(void) {
    scratch_make("test_model_path");
    RUN_TEST(test_three_kinds_same_weights);
    RUN_TEST(test_dangling_latest);
    RUN_TEST(test_not_a_model);
    scratch_remove();
    return test_summary();
}
