/*
 * global_pool.c: gathering the --tng-scope global pool (global_pool.h).
 *
 * Embeddings are gathered as they are; captions as their lengths first, then their bytes into
 * one arena, since all_gather moves flat arrays. Then one pass reorders rank-major into the
 * loader's sample-major order.
 */
#include "train/global_pool.h"

#include <stdlib.h>
#include <string.h>

#include "util/common.h" // defines: mallocCheck, reallocCheck

void global_pool_init(GlobalPool *pool, int batch, int world, int dim) {
    *pool = (GlobalPool){0};
    pool->own_at = mallocCheck(sizeof(int) * (size_t)batch);
    pool->captions = mallocCheck(sizeof(char *) * (size_t)batch * world);
    pool->features = mallocCheck(sizeof(float) * (size_t)batch * world * dim);
}

void global_pool_free(GlobalPool *pool) {
    free(pool->own_at), free(pool->captions), free(pool->features), free(pool->arena);
    *pool = (GlobalPool){0};
}

void global_pool_gather(GlobalPool *pool, const Dist *d, int dim, int n, const char *const *captions,
                        const float *features) {
    int W = d->world, D = dim;
    int *counts = mallocCheck(sizeof(int) * (size_t)W), *ones = mallocCheck(sizeof(int) * (size_t)W);
    int *offsets = mallocCheck(sizeof(int) * ((size_t)W + 1));
    for (int k = 0; k < W; k++) ones[k] = 1;
    d->host->all_gather(d, counts, &n, ones, DIST_I32);
    int total = dist_offsets(d, counts, offsets);
    /* embeddings, rank after rank */
    int *floats = mallocCheck(sizeof(int) * (size_t)W);
    for (int k = 0; k < W; k++) floats[k] = counts[k] * D;
    float *by_rank_features = mallocCheck(sizeof(float) * (size_t)total * D);
    d->host->all_gather(d, by_rank_features, features, floats, DIST_F32);
    /* captions: their lengths (NUL included), then their bytes */
    int *lengths = mallocCheck(sizeof(int) * (size_t)total), *own = lengths + offsets[d->rank];
    for (int j = 0; j < n; j++) own[j] = (int)strlen(captions[j]) + 1;
    d->host->all_gather(d, lengths, own, counts, DIST_I32);
    int *bytes = mallocCheck(sizeof(int) * (size_t)W);
    size_t all_bytes = 0;
    for (int k = 0; k < W; k++) {
        bytes[k] = 0;
        for (int j = 0; j < counts[k]; j++) bytes[k] += lengths[offsets[k] + j];
        all_bytes += (size_t)bytes[k];
    }
    char *mine = mallocCheck((size_t)bytes[d->rank] + 1), *at = mine;
    for (int j = 0; j < n; j++) at = stpcpy(at, captions[j]) + 1;
    if (all_bytes > pool->arena_capacity) {
        pool->arena = reallocCheck(pool->arena, all_bytes);
        pool->arena_capacity = all_bytes;
    }
    d->host->all_gather(d, pool->arena, mine, bytes, DIST_BYTE);
    const char **by_rank = mallocCheck(sizeof(char *) * (size_t)total);
    const char *text = pool->arena;
    for (int k = 0; k < total; k++) {
        by_rank[k] = text;
        text += lengths[k];
    }
    /* the loader's order: sample j of every rank in rank order, then j + 1 */
    int g = 0, longest = 0;
    for (int k = 0; k < W; k++) longest = counts[k] > longest ? counts[k] : longest;
    for (int j = 0; j < longest; j++)
        for (int k = 0; k < W; k++) {
            if (j >= counts[k]) continue;
            int from = offsets[k] + j;
            pool->captions[g] = by_rank[from];
            memcpy(pool->features + (size_t)g * D, by_rank_features + (size_t)from * D, sizeof(float) * D);
            if (k == d->rank) pool->own_at[j] = g;
            g++;
        }
    pool->n = total;
    free(counts), free(ones), free(offsets), free(floats), free(by_rank_features), free(lengths);
    free(bytes), free(mine), free(by_rank);
}
