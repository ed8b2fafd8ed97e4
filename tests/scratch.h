/*
 * scratch.h: one scratch folder per test binary for the files a test writes: made with
 * mkdtemp under /tmp, names inside it from tmp_path, removed with everything in it at the end.
 */
#ifndef TNG_TEST_SCRATCH_H
#define TNG_TEST_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/common.h"

static char scratch_root[64];

/* Makes the folder /tmp/tng_<name>_XXXXXX (dies if it cannot). */
static inline void scratch_make(const char *name) {
    snprintf(scratch_root, sizeof scratch_root, "/tmp/tng_%s_XXXXXX", name);
    if (!mkdtemp(scratch_root)) die("mkdtemp %s failed", scratch_root);
}

/* scratch_root/name, in one of 8 rotating buffers: a call may use up to 8 paths at once. */
static inline char *tmp_path(const char *name) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", scratch_root, name);
    return p;
}

static inline int scratch_remove_entry(const char *path, const struct stat *sb, int flag,
                                       struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes the folder and everything in it. */
static inline void scratch_remove(void) {
    nftw(scratch_root, scratch_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
