/*
 * test_neighbours.c: hard-negative batches. The nearest-item search against a float64 brute
 * force (random rows, a dimension that is not a multiple of the summation lanes, unreadable
 * rows), its independence from the thread count, the grouped epoch order (a permutation,
 * clusters kept whole) and the loader's batches with it: whole clusters per batch on one rank
 * and on two, every sample once per epoch, epochs that differ, a pure function of the options;
 * and the same machinery with a table of counterfactual twins (pairs in one batch).
 *
 * The loader runs captions-only (skip_images), so no image file is needed.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dataset.h"    // defines: Dataset, dataset_push_item
#include "dataset/loader.h"     // defines: Loader, loader_open, loader_next
#include "dataset/neighbours.h" // defines: neighbours_nearest, neighbours_group_order
#include "harness.h"
#include "util/common.h" // defines: mallocCheck
#include "util/rng.h"    // defines: Rng, rng_seed, rng_normal, rng_below

/* n unit rows of dimension D: random directions (spread 0), or clusters of `cluster` rows
 * around random centres (row i in cluster i % (n / cluster), so the dataset order never has
 * a cluster's rows next to each other), each centre plus noise of size spread */
static float *unit_rows(int n, int D, int cluster, float spread, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    int clusters = cluster > 0 ? n / cluster : n;
    float *centres = mallocCheck(sizeof(float) * (size_t)clusters * D);
    for (int i = 0; i < clusters * D; i++) centres[i] = rng_normal(&rng);
    float *rows = mallocCheck(sizeof(float) * (size_t)n * D);
    for (int i = 0; i < n; i++) {
        double norm = 0;
        for (int d = 0; d < D; d++) {
            float v = centres[(size_t)(i % clusters) * D + d] + spread * rng_normal(&rng);
            rows[(size_t)i * D + d] = v;
            norm += (double)v * v;
        }
        for (int d = 0; d < D; d++) rows[(size_t)i * D + d] /= (float)sqrt(norm);
    }
    free(centres);
    return rows;
}

static void test_nearest_matches_brute_force(void) {
    enum { N = 60, D = 13, K = 5 };
    float *rows = unit_rows(N, D, 0, 0, 1);
    rows[7 * D + 3] = NAN; /* an image that failed to decode */
    int *nearest = neighbours_nearest(rows, N, D, K, NULL);
    int wrong = 0, nan_listed = 0;
    for (int i = 0; i < N; i++) {
        int *list = nearest + (size_t)i * K;
        for (int c = 0; c < K; c++) nan_listed += list[c] == 7;
        if (i == 7) {
            for (int c = 0; c < K; c++) wrong += list[c] != -1;
            continue;
        }
        /* the float64 k-th best similarity; each listed item must be at least that close, in
         * order, and no other item closer than the last listed (1e-5: float sums of 13
         * products of unit-row entries) */
        double sim[N];
        for (int j = 0; j < N; j++) {
            sim[j] = -INFINITY;
            if (j == i || j == 7) continue;
            double s = 0;
            for (int d = 0; d < D; d++) s += (double)rows[i * D + d] * rows[j * D + d];
            sim[j] = s;
        }
        for (int c = 0; c < K; c++) {
            int j = list[c];
            if (j < 0 || j == i) { wrong++; continue; }
            if (c > 0 && sim[j] > sim[list[c - 1]] + 1e-5) wrong++;
            for (int o = 0; o < N; o++) { /* nobody left out is closer than this one */
                int listed = 0;
                for (int e = 0; e < K; e++) listed |= list[e] == o;
                if (!listed && sim[o] > sim[j] + 1e-5) wrong++;
            }
        }
    }
    CHECK(wrong == 0, "%d list entries disagree with the float64 search", wrong);
    CHECK(nan_listed == 0, "an unreadable row was listed %d times", nan_listed);
    /* fewer candidates than k: the tail is -1 */
    int *short_list = neighbours_nearest(rows, 3, D, 4, NULL);
    CHECK(short_list[1] != -1 && short_list[2] == -1 && short_list[3] == -1,
          "3 items have 2 neighbours each: %d %d %d", short_list[1], short_list[2], short_list[3]);
    free(short_list);
    free(nearest);
    free(rows);
}

