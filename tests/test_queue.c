/*
 * test_queue.c: the bounded FIFO (host/util/queue.c) that the TNG producer, the loader and the
 * trainer share.
 *
 * Checked: FIFO order across the ring's wrap-around; a push waits at capacity and a pop on an
 * empty queue waits; close wakes every waiter, refuses pushes and still drains what was queued;
 * many producer and consumer threads hand over every item exactly once, each producer's items
 * in its order; one producer and one consumer see exactly the pushed sequence.
 * The waiting checks sleep to give a broken queue time to misbehave: a correct queue passes
 * them whatever the timing, so they cannot fail spuriously, only miss a bug on a slow machine.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "util/queue.h" // defines: Queue, queue_create, queue_push, queue_pop, queue_close
#include "util/rng.h"   // defines: Rng, rng_seed, rng_below

/* Items are small integers carried in the pointer itself (0 is NULL, which is a valid item). */
static void *item_of(uintptr_t v) { return (void *)v; }
static uintptr_t value_of(void *p) { return (uintptr_t)p; }

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_fifo_order_and_wrap(void) {
    Queue *q = queue_create(3);
    Rng rng;
    rng_seed(&rng, 11);
    uintptr_t next_in = 0, next_out = 0;
    int queued = 0, bad = 0;
    for (int round = 0; round < 1000; round++) { /* random fills and drains wrap the ring */
        int pushes = (int)rng_below(&rng, (uint64_t)(3 - queued) + 1);
        for (int k = 0; k < pushes; k++) bad += queue_push(q, item_of(next_in++)) != 0;
        queued += pushes;
        int pops = (int)rng_below(&rng, (uint64_t)queued + 1);
        for (int k = 0; k < pops; k++) {
            void *got = item_of(999);
            bad += queue_pop(q, &got) != 1 || value_of(got) != next_out++;
        }
        queued -= pops;
    }
    CHECK(bad == 0 && next_in > 1000, "%d wrong pushes or pops of %lu items", bad, (unsigned long)next_in);
    queue_free(q);
}

typedef struct {
    Queue *q;
    int push;    /* 1: a pusher, 0: a popper */
    int n;       /* pushes or pops to make */
    int done;    /* how many completed, written under `lock` */
    int results; /* sum of the return codes */
    pthread_mutex_t lock;
} Worker;

