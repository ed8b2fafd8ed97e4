/*
 * dist_scenarios.h: test_dist's model-level scenarios (one rank's batch of a global batch, or
 * the one-process batch of them all) and the batches they train on: every value is drawn
 * from (step, global image, text), so a rank under mpirun and the one-process reference
 * build the same numbers. Included by test_dist.c alone.
 */
#ifndef TNG_TEST_DIST_SCENARIOS_H
#define TNG_TEST_DIST_SCENARIOS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h" // defines: ClipConfig, clip_eot_token
#include "util/common.h"  // defines: mallocCheck, callocCheck
#include "util/rng.h"     // defines: Rng, rng_seed, rng_normal, rng_below

enum { MAX_RANKS = 3 };

typedef struct {
    const char *name;
    int world;
    int counts[MAX_RANKS]; /* images per rank */
    int texts_per_image;   /* 1: plain CLIP; 3: TNG's shape */
    int frozen_vision;     /* 1: precomputed image features, vision frozen, fixed temperature */
    int contradictions;    /* 1: even global images' last text is a contradiction negative
                              (txt2img -1, weight 0.5), so ranks hold different counts */
    int frozen_text;       /* 1: only the vision tower (and the temperature) trains */
    int one_shot;          /* 1: clip_backward, then one reduction (not bucketed) */
    int accum;             /* micro-batches per step (0: 1) */
    int i2t_each;          /* 1: mean-target rows score each positive against the negatives */
    int standalone;        /* 1: each image's last text is a standalone negation (ClipAbsence) */
} Scenario;

static const Scenario SCENARIOS[] = {
    {"model_plain", 2, {4, 4}, 1, 0, 0, 0, 0, 0, 0, 0},
    {"model_tng", 2, {4, 4}, 3, 1, 0, 0, 0, 0, 0, 0},
    {"model_uneven", 3, {3, 3, 2}, 3, 0, 0, 0, 0, 0, 0, 0},
    {"model_contradictions", 3, {3, 3, 2}, 3, 1, 1, 0, 0, 0, 0, 0},
    {"model_i2t_each", 3, {3, 3, 2}, 3, 1, 1, 0, 0, 0, 1, 0},
    {"model_one_shot", 2, {4, 4}, 3, 0, 0, 0, 1, 0, 0, 0},
    {"model_text_frozen", 3, {3, 3, 2}, 3, 0, 0, 1, 0, 0, 0, 0},
    {"model_accum", 2, {3, 4}, 3, 0, 0, 0, 0, 2, 0, 0},
    {"model_standalone", 3, {3, 3, 2}, 3, 1, 0, 0, 0, 0, 1, 1},
};
enum { OBJECTS = 6 }; /* model_standalone's object ids: few, so captions share them */

typedef struct {
    int n_images, n_texts;
    float *images, *features;
    int *tokens, *txt2img, *target;
    int *absent, *named_start, *named; /* standalone: ClipAbsence's arrays, else NULL */
} Batch;

/* model_standalone: image j (global g) names each object with probability 1/2, and its
 * standalone text denies one it does not name (-1 when it names all), drawn from (step, g). */
static inline void make_absence(const Scenario *sc, int step, int first, Batch *b) {
    int n = b->n_images;
    b->absent = mallocCheck(sizeof(int) * (size_t)b->n_texts);
    b->named_start = mallocCheck(sizeof(int) * ((size_t)n + 1));
    b->named = mallocCheck(sizeof(int) * ((size_t)n * OBJECTS + 1));
    b->named_start[0] = 0;
    for (int t = 0; t < b->n_texts; t++) b->absent[t] = -1;
    for (int j = 0; j < n; j++) {
        Rng rng;
        rng_seed(&rng, 7777u + 1000u * (uint64_t)step + (uint64_t)(first + j));
        int lacked[OBJECTS], n_lacked = 0, at = b->named_start[j];
        for (int x = 0; x < OBJECTS; x++) {
            if (rng_below(&rng, 2)) b->named[at++] = x;
            else lacked[n_lacked++] = x;
        }
        b->named_start[j + 1] = at;
        int standalone = (sc->texts_per_image - 1) * n + j;
        b->absent[standalone] = n_lacked ? lacked[rng_below(&rng, (uint64_t)n_lacked)] : -1;
    }
}

/* Rank r's batch of step `step`: image j is global image first + j and its k-th text is
 * local text k * n + j. Every value is drawn from (step, global image, k), so a rank and the
 * one-process reference build the same numbers. Images g % 3 == 1 take the mean target. */
