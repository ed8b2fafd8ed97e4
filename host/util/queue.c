/*
 * queue.c: the bounded FIFO of queue.h, a ring of capacity pointers under one mutex.
 *
 * Two condition variables, one per direction, so a push wakes only poppers and a pop only
 * pushers; close broadcasts on both.
 */
#include "util/queue.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/common.h" // defines: die, mallocCheck, callocCheck

struct Queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void **items; /* ring [capacity]: the queued items are items[(head + k) % capacity] */
    int capacity, head, count, closed;
};

Queue *queue_create(int capacity) {
    if (capacity < 1) die("queue: capacity must be >= 1, found %d", capacity);
    Queue *q = callocCheck(1, sizeof(Queue));
    q->items = mallocCheck(sizeof(void *) * (size_t)capacity);
    q->capacity = capacity;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    return q;
}

void queue_free(Queue *q) {
    if (!q) return;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->items);
    free(q);
}

int queue_push(Queue *q, void *item) {
    pthread_mutex_lock(&q->lock);
    while (q->count == q->capacity && !q->closed) pthread_cond_wait(&q->not_full, &q->lock);
    int closed = q->closed;
    if (!closed) {
        q->items[(q->head + q->count++) % q->capacity] = item;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->lock);
    return closed ? -1 : 0;
}

int queue_pop(Queue *q, void **item) {
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed) pthread_cond_wait(&q->not_empty, &q->lock);
    int popped = q->count > 0;
    if (popped) {
        *item = q->items[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->lock);
    return popped;
}

void queue_close(Queue *q) {
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
}
