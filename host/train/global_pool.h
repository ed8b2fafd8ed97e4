/*
 * global_pool.h: the pool of --tng-scope global, every rank's captions and image embeddings of
 * one micro-batch gathered on every rank, so TNG's neighbours, objects and negated captions
 * come from the global batch while each rank still makes only its own images' texts.
 *
 * The pool is in the loader's order, the order one process with the global batch sees: rank
 * k's j-th sample is position j * world + k of the step's window (dataset/loader.h). So the
 * texts made for this rank's images (at own_at in the pool) equal that process's texts of
 * them. Ranks whose batch lost an image (a bad one skipped) still get one fixed order.
 */
#ifndef TNG_GLOBAL_POOL_H
#define TNG_GLOBAL_POOL_H

#include <stddef.h>

#include "engine/dist.h" // defines: Dist

typedef struct {
    int n;                 /* images in the pool: every rank's */
    int *own_at;           /* [batch] where this rank's image j sits in the pool */
    const char **captions; /* [batch * world], pointers into arena */
    float *features;       /* [batch * world, dim] */
    char *arena;
    size_t arena_capacity;
} GlobalPool;

/* Room for `world` ranks' batches of at most `batch` images with dim-float embeddings. */
void global_pool_init(GlobalPool *pool, int batch, int world, int dim);
/* Collective (every rank calls it with its n images): fills pool from every rank's captions
 * [n] and features [n, dim]. */
void global_pool_gather(GlobalPool *pool, const Dist *d, int dim, int n, const char *const *captions,
                        const float *features);
void global_pool_free(GlobalPool *pool);

#endif
