/*
 * producer.c: the thread that runs the TNG generator ahead of the training loop (tng.h).
 *
 * Key design choice: a fixed pool of depth+1 TngTexts buffers cycles between a free list and a
 * FIFO of finished batches, so nothing is allocated per batch once the buffers have grown, and
 * the producer stalls (instead of queueing without bound) when the consumer falls behind. The
 * extra buffer is the one the consumer holds. One mutex guards both lists; the generator itself
 * runs outside the lock.
 */
#include <pthread.h>
#include <stdlib.h>

#include "util/common.h" // defines: die, mallocCheck, callocCheck, now_seconds
#include "tng/generator.h"    // defines: TngProducer API, tng_make_texts, tng_generator_create

struct TngProducer {
    TngGenerator *gen;
    TngSourceFn source;
    void *source_ctx;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t slot_freed; /* a buffer was released, or stop was asked */
    pthread_cond_t batch_done; /* a batch was finished, or the producer ended */
    int n_slots;
    TngTexts *slots;
    int *free_slots, n_free;
    int *ready, ready_head, n_ready; /* FIFO ring of finished slot indices */
    int finished;                    /* the producer has returned: no more batches */
    int stop;
    double wait_seconds;
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
    for (;;) {
        pthread_mutex_lock(&p->mutex);
        while (!p->stop && p->n_free == 0) pthread_cond_wait(&p->slot_freed, &p->mutex);
        if (p->stop) {
            pthread_mutex_unlock(&p->mutex);
            break;
        }
        int slot = p->free_slots[--p->n_free];
        pthread_mutex_unlock(&p->mutex);

        TngInput in = {0};
        int more = p->source(p->source_ctx, &in);
        if (more) {
            check_input(&in);
            tng_make_texts(p->gen, in.captions, in.image_emb, in.n_pool, in.dim, in.make_for,
                           in.make_for ? in.n_make : in.n_pool, in.batch_index, &p->slots[slot]);
        }
        pthread_mutex_lock(&p->mutex);
        if (!more) {
            p->free_slots[p->n_free++] = slot;
            pthread_mutex_unlock(&p->mutex);
            break;
        }
        p->ready[(p->ready_head + p->n_ready++) % p->n_slots] = slot;
        pthread_cond_signal(&p->batch_done);
        pthread_mutex_unlock(&p->mutex);
    }
    pthread_mutex_lock(&p->mutex);
    p->finished = 1;
    pthread_cond_broadcast(&p->batch_done);
    pthread_mutex_unlock(&p->mutex);
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
    p->free_slots = mallocCheck((size_t)p->n_slots * sizeof(int));
    p->ready = mallocCheck((size_t)p->n_slots * sizeof(int));
    for (int s = p->n_slots - 1; s >= 0; s--) p->free_slots[p->n_free++] = s;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->slot_freed, NULL);
    pthread_cond_init(&p->batch_done, NULL);
    if (pthread_create(&p->thread, NULL, producer_main, p) != 0)
        die("tng producer: pthread_create failed");
    return p;
}

const TngTexts *tng_producer_pop(TngProducer *p) {
    pthread_mutex_lock(&p->mutex);
    if (p->n_ready == 0 && !p->finished) {
        double start = now_seconds();
        while (p->n_ready == 0 && !p->finished) pthread_cond_wait(&p->batch_done, &p->mutex);
        p->wait_seconds += now_seconds() - start;
    }
    const TngTexts *texts = NULL;
    if (p->n_ready > 0) {
        texts = &p->slots[p->ready[p->ready_head]];
        p->ready_head = (p->ready_head + 1) % p->n_slots;
        p->n_ready--;
    }
    pthread_mutex_unlock(&p->mutex);
    return texts;
}

void tng_producer_release(TngProducer *p, const TngTexts *texts) {
    long slot = texts - p->slots;
    if (slot < 0 || slot >= p->n_slots) die("tng producer: released a batch it does not own");
    pthread_mutex_lock(&p->mutex);
    p->free_slots[p->n_free++] = (int)slot;
    pthread_cond_signal(&p->slot_freed);
    pthread_mutex_unlock(&p->mutex);
}

double tng_producer_wait_seconds(const TngProducer *p) { return p->wait_seconds; }

void tng_producer_stop(TngProducer *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    p->stop = 1;
    pthread_cond_broadcast(&p->slot_freed);
    pthread_mutex_unlock(&p->mutex);
    pthread_join(p->thread, NULL);
    for (int s = 0; s < p->n_slots; s++) tng_texts_free(&p->slots[s]);
    free(p->slots);
    free(p->free_slots);
    free(p->ready);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->slot_freed);
    pthread_cond_destroy(&p->batch_done);
    tng_generator_free(p->gen);
    free(p);
}
