/*
 * bench_tng.c: throughput of the TNG negation generator, and what it costs the training loop.
 *
 * 1. Raw generator speed: tng_make_texts on one thread at B=128, D=512 with COCO-like captions
 *    (random phrases, 8-20 words) and random unit embeddings; reports captions/s and texts/s.
 * 2. --tng-scope global: a pool of world x B images (the global batch); one rank's share (B
 *    images, the loader's positions j * world) against the texts of the whole pool, which is
 *    what every rank built before it could make a share alone.
 * 3. Overhead: the producer thread runs ahead of a consumer that "trains" for step_ms per step
 *    (a sleep standing in for a real step); reports the time the consumer waits in
 *    tng_producer_pop per step (timed around the call: locking included), first step (cold
 *    queue) apart, as a share of the step time.
 *
 * Usage: bench_tng [batches_for_throughput=50] [steps=40] [step_ms=100] [depth=2] [world=4]
 * Run from the repository root (it loads data/cache/lexicon.tsv and the BPE vocabulary).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/common.h"    // defines: now_seconds, mallocCheck, strdupCheck
#include "text/lexicon.h"   // defines: lexicon_load
#include "util/rng.h"       // defines: Rng, rng_seed, rng_below, rng_normal
#include "tng/generator.h"       // defines: tng_make_texts, tng_producer_*
#include "text/tokenizer.h" // defines: tokenizer_load

enum { B = 128, D = 512, N_POOL = 8 };

static const char *const ADJ[] = {"", "small ", "large ", "young ", "white ", "black ", "old "};
static const char *const SUBJECT[] = {"man", "woman", "dog", "cat", "boy", "girl", "giraffe",
                                      "horse", "bird", "person", "skier", "surfer", "bus",
                                      "train", "elephant", "zebra", "child", "couple"};
static const char *const ACTION[] = {"riding", "sitting on", "standing next to", "holding",
                                     "eating", "looking at", "walking past", "lying on",
                                     "parked near", "playing with"};
static const char *const THING[] = {"a horse", "a wooden bench", "the table", "a slice of pizza",
                                    "a skateboard", "an umbrella", "a red couch", "some trees",
                                    "a car", "two boats", "a bicycle", "a clock tower",
                                    "a laptop computer", "a frisbee", "a plate of food",
                                    "a cell phone", "a tennis racket", "a kite"};
static const char *const PLACE[] = {"in a park", "on a busy city street", "near the water",
                                    "in a small kitchen", "on the beach", "in a grassy field",
                                    "at night", "in front of a building", "on a snowy slope"};
#define PICK(rng, list) list[rng_below(rng, sizeof(list) / sizeof(list[0]))]

typedef struct {
    char *captions[N_POOL][B];
    float *emb[N_POOL];
    int64_t next;
} Pool;

static void pool_init(Pool *pool) {
    Rng rng;
    rng_seed(&rng, 42);
    for (int p = 0; p < N_POOL; p++) {
        pool->emb[p] = mallocCheck((size_t)B * D * sizeof(float));
        for (int i = 0; i < B; i++) {
            char buf[512];
            snprintf(buf, sizeof buf, "A %s%s %s %s %s.", PICK(&rng, ADJ), PICK(&rng, SUBJECT),
                     PICK(&rng, ACTION), PICK(&rng, THING), PICK(&rng, PLACE));
            pool->captions[p][i] = strdupCheck(buf);
            float *e = pool->emb[p] + (size_t)i * D;
            double norm = 0;
            for (int d = 0; d < D; d++) {
                e[d] = (float)rng_normal(&rng);
                norm += e[d] * e[d];
            }
            for (int d = 0; d < D; d++) e[d] /= (float)sqrt(norm);
        }
    }
    pool->next = 0;
}

static void pool_free(Pool *pool) {
    for (int p = 0; p < N_POOL; p++) {
        for (int i = 0; i < B; i++) free(pool->captions[p][i]);
        free(pool->emb[p]);
    }
}

static int pool_source(void *ctx, TngInput *in) {
    Pool *pool = ctx;
    int p = (int)(pool->next % N_POOL);
    *in = (TngInput){.n_pool = B, .dim = D, .captions = (const char *const *)pool->captions[p],
                     .image_emb = pool->emb[p], .batch_index = pool->next++};
    return 1;
}

/* Milliseconds per call of tng_make_texts over `reps` calls (after one that grows the buffers):
 * texts for make_for[0..n_make) of a pool of n_pool, or for all of it when make_for is NULL. */
static double make_texts_ms(const TngConfig *cfg, const Lexicon *lex, const Tokenizer *tok,
                            const char *const *captions, const float *emb, int n_pool,
                            const int *make_for, int n_make, int reps) {
    TngGenerator *gen = tng_generator_create(cfg, lex, tok);
    TngTexts texts = {0};
    tng_make_texts(gen, captions, emb, n_pool, D, make_for, n_make, 0, &texts);
    double t0 = now_seconds();
    for (int k = 0; k < reps; k++)
        tng_make_texts(gen, captions, emb, n_pool, D, make_for, n_make, 1 + k, &texts);
    double ms = 1e3 * (now_seconds() - t0) / reps;
    tng_texts_free(&texts);
    tng_generator_free(gen);
    return ms;
}

