/*
 * neighbours.h: hard-negative batches. Each item's nearest items by the cosine of their frozen
 * image embeddings, and an epoch order that keeps an item and its neighbours together.
 *
 * Why: TNG's negation text for an image names an object its most similar batch-mate's caption
 * mentions and its own does not. In a random batch that batch-mate is rarely close, so "with no
 * X" seldom decides anything: the rest of the caption already tells the images apart. Batches
 * made of near neighbours (NegCLIP's idea) make the denied object the one thing that separates
 * an image from a look-alike.
 *
 * Both functions are pure and give the same bits whatever the thread count (each dot product is
 * summed in a fixed order), so the batches of a run with hard batches stay a function of (seed,
 * epoch, features) and a resumed run sees the batches it would have seen.
 */
#ifndef TNG_NEIGHBOURS_H
#define TNG_NEIGHBOURS_H

#include <stddef.h>

/* The k most similar other items of each of n items (features [n, D], rows L2-normalised),
 * most similar first, ties to the lower index: [n, k] malloc'd. A row that is not finite (an
 * image that failed to decode) is nobody's neighbour and has none (its list is all -1); so is
 * the tail of a list when fewer than k items qualify. progress (may be NULL) is called with
 * the rows done so far, from one thread, now and then. */
int *neighbours_nearest(const float *features, int n, int D, int k, void (*progress)(int done, int n));

/* An epoch's order with neighbours together: walks `order` (a permutation of 0..n-1) and, at
 * each item not yet placed, places it followed by up to group - 1 of its nearest (k per item,
 * from neighbours_nearest) that are not placed yet, closest first. out [n] is again a
 * permutation of 0..n-1, and with group 1 it is `order` itself. */
void neighbours_group_order(const int *order, int n, const int *nearest, int k, int group, int *out);

#endif
