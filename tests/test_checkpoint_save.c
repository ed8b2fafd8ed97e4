/*
 * test_checkpoint_save.c: what checkpoint writes leave on disk: the trainer-state sidecar
 * (AdamW moments and metadata) round trip and its refusals, and saves that fail part way (a
 * full disk, a folder that cannot be made, a read-only folder, an invalid config) without
 * harming the checkpoint already there.
 *
 * Failures must give -1 and a message with the words the tests look for. Files live in a
 * mkdtemp directory that is removed at the end; values are random from a seeded generator
 * and output buffers are NaN-poisoned first.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_helpers.h" // defines: err, CHECK_FAILS, fill_random, poison, all_nan, ...
#include "harness.h"            // defines: RUN_TEST, CHECK, test_summary
#include "io/checkpoint.h"      // defines: checkpoint_save_hf, checkpoint_*_state, CheckpointMeta
#include "scratch.h"            // defines: scratch_make, tmp_path, scratch_remove
#include "small_model.h"        // defines: small_config
#include "util/common.h"        // defines: mallocCheck

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
    ClipConfig cfg = small_config(), got_cfg;
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
    other.vocab_size = 60;
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
    scratch_make("test_checkpoint_save");
    RUN_TEST(test_state_roundtrip);
    RUN_TEST(test_failed_save_keeps_old);
    scratch_remove();
    return test_summary();
}