static void sleep_seconds(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    int n_batches = argc > 1 ? atoi(argv[1]) : 50;
    int steps = argc > 2 ? atoi(argv[2]) : 40;
    double step_s = (argc > 3 ? atof(argv[3]) : 100.0) / 1000.0;
    int depth = argc > 4 ? atoi(argv[4]) : 2;
    int world = argc > 5 ? atoi(argv[5]) : 4;
    if (n_batches < 1 || steps < 2 || step_s < 0 || depth < 1 || world < 1 || world > N_POOL)
        die("usage: bench_tng [batches >= 1] [steps >= 2] [step_ms >= 0] [depth >= 1] "
            "[world 1..%d]", N_POOL);
    Lexicon *lex = lexicon_load(NULL);
    Tokenizer *tok = tokenizer_load(NULL);
    Pool pool;
    pool_init(&pool);
    TngConfig cfg;
    tng_config_default(&cfg);

    // 1. raw generator throughput, one thread (one warm-up batch grows the buffers)
    TngGenerator *gen = tng_generator_create(&cfg, lex, tok);
    TngTexts texts = {0};
    TngInput in;
    pool_source(&pool, &in);
    tng_make_texts(gen, in.captions, in.image_emb, B, D, NULL, B, in.batch_index, &texts);
    double t0 = now_seconds();
    for (int k = 0; k < n_batches; k++) {
        pool_source(&pool, &in);
        tng_make_texts(gen, in.captions, in.image_emb, B, D, NULL, B, in.batch_index, &texts);
    }
    double gen_s = (now_seconds() - t0) / n_batches;
    printf("generator: B=%d D=%d M=%d: %.2f ms/batch, %.0f captions/s, %.0f texts/s (1 thread)\n",
           B, D, cfg.negations_per_image, 1e3 * gen_s, B / gen_s, texts.n_texts / gen_s);
    printf("sample: %s | %s | %s\n", texts.texts[0], texts.texts[B], texts.texts[2 * B]);
    tng_texts_free(&texts);
    tng_generator_free(gen);

    // 2. --tng-scope global: the pool is `world` batches; rank 0 owns positions j * world
    {
        int n_pool = world * B;
        const char **captions = mallocCheck(sizeof(char *) * (size_t)n_pool);
        float *emb = mallocCheck(sizeof(float) * (size_t)n_pool * D);
        int *own = mallocCheck(sizeof(int) * B);
        for (int k = 0; k < world; k++) {
            memcpy(captions + (size_t)k * B, pool.captions[k], sizeof(char *) * B);
            memcpy(emb + (size_t)k * B * D, pool.emb[k], sizeof(float) * B * D);
        }
        for (int j = 0; j < B; j++) own[j] = j * world;
        double whole = make_texts_ms(&cfg, lex, tok, captions, emb, n_pool, NULL, n_pool, n_batches);
        double share = make_texts_ms(&cfg, lex, tok, captions, emb, n_pool, own, B, n_batches);
        printf("global scope: pool %d x %d: whole pool %.2f ms/batch, one rank's share of %d "
               "%.2f ms/batch (%.1fx less)\n",
               world, B, whole, B, share, whole / share);
        free(captions), free(emb), free(own);
    }

    // 3. the consumer's wait per step with the producer running ahead
    TngProducer *prod = tng_producer_start(&cfg, lex, tok, pool_source, &pool, depth);
    double first_pop = 0, later_pops = 0;
    t0 = now_seconds();
    for (int s = 0; s < steps; s++) {
        double pop_start = now_seconds();
        const TngTexts *t = tng_producer_pop(prod);
        double pop_s = now_seconds() - pop_start; // the consumer's view: lock and wait included
        if (s == 0) first_pop = pop_s;
        else later_pops += pop_s;
        sleep_seconds(step_s); // the training step
        tng_producer_release(prod, t);
    }
    double total = now_seconds() - t0, per_step = later_pops / (steps - 1);
    double blocked = tng_producer_wait_seconds(prod);
    tng_producer_stop(prod);
    printf("overhead: depth %d, %d steps of %.0f ms: first pop %.2f ms (cold start); then "
           "%.4f ms/step in tng_producer_pop = %.4f%% of the step (blocked %.3f ms in all); "
           "loop %.3f s\n",
           depth, steps, 1e3 * step_s, 1e3 * first_pop, 1e3 * per_step,
           step_s > 0 ? 100.0 * per_step / step_s : 0.0, 1e3 * blocked, total);

    pool_free(&pool);
    tokenizer_free(tok);
    lexicon_free(lex);
    return 0;
}
