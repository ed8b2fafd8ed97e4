/*
 * checkpoint_helpers.h: what the tests of files on disk share (test_safetensors,
 * test_checkpoint, test_checkpoint_save, test_model_path): seeded random values, NaN
 * poisoning, and CHECK_FAILS, which checks that a call failed with a message holding given
 * words. Failing calls write their message into the one buffer `err` declared here.
 */
#ifndef TNG_TEST_CHECKPOINT_HELPERS_H
#define TNG_TEST_CHECKPOINT_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/model.h" // defines: ParamLayout, param_layout_build, param_layout_free
#include "harness.h"      // defines: CHECK
#include "util/common.h"  // defines: mallocCheck, write_file_atomic, die
#include "util/rng.h"     // defines: Rng, rng_seed, rng_normal

static char err[1024];

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

static inline void fill_random(float *x, size_t n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&rng);
}

static inline void poison(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static inline int all_nan(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) return 0;
    return 1;
}

/* Random weights for cfg (malloc'd, *n floats in layout order). */
static inline float *random_params(const ClipConfig *cfg, size_t *n, uint64_t seed) {
    ParamLayout layout;
    param_layout_build(cfg, &layout);
    *n = layout.total;
    param_layout_free(&layout);
    float *p = mallocCheck(*n * sizeof(float));
    fill_random(p, *n, seed);
    return p;
}

static inline void write_bytes(const char *path, const void *data, size_t n) {
    if (write_file_atomic(path, data, n) != 0) die("cannot write %s: %s", path, strerror(errno));
}

/* Entries in a directory, so a test can see that no temp file was left behind. */
static inline int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

#endif