static void test_nearest_same_bits_any_threads(void) {
    enum { N = 300, D = 37, K = 6 };
    float *rows = unit_rows(N, D, 0, 0, 2);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    int *one = neighbours_nearest(rows, N, D, K, NULL);
    omp_set_num_threads(3);
    int *three = neighbours_nearest(rows, N, D, K, NULL);
    omp_set_num_threads(saved);
    CHECK(memcmp(one, three, sizeof(int) * N * K) == 0, "1 and 3 threads list the same neighbours");
    free(one);
    free(three);
    free(rows);
}

/* A random permutation of 0..n-1 (Fisher-Yates from seed). */
static void random_order(int *p, int n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) p[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&rng, (uint64_t)i + 1), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

static int is_permutation(const int *p, int n) {
    unsigned char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        ok = p[i] >= 0 && p[i] < n && !seen[p[i]];
        if (ok) seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

/* clusters of 4 tight rows (noise 0.05 against unit-variance centres): each row's 3 nearest
 * are its cluster */
static void test_group_order(void) {
    enum { N = 40, D = 16, G = 4, K = 3 };
    float *rows = unit_rows(N, D, G, 0.05f, 3);
    int *nearest = neighbours_nearest(rows, N, D, K, NULL);
    int order[N], out[N];
    random_order(order, N, 9);
    neighbours_group_order(order, N, nearest, K, G, out);
    int split = 0;
    for (int g = 0; g < N / G; g++)
        for (int c = 1; c < G; c++) split += out[g * G + c] % (N / G) != out[g * G] % (N / G);
    CHECK(is_permutation(out, N), "the grouped order is a permutation");
    CHECK(split == 0, "%d rows sit in another cluster's group", split);
    CHECK(out[0] == order[0], "the first group starts at the shuffle's first item");
    neighbours_group_order(order, N, nearest, K, 1, out);
    CHECK(memcmp(order, out, sizeof order) == 0, "groups of 1 keep the order");
    /* groups larger than the neighbour lists: still a permutation */
    neighbours_group_order(order, N, nearest, K, 6, out);
    CHECK(is_permutation(out, N), "groups of 6 over lists of 3: a permutation");
    free(nearest);
    free(rows);
}

/* ----------------------------------------------------------------------------
 * The loader with hard batches */

enum { ITEMS = 48, CLUSTER = 4, DIM = 16 };

static void make_items(Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    for (int i = 0; i < ITEMS; i++) {
        char name[32];
        snprintf(name, sizeof name, "item_%02d", i);
        dataset_item_add_caption(dataset_push_item(ds, "/nonexistent.jpg", name), name);
    }
}

/* A loader grouping: the neighbour table the loader gets, and which group each item belongs
 * to, for the checks. */
typedef struct {
    const int *nearest;
    int k, group;
    const int *group_of; /* [ITEMS] */
} Grouping;

static LoaderOptions hard_options(const Dataset *ds, const Grouping *g, int batch, int rank, int world) {
    return (LoaderOptions){.dataset = ds, .batch_size = batch, .threads = 2, .seed = 4, .shuffle = 1,
                           .rank = rank, .world = world, .drop_last = 1, .quiet = 1, .skip_images = 1,
                           .nearest = g->nearest, .nearest_k = g->k, .group = g->group};
}

/* Runs `epochs` epochs of every rank; seen[item] counts the deliveries, split counts batches
 * with rows of more than batch / group groups; order[] (may be NULL) the first epoch's items
 * of rank 0. */
static void run_hard(const Dataset *ds, const Grouping *g, int batch, int world, int epochs, int *seen, int *split,
                     int *order) {
    *split = 0;
    for (int r = 0; r < world; r++) {
        LoaderOptions opt = hard_options(ds, g, batch, r, world);
        char err[256];
        Loader *l = loader_open(&opt, err, sizeof err);
        if (!l) die("%s", err);
        long batches = loader_batches_per_epoch(l);
        for (long k = 0; k < batches * epochs; k++) {
            const LoaderBatch *b = loader_next(l);
            int groups[ITEMS] = {0}, distinct = 0;
            for (int i = 0; i < b->size; i++) {
                int item = b->item_index[i];
                seen[item]++;
                distinct += groups[g->group_of[item]]++ == 0;
                if (order && r == 0 && k < batches) order[k * batch + i] = item;
            }
            *split += distinct > b->size / g->group;
        }
        loader_close(l);
    }
}

/* Batches of 8 under g on 1..max_world ranks for `epochs` epochs: every sample once per epoch,
 * no batch holding a part of a group (what names the group in messages), and the same options
 * the same batches. */
static void check_grouped_batches(const Dataset *ds, const Grouping *g, int max_world, int epochs, const char *what) {
    int seen[ITEMS], split, first[ITEMS], again[ITEMS];
    for (int world = 1; world <= max_world; world++) {
        memset(seen, 0, sizeof seen);
        run_hard(ds, g, 8, world, epochs, seen, &split, world == 1 ? first : NULL);
        int wrong = 0;
        for (int i = 0; i < ITEMS; i++) wrong += seen[i] != epochs;
        CHECK(wrong == 0, "world %d: %d items not seen exactly once per epoch", world, wrong);
        CHECK(split == 0, "world %d: %d batches hold a part of a %s", world, split, what);
    }
    memset(seen, 0, sizeof seen);
    run_hard(ds, g, 8, 1, 1, seen, &split, again);
    CHECK(memcmp(first, again, sizeof first) == 0, "the same options give the same batches");
}

static void test_loader_hard_batches(void) {
    Dataset ds;
    make_items(&ds);
    float *rows = unit_rows(ITEMS, DIM, CLUSTER, 0.05f, 5);
    int *nearest = neighbours_nearest(rows, ITEMS, DIM, CLUSTER - 1, NULL), cluster_of[ITEMS];
    for (int i = 0; i < ITEMS; i++) cluster_of[i] = i % (ITEMS / CLUSTER);
    const Grouping clusters = {nearest, CLUSTER - 1, CLUSTER, cluster_of};
    check_grouped_batches(&ds, &clusters, 2, 2, "cluster");
    /* the second epoch is grouped from another shuffle */
    LoaderOptions opt = hard_options(&ds, &clusters, ITEMS, 0, 1);
    char err[256];
    Loader *l = loader_open(&opt, err, sizeof err);
    int epoch0[ITEMS];
    memcpy(epoch0, loader_next(l)->item_index, sizeof epoch0);
    CHECK(memcmp(epoch0, loader_next(l)->item_index, sizeof epoch0) != 0, "epochs differ");
    loader_close(l);
    /* every pair of captions or no shuffle: refused, saying why */
    opt.captions = LOADER_ALL_PAIRS;
    l = loader_open(&opt, err, sizeof err);
    CHECK(!l && strstr(err, "hard batches need"), "all pairs refused: %s", l ? "(opened)" : err);
    free(nearest);
    free(rows);
    dataset_free(&ds);
}

/* Counterfactual twins (tng_train --twin-batches): a table of random pairs that name each
 * other, one entry per item, in groups of 2. Every batch holds each of its images with its
 * twin, on 1, 2 and 3 ranks, every epoch; each sample once per epoch; the same options give
 * the same batches. Without the table the same shuffle splits pairs (the check can fail). */
static void test_loader_twin_batches(void) {
    Dataset ds;
    make_items(&ds);
    int perm[ITEMS], twin[ITEMS], pair_of[ITEMS];
    random_order(perm, ITEMS, 17);
    for (int p = 0; p < ITEMS / 2; p++) {
        int a = perm[2 * p], b = perm[2 * p + 1];
        twin[a] = b, twin[b] = a;
        pair_of[a] = pair_of[b] = p;
    }
    const Grouping twins = {twin, 1, 2, pair_of};
    check_grouped_batches(&ds, &twins, 3, 3, "pair of twins");
    const Grouping plain = {NULL, 0, 2, pair_of};
    int seen[ITEMS] = {0}, split;
    run_hard(&ds, &plain, 8, 1, 1, seen, &split, NULL);
    CHECK(split > 0, "the plain shuffle already keeps every pair together: the check cannot fail");
    dataset_free(&ds);
}

int main(void) {
    RUN_TEST(test_nearest_matches_brute_force);
    RUN_TEST(test_nearest_same_bits_any_threads);
    RUN_TEST(test_group_order);
    RUN_TEST(test_loader_hard_batches);
    RUN_TEST(test_loader_twin_batches);
    return test_summary();
}