static void *exchange(void *arg) {
    Worker *w = arg;
    for (int k = 0; k < w->n; k++) {
        void *item = item_of((uintptr_t)k);
        int rc = w->push ? queue_push(w->q, item) : queue_pop(w->q, &item);
        pthread_mutex_lock(&w->lock);
        w->done++;
        w->results += rc;
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

static int done_of(Worker *w) {
    pthread_mutex_lock(&w->lock);
    int d = w->done;
    pthread_mutex_unlock(&w->lock);
    return d;
}

static void test_push_waits_at_capacity(void) {
    Queue *q = queue_create(2);
    Worker w = {.q = q, .push = 1, .n = 3};
    pthread_mutex_init(&w.lock, NULL);
    pthread_t t;
    pthread_create(&t, NULL, exchange, &w);
    sleep_ms(50);
    CHECK(done_of(&w) == 2, "%d pushes completed into a queue of 2", done_of(&w));
    void *item;
    CHECK(queue_pop(q, &item) == 1 && value_of(item) == 0, "first item %lu", (unsigned long)value_of(item));
    pthread_join(t, NULL); /* the third push completes once there is room */
    CHECK(w.done == 3 && w.results == 0, "%d pushes, return codes sum %d", w.done, w.results);
    for (uintptr_t want = 1; want <= 2; want++)
        CHECK(queue_pop(q, &item) == 1 && value_of(item) == want, "item %lu, want %lu",
              (unsigned long)value_of(item), (unsigned long)want);
    pthread_mutex_destroy(&w.lock);
    queue_free(q);
}

static void test_pop_waits_for_an_item(void) {
    Queue *q = queue_create(4);
    Worker w = {.q = q, .n = 1};
    pthread_mutex_init(&w.lock, NULL);
    pthread_t t;
    pthread_create(&t, NULL, exchange, &w);
    sleep_ms(50);
    CHECK(done_of(&w) == 0, "a pop returned from an empty open queue");
    queue_push(q, item_of(7));
    pthread_join(t, NULL);
    CHECK(w.done == 1 && w.results == 1, "pop returned %d", w.results);
    pthread_mutex_destroy(&w.lock);
    queue_free(q);
}

/* Close wakes the poppers of an empty queue and the pushers of a full one; afterwards pushes
 * are refused and pops drain the queued items before they report "closed". */
static void test_close_wakes_and_drains(void) {
    enum { WAITERS = 4 };
    Queue *empty = queue_create(1), *full = queue_create(2);
    queue_push(full, item_of(1));
    queue_push(full, item_of(2));
    Worker poppers = {.q = empty, .n = 1}, pushers = {.q = full, .push = 1, .n = 1};
    pthread_mutex_init(&poppers.lock, NULL);
    pthread_mutex_init(&pushers.lock, NULL);
    pthread_t t[2 * WAITERS];
    for (int k = 0; k < WAITERS; k++) {
        pthread_create(&t[k], NULL, exchange, &poppers);
        pthread_create(&t[WAITERS + k], NULL, exchange, &pushers);
    }
    sleep_ms(50);
    CHECK(done_of(&poppers) == 0 && done_of(&pushers) == 0, "waiters returned before close");
    queue_close(empty);
    queue_close(full);
    for (int k = 0; k < 2 * WAITERS; k++) pthread_join(t[k], NULL);
    CHECK(poppers.done == WAITERS && poppers.results == 0, "poppers: %d woke, %d got an item",
          poppers.done, poppers.results);
    CHECK(pushers.done == WAITERS && pushers.results == -WAITERS, "pushers: %d woke, codes sum %d",
          pushers.done, pushers.results);
    CHECK(queue_push(empty, item_of(3)) == -1, "a push into a closed queue was taken");
    void *item = item_of(99);
    CHECK(queue_pop(full, &item) == 1 && value_of(item) == 1, "drain 1: %lu", (unsigned long)value_of(item));
    CHECK(queue_pop(full, &item) == 1 && value_of(item) == 2, "drain 2: %lu", (unsigned long)value_of(item));
    CHECK(queue_pop(full, &item) == 0 && value_of(item) == 2, "a closed empty queue gave an item");
    queue_close(full); /* closing twice is harmless */
    CHECK(queue_pop(full, &item) == 0, "pop after a second close");
    pthread_mutex_destroy(&poppers.lock);
    pthread_mutex_destroy(&pushers.lock);
    queue_free(empty);
    queue_free(full);
}

/* ---- many producers and consumers ---- */

enum { PRODUCERS = 4, CONSUMERS = 3, PER_PRODUCER = 5000 };

typedef struct {
    Queue *q;
    int id;
    uintptr_t *received; /* consumer: the items in the order it popped them */
    int n_received;
} Party;

/* item = producer * PER_PRODUCER + sequence number */
static void *produce(void *arg) {
    Party *p = arg;
    for (int s = 0; s < PER_PRODUCER; s++)
        if (queue_push(p->q, item_of((uintptr_t)p->id * PER_PRODUCER + (uintptr_t)s)) != 0) break;
    return NULL;
}

static void *consume(void *arg) {
    Party *c = arg;
    for (void *item; queue_pop(c->q, &item);) c->received[c->n_received++] = value_of(item);
    return NULL;
}

static void test_many_producers_and_consumers(void) {
    for (int capacity = 1; capacity <= 16; capacity *= 4) {
        Queue *q = queue_create(capacity);
        Party producers[PRODUCERS], consumers[CONSUMERS];
        pthread_t tp[PRODUCERS], tc[CONSUMERS];
        for (int c = 0; c < CONSUMERS; c++) {
            consumers[c] = (Party){.q = q, .id = c,
                                   .received = malloc(sizeof(uintptr_t) * PRODUCERS * PER_PRODUCER)};
            pthread_create(&tc[c], NULL, consume, &consumers[c]);
        }
        for (int p = 0; p < PRODUCERS; p++) {
            producers[p] = (Party){.q = q, .id = p};
            pthread_create(&tp[p], NULL, produce, &producers[p]);
        }
        for (int p = 0; p < PRODUCERS; p++) pthread_join(tp[p], NULL);
        queue_close(q); /* every push has completed: the consumers drain the rest and stop */
        for (int c = 0; c < CONSUMERS; c++) pthread_join(tc[c], NULL);
        int *seen = calloc(PRODUCERS * PER_PRODUCER, sizeof(int));
        int total = 0, out_of_order = 0, unknown = 0;
        for (int c = 0; c < CONSUMERS; c++) {
            int last[PRODUCERS];
            for (int p = 0; p < PRODUCERS; p++) last[p] = -1;
            for (int k = 0; k < consumers[c].n_received; k++) {
                uintptr_t v = consumers[c].received[k];
                if (v >= (uintptr_t)PRODUCERS * PER_PRODUCER) {
                    unknown++;
                    continue;
                }
                int p = (int)(v / PER_PRODUCER), s = (int)(v % PER_PRODUCER);
                out_of_order += s <= last[p]; /* a consumer sees each producer's items in order */
                last[p] = s;
                seen[v]++;
                total++;
            }
            free(consumers[c].received);
        }
        int missing_or_twice = 0;
        for (int v = 0; v < PRODUCERS * PER_PRODUCER; v++) missing_or_twice += seen[v] != 1;
        CHECK(total == PRODUCERS * PER_PRODUCER && missing_or_twice == 0 && unknown == 0,
              "capacity %d: %d items received, %d missing or twice, %d unknown", capacity, total,
              missing_or_twice, unknown);
        CHECK(out_of_order == 0, "capacity %d: %d items out of their producer's order", capacity,
              out_of_order);
        free(seen);
        queue_free(q);
    }
}

/* One producer, one consumer: the consumer's sequence is the pushed one, run after run. */
static void test_single_pair_sequence_is_exact(void) {
    for (int run = 0; run < 3; run++) {
        Queue *q = queue_create(2 + run);
        Party producer = {.q = q, .id = 1};
        Party consumer = {.q = q, .received = malloc(sizeof(uintptr_t) * PER_PRODUCER)};
        pthread_t tp, tc;
        pthread_create(&tc, NULL, consume, &consumer);
        pthread_create(&tp, NULL, produce, &producer);
        pthread_join(tp, NULL);
        queue_close(q);
        pthread_join(tc, NULL);
        int wrong = consumer.n_received != PER_PRODUCER;
        for (int k = 0; k < consumer.n_received && !wrong; k++)
            wrong = consumer.received[k] != (uintptr_t)PER_PRODUCER + (uintptr_t)k;
        CHECK(!wrong, "run %d: %d items, not the pushed sequence", run, consumer.n_received);
        free(consumer.received);
        queue_free(q);
    }
}

int main(void) {
    RUN_TEST(test_fifo_order_and_wrap);
    RUN_TEST(test_push_waits_at_capacity);
    RUN_TEST(test_pop_waits_for_an_item);
    RUN_TEST(test_close_wakes_and_drains);
    RUN_TEST(test_many_producers_and_consumers);
    RUN_TEST(test_single_pair_sequence_is_exact);
    return test_summary();
}
