/*
 * run_metrics.h: what a test reads back from a training run's metrics.jsonl.
 */
#ifndef TNG_TEST_RUN_METRICS_H
#define TNG_TEST_RUN_METRICS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: read_file

/* The "loss" of every step record of RUN_DIR/metrics.jsonl, in order (metrics.jsonl prints 6
 * decimals, which a float holds). Returns how many, at most max. */
static inline int run_step_losses(const char *run_dir, float *losses, int max) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    char *text = read_file(path, NULL);
    int n = 0;
    for (char *at = text; at && n < max && (at = strstr(at, "\"loss\": ")); at++)
        losses[n++] = strtof(at + 8, NULL);
    free(text);
    return n;
}

#endif