static inline void make_batch(const Scenario *sc, const ClipConfig *c, int step, int rank, Batch *b) {
    int first = 0, n = sc->counts[rank], K = sc->texts_per_image, ctx = c->context_length;
    int R = c->image_size, D = c->embed_dim;
    for (int k = 0; k < rank; k++) first += sc->counts[k];
    b->n_images = n;
    b->n_texts = n * K;
    b->images = mallocCheck(sizeof(float) * (size_t)n * 3 * R * R);
    b->features = mallocCheck(sizeof(float) * (size_t)n * D);
    b->tokens = callocCheck((size_t)n * K * ctx, sizeof(int));
    b->txt2img = mallocCheck(sizeof(int) * (size_t)n * K);
    b->target = mallocCheck(sizeof(int) * (size_t)n);
    for (int j = 0; j < n; j++) {
        int g = first + j;
        Rng rng;
        rng_seed(&rng, 1000u * (uint64_t)step + (uint64_t)g);
        for (int p = 0; p < 3 * R * R; p++) b->images[(size_t)j * 3 * R * R + p] = (float)rng_normal(&rng);
        double norm = 0;
        float *f = b->features + (size_t)j * D;
        for (int d = 0; d < D; d++) f[d] = (float)rng_normal(&rng), norm += f[d] * f[d];
        for (int d = 0; d < D; d++) f[d] = (float)(f[d] / sqrt(norm));
        for (int k = 0; k < K; k++) {
            int t = k * n + j, eot = 2 + (int)rng_below(&rng, ctx - 3);
            int *row = b->tokens + (size_t)t * ctx;
            row[0] = c->vocab_size - 2;
            for (int p = 1; p < eot; p++) row[p] = 1 + (int)rng_below(&rng, c->vocab_size - 4);
            row[eot] = clip_eot_token(c);
            b->txt2img[t] = sc->contradictions && k == K - 1 && g % 2 == 0 ? -1 : j;
        }
        b->target[j] = K > 1 && g % 3 == 1 ? -1 : j;
    }
    b->absent = b->named_start = b->named = NULL;
    if (sc->standalone) make_absence(sc, step, first, b);
}

static inline void batch_free(Batch *b) {
    free(b->images), free(b->features), free(b->tokens), free(b->txt2img), free(b->target);
    free(b->absent), free(b->named_start), free(b->named);
}

/* The one-process batch: every rank's batch one after another, indices made global. */
static inline void make_global_batch(const Scenario *sc, const ClipConfig *c, int step, Batch *all) {
    Batch parts[MAX_RANKS];
    int ni = 0, nt = 0, R = c->image_size, D = c->embed_dim, ctx = c->context_length;
    for (int r = 0; r < sc->world; r++) {
        make_batch(sc, c, step, r, &parts[r]);
        ni += parts[r].n_images, nt += parts[r].n_texts;
    }
    *all = (Batch){.n_images = ni, .n_texts = nt};
    all->images = mallocCheck(sizeof(float) * (size_t)ni * 3 * R * R);
    all->features = mallocCheck(sizeof(float) * (size_t)ni * D);
    all->tokens = mallocCheck(sizeof(int) * (size_t)nt * ctx);
    all->txt2img = mallocCheck(sizeof(int) * (size_t)nt);
    all->target = mallocCheck(sizeof(int) * (size_t)ni);
    all->absent = all->named_start = all->named = NULL;
    if (sc->standalone) {
        all->absent = mallocCheck(sizeof(int) * (size_t)nt);
        all->named_start = mallocCheck(sizeof(int) * ((size_t)ni + 1));
        all->named = mallocCheck(sizeof(int) * ((size_t)ni * OBJECTS + 1));
        all->named_start[0] = 0;
    }
    int io = 0, to = 0;
    for (int r = 0; r < sc->world; r++) {
        Batch *p = &parts[r];
        memcpy(all->images + (size_t)io * 3 * R * R, p->images, sizeof(float) * (size_t)p->n_images * 3 * R * R);
        memcpy(all->features + (size_t)io * D, p->features, sizeof(float) * (size_t)p->n_images * D);
        memcpy(all->tokens + (size_t)to * ctx, p->tokens, sizeof(int) * (size_t)p->n_texts * ctx);
        for (int t = 0; t < p->n_texts; t++)
            all->txt2img[to + t] = p->txt2img[t] < 0 ? -1 : io + p->txt2img[t];
        for (int i = 0; i < p->n_images; i++)
            all->target[io + i] = p->target[i] < 0 ? -1 : to + p->target[i];
        if (sc->standalone) { /* object ids are global already; the named lists follow on */
            memcpy(all->absent + to, p->absent, sizeof(int) * (size_t)p->n_texts);
            int base = all->named_start[io];
            memcpy(all->named + base, p->named, sizeof(int) * (size_t)p->named_start[p->n_images]);
            for (int i = 0; i < p->n_images; i++) all->named_start[io + i + 1] = base + p->named_start[i + 1];
        }
        io += p->n_images, to += p->n_texts;
        batch_free(p);
    }
}

#endif
