/*
 * queue.h: the project's one bounded FIFO of pointers between threads (mutex + two condvars).
 *
 * Contract: items leave in the order they entered. queue_push waits while the queue is full,
 * queue_pop while it is empty. queue_close ends the exchange: every waiter wakes, pushes are
 * refused from then on, and pops still hand out what was queued before they report "closed",
 * so a consumer sees everything a producer pushed before it closed. Items are opaque: the queue
 * never reads or frees them (NULL is a valid item). Hand buffers around in two queues (one of
 * empty buffers, one of full ones) and nothing is allocated per item.
 *
 * Users: the TNG producer (tng/producer.c), the image loader (dataset/loader.c) and the
 * trainer's look-ahead batches (train/lookahead.c).
 */
#ifndef TNG_QUEUE_H
#define TNG_QUEUE_H

typedef struct Queue Queue;

/* A queue of at most capacity >= 1 items (dies on less). */
Queue *queue_create(int capacity);
/* Frees the queue; no thread may be waiting on it. Items still queued are not touched. */
void queue_free(Queue *q);

/* Appends item, waiting while the queue is full. Returns 0, or -1 (item not queued) once the
 * queue is closed, also when it closes during the wait. */
int queue_push(Queue *q, void *item);
/* Takes the oldest item into *item, waiting while the queue is empty and open. Returns 1, or 0
 * when the queue is closed and empty (then *item is untouched). */
int queue_pop(Queue *q, void **item);
/* Refuses further pushes and wakes every waiter. Safe to call more than once. */
void queue_close(Queue *q);

#endif
