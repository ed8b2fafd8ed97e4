/*
 * producer.c: the thread that runs the TNG generator ahead of the training loop (generator.h).
 *
 * Key design choice: a fixed set of depth+1 TngTexts buffers cycles through two queues
 * (util/queue.h): `empty` holds the buffers free to fill, `ready` the finished batches in source
 * order. Nothing is allocated per batch once the buffers have grown, and the thread stalls
 * (instead of running on without bound) when the consumer falls behind: it waits for an empty
 * buffer. The extra buffer is the one the consumer holds. The generator runs outside any lock.
 */
#include <pthread.h>
#include <stdlib.h>

#include "util/common.h"    // defines: die, mallocCheck, callocCheck, now_seconds
#include "util/queue.h"     // defines: Queue, queue_create, queue_push, queue_pop, queue_close
#include "tng/generator.h"  // defines: TngProducer API, tng_make_texts_preferring, tng_generator_create

struct TngProducer {
    TngGenerator *gen;
    TngSourceFn source;
    void *source_ctx;
    pthread_t thread;
    int n_slots;
    TngTexts *slots;
    Queue *empty; /* buffers to fill; closed by tng_producer_stop */
    Queue *ready; /* finished batches; closed when the thread ends */
    double wait_seconds; /* read and written by the consumer only */
};

static void check_input(const TngInput *in) {
    if (in->n_pool < 1 || in->dim < 1 || !in->captions || !in->image_emb)
        die("tng producer: the source gave an invalid batch (n_pool %d, dim %d, captions %p, "
            "image_emb %p); expected n_pool >= 1, dim >= 1 and both arrays",
            in->n_pool, in->dim, (const void *)in->captions, (const void *)in->image_emb);
    for (int i = 0; i < in->n_pool; i++)
        if (!in->captions[i]) die("tng producer: caption %d of batch %lld is NULL", i,
                                  (long long)in->batch_index);
}

static void *producer_main(void *arg) {
    TngProducer *p = arg;
    void *slot;
    while (queue_pop(p->empty, &slot)) {
        TngInput in = {0};
        if (!p->source(p->source_ctx, &in)) break; /* the end of the data */
        check_input(&in);
        tng_make_texts_preferring(p->gen, in.captions, in.image_emb, in.prefer, in.n_pool, in.dim,
                                  in.make_for, in.make_for ? in.n_make : in.n_pool, in.batch_index,
                                  slot);
        if (queue_push(p->ready, slot) != 0) break; /* stopped while generating */
    }
    queue_close(p->ready); /* the consumer takes what is ready, then sees the end */
    return NULL;
}

TngProducer *tng_producer_start(const TngConfig *cfg, const Lexicon *lex, const Tokenizer *tok,
                                TngSourceFn source, void *source_ctx, int depth) {
    if (depth < 1) die("tng producer: queue depth must be >= 1, found %d", depth);
    TngProducer *p = callocCheck(1, sizeof(TngProducer));
    p->gen = tng_generator_create(cfg, lex, tok);
    p->source = source;
    p->source_ctx = source_ctx;
    p->n_slots = depth + 1;
    p->slots = callocCheck((size_t)p->n_slots, sizeof(TngTexts));
    /* each queue can hold every buffer, so handing one back never waits */
    p->empty = queue_create(p->n_slots);
    p->ready = queue_create(p->n_slots);
    for (int s = 0; s < p->n_slots; s++) queue_push(p->empty, &p->slots[s]);
    if (pthread_create(&p->thread, NULL, producer_main, p) != 0)
        die("tng producer: pthread_create failed");
    return p;
}

const TngTexts *tng_producer_pop(TngProducer *p) {
    double start = now_seconds();
    void *texts = NULL;
    int got = queue_pop(p->ready, &texts);
    p->wait_seconds += now_seconds() - start;
    return got ? texts : NULL;
}

void tng_producer_release(TngProducer *p, const TngTexts *texts) {
    long slot = texts - p->slots;
    if (slot < 0 || slot >= p->n_slots) die("tng producer: released a batch it does not own");
    queue_push(p->empty, &p->slots[slot]);
}

double tng_producer_wait_seconds(const TngProducer *p) { return p->wait_seconds; }

void tng_producer_stop(TngProducer *p) {
    if (!p) return;
    /* a thread waiting for a buffer wakes and ends; one generating ends at its push */
    queue_close(p->empty);
    queue_close(p->ready);
    pthread_join(p->thread, NULL);
    for (int s = 0; s < p->n_slots; s++) tng_texts_free(&p->slots[s]);
    free(p->slots);
    queue_free(p->empty);
    queue_free(p->ready);
    tng_generator_free(p->gen);
    free(p);
}
